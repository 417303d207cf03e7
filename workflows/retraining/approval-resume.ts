/**
 * The approval wait's continue-as-new, on the pipeline's side: what the stages after the wait need of
 * the stages before it (the {@link Candidate}), the `resume` carried into the next run, and that run's
 * re-entry at the wait (the model's lease taken over, the desk restored, `approval.resumed` audited).
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { EvaluationSummary } from '../../src/core/contracts/evaluation';
import type { DatasetProfile, ValidationReport } from '../../src/core/contracts/feature-spec';
import { FailureType } from '../../src/core/contracts/failures';
import type { ModelPolicy } from '../../src/core/contracts/model-policy';
import type { ApprovalResume, DatasetSnapshot, RegisteredVersion } from '../../src/core/contracts/retraining';
import { foldRefusalDecisions } from '../../src/core/policy/approval';
import type { GateVerdict } from '../../src/core/policy/gate';
import { holdModelLock } from '../drift/lock';
import { APPROVAL_RESUMED_EVENT, type ApprovalDesk } from '../shared/approval-desk';
import type { RetrainingRun } from './context';

/** Lock trigger of a continued run: it takes over its own previous run's lease, no cool-down. */
const CONTINUED_TRIGGER = 'continued-as-new';

/** What the stages after the approval wait need of the stages before it. */
export interface Candidate {
  policy: ModelPolicy;
  registered: RegisteredVersion;
  snapshot: DatasetSnapshot;
  report: ValidationReport;
  profile?: DatasetProfile | undefined;
  summary: EvaluationSummary;
  verdict: GateVerdict;
}

/** A `resume` is accepted only by a run Temporal started as the continuation of this workflow's run. */
export function checkResume(resume: ApprovalResume): void {
  const info = workflowInfo();
  if (info.continuedFromExecutionRunId !== resume.continuedFrom)
    throw ApplicationFailure.nonRetryable(
      "invalid retrainingPipeline input: resume: accepted only from the pipeline's own continue-as-new",
      FailureType.InvalidInput,
    );
}

/** A continued run re-enters the approval wait: lease, desk and audit; every earlier result is carried. */
export async function resumeAtApproval(
  run: RetrainingRun,
  desk: ApprovalDesk,
  resume: ApprovalResume,
): Promise<Candidate & { continuations: number }> {
  await holdModelLock(run.model, CONTINUED_TRIGGER);
  desk.restore({ policy: resume.policy.approval, carried: resume.approval });
  await run.journal.audit(
    APPROVAL_RESUMED_EVENT,
    {
      continuedFrom: resume.continuedFrom,
      continuations: resume.continuations,
      approvals: resume.approval.state.approvals,
      refusals: resume.approval.refusals,
      deadline: new Date(resume.approval.deadlineMs).toISOString(),
    },
    { modelVersion: resume.registered.version },
  );
  return resume;
}

/** The `resume` the next run gets: the candidate, the folded status and the wait's state (no secrets). */
export function approvalResume(
  run: RetrainingRun,
  desk: ApprovalDesk,
  c: Candidate & { continuations: number },
): ApprovalResume {
  const status = run.journal.status;
  return {
    stage: 'awaiting-approval',
    continuedFrom: workflowInfo().runId,
    continuations: c.continuations + 1,
    status: { ...status, decisions: foldRefusalDecisions(status.decisions) },
    policy: c.policy,
    registered: c.registered,
    snapshot: c.snapshot,
    report: c.report,
    ...(c.profile !== undefined ? { profile: c.profile } : {}),
    summary: c.summary,
    verdict: c.verdict,
    approval: desk.carry(),
  };
}
