/**
 * The drift family's activities: the window measurement (inference log, delayed labels, reports on
 * disk), the per-model lock's client side (signal-with-start on `lock-<model>`, then the `lease`
 * query; a holder whose run has closed is reported stale), its state for the monitor, and the start
 * of a retraining run. Temporal calls use the worker's own client from the activity context.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { z } from 'zod';
import {
  acquireLeaseSignal,
  leaseQuery,
  lockIdOf,
  lockStateQuery,
  type LeaseDecision,
  type LeaseRequest,
  type LockState,
} from '../src/core/policy/drift-lock';
import { FileInferenceLogSource, FileLabelSource } from '../src/drift/inference-source';
import { measureDrift, type MeasureRequest, type MeasureResult } from '../src/drift/monitor';

/** How often the lease query is polled after the request signal. */
const LEASE_POLL_MS = 50;
/** How long the lock may take to answer before the activity fails (and Temporal retries it). */
const LEASE_ANSWER_TIMEOUT_MS = 30_000;

export interface DriftDeps {
  /** The gateway's inference log folder (MLOPS_GATEWAY_INFERENCE_LOG_DIR). */
  inferenceLogDir: string;
  /** Delayed labels folder (`<model>/*.jsonl` of {requestId, label}). */
  labelsDir?: string;
  /** Where reports are written. */
  reportDir: string;
}

const Model = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'model: lowercase letters, digits and dashes');

function lockHandle(model: string) {
  const ctx = Context.current();
  return ctx.client.workflow.getHandle(lockIdOf(model, ctx.info.taskQueue));
}

async function askLock(model: string, req: LeaseRequest): Promise<LeaseDecision> {
  const ctx = Context.current();
  await ctx.client.workflow.signalWithStart('modelLock', {
    workflowId: lockIdOf(model, ctx.info.taskQueue),
    taskQueue: ctx.info.taskQueue,
    args: [{ model }],
    signal: acquireLeaseSignal,
    signalArgs: [req],
  });
  const handle = lockHandle(model);
  const deadline = Date.now() + LEASE_ANSWER_TIMEOUT_MS;
  for (;;) {
    const answer = await handle.query(leaseQuery, req.requestId);
    if (answer) return answer;
    if (Date.now() > deadline)
      throw new Error(`lock ${lockIdOf(model, ctx.info.taskQueue)} did not answer ${req.requestId}`);
    await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
  }
}

async function isClosed(workflowId: string, runId: string): Promise<boolean> {
  try {
    const d = await Context.current().client.workflow.getHandle(workflowId, runId).describe();
    return d.status.name !== 'RUNNING';
  } catch {
    return true;
  }
}

export function createDriftActivities(deps: DriftDeps) {
  const log = new FileInferenceLogSource(deps.inferenceLogDir);
  const labels = deps.labelsDir ? new FileLabelSource(deps.labelsDir) : undefined;
  return {
    async acquireModelLock(req: {
      model: string;
      workflowId: string;
      runId: string;
      trigger: string;
      cooldownMs?: number;
    }): Promise<LeaseDecision> {
      const model = Model.parse(req.model);
      const attempt = Context.current().info.attempt;
      const base = {
        workflowId: req.workflowId,
        runId: req.runId,
        trigger: req.trigger,
        ...(req.cooldownMs !== undefined && { cooldownMs: req.cooldownMs }),
      };
      let decision = await askLock(model, { ...base, requestId: `${req.runId}/${attempt}/1` });
      const holder = decision.holder;
      if (
        !decision.granted &&
        holder &&
        holder.runId !== req.runId &&
        (await isClosed(holder.workflowId, holder.runId))
      ) {
        decision = await askLock(model, {
          ...base,
          requestId: `${req.runId}/${attempt}/2`,
          staleHolderRunId: holder.runId,
        });
      }
      return decision;
    },

    async modelLockStatus(req: {
      model: string;
    }): Promise<{ holder?: LockState['holder']; lastAutomatedGrantMs?: number }> {
      const model = Model.parse(req.model);
      try {
        const s = await lockHandle(model).query(lockStateQuery);
        const holder =
          s.holder && !(await isClosed(s.holder.workflowId, s.holder.runId)) ? s.holder : undefined;
        return {
          ...(holder && { holder }),
          ...(s.lastAutomatedGrantMs !== undefined && { lastAutomatedGrantMs: s.lastAutomatedGrantMs }),
        };
      } catch {
        return {};
      }
    },

    async startRetraining(req: {
      model: string;
      workflowId: string;
      input: Record<string, unknown>;
      trigger: Record<string, unknown>;
    }): Promise<{ workflowId: string; started: boolean; reason: string }> {
      const ctx = Context.current();
      try {
        await ctx.client.workflow.start('retrainingPipeline', {
          workflowId: req.workflowId,
          taskQueue: ctx.info.taskQueue,
          args: [{ ...req.input, model: Model.parse(req.model), trigger: req.trigger }],
        });
        return { workflowId: req.workflowId, started: true, reason: 'started' };
      } catch (err) {
        // A retried activity finds its own run already started: the same start, not a second one.
        if (err instanceof WorkflowExecutionAlreadyStartedError)
          return { workflowId: req.workflowId, started: true, reason: 'already started by this monitor run' };
        throw err;
      }
    },

    async measureDrift(req: MeasureRequest): Promise<MeasureResult> {
      Model.parse(req.model);
      return measureDrift(req, { log, ...(labels && { labels }), reportDir: deps.reportDir });
    },
  };
}
