/**
 * The per-model retraining lock (sandbox-safe): its message definitions and the pure decision of the
 * `modelLock` workflow (id `lock-<model>`), which every retraining start path goes through, because
 * the pipeline itself asks for the lease before anything else (schedules give each run a
 * timestamped workflow id, so an id cannot be the lock).
 *
 * Rules:
 * - One holder at a time: a pipeline run (workflow id and run id). The same run asking again is
 *   granted again (activity retries are idempotent). A run continued as new takes over the lease of
 *   the run it continues, and a holder that continued as new is not released while its chain runs.
 * - A holder is released when its run has closed: the lock cannot see other workflows, so the
 *   acquiring activity describes the holder and says so (`staleHolderRunId`); there is no release
 *   call to forget.
 * - Monitor-started triggers (drift, kpi-drop) also wait out the cool-down since the last such grant;
 *   manual, schedule and new-data starts need only the lock to be free.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { FailureType } from '../contracts/failures';

/** Workflow id prefix of the per-model lock workflow. */
export const MODEL_LOCK_PREFIX = 'lock-';
/** The patch id of the pipeline's lease request (histories without it replay unchanged). */
export const MODEL_LOCK_PATCH = 'retraining-model-lock';
/** ApplicationFailure type of a pipeline run refused by the lock (non-retryable, in the failure taxonomy). */
export const MODEL_LOCKED_FAILURE = FailureType.ModelLocked;
/** Cool-down between automated retraining starts of one model (one drift, one retraining). */
export const DEFAULT_LOCK_COOLDOWN_MS = 24 * 3_600_000;
/** Lease decisions a lock keeps for its query before the oldest are dropped. */
export const LOCK_DECISIONS_KEPT = 200;
/** Requests after which the lock continues as new (bounded history). */
export const LOCK_CONTINUE_AS_NEW_AFTER = 500;
/** Triggers that the cool-down applies to. */
export const AUTOMATED_TRIGGERS = ['drift', 'kpi-drop'] as const;

/**
 * The lock workflow of a model's pipelines on one task queue (`lock-<model>@<queue>`). The lock
 * runs on the queue of the pipelines it guards, so it lives exactly as long as their workers do;
 * every start path of one deployment starts its pipelines on the same queue, so they share it.
 */
export const lockIdOf = (model: string, taskQueue: string): string =>
  `${MODEL_LOCK_PREFIX}${model}@${taskQueue}`;

export interface LeaseRequest {
  requestId: string;
  workflowId: string;
  runId: string;
  trigger: string;
  cooldownMs?: number;
  /** The holder's run the requester found closed. */
  staleHolderRunId?: string;
  /** The run the requester continues as new (same workflow id): it takes over that run's lease. */
  continuesRunId?: string;
}

export interface Holder {
  workflowId: string;
  runId: string;
  trigger: string;
  sinceMs: number;
}

export interface LockState {
  model: string;
  holder?: Holder;
  lastGrantMs?: number;
  lastAutomatedGrantMs?: number;
  /** Recent decisions by request id (answered by the `lease` query). */
  decisions: Record<string, LeaseDecision>;
  order: string[];
  requests: number;
}

export interface LeaseDecision {
  granted: boolean;
  reason: string;
  holder?: Holder;
}

export const acquireLeaseSignal = defineSignal<[LeaseRequest]>('acquireLease');
export const leaseQuery = defineQuery<LeaseDecision | null, [string]>('lease');
export const lockStateQuery = defineQuery<LockState>('lockState');

export function decideLease(
  state: LockState,
  req: LeaseRequest,
  nowMs: number,
): { state: LockState; decision: LeaseDecision } {
  let holder = state.holder;
  if (holder && req.staleHolderRunId && holder.runId === req.staleHolderRunId) holder = undefined;
  let decision: LeaseDecision;
  if (holder && holder.workflowId === req.workflowId && holder.runId === req.runId) {
    decision = { granted: true, reason: 'already held by this run', holder };
  } else if (
    holder &&
    req.continuesRunId !== undefined &&
    holder.workflowId === req.workflowId &&
    holder.runId === req.continuesRunId
  ) {
    // Continue-as-new: the lease moves to the new run of the same workflow, keeping its trigger and age.
    holder = { ...holder, runId: req.runId };
    decision = { granted: true, reason: 'handed over from the run it continues', holder };
  } else if (holder) {
    decision = {
      granted: false,
      reason: `held by ${holder.workflowId} (${holder.trigger}) since ${new Date(holder.sinceMs).toISOString()}`,
      holder,
    };
  } else {
    const cooldown = req.cooldownMs ?? DEFAULT_LOCK_COOLDOWN_MS;
    const automated = (AUTOMATED_TRIGGERS as readonly string[]).includes(req.trigger);
    if (
      automated &&
      state.lastAutomatedGrantMs !== undefined &&
      nowMs - state.lastAutomatedGrantMs < cooldown
    ) {
      decision = {
        granted: false,
        reason: `cool-down: an automated retraining started ${Math.round((nowMs - state.lastAutomatedGrantMs) / 60_000)} min ago (cool-down ${Math.round(cooldown / 60_000)} min)`,
      };
    } else {
      holder = { workflowId: req.workflowId, runId: req.runId, trigger: req.trigger, sinceMs: nowMs };
      decision = { granted: true, reason: 'granted', holder };
    }
  }
  const granted = decision.granted && decision.reason === 'granted';
  const order = [...state.order, req.requestId].slice(-LOCK_DECISIONS_KEPT);
  const decisions: Record<string, LeaseDecision> = {};
  for (const id of order) decisions[id] = id === req.requestId ? decision : state.decisions[id]!;
  return {
    decision,
    state: {
      ...state,
      holder,
      ...(granted && { lastGrantMs: nowMs }),
      ...(granted &&
        (AUTOMATED_TRIGGERS as readonly string[]).includes(req.trigger) && { lastAutomatedGrantMs: nowMs }),
      decisions,
      order,
      requests: state.requests + 1,
    },
  };
}
