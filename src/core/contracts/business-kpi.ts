/**
 * The business KPI of a canary analysis, on delayed labels: the policy that names it, and the
 * labelled outcomes a label source measures per version (predictions each version served in the
 * window, joined by request id to the labels that have arrived). Sandbox-safe.
 *
 * Metrics, all at the serving threshold (a score at or above it is a flagged decision):
 * - `cost`: cost per labelled decision, `(costs.falsePositive * FP + costs.falseNegative * FN) / n`,
 *   lower is better (for fraud: a flagged legitimate transaction costs a review, a missed fraud a
 *   chargeback);
 * - `precision`: TP / (TP + FP), higher is better;
 * - `recall`: TP / (TP + FN), higher is better.
 */
import { z } from 'zod';

export const BUSINESS_KPI_METRICS = ['cost', 'precision', 'recall'] as const;
export type BusinessKpiMetric = (typeof BUSINESS_KPI_METRICS)[number];

/** The fraud model's decision: the governance policy's review-queue threshold. */
export const DEFAULT_BUSINESS_KPI_THRESHOLD = 0.2;
/** A flagged legitimate transaction: one manual review (the unit of cost). */
export const DEFAULT_FALSE_POSITIVE_COST = 1;
/**
 * A missed fraud, in reviews: 4 makes the 0.2 threshold the cost-optimal one for a calibrated score
 * (flag when p >= cFP / (cFP + cFN)), so the defaults agree with the serving threshold.
 */
export const DEFAULT_FALSE_NEGATIVE_COST = 4;
/**
 * Fewest labelled cases per version in the metric's denominator (labelled decisions for cost,
 * labelled flagged cases for precision, labelled frauds for recall): the drift monitor's minimum
 * for a realized metric. Fewer: the check is inconclusive, or skipped when labels are optional.
 */
export const DEFAULT_MIN_LABELLED = 100;
/** Allowed worsening relative to stable's value (10%): a business change a risk owner would notice. */
export const DEFAULT_MAX_RELATIVE_DEGRADATION = 0.1;
/**
 * Allowed worsening in the metric's own units whatever stable's value (a hundredth of a review per
 * decision for cost, 0.01 of precision or recall): below it a relative limit on a tiny stable figure
 * decides nothing. The larger of the two limits applies.
 */
export const DEFAULT_MAX_DEGRADATION = 0.01;
/**
 * Delayed labels mostly arrive after a bake window closes: by default too few labels skip the check
 * (reported, never a failure), rather than pausing every rollout for a human.
 */
export const DEFAULT_LABELS_REQUIREMENT = 'optional' as const;
/**
 * Which predictions are joined: everything both versions served since the rollout's first window
 * (labels that arrive later still count at the next step, and stable keeps its earlier predictions
 * at 100%), or only the analysis's own bake window.
 */
export const DEFAULT_LABEL_WINDOW = 'rollout' as const;

export const BusinessKpiPolicySchema = z
  .object({
    metric: z.enum(BUSINESS_KPI_METRICS).default('cost'),
    /** Serving threshold: a score at or above it is a flagged decision. */
    threshold: z.number().gt(0).lt(1).default(DEFAULT_BUSINESS_KPI_THRESHOLD),
    costs: z
      .object({
        falsePositive: z.number().min(0).default(DEFAULT_FALSE_POSITIVE_COST),
        falseNegative: z.number().min(0).default(DEFAULT_FALSE_NEGATIVE_COST),
      })
      .strict()
      .prefault({})
      .refine((c) => c.falsePositive + c.falseNegative > 0, 'at least one cost must be positive'),
    minLabelled: z.number().int().min(1).default(DEFAULT_MIN_LABELLED),
    maxRelativeDegradation: z.number().min(0).default(DEFAULT_MAX_RELATIVE_DEGRADATION),
    maxDegradation: z.number().min(0).default(DEFAULT_MAX_DEGRADATION),
    /** `required`: too few labels (or no label source) is inconclusive; `optional`: the check is skipped. */
    labels: z.enum(['required', 'optional']).default(DEFAULT_LABELS_REQUIREMENT),
    window: z.enum(['rollout', 'step']).default(DEFAULT_LABEL_WINDOW),
  })
  .strict();
export type BusinessKpiPolicy = z.output<typeof BusinessKpiPolicySchema>;
export type BusinessKpiPolicyInput = z.input<typeof BusinessKpiPolicySchema>;

/** One version's labelled decisions in a window. */
export interface VersionOutcomes {
  /** Predictions the version made in the window (served or mirrored; staging probes excluded). */
  predictions: number;
  /** Of those, how many have a label yet. */
  labelled: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const VersionOutcomesSchema = z
  .object({
    predictions: z.number().int().min(0),
    labelled: z.number().int().min(0),
    tp: z.number().int().min(0),
    fp: z.number().int().min(0),
    tn: z.number().int().min(0),
    fn: z.number().int().min(0),
  })
  .strict()
  .refine((o) => o.tp + o.fp + o.tn + o.fn === o.labelled, 'tp + fp + tn + fn must equal labelled')
  .refine((o) => o.labelled <= o.predictions, 'labelled must not exceed predictions');

export const EMPTY_OUTCOMES: VersionOutcomes = { predictions: 0, labelled: 0, tp: 0, fp: 0, tn: 0, fn: 0 };

/** What the label source answered for one analysis: counts per version, or why it could not. */
export type LabelledOutcomes =
  | {
      available: true;
      /** The joined window (ISO). */
      from: string;
      to: string;
      threshold: number;
      canary: VersionOutcomes;
      stable: VersionOutcomes;
    }
  | { available: false; reason: string };
