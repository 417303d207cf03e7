/**
 * `retrainingPipeline`: from a dataset to a registered challenger, then through evaluation, the
 * promotion gate, human approval and promotion to champion. It reads as its stages in order; each
 * stage lives in workflows/retraining/, the run journal and the approval desk in workflows/shared/.
 * The workflow only sequences activities and carries out verdicts computed by pure functions
 * (src/core/policy); its state is plain JSON, answered by the `status` query, and every decision is
 * appended to the audit log.
 *
 * Stages: snapshot -> validate -> train -> register (alias `challenger`) -> evaluate -> gate ->
 * model card -> approval -> staging (when asked for: staging route, schema, latency, serving parity;
 * a failure ends `rejected-staging`) -> canary (child `canaryRollout`, when asked for) -> promote -> kpiGuard
 * (with the canary, when asked for: a breach restores the previous champion, outcome `rolled-back`).
 *
 * A long approval wait continues as new when its history grows too long (the approval desk decides,
 * behind a patch): the next run gets the same input plus `resume`, the results of every stage already
 * run and the wait's state, and starts again at the approval wait; nothing before it runs twice.
 */
import { continueAsNew, patched, setHandler } from '@temporalio/workflow';
import { AuditEventType } from '../src/core/contracts/audit';
import {
  statusQuery,
  type PipelineResult,
  type PipelineStatus,
  type RetrainingInput,
} from '../src/core/contracts/retraining';
import { summariseVerdict } from '../src/core/policy/gate';
import { ApprovalDesk } from './shared/approval-desk';
import { approvalResume, checkResume, resumeAtApproval, type Candidate } from './retraining/approval-resume';
import { RunJournal } from './shared/journal';
import { audit, policies, security } from './retraining/activities';
import { CANARY_STAGE_PATCH, canaryStage } from './retraining/canary';
import { finishRun, initiatorOf, parseRetrainingInput, type RetrainingRun } from './retraining/context';
import { snapshotAndValidate } from './retraining/data';
import { evaluateCandidate, judgeCandidate, modelCardWriter } from './retraining/evaluate';
import { BreachInbox, KPI_GUARD_PATCH, kpiGuardStage } from './retraining/kpi-guard';
import { bindEvidence, signCandidate, verifyHop } from './retraining/integrity';
import { proveInitiator } from './retraining/identity';
import { concludeWithout, promote } from './retraining/promote';
import { registerCandidate, trainCandidate } from './retraining/train';
import { STAGING_STAGE_PATCH, stagingStage } from './retraining/staging';
import { MODEL_LOCK_PATCH } from '../src/core/policy/drift-lock';
import { holdModelLock } from './drift/lock';

export async function retrainingPipeline(rawInput: RetrainingInput): Promise<PipelineResult> {
  const { input, spec } = parseRetrainingInput(rawInput);
  const model = input.model;
  const initiator = initiatorOf(input);
  const resume = input.resume;
  if (resume) checkResume(resume);
  const status: PipelineStatus = resume?.status ?? {
    workflowId: '',
    model,
    stage: 'starting',
    trigger: input.trigger,
    decisions: [],
  };
  const journal = new RunJournal(status, model, audit.recordAudit);
  status.workflowId = journal.workflowId;
  const run: RetrainingRun = { input, spec, model, initiator, journal };

  // Approval handlers are registered at once; they refuse until a version awaits approval.
  const desk = new ApprovalDesk(journal, security, (view) => {
    status.approval = view;
  });
  const breaches = new BreachInbox(journal);
  setHandler(statusQuery, () => status);
  desk.install();
  breaches.install();

  // A continued run resumes at the approval wait: every earlier stage's result is carried.
  if (resume) return fromApproval(run, desk, breaches, rawInput, await resumeAtApproval(run, desk, resume));

  // The model's lock (workflows/drift/lock.ts): every start path holds its lease or ends here. It is
  // taken once the handlers are registered (they add no commands), so `status` answers while it waits.
  if (patched(MODEL_LOCK_PATCH)) await holdModelLock(input.model, input.trigger.kind);

  await journal.audit(AuditEventType.pipelineStarted, {
    trigger: input.trigger,
    dataset: input.dataset.uri,
    initiator,
  });
  // The governance policy is needed only when a holdout makes evaluation possible; load it first so
  // a missing policy fails the pipeline before any GPU time is spent.
  const policy = input.holdout ? await policies.loadModelPolicy({ model }) : undefined;
  if (policy) await proveInitiator(run, policy.approval, desk);

  // 1-2. Snapshot and validate the dataset.
  const prepared = await snapshotAndValidate(run);
  if (!prepared.ok) return prepared.result;
  const { snapshot, report, profile } = prepared;
  const result = { validation: report, profile };

  // 3-4. Train, register, alias `challenger`.
  const trained = await trainCandidate(run, snapshot);
  const registered = await registerCandidate(run, snapshot, trained, profile);
  const version = registered.version;
  await signCandidate(run, version);
  if (!input.holdout || !policy) {
    journal.decide('evaluation-skipped', 'no holdout given: evaluation, gate and approval skipped');
    journal.enter('completed');
    return finishRun(run, 'registered', result);
  }

  // 5-6. Evaluate champion and challenger on the frozen holdout; the gate judges; the card records.
  await verifyHop(run, version, 'evaluation');
  const summary = await evaluateCandidate(run, { holdout: input.holdout, snapshot, version, policy });
  const verdict = await judgeCandidate(run, { summary, version, policy });
  const candidate: Candidate = { policy, registered, snapshot, report, profile, summary, verdict };
  const { writeCard, conclude } = closers(run, desk, candidate);
  const written = await writeCard({});
  status.modelCard = `runs:/${registered.runId}/${written.markdownPath}`;
  if (verdict.decision !== 'promote') return conclude('not-promoted', summariseVerdict(verdict));

  // 7. Approval: signals or the update, judged by the model's policy, until decided or timed out.
  await verifyHop(run, version, 'approval');
  journal.enter('awaiting-approval');
  await desk.open({ modelVersion: version, initiator, policy: policy.approval });
  return fromApproval(run, desk, breaches, rawInput, { ...candidate, continuations: 0 });
}

/** The model card writer and the ending without promotion, for one candidate. */
function closers(run: RetrainingRun, desk: ApprovalDesk, c: Candidate) {
  const version = c.registered.version;
  const result = { validation: c.report, profile: c.profile };
  const writeCard = modelCardWriter(run, c);
  const conclude = (
    outcome: 'not-promoted' | 'rejected' | 'expired' | 'rolled-back' | 'rejected-staging',
    reason: string,
  ) =>
    concludeWithout(run, {
      version,
      outcome,
      reason,
      stage:
        outcome === 'expired' || outcome === 'rolled-back' || outcome === 'rejected-staging'
          ? outcome
          : 'rejected',
      approval: desk.state,
      writeCard,
      result,
    });
  return { writeCard, conclude, result };
}

/**
 * From the approval wait to the end: wait for the decision (or continue as new, carrying the wait),
 * then staging, canary, promotion and kpiGuard as the input asks.
 */
async function fromApproval(
  run: RetrainingRun,
  desk: ApprovalDesk,
  breaches: BreachInbox,
  rawInput: RetrainingInput,
  c: Candidate & { continuations: number },
): Promise<PipelineResult> {
  const { input, journal } = run;
  const { policy, verdict, snapshot, summary } = c;
  const version = c.registered.version;
  const { writeCard, conclude, result } = closers(run, desk, c);
  const decision = await desk.awaitDecision({ historyLimit: input.approvalHistoryLimit });
  if (decision === 'continue-as-new')
    return continueAsNew<typeof retrainingPipeline>({ ...rawInput, resume: approvalResume(run, desk, c) });
  const approval = desk.state;
  if (decision === 'expired' || !approval)
    return conclude('expired', `no decision within ${policy.approval.timeout}`);
  if (decision === 'rejected') {
    return conclude('rejected', `rejected by ${approval.rejectedBy}: ${approval.rejectReason ?? ''}`);
  }

  await verifyHop(run, version, 'deploy');
  await bindEvidence(run, {
    version,
    approval,
    verdict,
    training: snapshot.sha256,
    holdout: summary.holdout.sha256,
  });

  // 8a. Staging (when the input asks for it): the staging route is probed before any customer sees it.
  if (input.staging && input.holdout && patched(STAGING_STAGE_PATCH)) {
    const staged = await stagingStage(run, {
      version,
      holdout: input.holdout,
      holdoutSha256: summary.holdout.sha256,
      policy: input.staging,
    });
    if (!staged.passed) return conclude('rejected-staging', staged.reason);
  }

  // 8b. Canary (when the input asks for one): the child rolls traffic out step by step or back.
  let servedBefore: string | undefined;
  if (input.canary && patched(CANARY_STAGE_PATCH)) {
    const canary = await canaryStage(run, { version, policy: input.canary });
    if (canary.outcome === 'rolled-back')
      return conclude('rolled-back', `canary rolled back: ${canary.reason}`);
    servedBefore = canary.status.stableVersion;
  }

  // 9. Promote: verified artifact -> champion, the old one kept as previous-champion.
  const promoted = await promote(run, { version, approval, verdict, writeCard });

  // 10. kpiGuard (with the canary, when asked for): a breach restores the previous champion.
  if (input.canary && input.kpiGuard && patched(KPI_GUARD_PATCH)) {
    const guard = await kpiGuardStage(run, {
      version,
      restoreTo: servedBefore ?? promoted.previousChampion,
      policy: input.kpiGuard,
      inbox: breaches,
      writeCard,
      card: { approval },
    });
    if (guard.outcome === 'rolled-back') return finishRun(run, 'rolled-back', result);
  }
  journal.enter('completed');
  return finishRun(run, 'promoted', result);
}
