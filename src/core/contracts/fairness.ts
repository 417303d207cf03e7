/**
 * Contract of the fairness report (src/core/stats/fairness.ts): per-group counts and rates, and for each
 * fairness metric a max-minus-min gap across the groups large enough to judge, with a bootstrap interval and,
 * when a champion was scored on the same holdout, the paired interval of the gap's change. Sandbox-safe, plain
 * JSON (NaN travels as null).
 *
 * Rules:
 * - A group whose relevant count (rows, positives, negatives or predicted positives, per metric) is below
 *   `minGroupCount` is "too small to judge": listed in `tooSmall` and left out of that metric's gap.
 * - Fewer than two judgeable groups: the gap is not measured (null) and the gate cannot judge it.
 * - `rule` states how the estimate and interval were computed, in words, for the model card and the audit log.
 */
import { z } from 'zod';

/** The fairness metrics of the report, in report order. */
export const FAIRNESS_METRICS = [
  'demographic_parity',
  'equal_opportunity',
  'equalized_odds',
  'predictive_parity',
  'calibration',
] as const;
export type FairnessMetric = (typeof FAIRNESS_METRICS)[number];

const Measured = z.union([z.number(), z.nan(), z.null()]);

export const FairnessGroupSchema = z.strictObject({
  n: z.int().min(0),
  positives: z.int().min(0),
  negatives: z.int().min(0),
  predictedPositives: z.int().min(0),
  /** Share predicted positive (score >= threshold). */
  selectionRate: Measured,
  /** True-positive rate (recall among positives). */
  tpr: Measured,
  /** False-positive rate among negatives. */
  fpr: Measured,
  /** Precision among predicted positives (positive predictive value). */
  ppv: Measured,
  /** Mean score minus observed positive rate: calibration-in-the-large (0 is calibrated). */
  calibrationInTheLarge: Measured,
  brier: Measured,
});
export type FairnessGroup = z.infer<typeof FairnessGroupSchema>;

export const GapIntervalSchema = z.strictObject({
  estimate: Measured,
  ciLow: Measured,
  ciHigh: Measured,
  /** Resamples in which the statistic was defined (every judged group kept its relevant count above 0). */
  validIterations: z.int().min(0),
});
export type GapInterval = z.infer<typeof GapIntervalSchema>;

export const FairnessGapSchema = z.strictObject({
  metric: z.enum(FAIRNESS_METRICS),
  /** Groups in the gap, sorted. */
  judged: z.array(z.string()),
  /** Groups whose relevant count is below `minGroupCount`, sorted. */
  tooSmall: z.array(z.string()),
  /** The count each group needs, in words (e.g. "positives"). */
  countOf: z.string(),
  gap: GapIntervalSchema,
  /** Challenger gap minus champion gap, paired over the same resampled rows (present with a champion). */
  vsChampion: GapIntervalSchema.extend({ champion: Measured }).optional(),
  rule: z.string(),
});
export type FairnessGap = z.infer<typeof FairnessGapSchema>;

export const FairnessReportSchema = z.strictObject({
  threshold: z.number().min(0).max(1),
  minGroupCount: z.int().min(1),
  alpha: z.number().gt(0).lt(1),
  iterations: z.int().min(1),
  seed: z.int().min(0),
  groups: z.record(z.string(), FairnessGroupSchema),
  metrics: z.array(FairnessGapSchema),
});
export type FairnessReport = z.infer<typeof FairnessReportSchema>;
