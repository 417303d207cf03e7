/**
 * The poisoning screen against history: its policy (per check, block or warn, with the bounds that make a
 * finding), the measurements `src/data/history.ts` takes of a snapshot against the champion's training
 * snapshot, and the report section `src/core/policy/poisoning-history.ts` judges from them.
 *
 * Rules:
 * - Sandbox-safe: zod only; plain JSON (arrays of named entries, no maps).
 * - Every default is a named constant with the reason for its value; the policy lives in the model's policy
 *   file (`validation.history`), never in workflow input.
 */
import { z } from 'zod';
import type { ValidationCheck } from './feature-spec';

/** What a finding of a check does: `block` rejects the snapshot (`rejected-data`), `warn` reports it only. */
export const HistoryAction = { block: 'block', warn: 'warn' } as const;
export type HistoryAction = (typeof HistoryAction)[keyof typeof HistoryAction];

/** Family-wise false-alarm rate of each check (Holm across its segments or features): a false block is costly. */
export const DEFAULT_HISTORY_ALPHA = 0.001;
/**
 * Fewest labelled rows a segment needs on each side (champion snapshot and current) to be judged, and fewest
 * expected positives and negatives in it: below that a rate is noise and a tiny segment could decide.
 */
export const DEFAULT_HISTORY_MIN_SEGMENT_ROWS = 200;
/** Fewest expected positives (and negatives) of a judged segment: the normal approximation needs about 5. */
export const DEFAULT_HISTORY_MIN_EXPECTED_EVENTS = 5;
/**
 * Grid of near-duplicates: numeric features on the signed-log scale rounded to this share of the champion
 * snapshot's standard deviation of that scale (2% keeps clean rows apart: about 0.6% of pairs share a cell
 * per continuous feature, and a jitter of a few cents or a rounding stays inside one).
 */
export const DEFAULT_NEAR_DUPLICATE_TOLERANCE = 0.02;
/** Overall label-rate shift: Cohen's h of at least 0.1 (3% -> 5% fraud) is worth a look; base rates drift. */
export const DEFAULT_LABEL_SHIFT_MIN_EFFECT = 0.1;
/** Overall label-rate shift warns by default: a changed fraud rate is usually the world, not an attacker. */
export const DEFAULT_LABEL_SHIFT_ACTION = HistoryAction.warn;
/**
 * A segment's label rate moving unlike the rest's: a difference of Cohen's h of at least 0.1 between the
 * segment's shift and the rest's. Genuine drift moves segments together; targeted flipping moves one.
 */
export const DEFAULT_SEGMENT_SHIFT_MIN_EFFECT = 0.1;
/**
 * A segment's label rate moving on its own warns by default: targeted flipping of fresh rows does this, but so
 * does genuine concept drift (fraud moving between merchant categories). A policy that knows a segment's rate
 * is stable (the fraud policy's regions) blocks on it.
 */
export const DEFAULT_SEGMENT_SHIFT_ACTION = HistoryAction.warn;
/** Duplicate surge: near-duplicate rows beyond the expected number must be at least 1% of the snapshot. */
export const DEFAULT_DUPLICATE_MIN_EXCESS_RATE = 0.01;
/** A surge of (near-)duplicates blocks by default: replayed rows upweight an attacker's examples. */
export const DEFAULT_DUPLICATE_ACTION = HistoryAction.block;
/**
 * Share of rows matching a champion row that may carry the other label without suspicion (relabelled
 * chargebacks, label noise); the champion's own share is used when it is higher and measured on enough rows.
 */
export const DEFAULT_FLIP_BASE_RATE = 0.02;
/** A segment's flip rate must exceed the base rate by at least 10 percentage points to be a finding. */
export const DEFAULT_FLIP_MIN_EXCESS_RATE = 0.1;
/** Fewest flipped rows in a segment to decide: a handful of flips is label noise, not an attack. */
export const DEFAULT_FLIP_MIN_FLIPS = 10;
/** Label flips concentrated in a segment block by default: copied rows with the other label are poisoning. */
export const DEFAULT_FLIP_ACTION = HistoryAction.block;
/** Rows outside the champion's ranges beyond the expected share must be at least 1% of the snapshot. */
export const DEFAULT_RANGE_MIN_EXCESS_RATE = 0.01;
/** Records outside the reference ranges warn by default: data drift also widens ranges. */
export const DEFAULT_RANGE_ACTION = HistoryAction.warn;
/** Row ids quoted as evidence per finding. */
export const DEFAULT_HISTORY_SAMPLE_ROWS = 5;

const Action = z.enum([HistoryAction.block, HistoryAction.warn]);
const Rate = z.number().min(0).max(1);

export const HistoryScreenPolicySchema = z.strictObject({
  /** Off: the history checks are skipped (and the report says so). */
  enabled: z.boolean().default(true),
  /** Categorical features whose values are the segments; default every categorical feature of the spec. */
  segments: z.array(z.string().min(1)).optional(),
  alpha: z.number().gt(0).lt(1).default(DEFAULT_HISTORY_ALPHA),
  minSegmentRows: z.number().int().min(1).default(DEFAULT_HISTORY_MIN_SEGMENT_ROWS),
  minExpectedEvents: z.number().min(0).default(DEFAULT_HISTORY_MIN_EXPECTED_EVENTS),
  nearDuplicateTolerance: z.number().gt(0).max(1).default(DEFAULT_NEAR_DUPLICATE_TOLERANCE),
  sampleRows: z.number().int().min(0).max(100).default(DEFAULT_HISTORY_SAMPLE_ROWS),
  labelShift: z
    .strictObject({
      action: Action.default(DEFAULT_LABEL_SHIFT_ACTION),
      minEffect: z.number().min(0).default(DEFAULT_LABEL_SHIFT_MIN_EFFECT),
    })
    .prefault({}),
  segmentShift: z
    .strictObject({
      action: Action.default(DEFAULT_SEGMENT_SHIFT_ACTION),
      /** Segment columns of this check; default the screen's `segments`. */
      segments: z.array(z.string().min(1)).optional(),
      minEffect: z.number().min(0).default(DEFAULT_SEGMENT_SHIFT_MIN_EFFECT),
    })
    .prefault({}),
  duplicates: z
    .strictObject({
      action: Action.default(DEFAULT_DUPLICATE_ACTION),
      minExcessRate: Rate.default(DEFAULT_DUPLICATE_MIN_EXCESS_RATE),
    })
    .prefault({}),
  labelFlips: z
    .strictObject({
      action: Action.default(DEFAULT_FLIP_ACTION),
      baseRate: Rate.default(DEFAULT_FLIP_BASE_RATE),
      minExcessRate: Rate.default(DEFAULT_FLIP_MIN_EXCESS_RATE),
      minFlips: z.number().int().min(1).default(DEFAULT_FLIP_MIN_FLIPS),
    })
    .prefault({}),
  ranges: z
    .strictObject({
      action: Action.default(DEFAULT_RANGE_ACTION),
      minExcessRate: Rate.default(DEFAULT_RANGE_MIN_EXCESS_RATE),
    })
    .prefault({}),
});
export type HistoryScreenPolicy = z.output<typeof HistoryScreenPolicySchema>;
export type HistoryScreenPolicyInput = z.input<typeof HistoryScreenPolicySchema>;

/** The data section of a model's policy file (`validation` in `<model>.json`). */
export const ValidationPolicySchema = z.strictObject({
  history: HistoryScreenPolicySchema.prefault({}),
});
export type ValidationPolicy = z.output<typeof ValidationPolicySchema>;

// ---------------------------------------------------------------------------------------------------------
// Measurements (src/data/history.ts)
// ---------------------------------------------------------------------------------------------------------

/** Labelled rows of one sample. */
export interface LabelCounts {
  pos: number;
  neg: number;
}

/** One segment (a value of a segment column) on both sides. */
export interface SegmentMeasurement {
  column: string;
  /** The category, or `(unknown)` / `(missing)`. */
  value: string;
  reference: LabelCounts;
  current: LabelCounts;
  /** Current rows of the segment whose near-duplicate key matches a champion row / of those, with a label
   * none of the matching champion rows has. */
  matched: number;
  flipped: number;
  /** Ids (or 1-based row numbers) of some flipped rows. */
  flippedSample: string[];
}

export interface RangeMeasurement {
  column: string;
  kind: 'numeric' | 'categorical';
  /** Numeric: the champion snapshot's observed range; categorical: the categories it contains. */
  referenceMin?: number | null;
  referenceMax?: number | null;
  referenceCategories?: string[];
  /** Categorical: the size of the spec's vocabulary (each category, and the unknown bucket, may be unseen). */
  vocabulary?: number;
  /** Current rows below / above the range (numeric), or with a category the champion never had. */
  below: number;
  above: number;
  outside: number;
  sample: string[];
}

export interface HistoryMeasurements {
  champion: { version: string; sha256: string; rows: number };
  /** The snapshot being validated. */
  snapshot: { sha256: string; rows: number };
  /** What the near-duplicate key rounds to (see DEFAULT_NEAR_DUPLICATE_TOLERANCE). */
  tolerance: number;
  /** How rows are named in samples: the spec's id column, or `row` (1-based row numbers). */
  rowIds: string;
  reference: LabelCounts;
  current: LabelCounts;
  segments: SegmentMeasurement[];
  duplicates: {
    /** Champion rows whose near-duplicate key equals an earlier champion row's. */
    referenceRepeats: number;
    /** Current rows equal to a champion row in features, label and id: carried over, not judged. */
    carriedOver: number;
    /** Judged current rows (not carried over) that repeat an earlier judged row's or any champion row's key. */
    nearRepeats: number;
    /** Of those: repeating an earlier current row / matching a champion row / exact feature-vector repeats. */
    withinCurrent: number;
    againstReference: number;
    exact: number;
    sample: string[];
  };
  flips: {
    /** Champion rows repeating an earlier champion row's key / of those, with a label the earlier ones lack. */
    referenceMatched: number;
    referenceConflicts: number;
    /** Current rows whose key matches a champion row / of those, with a label none of them has; samples. */
    matched: number;
    flipped: number;
    sample: string[];
  };
  ranges: RangeMeasurement[];
  /** Current rows outside the reference on at least one column, and some of their ids. */
  rowsOutsideRanges: number;
  outsideSample: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Report section (src/core/policy/poisoning-history.ts)
// ---------------------------------------------------------------------------------------------------------

/** Stable names of the history checks (part of the report's contract). */
export const HISTORY_CHECKS = {
  labelShift: 'history.label-shift',
  segmentShift: 'history.segment-label-shift',
  duplicates: 'history.duplicate-surge',
  labelFlips: 'history.label-flips',
  ranges: 'history.out-of-reference-range',
} as const;

/** The numbers behind a history check. */
export interface HistoryEvidence {
  /** Counts the test was computed from (names say what each counts). */
  counts: Record<string, number>;
  segment?: { column: string; value: string };
  /** Test statistic and its name (`z`, `observed`), raw and multiplicity-adjusted p-values. */
  statistic?: { name: string; value: number };
  pValue?: number;
  adjustedPValue?: number;
  /** How p-values were adjusted, and over how many tests. */
  correction?: { method: 'holm' | 'none'; tests: number };
  /** Interval of the effect at confidence 1 - alpha. */
  interval?: { of: string; low: number; high: number; confidence: number };
  effect?: { name: string; value: number; min: number };
  sampleRows?: string[];
  /** Why a segment or feature was not judged (too few rows). */
  notJudged?: string;
}

/** A history check: a validation check with its policy action and evidence. */
export interface HistoryCheck extends ValidationCheck {
  action: HistoryAction;
  evidence: HistoryEvidence;
}

export interface HistoryScreen {
  /** `compared` against the champion's training snapshot, or `skipped` with the reason. */
  status: 'compared' | 'skipped';
  reason?: string;
  champion?: { version: string; sha256: string; rows: number };
  /** Every history check, passed or not; the blocking failures are also in the report's `checks`. */
  checks: HistoryCheck[];
  blocked: number;
  warnings: number;
}

/** `patched` marker of the pipeline passing its model to validation (so the screen can find the champion). */
export const POISONING_HISTORY_PATCH = 'retraining-poisoning-history';
