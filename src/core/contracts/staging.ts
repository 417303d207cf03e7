/**
 * The staging stage of `retrainingPipeline`: after approval and before any customer traffic, the
 * candidate is loaded on the router's staging route (served to admin principals only) and probed
 * with a sample of holdout rows. Three checks decide: schema (every row accepted, every answer in
 * the serving contract and from the candidate), latency (p99 of the probes against the SLO), and
 * serving parity (the router's score of each row equals the evaluation's per-example score within
 * a tolerance, which catches training/serving skew). Measuring is an activity; judging is the pure
 * `judgeStaging` (src/core/policy/staging.ts). Sandbox-safe.
 */
import { z } from 'zod';
import type { Check, CheckPhase } from './checks';

/** Holdout rows sent through the staging route: enough to see a skew that touches 1% of rows. */
export const DEFAULT_STAGING_SAMPLE_ROWS = 200;
/** Probes sent first and left out of the latency figure (model load, JIT, connection setup). */
export const DEFAULT_STAGING_WARMUP_ROWS = 5;
/** Largest |served score - evaluated score| of a row: float32 inference agrees far below this. */
export const DEFAULT_PARITY_TOLERANCE = 1e-6;
/** Latency SLO of one prediction through the router, p99 over the probes, in ms. */
export const DEFAULT_STAGING_MAX_P99_MS = 250;
/** Audit event of a judged staging stage (the audit field is open to dotted names). */
export const STAGING_CHECKED_EVENT = 'staging.checked';

export const StagingPolicySchema = z
  .object({
    sampleRows: z.number().int().min(1).max(10_000).default(DEFAULT_STAGING_SAMPLE_ROWS),
    warmupRows: z.number().int().min(0).max(1000).default(DEFAULT_STAGING_WARMUP_ROWS),
    parityTolerance: z.number().positive().max(1).default(DEFAULT_PARITY_TOLERANCE),
    maxP99Ms: z.number().positive().default(DEFAULT_STAGING_MAX_P99_MS),
  })
  .strict();
export type StagingPolicy = z.output<typeof StagingPolicySchema>;
export type StagingPolicyInput = z.input<typeof StagingPolicySchema>;

/** What the staging probe measured (summaries only: per-row scores stay out of workflow history). */
export interface StagingMeasurement {
  /** The version the staging route was loaded with. */
  version: string;
  /** Holdout rows sent (warm-up included). */
  probes: number;
  /** Answers that were a 200 in the serving contract, from `version` on the staging route. */
  valid: number;
  /** Up to a few refusals or off-contract answers, each naming the row and what was wrong. */
  schemaErrors: string[];
  /**
   * p99 of the timed probes (warm-up excluded), in ms, as the router measured its own serving time
   * (the gateway's `Server-Timing`), else the round trip; null without any.
   */
  p99Ms: number | null;
  /** p99 of the probes' round trips seen by the prober (informational: it includes its own load). */
  roundTripP99Ms: number | null;
  /** Probes compared with the evaluation's per-example scores. */
  compared: number;
  /** Largest |served - evaluated| over the compared probes; null when none was compared. */
  maxAbsDiff: number | null;
  /** Holdout row of the largest difference, with both scores. */
  worst?: { row: number; served: number; evaluated: number };
  /** Compared probes whose difference exceeds the tolerance. */
  mismatches: number;
}

export interface StagingVerdict {
  phase: CheckPhase;
  checks: Check[];
  /** Names of the checks that did not pass. */
  failed: string[];
}

/** The check names of the staging stage, stable for audit readers and tests. */
export const StagingCheck = {
  schema: 'staging.schema',
  latency: 'staging.latency.p99',
  parity: 'staging.serving-parity',
} as const;
