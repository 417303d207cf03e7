/**
 * The job failure table: what a training activity does with a job's status. Pure, so it is table
 * tested and shared by every runner. The activity carries out the action; it never improvises one.
 *
 * - `resubmit`: the job ended through no fault of its own (lost with its worker, evicted, preempted);
 *   delete it and submit the same spec again. The trainer resumes from its last checkpoint.
 * - `wait`: not finished yet, or waiting for a node or for admission; keep polling (the activity
 *   bounds the wait by its queue timeout).
 * - `fail`: permanent; the message says why and `retryable: false` stops Temporal retrying.
 * - `done`: succeeded.
 */
import { JobReason, type JobPhase } from '../contracts/jobs';

export type JobAction =
  | { action: 'done' }
  | { action: 'wait'; why: string }
  | { action: 'resubmit'; why: string }
  | { action: 'fail'; why: string; hint?: string };

export interface JobObservation {
  phase: JobPhase;
  reason?: JobReason;
  exitCode?: number;
  message?: string;
}

/** How many times one training activity resubmits a job that ended through no fault of its own. */
export const MAX_JOB_RESUBMITS = 3;

const HINTS: Partial<Record<JobReason, string>> = {
  [JobReason.oomKilled]: 'raise the memory limit (training.resources.memory) or lower the batch size',
  [JobReason.deadlineExceeded]: 'raise training.timeout or train on less data',
  [JobReason.imagePull]: 'check the image name, tag or digest and the registry credentials',
  [JobReason.invalidSpec]: 'fix the job spec; retrying the same spec cannot succeed',
};

/**
 * The action for one observation of a job. `resubmits` is how many times this activity already
 * resubmitted it: past {@link MAX_JOB_RESUBMITS} a job that keeps vanishing fails instead.
 */
export function decideJobFailure(obs: JobObservation, resubmits = 0): JobAction {
  if (obs.phase === 'succeeded') return { action: 'done' };
  if (obs.phase === 'pending' || obs.phase === 'running') {
    return { action: 'wait', why: obs.message ?? obs.reason ?? obs.phase };
  }
  const detail = obs.message ? `: ${obs.message}` : '';
  const reason = obs.reason ?? (obs.exitCode !== undefined ? JobReason.exitCode : JobReason.lost);
  switch (reason) {
    case JobReason.lost:
    case JobReason.evicted:
    case JobReason.preempted:
      if (resubmits >= MAX_JOB_RESUBMITS) {
        return { action: 'fail', why: `job ${reason} ${resubmits + 1} times${detail}` };
      }
      return { action: 'resubmit', why: `job ${reason}${detail}` };
    case JobReason.exitCode: {
      const why = `trainer exited with code ${obs.exitCode ?? 'unknown'}`;
      return {
        action: 'fail',
        why: obs.message && !obs.message.startsWith('exited with code') ? `${why}${detail}` : why,
      };
    }
    case JobReason.deadlineExceeded:
    case JobReason.oomKilled:
    case JobReason.imagePull:
    case JobReason.invalidSpec:
    case JobReason.deleted:
    case JobReason.unschedulable:
    case JobReason.queued: {
      const hint = HINTS[reason];
      return { action: 'fail', why: `job ${reason}${detail}`, ...(hint ? { hint } : {}) };
    }
  }
}
