/**
 * Who started the run, proven: Temporal's own record for non-human starts (a Schedule's
 * `TemporalScheduledById`, a parent workflow such as driftMonitor), else the initiator's start
 * signature checked against the model policy's keys. The pure `judgeInitiator` decides; an
 * unproven start that the policy refuses fails the run before any training, as
 * `InitiatorUnproven`. The proven identity (and key) goes to the approval desk for four-eyes.
 *
 * Behind `patched(START_IDENTITY_PATCH)`: runs started before it replay without this step.
 */
import { ApplicationFailure, patched, workflowInfo } from '@temporalio/workflow';
import { SYSTEM_IDENTITY_PREFIX, type ApprovalPolicy } from '../../src/core/contracts/approval';
import { FailureType } from '../../src/core/contracts/failures';
import { initiatorPublicKey, judgeInitiator, type InitiatorEvidence } from '../../src/core/policy/approval';
import type { ApprovalDesk } from '../shared/approval-desk';
import { security } from './activities';
import type { RetrainingRun } from './context';

export const START_IDENTITY_PATCH = 'retraining-start-identity';
/** Audit event of the identity check. */
export const INITIATOR_CHECKED_EVENT = 'initiator.checked';

/** Set by the Temporal server on every run a Schedule starts; clients cannot set `Temporal*` attributes. */
const SCHEDULED_BY = { name: 'TemporalScheduledById', type: 'KEYWORD' } as const;

/** The system identity Temporal proves for this run, if it was not started by a person. */
export function systemIdentity(): string | undefined {
  const info = workflowInfo();
  const scheduleId = info.typedSearchAttributes.get(SCHEDULED_BY);
  if (scheduleId) return `${SYSTEM_IDENTITY_PREFIX}schedule/${scheduleId}`;
  if (info.parent) return `${SYSTEM_IDENTITY_PREFIX}workflow/${info.parent.workflowId}`;
  return undefined;
}

export async function proveInitiator(
  run: RetrainingRun,
  policy: ApprovalPolicy,
  desk: ApprovalDesk,
): Promise<void> {
  if (!patched(START_IDENTITY_PATCH)) return;
  const { input, journal, model } = run;
  const evidence: InitiatorEvidence = {};
  if (run.initiator !== undefined) evidence.claimed = run.initiator;
  const system = systemIdentity();
  if (system !== undefined) evidence.system = system;
  else if (input.startSignature) {
    const key = run.initiator !== undefined ? initiatorPublicKey(policy, run.initiator) : undefined;
    const verified =
      key !== undefined && run.initiator !== undefined
        ? await security.verifyStartSignature({
            fields: {
              workflowId: journal.workflowId,
              model,
              dataset: input.dataset.uri,
              initiator: run.initiator,
            },
            signature: input.startSignature,
            publicKey: key,
          })
        : false;
    evidence.signed = key !== undefined ? { verified, key } : { verified };
  }
  const verdict = judgeInitiator(policy, evidence);
  await journal.audit(
    INITIATOR_CHECKED_EVENT,
    verdict.ok
      ? { ok: true, initiator: verdict.initiator ?? null, proof: verdict.proof }
      : { ok: false, claimed: run.initiator ?? null, reason: verdict.reason },
  );
  if (!verdict.ok) {
    journal.decide('start-refused', verdict.reason);
    throw ApplicationFailure.nonRetryable(verdict.reason, FailureType.InitiatorUnproven);
  }
  journal.decide('initiator', `${verdict.initiator ?? '(anonymous)'} (${verdict.proof})`);
  if (verdict.initiator !== undefined) run.initiator = verdict.initiator;
  desk.prove(verdict);
}
