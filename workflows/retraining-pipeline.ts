/**
 * `retrainingPipeline`: from a dataset to a registered challenger, then through evaluation, the
 * promotion gate, human approval and promotion to champion. The workflow only sequences
 * activities and carries out verdicts computed by pure functions (src/core/policy); its state is plain
 * JSON, answered by the `status` query, and every decision is appended to the audit log.
 *
 * Stages: snapshot -> validate -> train -> register (alias `challenger`) -> evaluate -> gate ->
 * model card -> approval -> [canary: its own issue, a child workflow here] -> promote.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  ApprovalDecision,
  ApprovalOutcome,
  parseDuration,
  SubmitApprovalSchema,
  type SubmitApprovalResult,
} from '../src/core/contracts/approval';
import { AuditEventType, auditEventId } from '../src/core/contracts/audit';
import { formatZodError } from '../src/core/contracts/errors';
import type { FeatureSpec } from '../src/core/contracts/feature-spec';
import { DEFAULT_INTENDED_USE, STANDARD_LIMITATIONS, type ModelCard } from '../src/core/contracts/model-card';
import type { ModelPolicy } from '../src/core/contracts/model-policy';
import {
  Aliases,
  approveSignal,
  BUILTIN_FEATURE_SPECS,
  rejectSignal,
  RetrainingInputSchema,
  statusQuery,
  submitApprovalUpdate,
  type DatasetSnapshot,
  type ParsedRetrainingInput,
  type PipelineOutcome,
  type PipelineResult,
  type PipelineStage,
  type PipelineStatus,
  type RetrainingInput,
} from '../src/core/contracts/retraining';
import {
  applyApprovalAttempt,
  approverPublicKey,
  checkApprovalAttempt,
  createApprovalState,
  expireApproval,
  parseApprovalAttempt,
  submitApprovalResult,
  type ApprovalAttemptInput,
  type ApprovalState,
  type ApprovalVerdict,
} from '../src/core/policy/approval';
import { decidePromotion, summariseVerdict, type GateVerdict } from '../src/core/policy/gate';
import { failedReport } from '../src/core/policy/validation';
import type { EvaluationSummary } from '../activities/evaluation';

/** Extra time the training activity gets beyond the job's own deadline (scheduling, upload). */
const TRAINING_SLACK_MS = 10 * 60_000;

/** How many training budgets a training activity may spend across its retries. */
const TRAINING_RETRY_BUDGET_FACTOR = 3;

/** Retries for calls to outside systems: backoff up to a minute. */
const OUTSIDE_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const io = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  scheduleToCloseTimeout: '1h',
  retry: OUTSIDE_RETRY,
});

/** Scoring two models and bootstrapping can take a while on a large holdout. */
const evaluation = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  scheduleToCloseTimeout: '2h',
  retry: { ...OUTSIDE_RETRY, maximumAttempts: 5 },
});

/** The audit trail must not be lost: retried until the sink takes it. */
const auditLog = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { ...OUTSIDE_RETRY, maximumInterval: '5m' },
});

const now = (): string => new Date().toISOString(); // workflow time: deterministic in the sandbox

function failureOf(err: unknown): { type?: string; message: string } {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    return { type: err.cause.type ?? undefined, message: err.cause.message };
  }
  if (err instanceof ActivityFailure && err.cause) return { message: err.cause.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

function parseInput(raw: RetrainingInput): { input: ParsedRetrainingInput; spec: FeatureSpec } {
  const parsed = RetrainingInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: ${formatZodError(parsed.error)}`,
      'InvalidInput',
    );
  }
  const input = parsed.data;
  const spec = input.featureSpec ?? BUILTIN_FEATURE_SPECS[input.model];
  if (!spec) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: featureSpec: required for model "${input.model}" (no built-in spec)`,
      'InvalidInput',
    );
  }
  return { input, spec };
}

export async function retrainingPipeline(rawInput: RetrainingInput): Promise<PipelineResult> {
  const { input, spec } = parseInput(rawInput);
  const { workflowId, runId } = workflowInfo();
  const model = input.model;
  const initiator = input.initiator ?? (input.trigger.kind === 'manual' ? input.trigger.by : undefined);
  const status: PipelineStatus = {
    workflowId,
    model,
    stage: 'starting',
    trigger: input.trigger,
    decisions: [],
  };

  let auditSeq = 0;
  const audit = async (
    type: string,
    details: Record<string, unknown>,
    extra: { modelVersion?: string; actor?: string } = {},
  ): Promise<void> => {
    await auditLog.recordAudit({
      eventId: auditEventId(`${workflowId}/${runId}`, ++auditSeq),
      type,
      workflowId,
      model,
      at: now(),
      details,
      ...extra,
    });
  };
  const enter = (stage: PipelineStage) => {
    status.stage = stage;
  };
  const decide = (decision: string, reason: string) => {
    status.decisions.push({ stage: status.stage, decision, reason, at: now() });
  };
  const finish = async (
    outcome: PipelineOutcome,
    extra: Partial<PipelineResult> = {},
  ): Promise<PipelineResult> => {
    await condition(allHandlersFinished);
    return { outcome, status, ...extra };
  };

  // ---- approval handlers: registered at once, refusing until a version awaits approval ----------
  let policy: ModelPolicy | undefined;
  let approval: ApprovalState | undefined;
  const publishApproval = () => {
    if (!approval || !policy) return;
    status.approval = {
      ...approval,
      eligibleApprovers: policy.approval.approvers
        .filter(
          (a) =>
            !policy?.approval.requiredRoles ||
            a.roles.some((r) => policy?.approval.requiredRoles?.includes(r)),
        )
        .map((a) => a.id),
      requiredRoles: policy.approval.requiredRoles,
      timeout: policy.approval.timeout,
    };
  };
  const handleAttempt = async (
    decision: ApprovalDecision,
    payload: unknown,
  ): Promise<SubmitApprovalResult> => {
    const at = now();
    const parsed = parseApprovalAttempt(decision, payload);
    const attempt: ApprovalAttemptInput = parsed.attempt;
    if (!approval || !policy) {
      const reason = `no version is awaiting approval (stage ${status.stage})`;
      decide('approval-refused', `${attempt.approver} (${decision}): ${reason}`);
      await audit(
        AuditEventType.approvalAttempt,
        { decision, accepted: false, code: 'not-pending', reason },
        { actor: attempt.approver },
      );
      return {
        accepted: false,
        code: 'not-pending',
        reason,
        outcome: ApprovalOutcome.pending,
        approvals: 0,
        requiredApprovals: 1,
      };
    }
    let verdict: ApprovalVerdict = parsed.ok
      ? checkApprovalAttempt({ state: approval, policy: policy.approval, attempt, nowIso: at })
      : parsed.verdict;
    if (verdict.accepted && verdict.signature === 'pending-verification' && attempt.signature) {
      const publicKey = approverPublicKey(policy.approval, attempt.approver) ?? '';
      const verified = await io.verifyApprovalSignature({
        fields: { workflowId, modelVersion: approval.modelVersion, decision, approver: attempt.approver },
        signature: attempt.signature,
        publicKey,
      });
      // Re-check against the state as it is now: another attempt may have landed meanwhile.
      verdict = checkApprovalAttempt({
        state: approval,
        policy: policy.approval,
        attempt,
        nowIso: at,
        signatureVerified: verified,
      });
    }
    approval = applyApprovalAttempt(approval, attempt, verdict, at);
    publishApproval();
    const recorded = approval.attempts[approval.attempts.length - 1];
    decide(
      recorded?.accepted ? `${decision}-accepted` : 'approval-refused',
      `${attempt.approver} (${decision}): ${recorded?.reason ?? ''}`,
    );
    await audit(
      AuditEventType.approvalAttempt,
      {
        decision,
        accepted: recorded?.accepted ?? false,
        code: recorded?.code,
        reason: recorded?.reason,
        signed: recorded?.signed ?? false,
        comment: recorded?.comment,
        outcome: approval.outcome,
      },
      { modelVersion: approval.modelVersion, actor: attempt.approver },
    );
    const result = submitApprovalResult(approval);
    return recorded?.accepted
      ? result
      : { ...result, accepted: false, code: recorded?.code, reason: recorded?.reason ?? '' };
  };
  setHandler(statusQuery, () => status);
  setHandler(approveSignal, async (payload) => {
    await handleAttempt(ApprovalDecision.approve, payload);
  });
  setHandler(rejectSignal, async (payload) => {
    await handleAttempt(ApprovalDecision.reject, payload);
  });
  setHandler(
    submitApprovalUpdate,
    async (payload) => {
      const { decision, ...rest } = payload as { decision: ApprovalDecision };
      const result = await handleAttempt(decision, rest);
      if (!result.accepted) {
        throw ApplicationFailure.create({
          type: 'ApprovalRefused',
          nonRetryable: true,
          message: `approval refused (${result.code ?? 'refused'}): ${result.reason}`,
          details: [result],
        });
      }
      return result;
    },
    {
      validator: (payload) => {
        const r = SubmitApprovalSchema.safeParse(payload);
        if (!r.success) {
          throw ApplicationFailure.nonRetryable(
            `malformed submitApproval payload: ${formatZodError(r.error)}`,
            'InvalidApproval',
          );
        }
      },
    },
  );

  await audit(AuditEventType.pipelineStarted, {
    trigger: input.trigger,
    dataset: input.dataset.uri,
    initiator,
  });
  // The governance policy is needed only when a holdout makes evaluation possible; load it first so
  // a missing policy fails the pipeline before any GPU time is spent.
  if (input.holdout) policy = await io.loadModelPolicy({ model });

  // 1. Snapshot: content hash of the dataset, copied to immutable storage.
  enter('snapshotting');
  let snapshot: DatasetSnapshot;
  try {
    snapshot = await io.snapshotDataset({ dataset: input.dataset });
  } catch (err) {
    const f = failureOf(err);
    if (f.type === 'DatasetUnreadable' || f.type === 'DatasetIntegrity') {
      decide('rejected', f.message);
      enter('rejected-data');
      status.error = f.message;
      await audit(AuditEventType.pipelineRejected, { stage: 'snapshotting', reason: f.message });
      const check = f.type === 'DatasetIntegrity' ? 'integrity' : 'readable';
      return finish('rejected-data', {
        validation: failedReport(check, f.message, 'readable, matching sha256', f.message),
      });
    }
    throw err;
  }
  status.dataset = { sha256: snapshot.sha256, snapshotPath: snapshot.snapshotPath };

  // 2. Validate: schema, quality and a poisoning screen. A failure ends the pipeline, no retries.
  enter('validating');
  const { report, profile } = await io.validateDataset({ snapshotPath: snapshot.snapshotPath, spec });
  status.dataset.rows = profile?.rows;
  const failedChecks = report.checks.filter((c) => !c.passed);
  status.validation = { ok: report.ok, failedChecks: failedChecks.map((c) => c.message) };
  await audit(AuditEventType.datasetValidated, {
    sha256: snapshot.sha256,
    rows: profile?.rows ?? null,
    ok: report.ok,
    failed: failedChecks.map((c) => c.message),
  });
  if (!report.ok) {
    decide(
      'rejected',
      `dataset failed ${failedChecks.length} check(s): ${failedChecks.map((c) => c.check).join(', ')}`,
    );
    enter('rejected-data');
    return finish('rejected-data', { validation: report, profile });
  }
  decide('accepted', `dataset passed ${report.checks.length} checks`);

  // 3. Train: the trainer runs as a job; the activity heartbeats while it waits.
  enter('training');
  // A failing trainer is a non-retryable TrainingFailed; what is retried is the outside world
  // (MLflow unreachable, a lost job), bounded by time rather than by a count of attempts.
  const trainingBudget = parseDuration(input.training.timeout) + TRAINING_SLACK_MS;
  const trainer = proxyActivities<Activities>({
    startToCloseTimeout: trainingBudget,
    scheduleToCloseTimeout: TRAINING_RETRY_BUDGET_FACTOR * trainingBudget,
    heartbeatTimeout: '1m',
    retry: OUTSIDE_RETRY,
  });
  let training;
  try {
    training = await trainer.trainCandidate({
      model,
      snapshot,
      spec,
      training: input.training,
      trigger: input.trigger,
    });
  } catch (err) {
    const f = failureOf(err);
    decide('failed', f.message);
    enter('failed');
    status.error = f.message;
    await audit(AuditEventType.pipelineFailed, { stage: 'training', reason: f.message });
    throw err;
  }
  status.training = { runId: training.runId, jobName: training.jobName };

  // 4. Register the version with provenance tags and a digest manifest; alias it `challenger`.
  enter('registering');
  const registered = await io.registerModelVersion({
    model,
    runId: training.runId,
    datasetSha256: snapshot.sha256,
    datasetRows: profile?.rows,
    trigger: input.trigger,
    featureSpec: `${spec.name}@${spec.version}`,
    codeVersion: input.codeVersion,
  });
  await io.setModelAlias({ model, alias: Aliases.challenger, version: registered.version });
  const version = registered.version;
  status.candidate = { version, runId: registered.runId, alias: Aliases.challenger };
  decide('registered', `version ${version} registered with ${registered.files} digested file(s)`);
  await audit(
    AuditEventType.modelRegistered,
    {
      runId: registered.runId,
      manifestSha256: registered.manifestSha256,
      files: registered.files,
      metrics: training.metrics,
    },
    { modelVersion: version },
  );

  if (!input.holdout || !policy) {
    decide('evaluation-skipped', 'no holdout given: evaluation, gate and approval skipped');
    enter('completed');
    return finish('registered', { validation: report, profile });
  }

  // 5. Evaluate champion and challenger on the same frozen holdout.
  enter('evaluating');
  const holdoutSnapshot = await io.snapshotDataset({ dataset: input.holdout });
  const summary: EvaluationSummary = await evaluation.evaluateCandidate({
    model,
    challengerVersion: version,
    holdout: holdoutSnapshot,
    trainingSnapshotPath: snapshot.snapshotPath,
    trainingSha256: snapshot.sha256,
    spec,
    gate: policy.gate,
  });
  status.evaluation = {
    primaryMetric: policy.gate.primaryMetric,
    holdoutSha256: summary.holdout.sha256,
    holdoutRows: summary.holdout.rows,
    challenger: summary.challenger.evaluation,
    champion: summary.champion,
    comparison: summary.comparison,
  };
  if (summary.champion) status.champion = { version: summary.champion.version };
  await audit(
    AuditEventType.evaluationCompleted,
    {
      holdoutSha256: summary.holdout.sha256,
      champion: summary.champion?.version ?? null,
      primary: summary.challenger.evaluation.metrics[policy.gate.primaryMetric] ?? null,
      comparison: summary.comparison ?? null,
    },
    { modelVersion: version },
  );

  // 6. Gate: a pure verdict from the measurements and the policy.
  enter('gating');
  const verdict: GateVerdict = decidePromotion({
    policy: policy.gate,
    challenger: summary.challenger.evaluation,
    champion: summary.champion?.evaluation,
    comparison: summary.comparison,
  });
  status.gate = { decision: verdict.decision, reasons: verdict.reasons };
  decide(`gate-${verdict.decision}`, summariseVerdict(verdict));
  await audit(
    AuditEventType.gateVerdict,
    { decision: verdict.decision, reasons: verdict.reasons },
    { modelVersion: version },
  );

  const card = (extra: Partial<ModelCard>): ModelCard => ({
    model,
    version,
    runId: registered.runId,
    workflowId,
    generatedAt: now(),
    intendedUse: DEFAULT_INTENDED_USE,
    featureSpec: `${spec.name}@${spec.version}`,
    trigger: input.trigger.kind,
    data: {
      training: { uri: input.dataset.uri, sha256: snapshot.sha256, rows: profile?.rows },
      holdout: {
        uri: input.holdout?.uri ?? '',
        sha256: summary.holdout.sha256,
        rows: summary.holdout.rows,
        positives: summary.holdout.positives,
      },
    },
    primaryMetric: policy?.gate.primaryMetric ?? '',
    challenger: summary.challenger.evaluation,
    champion: summary.champion,
    comparison: summary.comparison,
    verdict,
    limitations: STANDARD_LIMITATIONS,
    ...extra,
  });
  const written = await io.writeModelCard(card({}));
  status.modelCard = `runs:/${registered.runId}/${written.markdownPath}`;

  const conclude = async (
    outcome: PipelineOutcome,
    reason: string,
    stage: PipelineStage,
  ): Promise<PipelineResult> => {
    await io.markVersionOutcome({ model, version, outcome, reason });
    await io.writeModelCard(card({ approval, outcome: `${outcome}: ${reason}` }));
    decide(outcome, reason);
    enter(stage);
    await audit(AuditEventType.pipelineRejected, { outcome, reason }, { modelVersion: version });
    return finish(outcome, { validation: report, profile });
  };

  if (verdict.decision !== 'promote') {
    return conclude('not-promoted', summariseVerdict(verdict), 'rejected');
  }

  // 7. Approval: signals or the update, judged by the model's policy, until decided or timed out.
  enter('awaiting-approval');
  approval = createApprovalState({ modelVersion: version, initiator, policy: policy.approval });
  publishApproval();
  await audit(
    AuditEventType.approvalRequested,
    {
      required: policy.approval.minApprovals,
      timeout: policy.approval.timeout,
      initiator: initiator ?? null,
    },
    { modelVersion: version },
  );
  const decided = await condition(
    () => approval?.outcome !== ApprovalOutcome.pending,
    parseDuration(policy.approval.timeout),
  );
  if (!decided && approval.outcome === ApprovalOutcome.pending) {
    approval = expireApproval(approval, now());
    publishApproval();
    await audit(
      AuditEventType.approvalExpired,
      { timeout: policy.approval.timeout },
      { modelVersion: version },
    );
    return conclude('expired', `no decision within ${policy.approval.timeout}`, 'expired');
  }
  if (approval.outcome === ApprovalOutcome.rejected) {
    return conclude(
      'rejected',
      `rejected by ${approval.rejectedBy}: ${approval.rejectReason ?? ''}`,
      'rejected',
    );
  }

  // 8. [canaryRollout slots in here as a child workflow.] Promote: verified artifact -> champion.
  enter('promoting');
  const promoted = await io.promoteModel({
    model,
    version,
    approvers: approval.approvals,
    verdict: verdict.decision,
  });
  status.champion = { version };
  decide(
    'promoted',
    `champion -> v${version}${promoted.previousChampion ? `, previous-champion -> v${promoted.previousChampion}` : ''}`,
  );
  await audit(
    AuditEventType.modelPromoted,
    {
      approvers: approval.approvals,
      previousChampion: promoted.previousChampion ?? null,
      moved: promoted.moved,
    },
    { modelVersion: version },
  );
  await io.writeModelCard(
    card({ approval, outcome: `promoted to champion, approved by ${approval.approvals.join(', ')}` }),
  );
  enter('completed');
  return finish('promoted', { validation: report, profile });
}
