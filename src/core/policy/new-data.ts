/**
 * The new-labelled-data trigger (sandbox-safe, pure): how many labelled rows of the training dataset
 * are not in the champion's training snapshot, measured by the `countNewRows` activity, judged here.
 *
 * Rules:
 * - Retraining starts (trigger `new-data`) once at least `minNewRows` rows are new; without a
 *   champion every row is new.
 * - Never within `cooldownMs` of the model's last retraining start of any kind (the model lock's
 *   `lastGrantMs`), and never while a run holds the model's lock: the check starts at most one
 *   pipeline, and a pipeline that is not promoted does not make the next check start another at once.
 */
import { defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import { DEFAULT_COOLDOWN_MS } from './drift';

/** New labelled rows since the champion's training snapshot that make retraining worth it. */
export const DEFAULT_MIN_NEW_ROWS = 10_000;

export const NewDataPolicySchema = z
  .object({
    minNewRows: z.number().int().min(1).default(DEFAULT_MIN_NEW_ROWS),
    cooldownMs: z.number().int().min(0).default(DEFAULT_COOLDOWN_MS),
  })
  .strict();
export type NewDataPolicy = z.output<typeof NewDataPolicySchema>;
export type NewDataPolicyInput = z.input<typeof NewDataPolicySchema>;

/** The `newDataCheck` workflow's input (validated first: a bad field fails the run at once, named). */
export const NewDataCheckInputSchema = z
  .object({
    model: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes'),
    dataset: z.object({ uri: z.string().min(1) }).strict(),
    featureSpec: z.record(z.string(), z.unknown()).optional(),
    policy: NewDataPolicySchema.optional(),
    retrain: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** The first problem of a parse, as `field: message`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(input)'}: ${issue.message}` : error.message;
}

/** What `countNewRows` measured. */
export interface NewRowsCount {
  /** Rows of the dataset now. */
  rows: number;
  /** Of those, rows also in the champion's training snapshot (same features and label). */
  shared: number;
  newRows: number;
  /** The champion compared with (absent: no champion yet). */
  champion?: { version: string; datasetSha256: string };
}

export interface NewDataDecision {
  start: boolean;
  /** What held a start back: too few new rows, a running retraining, or the cool-down. */
  blocked?: 'threshold' | 'lock' | 'cooldown';
  reason: string;
}

export function decideNewData(
  count: NewRowsCount,
  lock: { held: boolean; lastGrantMs?: number },
  nowMs: number,
  policyInput: NewDataPolicyInput = {},
): NewDataDecision {
  const policy = NewDataPolicySchema.parse(policyInput);
  const since = count.champion
    ? `since v${count.champion.version}'s training snapshot`
    : 'with no champion yet';
  const measured = `${count.newRows} new labelled rows ${since} (threshold ${policy.minNewRows})`;
  if (count.newRows < policy.minNewRows) return { start: false, blocked: 'threshold', reason: measured };
  if (lock.held)
    return {
      start: false,
      blocked: 'lock',
      reason: `${measured}; a retraining already holds the model's lock`,
    };
  if (lock.lastGrantMs !== undefined && nowMs - lock.lastGrantMs < policy.cooldownMs)
    return {
      start: false,
      blocked: 'cooldown',
      reason: `${measured}; within the cool-down (the last retraining started ${Math.round((nowMs - lock.lastGrantMs) / 60_000)} min ago, cool-down ${Math.round(policy.cooldownMs / 60_000)} min)`,
    };
  return { start: true, reason: measured };
}

/** Signal to `newDataCheck` (signal-with-start on `new-data-<model>`): a labelled batch has landed. */
export const newLabelsSignal = defineSignal<[{ batch?: string }]>('newLabels');

/** Workflow id of a model's new-data check. */
export const newDataCheckIdOf = (model: string): string => `new-data-${model}`;
