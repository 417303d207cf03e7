/**
 * All activities of the control plane, built by one factory from the clients and config they need,
 * so tests hand in real clients pointed at the local stack. Workflows import the type only.
 */
import type { AuditSink } from '../src/audit';
import type { JobRunner } from '../src/jobs/types';
import type { MlflowClient } from '../src/mlflow';
import { createAuditActivities } from './audit';
import { createDataActivities } from './data';
import { createEvaluationActivities } from './evaluation';
import { createPolicyActivities } from './policy';
import { createRegistryActivities } from './registry';
import { createTrainingActivities } from './training';

export interface ActivityDeps {
  mlflow: MlflowClient;
  jobs: JobRunner;
  audit: AuditSink;
  /** Folder of content-addressed dataset snapshots. */
  snapshotDir: string;
  /** Folder of per-model governance policies (`<model>.json`). */
  policyDir: string;
  /** MLflow tracking URI as seen from inside training jobs, when it differs from the worker's. */
  jobTrackingUri?: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDataActivities({ snapshotDir: deps.snapshotDir }),
    ...createTrainingActivities({
      mlflow: deps.mlflow,
      jobs: deps.jobs,
      jobTrackingUri: deps.jobTrackingUri,
    }),
    ...createRegistryActivities({ mlflow: deps.mlflow }),
    ...createEvaluationActivities({ mlflow: deps.mlflow, snapshotDir: deps.snapshotDir }),
    ...createPolicyActivities({ policyDir: deps.policyDir }),
    ...createAuditActivities({ audit: deps.audit }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
