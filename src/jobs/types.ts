/**
 * The job contract shared by every job runner (the local process runner here, Kubernetes Jobs in
 * production). A job is identified by a deterministic name derived from the workflow, so a retried
 * activity finds the job it already submitted instead of starting a second one.
 */

import type { JobPhase, JobReason } from '../core/contracts/jobs';

export type { JobPhase, JobReason };

export interface JobSpec {
  /** DNS-1123 label (lowercase, digits, dashes, max 63): the Kubernetes Job name. */
  name: string;
  /** Container image; the local runner maps known images to local commands. */
  image: string;
  /** Plain environment passed to the job (never secrets: see secretEnv). */
  env: Record<string, string>;
  /**
   * Environment variables filled from the runner's secret store (Kubernetes Secrets, or the
   * worker's own environment for the local runner). Values never pass through workflow history.
   */
  secretEnv?: Record<string, { secret: string; key: string }>;
  resources?: { gpus?: number; cpu?: string; memory?: string };
  /** Labels for ownership checks and garbage collection. */
  labels: Record<string, string>;
  /** Hard limit on the job's run time. */
  activeDeadlineSeconds?: number;
}

export interface JobStatus {
  name: string;
  phase: JobPhase;
  /** Why the job is in this phase; the failure table (`decideJobFailure`) acts on it. */
  reason?: JobReason;
  exitCode?: number;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  labels: Record<string, string>;
}

export interface JobRunner {
  readonly kind: string;
  /** Creates the job, or adopts an existing one with the same name and owner labels. */
  submit(spec: JobSpec): Promise<{ created: boolean; status: JobStatus }>;
  status(name: string): Promise<JobStatus | undefined>;
  /** The job's last log lines (stdout and stderr together). */
  logs(name: string, tailLines: number): Promise<string>;
  /** Stops the job if running and removes it. Idempotent. */
  delete(name: string): Promise<void>;
}

/** A job exists under this name but belongs to another owner: refuse to adopt it. */
export class JobOwnershipError extends Error {
  override readonly name = 'JobOwnershipError';
}

/** The job spec cannot be run by this runner (unknown image, invalid name). */
export class JobSpecError extends Error {
  override readonly name: string = 'JobSpecError';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function assertValidJobName(name: string): void {
  if (!DNS_LABEL.test(name)) {
    throw new JobSpecError(`job name "${name}" is not a DNS-1123 label (lowercase, digits, dashes, max 63)`);
  }
}

/** Label that records which workflow owns a job; adoption requires it to match. */
export const OWNER_LABEL = 'mlops.io/owner';
