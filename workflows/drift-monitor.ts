/**
 * The drift family: `driftMonitor` (run by the Temporal Schedule `drift-<model>`, overlap SKIP)
 * measures a window of the inference log against the champion's reference profile, judges it with
 * the pure drift policy and, when the policy says so and the model's lock allows, starts one
 * `retrainingPipeline` with trigger `drift` or `kpi-drop` and a link to the report; and `modelLock`
 * (id `lock-<model>`), the per-model lease every pipeline run asks for first.
 */
import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DriftActivities } from '../activities';
import { decideRetraining, type DriftPolicyInput, type RetrainDecision } from '../src/core/policy/drift';
import {
  acquireLeaseSignal,
  decideLease,
  LOCK_CONTINUE_AS_NEW_AFTER,
  leaseQuery,
  lockStateQuery,
  type LeaseRequest,
  type LockState,
} from '../src/core/policy/drift-lock';
import { OUTSIDE_CALL, LONG_COMPUTATION } from './shared/activity-options';

const drift = proxyActivities<DriftActivities>(LONG_COMPUTATION);
const starter = proxyActivities<DriftActivities>(OUTSIDE_CALL);

/** Window length when the input names none: the schedule's default interval. */
export const DEFAULT_DRIFT_WINDOW_MS = 3_600_000;

export interface DriftMonitorInput {
  model: string;
  /** Reference profile JSON (file path or file:// URI) of the champion. */
  profileUri: string;
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
  decision: RetrainDecision;
  retraining?: { workflowId: string; started: boolean; reason: string };
}

export async function driftMonitor(input: DriftMonitorInput): Promise<DriftMonitorResult> {
  const info = workflowInfo();
  const nowMs = Date.now();
  const to = input.to ?? new Date(nowMs).toISOString();
  const from =
    input.from ?? new Date(Date.parse(to) - (input.windowMs ?? DEFAULT_DRIFT_WINDOW_MS)).toISOString();
  const measured = await drift.measureDrift({
    model: input.model,
    profileUri: input.profileUri,
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
        trigger: { ...decision.trigger, report: measured.reportHtml },
      });
    }
  }
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
