/**
 * Paired significance tests for champion (A) versus challenger (B) on the same holdout (sandbox-safe).
 *
 * Paired bootstrap rules:
 * - Each iteration resamples n example indices with replacement from a seeded stream ({@link createSeededRandom});
 *   both models are scored on the same resample (paired), so shared example difficulty cancels out.
 * - `estimate = metric(B) - metric(A)` on the full holdout, sign-adjusted by the metric's direction so that a
 *   positive value always means the challenger is better (for Brier, ECE and log loss, lower is better).
 * - `ciLow`/`ciHigh`: two-sided percentile interval at level `1 - alpha` (linear interpolation between order
 *   statistics of the resampled differences).
 * - `pValueOneSided = (#{delta <= 0} + 1) / (valid + 1)`: the share of resamples showing no improvement, with the
 *   usual +1 correction so a finite bootstrap never claims p = 0. `pValue` is two-sided:
 *   `min(1, 2 * min(#{delta <= 0} + 1, #{delta >= 0} + 1) / (valid + 1))`. So `ciLow > 0` and `pValue < alpha`
 *   agree up to the discreteness of the resamples.
 * - A resample on which either metric is undefined (e.g. no positive drawn, for the AUCs) is skipped:
 *   `validIterations` counts the others; judging whether enough remain is the gate's job. If the full-holdout
 *   estimate is NaN (NaN scores, one class), no resampling is done and every statistic is NaN.
 * - Speed: scores are validated and sorted once per model; a resample is a vector of counts (how many times each
 *   example was drawn) and each metric is a single weighted O(n) pass over the presorted examples, instead of
 *   materialising the resample and sorting it again ({@link naivePairedBootstrap}, kept as the reference).
 *   Both consume the random stream identically, so for the same seed they see the same resamples.
 *
 * McNemar rules: `b` counts examples A classifies correctly and B wrongly, `c` the reverse (so c > b favours
 * the challenger). With `b + c < MCNEMAR_EXACT_THRESHOLD` the test is the exact two-sided binomial
 * `min(1, 2 * P(X <= min(b, c)))`, X ~ Bin(b + c, 1/2), reporting `statistic = min(b, c)`; otherwise the
 * chi-square(1) test with continuity correction `max(0, |b - c| - 1)^2 / (b + c)` (the max keeps b = c at
 * p = 1 exactly).
 */
import type { BootstrapComparison, McNemarComparison } from '../contracts/gate';
import { binomialCdf, chiSquareSurvival } from './distributions';
import { StatsInputError } from './errors';
import type { MetricName, PreparedScores } from './metrics';
import {
  assertSameLength,
  isMetricName,
  METRICS,
  orientedDifference,
  prepareScores,
  quantileSorted,
  validateLabels,
} from './metrics';
import type { SeededRandom } from './random';
import { createSeededRandom } from './random';

/** Bootstrap resamples by default: enough for stable 95% percentile bounds, ~0.1 s at 20k examples. */
export const DEFAULT_BOOTSTRAP_ITERATIONS = 1000;
/** Significance level by default: the conventional 5%. */
export const DEFAULT_ALPHA = 0.05;
/** Upper bound on resamples, so a mistyped policy cannot stall an activity. */
export const MAX_BOOTSTRAP_ITERATIONS = 100_000;
/** McNemar switches from the exact binomial to chi-square once b + c reaches this (the usual rule of thumb). */
export const MCNEMAR_EXACT_THRESHOLD = 25;

/** Inputs of the paired bootstrap. A is the baseline (champion), B the candidate (challenger). */
export interface PairedBootstrapInput {
  labels: ArrayLike<number>;
  scoresA: ArrayLike<number>;
  scoresB: ArrayLike<number>;
  metric: MetricName;
  iterations?: number;
  seed: number;
  alpha?: number;
}

/** Result of the paired bootstrap; plain JSON once NaN is serialised (as null). */
export interface BootstrapResult {
  method: 'bootstrap';
  metric: MetricName;
  /** Metric of A (champion) on the full holdout. */
  metricA: number;
  /** Metric of B (challenger) on the full holdout. */
  metricB: number;
  /** Oriented difference B - A on the full holdout: positive = B better. */
  estimate: number;
  ciLow: number;
  ciHigh: number;
  /** Two-sided bootstrap p-value. */
  pValue: number;
  /** One-sided share of resamples with no improvement (delta <= 0), +1 corrected. */
  pValueOneSided: number;
  alpha: number;
  iterations: number;
  validIterations: number;
  seed: number;
  /** Holdout size. */
  n: number;
}

interface CheckedInput {
  labels: Uint8Array;
  metric: MetricName;
  iterations: number;
  alpha: number;
  seed: number;
}

function checkInput(input: PairedBootstrapInput): CheckedInput {
  assertSameLength(input.labels, 'labels', input.scoresA, 'scoresA');
  assertSameLength(input.labels, 'labels', input.scoresB, 'scoresB');
  if (!isMetricName(input.metric)) {
    throw new StatsInputError(
      'INVALID_PARAMETER',
      `metric must be one of the registered metrics, got ${input.metric}`,
    );
  }
  const iterations = input.iterations ?? DEFAULT_BOOTSTRAP_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_BOOTSTRAP_ITERATIONS) {
    throw new StatsInputError(
      'INVALID_PARAMETER',
      `iterations must be an integer in [1, ${MAX_BOOTSTRAP_ITERATIONS}], got ${iterations}`,
    );
  }
  const alpha = input.alpha ?? DEFAULT_ALPHA;
  if (!Number.isFinite(alpha) || alpha <= 0 || alpha >= 1) {
    throw new StatsInputError('INVALID_PARAMETER', `alpha must be a number in (0, 1), got ${alpha}`);
  }
  const labels = validateLabels(input.labels);
  createSeededRandom(input.seed); // validates the seed before any work
  return { labels, metric: input.metric, iterations, alpha, seed: input.seed };
}

function summarise(
  c: CheckedInput,
  metricA: number,
  metricB: number,
  deltas: Float64Array,
  valid: number,
): BootstrapResult {
  const estimate = orientedDifference(c.metric, metricA, metricB);
  const base = { method: 'bootstrap' as const, metric: c.metric, metricA, metricB, estimate, alpha: c.alpha };
  const tail = { iterations: c.iterations, validIterations: valid, seed: c.seed, n: c.labels.length };
  if (valid === 0) return { ...base, ciLow: NaN, ciHigh: NaN, pValue: NaN, pValueOneSided: NaN, ...tail };
  const sorted = deltas.slice(0, valid).sort();
  let atMostZero = 0;
  let atLeastZero = 0;
  for (let i = 0; i < valid; i++) {
    const d = sorted[i] as number;
    if (d <= 0) atMostZero++;
    if (d >= 0) atLeastZero++;
  }
  return {
    ...base,
    ciLow: quantileSorted(sorted, c.alpha / 2),
    ciHigh: quantileSorted(sorted, 1 - c.alpha / 2),
    pValue: Math.min(1, (2 * Math.min(atMostZero + 1, atLeastZero + 1)) / (valid + 1)),
    pValueOneSided: (atMostZero + 1) / (valid + 1),
    ...tail,
  };
}

/** Draws one resample as counts per example (n draws with replacement); `draws` is scratch space of size n. */
function drawCounts(rng: SeededRandom, counts: Int32Array, draws: Int32Array): void {
  const n = counts.length;
  rng.fillInts(draws, n);
  counts.fill(0);
  for (let j = 0; j < n; j++) {
    const i = draws[j] as number;
    counts[i] = (counts[i] as number) + 1;
  }
}

/** Fast paired bootstrap of the oriented metric difference B - A; see the module rules. */
export function pairedBootstrap(input: PairedBootstrapInput): BootstrapResult {
  const c = checkInput(input);
  const n = c.labels.length;
  const def = METRICS[c.metric];
  const preparedA: PreparedScores = prepareScores(c.labels, input.scoresA);
  const preparedB: PreparedScores = prepareScores(c.labels, input.scoresB);
  const ones = new Int32Array(n).fill(1);
  const metricA = def.computePrepared(preparedA, ones);
  const metricB = def.computePrepared(preparedB, ones);
  const deltas = new Float64Array(c.iterations);
  let valid = 0;
  if (Number.isFinite(orientedDifference(c.metric, metricA, metricB))) {
    const rng = createSeededRandom(c.seed);
    const counts = new Int32Array(n);
    const draws = new Int32Array(n);
    for (let it = 0; it < c.iterations; it++) {
      drawCounts(rng, counts, draws);
      const d = orientedDifference(
        c.metric,
        def.computePrepared(preparedA, counts),
        def.computePrepared(preparedB, counts),
      );
      if (Number.isFinite(d)) deltas[valid++] = d;
    }
  }
  return summarise(c, metricA, metricB, deltas, valid);
}

/**
 * Reference implementation: materialises each resample and recomputes both metrics from scratch (sorting
 * again). Same random stream and same results as {@link pairedBootstrap} (up to float summation order); used
 * by the tests and the benchmark.
 */
export function naivePairedBootstrap(input: PairedBootstrapInput): BootstrapResult {
  const c = checkInput(input);
  const n = c.labels.length;
  const def = METRICS[c.metric];
  const metricA = def.compute(c.labels, input.scoresA);
  const metricB = def.compute(c.labels, input.scoresB);
  const deltas = new Float64Array(c.iterations);
  let valid = 0;
  if (Number.isFinite(orientedDifference(c.metric, metricA, metricB))) {
    const rng = createSeededRandom(c.seed);
    const y = new Uint8Array(n);
    const sa = new Float64Array(n);
    const sb = new Float64Array(n);
    // Same stream consumption as drawCounts: n draws per iteration. Drawing into counts first and then
    // expanding them keeps the resample identical; the order of examples does not affect any metric.
    const counts = new Int32Array(n);
    const draws = new Int32Array(n);
    for (let it = 0; it < c.iterations; it++) {
      drawCounts(rng, counts, draws);
      let k = 0;
      for (let i = 0; i < n; i++) {
        for (let m = counts[i] as number; m > 0; m--) {
          y[k] = c.labels[i] as number;
          sa[k] = input.scoresA[i] as number;
          sb[k] = input.scoresB[i] as number;
          k++;
        }
      }
      const d = orientedDifference(c.metric, def.compute(y, sa), def.compute(y, sb));
      if (Number.isFinite(d)) deltas[valid++] = d;
    }
  }
  return summarise(c, metricA, metricB, deltas, valid);
}

/** Inputs of McNemar's test: 0/1 predictions of A (champion) and B (challenger) for the same examples. */
export interface McNemarInput {
  labels: ArrayLike<number>;
  predsA: ArrayLike<number>;
  predsB: ArrayLike<number>;
}

/** Result of McNemar's test; plain JSON. */
export interface McNemarResult {
  method: 'mcnemar';
  /** A right, B wrong. */
  b: number;
  /** A wrong, B right. */
  c: number;
  /** min(b, c) for the exact test; the continuity-corrected chi-square statistic otherwise. */
  statistic: number;
  /** Two-sided p-value. */
  pValue: number;
  exact: boolean;
  /** Number of examples. */
  n: number;
}

function validatePreds(preds: ArrayLike<number>, field: string): void {
  for (let i = 0; i < preds.length; i++) {
    const v = preds[i];
    if (v !== 0 && v !== 1) {
      throw new StatsInputError('INVALID_PREDICTION', `${field}[${i}] must be 0 or 1, got ${String(v)}`);
    }
  }
}

/** McNemar's test on paired 0/1 predictions; see the module rules. */
export function mcnemar(input: McNemarInput): McNemarResult {
  assertSameLength(input.labels, 'labels', input.predsA, 'predsA');
  assertSameLength(input.labels, 'labels', input.predsB, 'predsB');
  const y = validateLabels(input.labels);
  validatePreds(input.predsA, 'predsA');
  validatePreds(input.predsB, 'predsB');
  let b = 0;
  let c = 0;
  for (let i = 0; i < y.length; i++) {
    const aRight = input.predsA[i] === y[i];
    const bRight = input.predsB[i] === y[i];
    if (aRight && !bRight) b++;
    else if (!aRight && bRight) c++;
  }
  return mcnemarFromCounts(b, c, y.length);
}

/** McNemar's test from the discordant counts b (A right, B wrong) and c (A wrong, B right). */
export function mcnemarFromCounts(b: number, c: number, n: number = b + c): McNemarResult {
  for (const [name, v] of [
    ['b', b],
    ['c', c],
    ['n', n],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) {
      throw new StatsInputError('INVALID_PARAMETER', `${name} must be a non-negative integer, got ${v}`);
    }
  }
  const discordant = b + c;
  if (discordant < MCNEMAR_EXACT_THRESHOLD) {
    const k = Math.min(b, c);
    const pValue = discordant === 0 ? 1 : Math.min(1, 2 * binomialCdf(k, discordant, 0.5));
    return { method: 'mcnemar', b, c, statistic: k, pValue, exact: true, n };
  }
  const excess = Math.max(0, Math.abs(b - c) - 1);
  const statistic = (excess * excess) / discordant;
  return { method: 'mcnemar', b, c, statistic, pValue: chiSquareSurvival(statistic, 1), exact: false, n };
}

// Compile-time checks that what this module produces fits the gate contracts without conversion.
type Assert<T extends true> = T;
type _BootstrapFitsContract = Assert<BootstrapResult extends BootstrapComparison ? true : false>;
type _McNemarFitsContract = Assert<McNemarResult extends McNemarComparison ? true : false>;
