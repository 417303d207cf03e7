/**
 * Builds the control-plane worker: the workflow bundle plus the activity groups it serves, each
 * built from ports chosen by configuration (job runner, model registry, audit sink). Used by the
 * entry point, the demo and the tests alike; tests hand in other ports (fakes, fault injectors).
 */
import path from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type Activities, type ControlPlaneDeps } from '../activities';
import { JsonlAuditSink } from '../src/audit';
import type { WorkerConfig } from '../src/config';
import { createJobRunner } from '../src/jobs';
import { fileDelayedLabels, withDelayedLabels } from '../src/kpi/delayed-labels';
import { GatewayMetricsKpiSource } from '../src/kpi/gateway-metrics';
import { createModelRegistry } from '../src/registry';
import { modelTrustFromEnv } from '../src/security/model-trust';
import { createTrafficRouter } from '../src/traffic/select';

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  config: WorkerConfig;
  /** Replace ports chosen by configuration (tests: fakes; a Kubernetes runner built elsewhere). */
  ports?: Partial<Pick<ControlPlaneDeps, 'jobs' | 'registry' | 'audit' | 'router' | 'kpi' | 'trust'>>;
  /** Extra worker options (tests shorten shutdown, for instance). */
  workerOptions?: Partial<WorkerOptions>;
  /** Wraps the activities (tests inject faults around the real ones). */
  wrapActivities?: (activities: Activities) => Activities;
  /** Job poll interval override (tests). */
  jobPollIntervalMs?: number;
}

/** The gateway's /metrics, with the delayed-label outcomes beside it when both folders are named. */
function kpiSourceOf(config: WorkerConfig): ControlPlaneDeps['kpi'] {
  if (!config.gatewayUrl) return undefined;
  const metrics = new GatewayMetricsKpiSource(`${config.gatewayUrl}/metrics`);
  return config.delayedLabels ? withDelayedLabels(metrics, fileDelayedLabels(config.delayedLabels)) : metrics;
}

/** The control-plane ports and settings a worker's configuration names. */
export function controlPlaneDeps(
  config: WorkerConfig,
  ports: CreateWorkerOptions['ports'] = {},
): ControlPlaneDeps {
  return {
    registry: ports.registry ?? createModelRegistry({ kind: 'mlflow', trackingUri: config.trackingUri }),
    jobs: ports.jobs ?? createJobRunner(config),
    audit: ports.audit ?? new JsonlAuditSink(config.auditLogPath),
    snapshotDir: config.snapshotDir,
    policyDir: config.policyDir,
    ...(config.approverKeysDir !== undefined ? { approverKeysDir: config.approverKeysDir } : {}),
    jobTrackingUri: config.jobTrackingUri,
    credentialsSecret: config.jobCredentialsSecret,
    router: ports.router ?? createTrafficRouter(config.gatewayUrl),
    kpi: ports.kpi ?? kpiSourceOf(config),
    trust: ports.trust ?? modelTrustFromEnv(process.env, config.stateDir),
  };
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  const deps = { ...controlPlaneDeps(opts.config, opts.ports), jobPollIntervalMs: opts.jobPollIntervalMs };
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.config.taskQueue,
    workflowsPath: path.resolve(__dirname, '..', 'workflows'),
    activities: (opts.wrapActivities ?? ((a) => a))(createActivities(deps)),
    ...opts.workerOptions,
  });
}
