/**
 * Worker configuration from the environment, validated with zod. Secrets (MLflow credentials) are
 * read by the clients that need them straight from the environment or a mounted Secret and never
 * enter this object, workflow inputs or logs.
 */
import path from 'node:path';
import { z } from 'zod';
import { formatZodError } from './core/contracts/errors';
import { DEFAULT_TASK_QUEUE } from './core/contracts/retraining';

/** The project root (this file lives in src/). */
const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Governance policies shipped with the project (deploy/policies/<model>.json). */
export const DEFAULT_POLICY_DIR = path.join(PROJECT_ROOT, 'deploy', 'policies');
/** Local state (snapshots, local jobs, audit log) when MLOPS_STATE_DIR is not set. */
export const DEFAULT_STATE_DIR = path.join(PROJECT_ROOT, '.state');
/** Job runners a worker can use; `local` is the embedded default. */
export const JOB_RUNNERS = ['local', 'kubernetes'] as const;
/** Secret holding the registry credentials that training jobs report with. */
export const DEFAULT_JOB_CREDENTIALS_SECRET = 'mlflow-credentials';

const EnvSchema = z.object({
  MLFLOW_TRACKING_URI: z.url({
    message: 'MLFLOW_TRACKING_URI must be the URL of the MLflow tracking server',
  }),
  MLOPS_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  MLOPS_STATE_DIR: z.string().min(1).default(DEFAULT_STATE_DIR),
  /** Which job runner trains: `local` processes or `kubernetes` Jobs. */
  MLOPS_JOB_RUNNER: z.enum(JOB_RUNNERS).default('local'),
  /** Secret (Kubernetes Secret; the worker's environment for the local runner) with registry credentials for jobs. */
  MLOPS_JOB_CREDENTIALS_SECRET: z.string().min(1).default(DEFAULT_JOB_CREDENTIALS_SECRET),
  /** Tracking URI as reachable from training jobs (defaults to MLFLOW_TRACKING_URI). */
  MLOPS_JOB_TRACKING_URI: z.url().optional(),
  /** Folder of per-model governance policies (`<model>.json`). */
  MLOPS_POLICY_DIR: z.string().min(1).default(DEFAULT_POLICY_DIR),
  /** Folder of registered approver public keys (`<id>.ed25519.pub`); default `<policy folder>/approver-keys`. */
  MLOPS_APPROVER_KEYS_DIR: z.string().min(1).optional(),
  /** Hash-chained audit log (JSONL); defaults to audit.jsonl in the state folder. */
  MLOPS_AUDIT_LOG: z.string().min(1).optional(),
  /** Base URL of the inference gateway: its admin API routes canary traffic, its /metrics feeds KPIs. */
  MLOPS_GATEWAY_URL: z.url().optional(),
  /** JSON object mapping image names to local command lines (local runner), merged over its defaults. */
  MLOPS_LOCAL_IMAGES: z.string().optional(),
  /** The gateway's inference log (its MLOPS_GATEWAY_INFERENCE_LOG_DIR) as this worker reads it. */
  MLOPS_INFERENCE_LOG_DIR: z.string().min(1).optional(),
  /** Delayed labels (`<model>/*.jsonl` of {requestId, label}); with the log, the canary's business KPI. */
  MLOPS_LABELS_DIR: z.string().min(1).optional(),
});

export interface WorkerConfig {
  trackingUri: string;
  taskQueue: string;
  stateDir: string;
  snapshotDir: string;
  jobsDir: string;
  jobRunner: (typeof JOB_RUNNERS)[number];
  jobCredentialsSecret: string;
  /** The gateway (traffic router and KPI source); its admin key comes from MLOPS_GATEWAY_ADMIN_KEY. */
  gatewayUrl?: string;
  jobTrackingUri?: string;
  policyDir: string;
  /** Registered approver public keys (a policy's `publicKeyFile`s); unset: `<policyDir>/approver-keys`. */
  approverKeysDir?: string;
  auditLogPath: string;
  /** Extra image -> command mappings for the local runner (beyond its reference trainer). */
  localImages: Record<string, string[]>;
  /** Delayed-label join of the canary's business KPI: the inference log and the labels folder. */
  delayedLabels?: { inferenceLogDir: string; labelsDir: string };
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid ${name}: not JSON (${(err as Error).message})`);
  }
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const r = EnvSchema.safeParse(env);
  if (!r.success) throw new Error(`invalid worker configuration: ${formatZodError(r.error)}`);
  const e = r.data;
  let extra: Record<string, string[]> = {};
  if (e.MLOPS_LOCAL_IMAGES) {
    const parsed = z
      .record(z.string(), z.array(z.string()).min(1))
      .safeParse(parseJson(e.MLOPS_LOCAL_IMAGES, 'MLOPS_LOCAL_IMAGES'));
    if (!parsed.success) throw new Error(`invalid MLOPS_LOCAL_IMAGES: ${formatZodError(parsed.error)}`);
    extra = parsed.data;
  }
  return {
    trackingUri: e.MLFLOW_TRACKING_URI.replace(/\/+$/, ''),
    taskQueue: e.MLOPS_TASK_QUEUE,
    stateDir: e.MLOPS_STATE_DIR,
    snapshotDir: path.join(e.MLOPS_STATE_DIR, 'snapshots'),
    jobsDir: path.join(e.MLOPS_STATE_DIR, 'jobs'),
    jobRunner: e.MLOPS_JOB_RUNNER,
    jobCredentialsSecret: e.MLOPS_JOB_CREDENTIALS_SECRET,
    gatewayUrl: e.MLOPS_GATEWAY_URL?.replace(/\/+$/, ''),
    jobTrackingUri: e.MLOPS_JOB_TRACKING_URI,
    policyDir: e.MLOPS_POLICY_DIR,
    ...(e.MLOPS_APPROVER_KEYS_DIR !== undefined ? { approverKeysDir: e.MLOPS_APPROVER_KEYS_DIR } : {}),
    auditLogPath: e.MLOPS_AUDIT_LOG ?? path.join(e.MLOPS_STATE_DIR, 'audit.jsonl'),
    localImages: extra,
    ...(e.MLOPS_INFERENCE_LOG_DIR !== undefined &&
      e.MLOPS_LABELS_DIR !== undefined && {
        delayedLabels: { inferenceLogDir: e.MLOPS_INFERENCE_LOG_DIR, labelsDir: e.MLOPS_LABELS_DIR },
      }),
  };
}
