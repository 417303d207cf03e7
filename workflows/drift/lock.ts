/**
 * The pipeline's side of the per-model lock: one activity call at the very start of a run (behind
 * `patched(MODEL_LOCK_PATCH)`), so schedule runs with timestamped ids, drift and new-data starts and
 * CLI starts alike either hold the model's lease or end at once with a `ModelLocked` failure.
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { DriftActivities } from '../../activities';
import { MODEL_LOCKED_FAILURE } from '../../src/core/policy/drift-lock';
import { OUTSIDE_CALL } from '../shared/activity-options';

const locks = proxyActivities<DriftActivities>(OUTSIDE_CALL);

export async function holdModelLock(model: string, trigger: string): Promise<void> {
  const { workflowId, runId, continuedFromExecutionRunId } = workflowInfo();
  // A run continued as new takes over the lease of the run it continues (same workflow id), so no
  // other start can slip in between the two runs.
  const lease = await locks.acquireModelLock({
    model,
    workflowId,
    runId,
    trigger,
    ...(continuedFromExecutionRunId !== undefined && { continuesRunId: continuedFromExecutionRunId }),
  });
  if (!lease.granted)
    throw ApplicationFailure.create({
      message: `retraining of ${model} refused by its lock: ${lease.reason}`,
      type: MODEL_LOCKED_FAILURE,
      nonRetryable: true,
      details: [lease],
    });
}
