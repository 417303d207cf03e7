/**
 * The drift alarm and the retraining decision (sandbox-safe, pure): measurements in, verdicts out.
 *
 * Rules:
 * - A feature drifts when its test's p-value, adjusted across all features of the window
 *   (Bonferroni by default, so the dataset alarm's false-alarm rate is at most `alpha`), is below
 *   `alpha`; in windows larger than `testMaxRows` its distance must also reach the threshold (PSI for
 *   numeric, Jensen-Shannon for categorical), because there a test flags differences too small to
 *   matter. The dataset alarm fires when at least `minDriftedFeatures` features drift.
 * - Fewer than `minWindowRows` rows make the window inconclusive, never an alarm.
 * - Retraining starts on a dataset alarm (trigger `drift`) or a realized or trusted-estimated KPI
 *   below its floor (trigger `kpi-drop`), never within `cooldownMs` of the last start.
 */
import { z } from 'zod';
import type { FeatureDrift } from '../stats/drift-profile';
import { adjustPValues, MULTIPLE_TESTING_METHODS } from '../stats/drift-tests';

/** Significance of the dataset-level alarm: its false-alarm rate on drift-free windows. */
export const DEFAULT_DRIFT_ALPHA = 0.05;
/** Above this many rows a test alone is not enough: its power finds negligible shifts. */
export const DEFAULT_TEST_MAX_ROWS = 10_000;
/** PSI from which a shift matters (the usual "moderate shift" convention). */
export const DEFAULT_PSI_THRESHOLD = 0.1;
/** Jensen-Shannon distance (base 2) from which a categorical shift matters (Evidently's default). */
export const DEFAULT_JS_THRESHOLD = 0.1;
/** Wasserstein-1 over the reference std from which a shift matters (a tenth of a standard deviation). */
export const DEFAULT_WASSERSTEIN_THRESHOLD = 0.1;
/** Fewer rows than this and a window says nothing (chi-square bins would hold a handful each). */
export const DEFAULT_MIN_WINDOW_ROWS = 200;
/** Features that must drift for the dataset alarm: one (family-wise control is by the correction). */
export const DEFAULT_MIN_DRIFTED_FEATURES = 1;
/** No second retraining sooner than this after the last start (one drift, one retraining). */
export const DEFAULT_COOLDOWN_MS = 24 * 3_600_000;

export const DriftPolicySchema = z
  .object({
    alpha: z.number().gt(0).lt(1).default(DEFAULT_DRIFT_ALPHA),
    correction: z.enum(MULTIPLE_TESTING_METHODS).default('bonferroni'),
    testMaxRows: z.number().int().min(1).default(DEFAULT_TEST_MAX_ROWS),
    psiThreshold: z.number().min(0).default(DEFAULT_PSI_THRESHOLD),
    jsThreshold: z.number().min(0).max(1).default(DEFAULT_JS_THRESHOLD),
    wassersteinThreshold: z.number().min(0).default(DEFAULT_WASSERSTEIN_THRESHOLD),
    minWindowRows: z.number().int().min(1).default(DEFAULT_MIN_WINDOW_ROWS),
    minDriftedFeatures: z.number().int().min(1).default(DEFAULT_MIN_DRIFTED_FEATURES),
    /** Whether prediction drift counts towards the alarm (it is always reported). */
    predictionCounts: z.boolean().default(true),
    retrainOnDrift: z.boolean().default(true),
    kpi: z
      .object({ metric: z.enum(['precision', 'recall', 'accuracy']), min: z.number().min(0).max(1) })
      .optional(),
    cooldownMs: z.number().int().min(0).default(DEFAULT_COOLDOWN_MS),
  })
  .strict();
export type DriftPolicy = z.output<typeof DriftPolicySchema>;
export type DriftPolicyInput = z.input<typeof DriftPolicySchema>;

export interface FeatureVerdict {
  feature: string;
  kind: FeatureDrift['kind'];
  pValue: number;
  adjustedP: number;
  distanceName: FeatureDrift['distanceName'];
  distance: number;
  drifted: boolean;
}

export interface DriftVerdict {
  status: 'drift' | 'no-drift' | 'insufficient-data';
  rows: number;
  drifted: string[];
  features: FeatureVerdict[];
  reasons: string[];
}

export function judgeDrift(
  results: readonly FeatureDrift[],
  rows: number,
  policyInput: DriftPolicyInput = {},
): DriftVerdict {
  const policy = DriftPolicySchema.parse(policyInput);
  const counted = results.filter((r) => policy.predictionCounts || r.kind !== 'prediction');
  const adjusted = adjustPValues(
    counted.map((r) => r.pValue),
    policy.correction,
  );
  const large = rows > policy.testMaxRows;
  const features: FeatureVerdict[] = results.map((r) => {
    const i = counted.indexOf(r);
    const adj = i >= 0 ? adjusted[i]! : Number.NaN;
    const threshold =
      r.distanceName === 'psi'
        ? policy.psiThreshold
        : r.distanceName === 'wasserstein'
          ? policy.wassersteinThreshold
          : policy.jsThreshold;
    const drifted = i >= 0 && adj < policy.alpha && (!large || r.distance >= threshold);
    return {
      feature: r.feature,
      kind: r.kind,
      pValue: r.pValue,
      adjustedP: adj,
      distanceName: r.distanceName,
      distance: r.distance,
      drifted,
    };
  });
  const drifted = features.filter((f) => f.drifted).map((f) => f.feature);
  if (rows < policy.minWindowRows)
    return {
      status: 'insufficient-data',
      rows,
      drifted: [],
      features,
      reasons: [`window has ${rows} rows, fewer than ${policy.minWindowRows}`],
    };
  const alarm = drifted.length >= policy.minDriftedFeatures;
  const reasons = alarm
    ? [
        `${drifted.length} of ${counted.length} features drifted (${policy.correction}-adjusted p < ${policy.alpha}${large ? ' and distance over threshold' : ''}): ${drifted.join(', ')}`,
      ]
    : [`no feature drifted at ${policy.correction}-adjusted alpha ${policy.alpha}`];
  return { status: alarm ? 'drift' : 'no-drift', rows, drifted, features, reasons };
}

export interface KpiObservation {
  metric: 'precision' | 'recall' | 'accuracy';
  /** Realized on delayed labels, when enough have arrived. */
  realized?: { value: number; lower: number; upper: number; n: number };
  /** CBPE estimate, with whether it can be trusted. */
  estimated?: { value: number; trusted: boolean };
}

export interface RetrainDecision {
  start: boolean;
  trigger?:
    | { kind: 'drift'; metric?: string; score?: number }
    | { kind: 'kpi-drop'; metric: string; value: number; threshold: number };
  reason: string;
}

export function decideRetraining(
  drift: DriftVerdict,
  kpi: KpiObservation | undefined,
  lastStartMs: number | undefined,
  nowMs: number,
  policyInput: DriftPolicyInput = {},
): RetrainDecision {
  const policy = DriftPolicySchema.parse(policyInput);
  let trigger: RetrainDecision['trigger'];
  let reason = 'no drift and no KPI below its floor';
  if (policy.kpi && kpi && kpi.metric === policy.kpi.metric) {
    // Realized first: a drop is judged on the interval's upper bound (certainly below the floor).
    if (kpi.realized && kpi.realized.upper < policy.kpi.min)
      trigger = {
        kind: 'kpi-drop',
        metric: kpi.metric,
        value: kpi.realized.value,
        threshold: policy.kpi.min,
      };
    else if (!kpi.realized && kpi.estimated?.trusted && kpi.estimated.value < policy.kpi.min)
      trigger = {
        kind: 'kpi-drop',
        metric: `estimated_${kpi.metric}`,
        value: kpi.estimated.value,
        threshold: policy.kpi.min,
      };
  }
  if (!trigger && policy.retrainOnDrift && drift.status === 'drift') {
    const worst = drift.features.filter((f) => f.drifted).sort((a, b) => a.adjustedP - b.adjustedP)[0];
    trigger = {
      kind: 'drift',
      ...(worst && { metric: `${worst.feature}:${worst.distanceName}`, score: worst.distance }),
    };
  }
  if (!trigger) return { start: false, reason };
  reason =
    trigger.kind === 'drift'
      ? drift.reasons.join('; ')
      : `${trigger.metric} ${trigger.value.toFixed(4)} below ${trigger.threshold}`;
  if (lastStartMs !== undefined && nowMs - lastStartMs < policy.cooldownMs)
    return {
      start: false,
      trigger,
      reason: `${reason}; within the cool-down (${Math.round((nowMs - lastStartMs) / 60_000)} of ${Math.round(policy.cooldownMs / 60_000)} minutes)`,
    };
  return { start: true, trigger, reason };
}
