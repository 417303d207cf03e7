/**
 * The canary stage: an approved version is rolled out by `canaryRollout` as a child workflow
 * before the registry aliases move. The child owns traffic (and rolls it back on a failed analysis
 * or a pushed breach); the pipeline then promotes in the registry, or ends `rolled-back` with
 * `champion` untouched. A cancelled pipeline asks the child to cancel, which rolls back.
 */
import { ParentClosePolicy, executeChild } from '@temporalio/workflow';
import type { CanaryPolicy, CanaryResult } from '../../src/core/contracts/canary';
import { canaryWorkflowId } from '../../src/core/contracts/gateway';
import type { RetrainingRun } from './context';

/** Marks the change that added the canary stage, so histories from before it replay unchanged. */
export const CANARY_STAGE_PATCH = 'retraining-canary-stage';

export async function canaryStage(
  run: RetrainingRun,
  args: { version: string; policy: CanaryPolicy },
): Promise<CanaryResult> {
  const { journal, model } = run;
  journal.enter('canary');
  const workflowId = canaryWorkflowId(model, args.version);
  journal.status.canary = { workflowId };
  const result = await executeChild<(input: unknown) => Promise<CanaryResult>>('canaryRollout', {
    workflowId,
    args: [{ model, version: args.version, policy: args.policy, initiator: journal.workflowId }],
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
  });
  journal.status.canary = { workflowId, outcome: result.outcome, reason: result.reason };
  journal.decide(`canary-${result.outcome}`, result.reason);
  return result;
}
