/**
 * The job contract's status vocabulary, shared by every job runner (local processes, Kubernetes
 * Jobs) and by the pure decision table in `src/core/policy/job-failures.ts`. Sandbox-safe, so the
 * pipeline's `status` query can carry a job's phase and reason.
 */

export const JobPhase = {
  /** Accepted but not running yet (queued for admission, unschedulable, pulling the image). */
  pending: 'pending',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
} as const;
export type JobPhase = (typeof JobPhase)[keyof typeof JobPhase];

/**
 * Why a job is where it is. A failed job without an exit code is not necessarily lost: a deadline,
 * an eviction or an image that cannot be pulled all end a job without one, and they call for
 * different actions (see `decideJobFailure`).
 */
export const JobReason = {
  /** The trainer ran and exited; `exitCode` says how. */
  exitCode: 'exit-code',
  /** Killed at its `activeDeadlineSeconds`: the training budget is spent. */
  deadlineExceeded: 'deadline-exceeded',
  /** Its process or pod vanished without reporting a result (a worker or node died with it). */
  lost: 'lost',
  /** Evicted by the node (pressure, drain) before it finished. */
  evicted: 'evicted',
  /** Preempted by the queue (Kueue) or by a higher-priority workload. */
  preempted: 'preempted',
  /** The image cannot be pulled (wrong name, tag, digest or registry credentials). */
  imagePull: 'image-pull',
  /** Killed for exceeding its memory limit. */
  oomKilled: 'oom-killed',
  /** Deleted by someone (cancellation, an operator, garbage collection). */
  deleted: 'deleted',
  /** Waiting: no node or quota can take it yet (for example not enough `nvidia.com/gpu`). */
  unschedulable: 'unschedulable',
  /** Waiting for queue admission (Kueue Workload not admitted yet). */
  queued: 'queued',
  /** The runner or the cluster refused the spec (invalid field, unknown image, forbidden). */
  invalidSpec: 'invalid-spec',
} as const;
export type JobReason = (typeof JobReason)[keyof typeof JobReason];

export const JOB_REASONS = Object.values(JobReason) as readonly JobReason[];

/** What a training activity reports about its job while it waits (queue admission, phase, reason). */
export interface JobProgress {
  jobName: string;
  phase: JobPhase;
  reason?: JobReason;
  /** The runner's own words: Kueue's condition message, the scheduler's reason, the exit message. */
  message?: string;
  resubmits: number;
  /** Workflow-independent wall time of the report (ISO). */
  at: string;
}

/** Name of the signal a training activity sends its pipeline when its job's state changes. */
export const JOB_PROGRESS_SIGNAL = 'jobProgress';
