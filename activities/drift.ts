/**
 * The drift family's activities: the window measurement (inference log, delayed labels, reports on
 * disk), the per-model lock's client side (signal-with-start on `lock-<model>`, then the `lease`
 * query; a holder whose run has closed is reported stale), its state for the monitor, and the start
 * of a retraining run. Temporal calls use the worker's own client from the activity context.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { FeatureSpecSchema, type FeatureSpec } from '../src/core/contracts/feature-spec';
import { FailureType } from '../src/core/contracts/failures';
import { Aliases, VersionTags } from '../src/core/contracts/registry';
import { BUILTIN_FEATURE_SPECS } from '../src/core/contracts/retraining';
import type { NewRowsCount } from '../src/core/policy/new-data';
import {
  countSharedRows,
  DatasetFormatError,
  DatasetReadError,
  fingerprintsPathOf,
  profileDataset,
  profileDatasetWithExtras,
} from '../src/data/profile';
import { resolveLocalDataset } from '../src/data/sources';
import { findSnapshot, ReferenceProfileError } from '../src/drift/reference-profile';
import type { ModelRegistry } from '../src/ports/model-registry';
import { DATASET_ROOTS_ENV, defaultDatasetRoots } from './data';
import { mapped } from './errors';
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
  /** The registry: the champion's reference profile, the drift summary runs, the champion's snapshot. */
  registry?: ModelRegistry;
  /** The dataset snapshot store (the champion's training snapshot and its row fingerprints). */
  snapshotDir?: string;
  /** Folders `file://` datasets may be read from (default as for the data activities). */
  datasetRoots?: readonly string[];
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

/**
 * Whether a lease holder's run has closed. A run that continued as new has not let go: its chain
 * (the latest run of the same workflow id) still holds the lease until that run closes.
 */
async function isClosed(workflowId: string, runId: string): Promise<boolean> {
  const client = Context.current().client;
  try {
    const d = await client.workflow.getHandle(workflowId, runId).describe();
    if (d.status.name === 'RUNNING') return false;
    if (d.status.name !== 'CONTINUED_AS_NEW') return true;
    const latest = await client.workflow.getHandle(workflowId).describe();
    return latest.status.name !== 'RUNNING';
  } catch {
    return true;
  }
}

function roots(deps: DriftDeps): readonly string[] {
  if (deps.datasetRoots) return deps.datasetRoots;
  const env = process.env[DATASET_ROOTS_ENV];
  if (env?.trim()) return env.split(path.delimiter).filter((r) => r.trim() !== '');
  return deps.snapshotDir ? defaultDatasetRoots(deps.snapshotDir) : [];
}

function specFor(model: string, featureSpec: unknown): FeatureSpec {
  if (featureSpec === undefined) {
    const builtIn = BUILTIN_FEATURE_SPECS[model];
    if (builtIn) return builtIn;
    throw ApplicationFailure.nonRetryable(
      `featureSpec: required for model ${model} (no built-in spec)`,
      FailureType.InvalidInput,
    );
  }
  const r = FeatureSpecSchema.safeParse(featureSpec);
  if (!r.success)
    throw ApplicationFailure.nonRetryable(
      `featureSpec.${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`,
      FailureType.InvalidInput,
    );
  return r.data;
}

const unreadable = (err: unknown): never => {
  if (err instanceof DatasetFormatError || err instanceof DatasetReadError)
    throw ApplicationFailure.nonRetryable(err.message, FailureType.DatasetUnreadable);
  throw err;
};

export function createDriftActivities(deps: DriftDeps) {
  const log = new FileInferenceLogSource(deps.inferenceLogDir);
  const labels = deps.labelsDir ? new FileLabelSource(deps.labelsDir) : undefined;
  return {
    /**
     * Rows of the labelled dataset that are not in the champion's training snapshot: the dataset's row
     * fingerprints (features and label) against those written beside the snapshot when it was
     * validated (computed once and kept there when missing). One engine read of the dataset.
     */
    async countNewRows(req: {
      model: string;
      dataset: { uri: string };
      featureSpec?: unknown;
    }): Promise<NewRowsCount> {
      const model = Model.parse(req.model);
      const spec = specFor(model, req.featureSpec);
      if (!req.dataset.uri.startsWith('file:') && req.dataset.uri.includes('://'))
        throw ApplicationFailure.nonRetryable(
          `dataset.uri: the new-data check reads file:// datasets, got ${req.dataset.uri}`,
          FailureType.InvalidInput,
        );
      const file = await resolveLocalDataset(req.dataset.uri, roots(deps)).catch((err: Error) => {
        throw ApplicationFailure.nonRetryable(`dataset.uri: ${err.message}`, FailureType.DatasetUnreadable);
      });
      const registry = deps.registry;
      const champion = registry
        ? await mapped(() => registry.findVersionByAlias(model, Aliases.champion))
        : undefined;
      if (!champion) {
        const p = await profileDataset(file, spec).catch(unreadable);
        return { rows: p.rows, shared: 0, newRows: p.rows };
      }
      const sha = champion.tags[VersionTags.datasetSha256] ?? '';
      const snapshot = deps.snapshotDir ? await findSnapshot(deps.snapshotDir, sha) : undefined;
      if (!snapshot)
        throw ApplicationFailure.nonRetryable(
          `${model} v${champion.version}: its training snapshot ${sha || '(untagged)'} is not in the snapshot store`,
          FailureType.DatasetUnreadable,
        );
      const sidecar = fingerprintsPathOf(snapshot);
      if (!existsSync(sidecar))
        await profileDatasetWithExtras(snapshot, spec, { sha256: sha, fingerprintsTo: sidecar }).catch(
          unreadable,
        );
      const { rows, shared } = await countSharedRows(sidecar, file, spec).catch(unreadable);
      return {
        rows,
        shared,
        newRows: rows - shared,
        champion: { version: champion.version, datasetSha256: sha },
      };
    },

    async acquireModelLock(req: {
      model: string;
      workflowId: string;
      runId: string;
      trigger: string;
      cooldownMs?: number;
      /** The run this one continues as new (same workflow id): its lease is handed over. */
      continuesRunId?: string;
    }): Promise<LeaseDecision> {
      const model = Model.parse(req.model);
      const attempt = Context.current().info.attempt;
      const base = {
        workflowId: req.workflowId,
        runId: req.runId,
        trigger: req.trigger,
        ...(req.cooldownMs !== undefined && { cooldownMs: req.cooldownMs }),
        ...(req.continuesRunId !== undefined && { continuesRunId: req.continuesRunId }),
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
    }): Promise<{ holder?: LockState['holder']; lastAutomatedGrantMs?: number; lastGrantMs?: number }> {
      const model = Model.parse(req.model);
      try {
        const s = await lockHandle(model).query(lockStateQuery);
        const holder =
          s.holder && !(await isClosed(s.holder.workflowId, s.holder.runId)) ? s.holder : undefined;
        return {
          ...(holder && { holder }),
          ...(s.lastAutomatedGrantMs !== undefined && { lastAutomatedGrantMs: s.lastAutomatedGrantMs }),
          ...(s.lastGrantMs !== undefined && { lastGrantMs: s.lastGrantMs }),
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
      return mapped(() =>
        measureDrift(req, {
          log,
          ...(labels && { labels }),
          reportDir: deps.reportDir,
          ...(deps.registry && { registry: deps.registry }),
        }).catch((err: unknown) => {
          // No champion or no profile: permanent until one is registered (a retry cannot help).
          if (err instanceof ReferenceProfileError)
            throw ApplicationFailure.nonRetryable(err.message, FailureType.RegistryNotFound);
          throw err;
        }),
      );
    },
  };
}
