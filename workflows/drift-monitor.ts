/**
 * The drift family: `driftMonitor` (run by the Temporal Schedule `drift-<model>`, overlap SKIP)
 * measures a window of the inference log against the champion's reference profile, judges it with
 * the pure drift policy and, when the policy says so and the model's lock allows, starts one
 * `retrainingPipeline` with trigger `drift` or `kpi-drop` and a link to the report; `newDataCheck`
 * (by schedule `new-data-<model>`, or signal-with-start of `newLabels` on that id) starts one with
 * trigger `new-data` once enough labelled rows have arrived since the champion's training snapshot;
 * and `modelLock` (id `lock-<model>`), the per-model lease every pipeline run asks for first.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DriftActivities } from '../activities';
import {
  decideRetraining,
  DriftPolicySchema,
  type DriftPolicyInput,
  type RetrainDecision,
} from '../src/core/policy/drift';
import {
  acquireLeaseSignal,
  decideLease,
  LOCK_CONTINUE_AS_NEW_AFTER,
  leaseQuery,
  lockStateQuery,
  type LeaseRequest,
  type LockState,
} from '../src/core/policy/drift-lock';
import { FailureType } from '../src/core/contracts/failures';
import {
  decideNewData,
  describeIssue,
  NewDataCheckInputSchema,
  newLabelsSignal,
  type NewDataDecision,
  type NewDataPolicyInput,
  type NewRowsCount,
} from '../src/core/policy/new-data';
import { OUTSIDE_CALL, LONG_COMPUTATION } from './shared/activity-options';

const drift = proxyActivities<DriftActivities>(LONG_COMPUTATION);
const starter = proxyActivities<DriftActivities>(OUTSIDE_CALL);

/** Window length when the input names none: the schedule's default interval. */
export const DEFAULT_DRIFT_WINDOW_MS = 3_600_000;

export interface DriftMonitorInput {
  model: string;
  /**
   * A reference profile JSON file (path or file:// URI; tests, backfills). Without one the monitor
   * reads the profile of `model@champion` from MLflow (the artifact written at registration).
   */
  profileUri?: string;
  /** Window length ending at the run's start (default 1h). */
  windowMs?: number;
  /** Explicit window, ISO times (tests, backfills). */
  from?: string;
  to?: string;
  policy?: DriftPolicyInput;
  /** The CBPE threshold (the model policy's decision threshold). */
  threshold?: number;
  /** What a started retraining gets: the retrainingPipeline input without model and trigger. */
  retrain?: Record<string, unknown>;
}

export interface DriftMonitorResult {
  model: string;
  status: 'drift' | 'no-drift' | 'insufficient-data';
  rows: number;
  drifted: string[];
  reportJson: string;
  reportHtml: string;
  /** The version watched, and the MLflow run its drift summary was logged to (profile from MLflow). */
  version?: string;
  mlflowRunId?: string;
  /** `runs:/<run>/drift_report/report.html`: the report link a started retraining carries. */
  reportUri?: string;
  decision: RetrainDecision;
  retraining?: { workflowId: string; started: boolean; reason: string };
}

export async function driftMonitor(input: DriftMonitorInput): Promise<DriftMonitorResult> {
  const info = workflowInfo();
  // A malformed policy fails the run at once, named (a parse error later would retry the task forever).
  const policy = DriftPolicySchema.safeParse(input.policy ?? {});
  if (!policy.success)
    throw ApplicationFailure.nonRetryable(
      `driftMonitor input: policy.${describeIssue(policy.error)}`,
      FailureType.InvalidInput,
    );
  const nowMs = Date.now();
  const to = input.to ?? new Date(nowMs).toISOString();
  const from =
    input.from ?? new Date(Date.parse(to) - (input.windowMs ?? DEFAULT_DRIFT_WINDOW_MS)).toISOString();
  const measured = await drift.measureDrift({
    model: input.model,
    ...(input.profileUri !== undefined && { profileUri: input.profileUri }),
    from,
    to,
    policy: input.policy ?? {},
    threshold: input.threshold,
    reportName: `${info.workflowId}-${info.runId}`,
  });
  const lock = await starter.modelLockStatus({ model: input.model });
  const decision = decideRetraining(
    measured.verdict,
    measured.kpi,
    lock.lastAutomatedGrantMs,
    nowMs,
    input.policy ?? {},
  );
  const result: DriftMonitorResult = {
    model: input.model,
    status: measured.verdict.status,
    rows: measured.verdict.rows,
    drifted: measured.verdict.drifted,
    reportJson: measured.reportJson,
    reportHtml: measured.reportHtml,
    ...(measured.version !== undefined && { version: measured.version }),
    ...(measured.mlflowRunId !== undefined && { mlflowRunId: measured.mlflowRunId }),
    ...(measured.reportUri !== undefined && { reportUri: measured.reportUri }),
    decision,
  };
  if (decision.start && decision.trigger && input.retrain) {
    if (lock.holder) {
      result.retraining = {
        workflowId: lock.holder.workflowId,
        started: false,
        reason: `a retraining already runs: ${lock.holder.workflowId}`,
      };
    } else {
      result.retraining = await starter.startRetraining({
        model: input.model,
        workflowId: `retrain-${input.model}-${decision.trigger.kind}-${info.runId}`,
        input: input.retrain,
        trigger: { ...decision.trigger, report: measured.reportUri ?? measured.reportHtml },
      });
    }
  }
  return result;
}

/** Checks one `newDataCheck` run makes at most (one per batch of `newLabels` signals that came in meanwhile). */
export const NEW_DATA_MAX_CHECKS = 3;

export interface NewDataCheckInput {
  model: string;
  /** The labelled training dataset (file://, under the worker's dataset roots); a started retraining trains on it. */
  dataset: { uri: string };
  /** Feature spec (built in for `fraud`). */
  featureSpec?: Record<string, unknown>;
  policy?: NewDataPolicyInput;
  /** What a started retraining gets besides model, dataset and trigger (holdout, canary, ...). */
  retrain?: Record<string, unknown>;
}

export interface NewDataCheckResult {
  model: string;
  checks: Array<{ count: NewRowsCount; decision: NewDataDecision }>;
  retraining?: { workflowId: string; started: boolean; reason: string };
}

export async function newDataCheck(raw: NewDataCheckInput): Promise<NewDataCheckResult> {
  const info = workflowInfo();
  const parsed = NewDataCheckInputSchema.safeParse(raw);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(
      `newDataCheck input: ${describeIssue(parsed.error)}`,
      FailureType.InvalidInput,
    );
  const input = parsed.data;
  let signals = 0;
  let batch: string | undefined;
  setHandler(newLabelsSignal, (s) => {
    signals++;
    if (s.batch) batch = s.batch;
  });
  const result: NewDataCheckResult = { model: input.model, checks: [] };
  // One check, and another for labels signalled while it ran (bounded).
  let seen = -1;
  for (let i = 0; i < NEW_DATA_MAX_CHECKS && seen !== signals && !result.retraining?.started; i++) {
    seen = signals;
    const count = await drift.countNewRows({
      model: input.model,
      dataset: input.dataset,
      ...(input.featureSpec !== undefined && { featureSpec: input.featureSpec }),
    });
    const lock = await starter.modelLockStatus({ model: input.model });
    const decision = decideNewData(
      count,
      {
        held: lock.holder !== undefined,
        ...(lock.lastGrantMs !== undefined && { lastGrantMs: lock.lastGrantMs }),
      },
      Date.now(),
      input.policy ?? {},
    );
    result.checks.push({ count, decision });
    if (decision.start) {
      result.retraining = await starter.startRetraining({
        model: input.model,
        workflowId: `retrain-${input.model}-new-data-${info.runId}`,
        input: {
          ...input.retrain,
          dataset: input.dataset,
          ...(input.featureSpec !== undefined && { featureSpec: input.featureSpec }),
        },
        trigger: { kind: 'new-data', batch: batch ?? `${count.newRows} new rows` },
      });
    } else if (decision.blocked === 'lock' && lock.holder) {
      result.retraining = { workflowId: lock.holder.workflowId, started: false, reason: decision.reason };
    }
  }
  await condition(allHandlersFinished);
  return result;
}

export async function modelLock(initial: { model: string; state?: LockState }): Promise<void> {
  let state: LockState = initial.state ?? { model: initial.model, decisions: {}, order: [], requests: 0 };
  const pending: LeaseRequest[] = [];
  setHandler(acquireLeaseSignal, (req) => {
    pending.push(req);
  });
  setHandler(leaseQuery, (requestId) => state.decisions[requestId] ?? null);
  setHandler(lockStateQuery, () => state);
  let handled = 0;
  for (;;) {
    await condition(() => pending.length > 0);
    while (pending.length > 0) {
      const req = pending.shift()!;
      state = decideLease(state, req, Date.now()).state;
      handled++;
    }
    if (handled >= LOCK_CONTINUE_AS_NEW_AFTER) {
      await continueAsNew<typeof modelLock>({ model: initial.model, state });
    }
  }
}
