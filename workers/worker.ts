/**
 * Builds a worker for the control plane's task queue: the workflow bundle plus the activities wired
 * to real clients. Used by the entry point, the demo and the tests alike.
 */
import path from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type Activities } from '../activities';
import { JsonlAuditSink } from '../src/audit';
import { LocalProcessRunner } from '../src/jobs/local-runner';
import type { JobRunner } from '../src/jobs/types';
import { MlflowClient, mlflowAuthFromEnv } from '../src/mlflow';
import type { WorkerConfig } from '../src/config';

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  config: WorkerConfig;
  /** Replaces the local process runner (e.g. the Kubernetes runner). */
  jobs?: JobRunner;
  /** Extra worker options (tests shorten shutdown, for instance). */
  workerOptions?: Partial<WorkerOptions>;
  /** Wraps the activities (tests inject faults around the real ones). */
  wrapActivities?: (activities: Activities) => Activities;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  const { config } = opts;
  const mlflow = new MlflowClient({ trackingUri: config.trackingUri, auth: mlflowAuthFromEnv() });
  const jobs = opts.jobs ?? new LocalProcessRunner({ root: config.jobsDir, images: config.localImages });
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: config.taskQueue,
    workflowsPath: path.resolve(__dirname, '..', 'workflows'),
    activities: (opts.wrapActivities ?? ((a) => a))(
      createActivities({
        mlflow,
        jobs,
        audit: new JsonlAuditSink(config.auditLogPath),
        snapshotDir: config.snapshotDir,
        policyDir: config.policyDir,
        jobTrackingUri: config.jobTrackingUri,
      }),
    ),
    ...opts.workerOptions,
  });
}
