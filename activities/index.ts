/**
 * The activity groups of the control plane, each built by a factory from the ports it needs, and
 * `composeActivities`, which merges the groups a worker serves and refuses two activities of one
 * name (an object spread would silently let one replace the other). Workflows import the group
 * types only, one typed proxy per group.
 */
import path from 'node:path';
import type { AuditSink } from '../src/audit';
import type { JobRunner } from '../src/jobs/types';
import type { KpiSource } from '../src/ports/kpi-source';
import type { ModelRegistry } from '../src/ports/model-registry';
import type { StagingPredictor, TrafficRouter } from '../src/ports/traffic-router';
import type { ModelTrust } from '../src/security/model-trust';
import { RouterRefusedError } from '../src/traffic/gateway-router';
import { createAuditActivities } from './audit';
import { createDataActivities } from './data';
import { createDriftActivities, type DriftDeps } from './drift';
import { createEvaluationActivities } from './evaluation';
import { createKpiActivities } from './kpi';
import { createPolicyActivities } from './policy';
import { createRegistryActivities } from './registry';
import { createReferenceProfiler } from '../src/drift/reference-profile';
import { createSecurityActivities } from './security';
import { createStagingActivities, createTrafficActivities } from './traffic';
import { createTrainingActivities } from './training';

export type DataActivities = ReturnType<typeof createDataActivities>;
export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
export type RegistryActivities = ReturnType<typeof createRegistryActivities>;
export type EvaluationActivities = ReturnType<typeof createEvaluationActivities>;
export type PolicyActivities = ReturnType<typeof createPolicyActivities>;
export type AuditActivities = ReturnType<typeof createAuditActivities>;
export type SecurityActivities = ReturnType<typeof createSecurityActivities>;
export type TrafficActivities = ReturnType<typeof createTrafficActivities>;
export type KpiActivities = ReturnType<typeof createKpiActivities>;
export type StagingActivities = ReturnType<typeof createStagingActivities>;
export type DriftActivities = ReturnType<typeof createDriftActivities>;

type AnyActivity = (...args: never[]) => Promise<unknown>;
type Group = Record<string, AnyActivity>;
type Merge<G extends readonly Group[]> = G extends readonly [infer H, ...infer T extends readonly Group[]]
  ? H & Merge<T>
  : unknown;

/** Two groups define an activity of the same name. */
export class DuplicateActivityError extends Error {
  override readonly name = 'DuplicateActivityError';
}

/** Merges activity groups; throws {@link DuplicateActivityError} when a name appears twice. */
export function composeActivities<const G extends readonly Group[]>(...groups: G): Merge<G> {
  const out: Group = {};
  for (const group of groups) {
    for (const [name, fn] of Object.entries(group)) {
      if (Object.hasOwn(out, name))
        throw new DuplicateActivityError(`activity "${name}" is defined by two groups`);
      out[name] = fn;
    }
  }
  return out as Merge<G>;
}

export interface ControlPlaneDeps {
  registry: ModelRegistry;
  jobs: JobRunner;
  audit: AuditSink;
  /** Folder of content-addressed dataset snapshots. */
  snapshotDir: string;
  /** Folder of per-model governance policies (`<model>.json`). */
  policyDir: string;
  /** Folder of registered approver public keys (`publicKeyFile` in a policy); default `<policyDir>/approver-keys`. */
  approverKeysDir?: string;
  /** Registry tracking URI as seen from inside training jobs, when it differs from the worker's. */
  jobTrackingUri?: string;
  /** Secret with the registry credentials that training jobs report with. */
  credentialsSecret?: string;
  /** Job poll interval override (tests). */
  jobPollIntervalMs?: number;
  /** Where traffic is routed (the gateway's admin API); canary rollouts fail clearly without one. */
  router?: TrafficRouter;
  /** Where canary KPIs are read (the gateway's /metrics, or Prometheus). */
  kpi?: KpiSource;
  /** Model signing key and trusted keys: every use of a version verifies its signature. */
  trust?: ModelTrust;
  /** Drift monitoring: inference log, delayed labels and report folders (default beside the snapshots). */
  drift?: DriftDeps;
}

/** Stands in for a router or KPI source the worker was not configured with: every call says so. */
const unconfigured = (what: string, variable: string) => () =>
  Promise.reject(new RouterRefusedError(`no ${what} is configured on this worker (set ${variable})`, 0));

const NO_ROUTER: TrafficRouter = {
  getRoute: unconfigured('traffic router', 'MLOPS_GATEWAY_URL'),
  updateRoute: unconfigured('traffic router', 'MLOPS_GATEWAY_URL'),
};
const NO_KPI: KpiSource = { kind: 'none', snapshot: unconfigured('KPI source', 'MLOPS_GATEWAY_URL') };
const NO_STAGING: StagingPredictor = {
  predictStaging: unconfigured('staging route', 'MLOPS_GATEWAY_URL'),
};

/** The router itself when it also serves a staging route (the gateway does). */
function stagingOf(router: TrafficRouter | undefined): StagingPredictor {
  const r = router as Partial<StagingPredictor> | undefined;
  return r && typeof r.predictStaging === 'function' ? (r as StagingPredictor) : NO_STAGING;
}

/** Every activity group of the control-plane task queue. */
export function controlPlaneGroups(deps: ControlPlaneDeps) {
  return [
    createDataActivities({
      snapshotDir: deps.snapshotDir,
      registry: deps.registry,
      policyDir: deps.policyDir,
    }),
    createTrainingActivities({
      registry: deps.registry,
      jobs: deps.jobs,
      jobTrackingUri: deps.jobTrackingUri,
      credentialsSecret: deps.credentialsSecret,
      pollIntervalMs: deps.jobPollIntervalMs,
    }),
    createRegistryActivities({
      registry: deps.registry,
      trust: deps.trust,
      profiler: createReferenceProfiler({ snapshotDir: deps.snapshotDir }),
    }),
    createEvaluationActivities({ registry: deps.registry, snapshotDir: deps.snapshotDir, trust: deps.trust }),
    createPolicyActivities({ policyDir: deps.policyDir, approverKeysDir: deps.approverKeysDir }),
    createAuditActivities({ audit: deps.audit }),
    createSecurityActivities({ registry: deps.registry, trust: deps.trust }),
    createTrafficActivities({ router: deps.router ?? NO_ROUTER }),
    createKpiActivities({ kpi: deps.kpi ?? NO_KPI }),
    createStagingActivities({
      router: deps.router ?? NO_ROUTER,
      predictor: stagingOf(deps.router),
      registry: deps.registry,
    }),
    createDriftActivities({
      ...(deps.drift ?? {
        inferenceLogDir: path.join(deps.snapshotDir, '..', 'inference-log'),
        reportDir: path.join(deps.snapshotDir, '..', 'drift-reports'),
      }),
      registry: deps.registry,
      snapshotDir: deps.snapshotDir,
    }),
  ] as const;
}

/** The activities of the control-plane worker: every group, composed. */
export function createActivities(deps: ControlPlaneDeps) {
  return composeActivities(...controlPlaneGroups(deps));
}

export type Activities = ReturnType<typeof createActivities>;
