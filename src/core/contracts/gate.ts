/**
 * Contracts of the promotion gate: the policy, the per-model evaluation and the champion/challenger
 * comparison (zod v4; sandbox-safe).
 *
 * Rules:
 * - Everything is plain JSON. A statistic that is undefined (NaN in memory) travels as `null`: measured values
 *   accept a finite number, NaN or null, and the gate treats NaN and null alike as "not measured". Infinity is
 *   refused, so a bug that produces it fails validation with the field's path.
 * - Objects are strict: an unknown key (a typo such as `minImprovment`) is an error naming the key.
 * - Every policy default is a named constant below with the reason for its value; `GatePolicySchema.parse({})`
 *   yields {@link DEFAULT_GATE_POLICY}.
 * - Imports only zod and other contracts; src/core/stats implements the metrics named here and asserts at
 *   compile time that what it produces fits these schemas.
 * - `absoluteMinimums` holds a quality bar per metric for a first model: for higher-is-better metrics the
 *   observed value must be >= the bar, for lower-is-better ones (brier, ece, log_loss) it must be <= the bar.
 */
import { z } from 'zod';
import type { Check, CheckPhase } from './checks';
import { METRIC_NAMES, type MetricName } from './metrics';
import { AttributionGuardrailSchema, AttributionSummarySchema } from './attribution';
import { FAIRNESS_METRICS, FairnessReportSchema } from './fairness';

/** Primary KPI: average precision tracks fraud detection quality under heavy class imbalance. */
export const DEFAULT_PRIMARY_METRIC: MetricName = 'pr_auc';
/** Smallest improvement in the primary metric worth a rollout: half a point of average precision. */
export const DEFAULT_MIN_IMPROVEMENT = 0.005;
/** Significance level: the conventional 5%. */
export const DEFAULT_GATE_ALPHA = 0.05;
/** Significance test: the paired bootstrap works for any metric, McNemar only for thresholded accuracy. */
export const DEFAULT_GATE_METHOD = 'bootstrap';
/** Bootstrap resamples: stable 95% percentile bounds at modest cost. */
export const DEFAULT_GATE_BOOTSTRAP_ITERATIONS = 1000;
/** Fewest bootstrap resamples a policy may ask for: fewer make the percentile bounds noise. */
export const MIN_GATE_BOOTSTRAP_ITERATIONS = 100;
/** Largest bootstrap a policy may ask for, so a typo cannot stall the evaluation activity. */
export const MAX_GATE_BOOTSTRAP_ITERATIONS = 100_000;
/** Bootstrap seed: fixed so a re-run of the evaluation reproduces the same interval. */
export const DEFAULT_BOOTSTRAP_SEED = 20_240_601;
/** Smallest holdout worth judging: below ~200 rows intervals are too wide to separate models. */
export const DEFAULT_MIN_HOLDOUT_SIZE = 200;
/** Fewest positives (fraud cases) in the holdout: ranking metrics are unstable with fewer. */
export const DEFAULT_MIN_POSITIVES = 20;
/** Operating threshold for fairness and McNemar predictions: the probability midpoint. */
export const DEFAULT_GATE_DECISION_THRESHOLD = 0.5;
/** Quality bar for a first model (no champion): better than a weak baseline on ranking and precision. */
export const DEFAULT_ABSOLUTE_MINIMUMS: Partial<Record<MetricName, number>> = { pr_auc: 0.3, roc_auc: 0.7 };
/** Allowed absolute increase of ECE and of Brier versus the champion: one point of calibration error. */
export const DEFAULT_MAX_CALIBRATION_REGRESSION = 0.01;
/** Absolute ceiling on demographic parity and equal opportunity differences: 10 points between groups. */
export const DEFAULT_MAX_FAIRNESS_GAP = 0.1;
/** Allowed increase of either fairness gap versus the champion: two points. */
export const DEFAULT_MAX_FAIRNESS_REGRESSION = 0.02;
/** Allowed p95 latency ratio challenger / champion: 25% slower at most. */
export const DEFAULT_MAX_LATENCY_REGRESSION_RATIO = 1.25;
/** Absolute p95 latency ceiling in ms: fits the gateway's scoring budget. */
export const DEFAULT_MAX_P95_LATENCY_MS = 100;
/** The ratio limit applies only above this challenger p95 (ms): below 1 ms a ratio measures timer noise, not users. */
export const DEFAULT_LATENCY_RATIO_FLOOR_MS = 1;
/** Fairness must be measured: a holdout without the sensitive attribute cannot pass a fairness guardrail. */
export const DEFAULT_REQUIRE_FAIRNESS = true;

export const MetricNameSchema = z.enum(METRIC_NAMES);
export const ComparisonMethodSchema = z.enum(['bootstrap', 'mcnemar']);
export type ComparisonMethod = z.infer<typeof ComparisonMethodSchema>;

const nonNegative = () => z.number().min(0);

export const GuardrailsSchema = z.strictObject({
  maxCalibrationRegression: nonNegative().default(DEFAULT_MAX_CALIBRATION_REGRESSION),
  maxFairnessGap: nonNegative().default(DEFAULT_MAX_FAIRNESS_GAP),
  maxFairnessRegression: nonNegative().default(DEFAULT_MAX_FAIRNESS_REGRESSION),
  maxLatencyRegressionRatio: z.number().min(1).default(DEFAULT_MAX_LATENCY_REGRESSION_RATIO),
  maxP95LatencyMs: z.number().positive().default(DEFAULT_MAX_P95_LATENCY_MS),
  latencyRatioFloorMs: nonNegative().default(DEFAULT_LATENCY_RATIO_FLOOR_MS),
  requireFairness: z.boolean().default(DEFAULT_REQUIRE_FAIRNESS),
  /** Fairness metrics the interval rule judges when a fairness report is present (default: parity and opportunity). */
  fairnessMetrics: z.array(z.enum(FAIRNESS_METRICS)).min(1).optional(),
  /** Smallest relevant count per group for the fairness report (src/core/stats/fairness.ts default when absent). */
  fairnessMinGroupCount: z.int().min(1).optional(),
  /** Review when the challenger leans on a sensitive or proxy-sensitive feature (src/core/policy/attribution.ts). */
  attribution: AttributionGuardrailSchema.optional(),
});

export const GatePolicySchema = z
  .strictObject({
    primaryMetric: MetricNameSchema.default(DEFAULT_PRIMARY_METRIC),
    minImprovement: nonNegative().default(DEFAULT_MIN_IMPROVEMENT),
    alpha: z.number().gt(0).max(0.5).default(DEFAULT_GATE_ALPHA),
    method: ComparisonMethodSchema.default(DEFAULT_GATE_METHOD),
    bootstrapIterations: z
      .int()
      .min(MIN_GATE_BOOTSTRAP_ITERATIONS)
      .max(MAX_GATE_BOOTSTRAP_ITERATIONS)
      .default(DEFAULT_GATE_BOOTSTRAP_ITERATIONS),
    bootstrapSeed: z.int().min(0).max(0xffffffff).default(DEFAULT_BOOTSTRAP_SEED),
    minHoldoutSize: z.int().min(1).default(DEFAULT_MIN_HOLDOUT_SIZE),
    minPositives: z.int().min(1).default(DEFAULT_MIN_POSITIVES),
    decisionThreshold: z.number().min(0).max(1).default(DEFAULT_GATE_DECISION_THRESHOLD),
    absoluteMinimums: z
      .partialRecord(MetricNameSchema, z.number())
      .default(() => ({ ...DEFAULT_ABSOLUTE_MINIMUMS })),
    guardrails: GuardrailsSchema.prefault({}),
  })
  .superRefine((policy, ctx) => {
    if (policy.minPositives > policy.minHoldoutSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['minPositives'],
        message: `minPositives (${policy.minPositives}) cannot exceed minHoldoutSize (${policy.minHoldoutSize})`,
      });
    }
  });
export type GatePolicy = z.infer<typeof GatePolicySchema>;
export type GatePolicyInput = z.input<typeof GatePolicySchema>;

/** The policy with every default applied. */
export const DEFAULT_GATE_POLICY: GatePolicy = GatePolicySchema.parse({});

/** A measured statistic: a finite number, or NaN / null when it could not be computed. */
export const MeasuredSchema = z.union([z.number(), z.nan(), z.null()]);
export type Measured = z.infer<typeof MeasuredSchema>;

export const GroupStatsSchema = z.strictObject({
  n: z.int().min(0),
  positives: z.int().min(0),
  positiveRate: MeasuredSchema,
  tpr: MeasuredSchema,
});

export const FairnessSchema = z.strictObject({
  /** Demographic parity difference (max - min positive-prediction rate across groups). */
  dpd: MeasuredSchema,
  /** Equal opportunity difference (max - min TPR across groups with positives). */
  eod: MeasuredSchema,
  perGroup: z.record(z.string(), GroupStatsSchema),
  /** Groups without positives, left out of `eod`. */
  ignoredGroups: z.array(z.string()).default([]),
  /** Every fairness metric with its bootstrap interval and group counts; when present the gate judges it. */
  report: FairnessReportSchema.optional(),
});

export type GroupStatsEvaluation = z.infer<typeof GroupStatsSchema>;
export type FairnessEvaluation = z.infer<typeof FairnessSchema>;

export const CalibrationSchema = z.strictObject({ brier: MeasuredSchema, ece: MeasuredSchema });
export type CalibrationEvaluation = z.infer<typeof CalibrationSchema>;

export const LatencySchema = z.strictObject({
  p50: MeasuredSchema,
  p95: MeasuredSchema,
  p99: MeasuredSchema,
  mean: MeasuredSchema,
});
export type LatencyEvaluation = z.infer<typeof LatencySchema>;

export const ModelEvaluationSchema = z
  .strictObject({
    /** Holdout size. */
    n: z.int().min(0),
    /** Positives (fraud cases) in the holdout. */
    positives: z.int().min(0),
    /** Operating threshold the fairness figures were computed at. */
    threshold: z.number().min(0).max(1).optional(),
    metrics: z.partialRecord(MetricNameSchema, MeasuredSchema),
    /** Absent when the holdout has no sensitive attribute. */
    fairness: FairnessSchema.optional(),
    /** Global attributions of the version on the holdout (src/explain). */
    attribution: AttributionSummarySchema.optional(),
    calibration: CalibrationSchema,
    latency: LatencySchema,
  })
  .superRefine((e, ctx) => {
    if (e.positives > e.n) {
      ctx.addIssue({
        code: 'custom',
        path: ['positives'],
        message: `positives (${e.positives}) exceed n (${e.n})`,
      });
    }
  });
export type ModelEvaluation = z.infer<typeof ModelEvaluationSchema>;

export const BootstrapComparisonSchema = z.strictObject({
  method: z.literal('bootstrap'),
  metric: MetricNameSchema,
  metricA: MeasuredSchema,
  metricB: MeasuredSchema,
  estimate: MeasuredSchema,
  ciLow: MeasuredSchema,
  ciHigh: MeasuredSchema,
  pValue: MeasuredSchema,
  pValueOneSided: MeasuredSchema,
  alpha: z.number().gt(0).lt(1),
  iterations: z.int().min(1),
  validIterations: z.int().min(0),
  seed: z.int().min(0),
  n: z.int().min(0),
});

export const McNemarComparisonSchema = z.strictObject({
  method: z.literal('mcnemar'),
  b: z.int().min(0),
  c: z.int().min(0),
  statistic: MeasuredSchema,
  pValue: MeasuredSchema,
  exact: z.boolean(),
  n: z.int().min(0),
});

export const ComparisonSchema = z.discriminatedUnion('method', [
  BootstrapComparisonSchema,
  McNemarComparisonSchema,
]);
export type Comparison = z.infer<typeof ComparisonSchema>;
export type BootstrapComparison = z.infer<typeof BootstrapComparisonSchema>;
export type McNemarComparison = z.infer<typeof McNemarComparisonSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Verdict: what src/core/policy/gate.ts decides (plain JSON; in workflow status, the audit log and the model card).

export type GateDecision = 'promote' | 'reject' | 'inconclusive';

/**
 * One rule evaluated by the gate, in the shared check shape. `severity` is `failed` for the rules whose failure
 * rejects the challenger and `inconclusive` for those that only withhold a promotion.
 */
export type GateCheck = Check;

/** The gate's verdict; plain JSON. `phase` is the worst phase of `checks`, and `decision` follows from it. */
export interface GateVerdict {
  decision: GateDecision;
  phase: CheckPhase;
  reasons: string[];
  checks: GateCheck[];
}
