/**
 * Evaluation metrics for binary classifiers (sandbox-safe: pure, deterministic, no Node built-ins).
 *
 * Inputs: `labels` are 0/1, `scores` are the model's fraud probabilities (higher = more likely positive),
 * `groups` (optional) the sensitive attribute of each example. A prediction is positive when
 * `score >= threshold`.
 *
 * Degenerate inputs, chosen deliberately:
 * - Structural errors throw {@link StatsInputError}: arrays of different lengths (`LENGTH_MISMATCH`), a label
 *   other than 0/1 (`INVALID_LABEL`), a parameter out of range (`INVALID_PARAMETER`), a negative latency
 *   (`INVALID_VALUE`). Count-valued results ({@link confusionAt}, {@link predictAt}) cannot carry NaN, so a
 *   non-finite score throws `INVALID_VALUE` there.
 * - Data conditions under which a real-valued metric is undefined return `NaN`, never a made-up number:
 *   empty input; any non-finite score; a single class where the metric needs both (ROC AUC needs both
 *   classes; average precision, recall@precision and precision@recall need at least one positive, and with
 *   only positives they are well defined, as in scikit-learn); a score outside [0, 1] for the probability
 *   metrics (Brier, ECE, log loss). The gate never promotes on a NaN.
 *
 * Definitions:
 * - ROC AUC: probability that a random positive outranks a random negative, ties counting one half
 *   (Mann-Whitney), as sklearn's `roc_auc_score`.
 * - Average precision (`prAuc`): step-wise `sum_k (R_k - R_{k-1}) * P_k` over the distinct score thresholds in
 *   decreasing order, tied scores forming one threshold, as sklearn's `average_precision_score` (no
 *   interpolation).
 * - `recallAtPrecision(t)`: the largest recall over thresholds whose precision is >= t (0 when none is).
 *   `precisionAtRecall(t)`: the largest precision over thresholds whose recall is >= t. Thresholds are the
 *   distinct scores.
 * - Brier: mean squared difference between score and label. Log loss: mean negative log-likelihood with
 *   scores clipped to [eps, 1 - eps], eps the float64 machine epsilon (sklearn's default).
 * - ECE: `sum_b (n_b / n) * |mean(label)_b - mean(score)_b|` over {@link DEFAULT_ECE_BINS} equal-width bins
 *   [i/B, (i+1)/B), the last bin closed at 1.
 * - Demographic parity difference: max minus min positive-prediction rate over the groups present.
 *   Equal opportunity difference: max minus min true-positive rate over the groups that have positives;
 *   groups without positives are ignored and reported in `ignoredGroups`. One group -> 0.
 * - Latency percentiles: linear interpolation between order statistics (numpy's default).
 *
 * Every metric is implemented once, on {@link PreparedScores} plus per-example weights, so the fast paired
 * bootstrap (weights = resample counts) and the plain functions (weights = 1) share one code path.
 */
import type { z } from 'zod';
import type { FairnessSchema, LatencySchema, ModelEvaluation } from '../contracts/gate';
import { METRIC_DIRECTIONS, METRIC_NAMES, isMetricName } from '../contracts/metrics';
import type { MetricDirection, MetricName } from '../contracts/metrics';
import { StatsInputError } from './errors';

// The metric names and directions are contract data; re-exported for the importers of this module.
export { METRIC_DIRECTIONS, METRIC_NAMES, isMetricName };
export type { MetricDirection, MetricName };

/** Number of calibration bins for ECE: the usual choice in the calibration literature; enough for 200+ rows. */
export const DEFAULT_ECE_BINS = 10;
/** Precision target for the `recall_at_precision` registry metric: analysts review alerts at >= 90% precision. */
export const DEFAULT_RECALL_AT_PRECISION_TARGET = 0.9;
/** Recall target for the `precision_at_recall` registry metric: catch at least 80% of fraud. */
export const DEFAULT_PRECISION_AT_RECALL_TARGET = 0.8;
/** Clipping for log loss: float64 machine epsilon, as scikit-learn's `eps='auto'`. */
export const LOG_LOSS_EPSILON = 2 ** -52;
/** Decision threshold when none is given: the probability midpoint. */
export const DEFAULT_DECISION_THRESHOLD = 0.5;

/** Per-example non-negative weights (1 for plain evaluation, resample counts in the bootstrap). */
export type Weights = ArrayLike<number>;

/**
 * Scores validated and sorted once. `order` lists example indices by decreasing score and `groupEnd[k]` is 1
 * when sorted position k closes a run of tied scores. Built by {@link prepareScores}.
 */
export interface PreparedScores {
  readonly n: number;
  readonly labels: Uint8Array;
  readonly scores: Float64Array;
  /** Every score is finite (otherwise every metric is NaN and `order` is empty). */
  readonly allFinite: boolean;
  /** Every score lies in [0, 1] (otherwise probability metrics are NaN). */
  readonly allProbabilities: boolean;
  readonly order: Int32Array;
  readonly groupEnd: Uint8Array;
  readonly eceBins: number;
  /** ECE bin of each example (empty unless allProbabilities). */
  readonly eceBin: Int32Array;
  /** Per-example squared error (empty unless allProbabilities). */
  readonly squaredError: Float64Array;
  /** Per-example negative log-likelihood (empty unless allProbabilities). */
  readonly logLoss: Float64Array;
}

// ---------------------------------------------------------------------------------------------------------
// Validation

/** Copies labels into a Uint8Array, throwing INVALID_LABEL for anything but 0 or 1. */
export function validateLabels(labels: ArrayLike<number>, field = 'labels'): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y !== 0 && y !== 1) {
      throw new StatsInputError('INVALID_LABEL', `${field}[${i}] must be 0 or 1, got ${String(y)}`);
    }
    out[i] = y;
  }
  return out;
}

/** Throws LENGTH_MISMATCH unless both arrays have the same length. */
export function assertSameLength(
  a: ArrayLike<unknown>,
  aName: string,
  b: ArrayLike<unknown>,
  bName: string,
): void {
  if (a.length !== b.length) {
    throw new StatsInputError(
      'LENGTH_MISMATCH',
      `${bName} has ${b.length} entries but ${aName} has ${a.length}; they must describe the same examples`,
    );
  }
}

function assertFiniteParameter(value: number, name: string, min: number, max: number): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new StatsInputError(
      'INVALID_PARAMETER',
      `${name} must be a number in [${min}, ${max}], got ${value}`,
    );
  }
}

function assertBins(bins: number): void {
  if (!Number.isInteger(bins) || bins < 1) {
    throw new StatsInputError('INVALID_PARAMETER', `bins must be a positive integer, got ${bins}`);
  }
}

function unitWeights(n: number): Float64Array {
  return new Float64Array(n).fill(1);
}

// ---------------------------------------------------------------------------------------------------------
// Preparation

/** Validates labels/scores and sorts once; see {@link PreparedScores}. */
export function prepareScores(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  eceBins: number = DEFAULT_ECE_BINS,
): PreparedScores {
  assertSameLength(labels, 'labels', scores, 'scores');
  assertBins(eceBins);
  const y = validateLabels(labels);
  const n = y.length;
  const s = Float64Array.from(scores);
  let allFinite = true;
  let allProbabilities = true;
  for (let i = 0; i < n; i++) {
    const v = s[i] as number;
    if (!Number.isFinite(v)) {
      allFinite = false;
      allProbabilities = false;
      break;
    }
    if (v < 0 || v > 1) allProbabilities = false;
  }
  let order = new Int32Array(0);
  let groupEnd = new Uint8Array(0);
  if (allFinite) {
    order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Decreasing score; index as tie-breaker keeps the order deterministic (it does not affect any metric).
    order.sort((a, b) => (s[b] as number) - (s[a] as number) || a - b);
    groupEnd = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      groupEnd[k] = k === n - 1 || s[order[k] as number] !== s[order[k + 1] as number] ? 1 : 0;
    }
  }
  let eceBin = new Int32Array(0);
  let squaredError = new Float64Array(0);
  let logLoss = new Float64Array(0);
  if (allProbabilities) {
    eceBin = new Int32Array(n);
    squaredError = new Float64Array(n);
    logLoss = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = s[i] as number;
      const label = y[i] as number;
      eceBin[i] = Math.min(Math.floor(v * eceBins), eceBins - 1);
      squaredError[i] = (v - label) * (v - label);
      const p = Math.min(Math.max(v, LOG_LOSS_EPSILON), 1 - LOG_LOSS_EPSILON);
      logLoss[i] = label === 1 ? -Math.log(p) : -Math.log(1 - p);
    }
  }
  return {
    n,
    labels: y,
    scores: s,
    allFinite,
    allProbabilities,
    order,
    groupEnd,
    eceBins,
    eceBin,
    squaredError,
    logLoss,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Weighted kernels (shared by the plain functions and the bootstrap)

/** Weighted ROC AUC on prepared scores. */
export function rocAucPrepared(p: PreparedScores, w: Weights): number {
  const { n, order, labels, groupEnd } = p;
  if (!p.allFinite || n === 0) return NaN;
  let pos = 0;
  let neg = 0;
  let groupPos = 0;
  let groupNeg = 0;
  // Twice the weighted number of (positive, negative) pairs ranked wrongly, ties counting one (so integers
  // stay integers and the sum is exact for integer weights).
  let wrongTwice = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const wi = w[i] as number;
    if (labels[i] === 1) groupPos += wi;
    else groupNeg += wi;
    if (groupEnd[k] === 1) {
      wrongTwice += groupPos * (2 * neg + groupNeg);
      pos += groupPos;
      neg += groupNeg;
      groupPos = 0;
      groupNeg = 0;
    }
  }
  if (pos === 0 || neg === 0) return NaN;
  const pairsTwice = 2 * pos * neg;
  return (pairsTwice - wrongTwice) / pairsTwice;
}

/** Weighted average precision (sklearn semantics) on prepared scores. */
export function averagePrecisionPrepared(p: PreparedScores, w: Weights): number {
  const { n, order, labels, groupEnd } = p;
  if (!p.allFinite || n === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let prevTp = 0;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const wi = w[i] as number;
    if (labels[i] === 1) tp += wi;
    else fp += wi;
    if (groupEnd[k] === 1 && tp > prevTp) {
      sum += (tp - prevTp) * (tp / (tp + fp));
      prevTp = tp;
    }
  }
  return tp === 0 ? NaN : sum / tp;
}

/** Weighted recall at the best threshold whose precision is >= minPrecision (0 if none). */
export function recallAtPrecisionPrepared(p: PreparedScores, w: Weights, minPrecision: number): number {
  const { n, order, labels, groupEnd } = p;
  if (!p.allFinite || n === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let bestTp = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const wi = w[i] as number;
    if (labels[i] === 1) tp += wi;
    else fp += wi;
    if (groupEnd[k] === 1 && tp + fp > 0 && tp / (tp + fp) >= minPrecision && tp > bestTp) bestTp = tp;
  }
  return tp === 0 ? NaN : bestTp / tp;
}

/** Weighted precision at the best threshold whose recall is >= minRecall. */
export function precisionAtRecallPrepared(p: PreparedScores, w: Weights, minRecall: number): number {
  const { n, order, labels, groupEnd } = p;
  if (!p.allFinite || n === 0) return NaN;
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) positives += w[i] as number;
  if (positives === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let best = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const wi = w[i] as number;
    if (labels[i] === 1) tp += wi;
    else fp += wi;
    if (groupEnd[k] === 1 && tp + fp > 0 && tp / positives >= minRecall) {
      const precision = tp / (tp + fp);
      if (precision > best) best = precision;
    }
  }
  return best;
}

function weightedMean(values: Float64Array, p: PreparedScores, w: Weights): number {
  const n = p.n;
  if (!p.allProbabilities || n === 0) return NaN;
  let sum = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    sum += wi * (values[i] as number);
    total += wi;
  }
  return total === 0 ? NaN : sum / total;
}

/** Weighted Brier score on prepared scores. */
export function brierPrepared(p: PreparedScores, w: Weights): number {
  return weightedMean(p.squaredError, p, w);
}

/** Weighted log loss on prepared scores. */
export function logLossPrepared(p: PreparedScores, w: Weights): number {
  return weightedMean(p.logLoss, p, w);
}

/** Weighted expected calibration error on prepared scores (bins fixed at preparation). */
export function ecePrepared(p: PreparedScores, w: Weights): number {
  const { n, eceBin, labels, scores } = p;
  if (!p.allProbabilities || n === 0) return NaN;
  const gap = new Float64Array(p.eceBins);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const b = eceBin[i] as number;
    gap[b] = (gap[b] as number) + wi * ((labels[i] as number) - (scores[i] as number));
    total += wi;
  }
  if (total === 0) return NaN;
  let sum = 0;
  for (let b = 0; b < p.eceBins; b++) sum += Math.abs(gap[b] as number);
  return sum / total;
}

// ---------------------------------------------------------------------------------------------------------
// Plain metric functions

/** ROC AUC; NaN if empty, single-class or any score non-finite. */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return rocAucPrepared(prepareScores(labels, scores), unitWeights(labels.length));
}

/** Average precision as sklearn's average_precision_score; NaN if no positive or any score non-finite. */
export function prAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return averagePrecisionPrepared(prepareScores(labels, scores), unitWeights(labels.length));
}

/** Largest recall with precision >= minPrecision (in [0, 1]); 0 if unreachable, NaN if no positive. */
export function recallAtPrecision(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  minPrecision: number,
): number {
  assertFiniteParameter(minPrecision, 'minPrecision', 0, 1);
  return recallAtPrecisionPrepared(prepareScores(labels, scores), unitWeights(labels.length), minPrecision);
}

/** Largest precision with recall >= minRecall (in (0, 1]); NaN if no positive. */
export function precisionAtRecall(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  minRecall: number,
): number {
  if (!Number.isFinite(minRecall) || minRecall <= 0 || minRecall > 1) {
    throw new StatsInputError('INVALID_PARAMETER', `minRecall must be a number in (0, 1], got ${minRecall}`);
  }
  return precisionAtRecallPrepared(prepareScores(labels, scores), unitWeights(labels.length), minRecall);
}

/** Brier score; NaN if empty or any score outside [0, 1] / non-finite. */
export function brierScore(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return brierPrepared(prepareScores(labels, scores), unitWeights(labels.length));
}

/** Log loss with eps clipping; NaN if empty or any score outside [0, 1] / non-finite. */
export function logLoss(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return logLossPrepared(prepareScores(labels, scores), unitWeights(labels.length));
}

/** Expected calibration error over `bins` equal-width bins; NaN if empty or any score outside [0, 1]. */
export function expectedCalibrationError(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  bins: number = DEFAULT_ECE_BINS,
): number {
  return ecePrepared(prepareScores(labels, scores, bins), unitWeights(labels.length));
}

// ---------------------------------------------------------------------------------------------------------
// Thresholded predictions

/** Confusion counts at `score >= threshold`. */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

function assertThreshold(threshold: number): void {
  if (!Number.isFinite(threshold)) {
    throw new StatsInputError('INVALID_PARAMETER', `threshold must be a finite number, got ${threshold}`);
  }
}

/** 0/1 predictions `score >= threshold`; throws INVALID_VALUE on a non-finite score (a count cannot be NaN). */
export function predictAt(scores: ArrayLike<number>, threshold: number): Uint8Array {
  assertThreshold(threshold);
  const out = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i] as number;
    if (!Number.isFinite(v)) {
      throw new StatsInputError(
        'INVALID_VALUE',
        `scores[${i}] is not a finite number (${v}); cannot predict`,
      );
    }
    out[i] = v >= threshold ? 1 : 0;
  }
  return out;
}

/** Confusion counts at `score >= threshold`; throws INVALID_VALUE on a non-finite score. */
export function confusionAt(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold: number,
): Confusion {
  assertSameLength(labels, 'labels', scores, 'scores');
  const y = validateLabels(labels);
  const pred = predictAt(scores, threshold);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < y.length; i++) {
    if (pred[i] === 1) {
      if (y[i] === 1) c.tp++;
      else c.fp++;
    } else if (y[i] === 1) c.fn++;
    else c.tn++;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Fairness

/** A max-minus-min gap across groups with the per-group values it came from. */
export interface GroupGap {
  /** max - min over the groups considered; 0 for one group, NaN when none or when a value is NaN. */
  value: number;
  /** Per-group value (positive-prediction rate or TPR), keys sorted. */
  perGroup: Record<string, number>;
  /** Groups left out of `value` (for equal opportunity: groups without positives), sorted. */
  ignoredGroups: string[];
}

interface GroupTally {
  n: number;
  positives: number;
  predictedPositive: number;
  truePositive: number;
  nonFinite: boolean;
}

function tallyGroups(
  labels: Uint8Array | undefined,
  scores: ArrayLike<number>,
  groups: ArrayLike<string>,
  threshold: number,
): Map<string, GroupTally> {
  assertSameLength(scores, 'scores', groups, 'groups');
  assertThreshold(threshold);
  const tallies = new Map<string, GroupTally>();
  for (let i = 0; i < scores.length; i++) {
    const g = groups[i];
    if (typeof g !== 'string') {
      throw new StatsInputError('INVALID_VALUE', `groups[${i}] must be a string, got ${String(g)}`);
    }
    let t = tallies.get(g);
    if (t === undefined) {
      t = { n: 0, positives: 0, predictedPositive: 0, truePositive: 0, nonFinite: false };
      tallies.set(g, t);
    }
    const v = scores[i] as number;
    const label = labels === undefined ? 0 : (labels[i] as number);
    t.n++;
    t.positives += label;
    if (!Number.isFinite(v)) t.nonFinite = true;
    else if (v >= threshold) {
      t.predictedPositive++;
      t.truePositive += label;
    }
  }
  return tallies;
}

function gap(values: Map<string, number>, ignored: string[]): GroupGap {
  const keys = [...values.keys()].sort();
  const perGroup: Record<string, number> = {};
  let max = -Infinity;
  let min = Infinity;
  let anyNaN = false;
  for (const k of keys) {
    const v = values.get(k) as number;
    Object.defineProperty(perGroup, k, { value: v, enumerable: true, writable: true, configurable: true });
    if (Number.isNaN(v)) anyNaN = true;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  const value = keys.length === 0 || anyNaN ? NaN : max - min;
  return { value, perGroup, ignoredGroups: [...ignored].sort() };
}

/**
 * Demographic parity difference: max - min over groups of the share predicted positive (`score >= threshold`).
 * Accepts scores or 0/1 predictions (use a threshold in (0, 1] for predictions). NaN if empty or a group has a
 * non-finite score.
 */
export function demographicParityDifference(
  scoresOrPreds: ArrayLike<number>,
  groups: ArrayLike<string>,
  threshold: number = DEFAULT_DECISION_THRESHOLD,
): GroupGap {
  const tallies = tallyGroups(undefined, scoresOrPreds, groups, threshold);
  const rates = new Map<string, number>();
  for (const [g, t] of tallies) rates.set(g, t.nonFinite ? NaN : t.predictedPositive / t.n);
  return gap(rates, []);
}

/**
 * Equal opportunity difference: max - min over groups of the true-positive rate at `score >= threshold`.
 * Groups with no positives have no TPR: they are left out and listed in `ignoredGroups`. NaN if no group has
 * positives or a considered group has a non-finite score.
 */
export function equalOpportunityDifference(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  groups: ArrayLike<string>,
  threshold: number = DEFAULT_DECISION_THRESHOLD,
): GroupGap {
  assertSameLength(labels, 'labels', scores, 'scores');
  const tallies = tallyGroups(validateLabels(labels), scores, groups, threshold);
  const tprs = new Map<string, number>();
  const ignored: string[] = [];
  for (const [g, t] of tallies) {
    if (t.positives === 0) ignored.push(g);
    else tprs.set(g, t.nonFinite ? NaN : t.truePositive / t.positives);
  }
  return gap(tprs, ignored);
}

/** Per-group detail for the fairness section of a model evaluation. */
export interface GroupStats {
  n: number;
  positives: number;
  /** Share predicted positive; NaN if the group has a non-finite score. */
  positiveRate: number;
  /** True-positive rate; NaN if the group has no positives or a non-finite score. */
  tpr: number;
}

/** Demographic parity and equal opportunity differences plus the per-group numbers behind them. */
export interface FairnessReport {
  dpd: number;
  eod: number;
  perGroup: Record<string, GroupStats>;
  /** Groups without positives, left out of `eod`. */
  ignoredGroups: string[];
}

/** Computes both fairness gaps and per-group statistics in one pass. */
export function fairnessReport(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  groups: ArrayLike<string>,
  threshold: number = DEFAULT_DECISION_THRESHOLD,
): FairnessReport {
  const dp = demographicParityDifference(scores, groups, threshold);
  const eo = equalOpportunityDifference(labels, scores, groups, threshold);
  const tallies = tallyGroups(validateLabels(labels), scores, groups, threshold);
  const perGroup: Record<string, GroupStats> = {};
  for (const g of [...tallies.keys()].sort()) {
    const t = tallies.get(g) as GroupTally;
    const stats: GroupStats = {
      n: t.n,
      positives: t.positives,
      positiveRate: t.nonFinite ? NaN : t.predictedPositive / t.n,
      tpr: t.nonFinite || t.positives === 0 ? NaN : t.truePositive / t.positives,
    };
    Object.defineProperty(perGroup, g, {
      value: stats,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { dpd: dp.value, eod: eo.value, perGroup, ignoredGroups: eo.ignoredGroups };
}

// ---------------------------------------------------------------------------------------------------------
// Latency

/** Latency distribution summary in milliseconds. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

/** Linear-interpolation quantile of an ascending-sorted array (numpy's default); NaN if empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  assertFiniteParameter(q, 'q', 0, 1);
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (h - lo) * (b - a);
}

/** p50/p95/p99/mean of latencies; all NaN if empty or any value non-finite; throws on a negative value. */
export function latencySummary(ms: ArrayLike<number>): LatencySummary {
  const values = Float64Array.from(ms);
  let sum = 0;
  let finite = values.length > 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < 0) throw new StatsInputError('INVALID_VALUE', `latency[${i}] is negative (${v} ms)`);
    if (!Number.isFinite(v)) finite = false;
    sum += v;
  }
  if (!finite) return { p50: NaN, p95: NaN, p99: NaN, mean: NaN };
  values.sort();
  return {
    p50: quantileSorted(values, 0.5),
    p95: quantileSorted(values, 0.95),
    p99: quantileSorted(values, 0.99),
    mean: sum / values.length,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Registry

/** A metric the gate can use: how to compute it and which way is better. */
export interface MetricDefinition {
  readonly name: MetricName;
  readonly direction: MetricDirection;
  readonly description: string;
  /** Plain computation from labels and scores. */
  compute(labels: ArrayLike<number>, scores: ArrayLike<number>): number;
  /** Weighted computation on prepared scores (the bootstrap's fast path). */
  computePrepared(prepared: PreparedScores, weights: Weights): number;
}

/** Every metric in {@link METRIC_NAMES}, with its direction from {@link METRIC_DIRECTIONS}. */
export const METRICS: { readonly [K in MetricName]: MetricDefinition & { readonly name: K } } = {
  pr_auc: {
    name: 'pr_auc',
    direction: METRIC_DIRECTIONS.pr_auc,
    description: 'average precision (area under the precision-recall curve, step-wise)',
    compute: prAuc,
    computePrepared: averagePrecisionPrepared,
  },
  roc_auc: {
    name: 'roc_auc',
    direction: METRIC_DIRECTIONS.roc_auc,
    description: 'area under the ROC curve',
    compute: rocAuc,
    computePrepared: rocAucPrepared,
  },
  recall_at_precision: {
    name: 'recall_at_precision',
    direction: METRIC_DIRECTIONS.recall_at_precision,
    description: `recall at precision >= ${DEFAULT_RECALL_AT_PRECISION_TARGET}`,
    compute: (labels, scores) => recallAtPrecision(labels, scores, DEFAULT_RECALL_AT_PRECISION_TARGET),
    computePrepared: (p, w) => recallAtPrecisionPrepared(p, w, DEFAULT_RECALL_AT_PRECISION_TARGET),
  },
  precision_at_recall: {
    name: 'precision_at_recall',
    direction: METRIC_DIRECTIONS.precision_at_recall,
    description: `precision at recall >= ${DEFAULT_PRECISION_AT_RECALL_TARGET}`,
    compute: (labels, scores) => precisionAtRecall(labels, scores, DEFAULT_PRECISION_AT_RECALL_TARGET),
    computePrepared: (p, w) => precisionAtRecallPrepared(p, w, DEFAULT_PRECISION_AT_RECALL_TARGET),
  },
  brier: {
    name: 'brier',
    direction: METRIC_DIRECTIONS.brier,
    description: 'Brier score (mean squared error of the probability)',
    compute: brierScore,
    computePrepared: brierPrepared,
  },
  ece: {
    name: 'ece',
    direction: METRIC_DIRECTIONS.ece,
    description: `expected calibration error over ${DEFAULT_ECE_BINS} equal-width bins`,
    compute: (labels, scores) => expectedCalibrationError(labels, scores, DEFAULT_ECE_BINS),
    computePrepared: ecePrepared,
  },
  log_loss: {
    name: 'log_loss',
    direction: METRIC_DIRECTIONS.log_loss,
    description: 'log loss (mean negative log-likelihood)',
    compute: logLoss,
    computePrepared: logLossPrepared,
  },
};

/** `candidate - baseline`, sign-adjusted so that a positive value always means the candidate is better. */
export function orientedDifference(metric: MetricName, baseline: number, candidate: number): number {
  return METRICS[metric].direction === 'higher' ? candidate - baseline : baseline - candidate;
}

// ---------------------------------------------------------------------------------------------------------
// Whole-model evaluation

/** Inputs of {@link evaluateModel}: one model's scores on the holdout. */
export interface EvaluateModelInput {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
  /** Sensitive attribute per example; without it the evaluation has no fairness section. */
  groups?: ArrayLike<string>;
  /** Per-request scoring latencies in milliseconds. */
  latenciesMs: ArrayLike<number>;
  /** Operating threshold for the fairness metrics. */
  threshold?: number;
  /** Metrics to compute (default: all of {@link METRIC_NAMES}). */
  metrics?: readonly MetricName[];
}

/**
 * Builds the {@link ModelEvaluation} the gate consumes. Never throws for data conditions: undefined values are
 * NaN (JSON-serialised as null, which the contract accepts). Throws StatsInputError on structural errors.
 */
export function evaluateModel(input: EvaluateModelInput): ModelEvaluation {
  const threshold = input.threshold ?? DEFAULT_DECISION_THRESHOLD;
  assertThreshold(threshold);
  const prepared = prepareScores(input.labels, input.scores);
  const ones = unitWeights(prepared.n);
  const metrics: Partial<Record<MetricName, number>> = {};
  for (const name of input.metrics ?? METRIC_NAMES)
    metrics[name] = METRICS[name].computePrepared(prepared, ones);
  let positives = 0;
  for (let i = 0; i < prepared.n; i++) positives += prepared.labels[i] as number;
  const evaluation: ModelEvaluation = {
    n: prepared.n,
    positives,
    threshold,
    metrics,
    calibration: { brier: brierPrepared(prepared, ones), ece: ecePrepared(prepared, ones) },
    latency: latencySummary(input.latenciesMs),
  };
  if (input.groups !== undefined) {
    evaluation.fairness = fairnessReport(input.labels, input.scores, input.groups, threshold);
  }
  return evaluation;
}

// Compile-time checks that what this module produces fits the gate contracts without conversion.
type Assert<T extends true> = T;
type _FairnessFitsContract = Assert<FairnessReport extends z.infer<typeof FairnessSchema> ? true : false>;
type _LatencyFitsContract = Assert<LatencySummary extends z.infer<typeof LatencySchema> ? true : false>;
