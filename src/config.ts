/**
 * Worker configuration from the environment, validated with zod. Secrets (MLflow credentials) are
 * read by the clients that need them straight from the environment or a mounted Secret and never
 * enter this object, workflow inputs or logs.
 */
import path from 'node:path';
import { z } from 'zod';
import { formatZodError } from './core/contracts/errors';
import { DEFAULT_TASK_QUEUE } from './core/contracts/retraining';
import { PROJECT_ROOT, STATE_DIR, TRAINER_SCRIPT, VENV_PYTHON } from './stack/paths';

/** Image name the local runner maps to the reference trainer script. */
export const REFERENCE_TRAINER_IMAGE = 'mlops/reference-trainer';

/** Governance policies shipped with the project (deploy/policies/<model>.json). */
export const DEFAULT_POLICY_DIR = path.join(PROJECT_ROOT, 'deploy', 'policies');

const EnvSchema = z.object({
  MLFLOW_TRACKING_URI: z.url({
    message: 'MLFLOW_TRACKING_URI must be the URL of the MLflow tracking server',
  }),
  MLOPS_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  MLOPS_STATE_DIR: z.string().min(1).default(STATE_DIR),
  /** Tracking URI as reachable from training jobs (defaults to MLFLOW_TRACKING_URI). */
  MLOPS_JOB_TRACKING_URI: z.url().optional(),
  /** Folder of per-model governance policies (`<model>.json`). */
  MLOPS_POLICY_DIR: z.string().min(1).default(DEFAULT_POLICY_DIR),
  /** Hash-chained audit log (JSONL); defaults to audit.jsonl in the state folder. */
  MLOPS_AUDIT_LOG: z.string().min(1).optional(),
  /** JSON object mapping image names to local command lines, merged over the reference trainer. */
  MLOPS_LOCAL_IMAGES: z.string().optional(),
});

export interface WorkerConfig {
  trackingUri: string;
  taskQueue: string;
  stateDir: string;
  snapshotDir: string;
  jobsDir: string;
  jobTrackingUri?: string;
  policyDir: string;
  auditLogPath: string;
  localImages: Record<string, string[]>;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const r = EnvSchema.safeParse(env);
  if (!r.success) throw new Error(`invalid worker configuration: ${formatZodError(r.error)}`);
  const e = r.data;
  let extra: Record<string, string[]> = {};
  if (e.MLOPS_LOCAL_IMAGES) {
    const parsed = z
      .record(z.string(), z.array(z.string()).min(1))
      .safeParse(JSON.parse(e.MLOPS_LOCAL_IMAGES));
    if (!parsed.success) throw new Error(`invalid MLOPS_LOCAL_IMAGES: ${formatZodError(parsed.error)}`);
    extra = parsed.data;
  }
  return {
    trackingUri: e.MLFLOW_TRACKING_URI.replace(/\/+$/, ''),
    taskQueue: e.MLOPS_TASK_QUEUE,
    stateDir: e.MLOPS_STATE_DIR,
    snapshotDir: path.join(e.MLOPS_STATE_DIR, 'snapshots'),
    jobsDir: path.join(e.MLOPS_STATE_DIR, 'jobs'),
    jobTrackingUri: e.MLOPS_JOB_TRACKING_URI,
    policyDir: e.MLOPS_POLICY_DIR,
    auditLogPath: e.MLOPS_AUDIT_LOG ?? path.join(e.MLOPS_STATE_DIR, 'audit.jsonl'),
    localImages: { [REFERENCE_TRAINER_IMAGE]: [VENV_PYTHON, TRAINER_SCRIPT], ...extra },
  };
}
