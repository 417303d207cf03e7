/**
 * Latency comparison of two models timed interleaved on the same rows: the ratio of a quantile of
 * B's single-row latencies to A's, with a paired percentile-bootstrap interval (rows resampled with
 * replacement, both models' timings of a row kept together, so load that hit one row hit both).
 * The gate calls a latency regression only when the interval's lower bound is above its limit:
 * noise widens the interval instead of deciding. Pure and seeded.
 */
import type { LatencyComparison } from '../contracts/evaluation';
import { StatsInputError } from './errors';
import { quantileSorted } from './metrics';
import { createSeededRandom } from './random';

/** The contract's latency comparison (src/core/contracts/evaluation.ts) is what this computes. */
export type LatencyRatioResult = LatencyComparison;

/** Resamples of the latency-ratio bootstrap: the interval's bounds settle well before 1000. */
export const LATENCY_RATIO_ITERATIONS = 1000;
/** Seed of the latency-ratio bootstrap: fixed so a re-run reproduces the interval. */
export const LATENCY_RATIO_SEED = 20_261_201;

function quantileOf(values: Float64Array, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q);
}

export function latencyRatioInterval(input: {
  /** Baseline (champion) latencies, one per timed row. */
  a: readonly number[];
  /** Candidate (challenger) latencies of the same rows, in the same order. */
  b: readonly number[];
  quantile?: number;
  alpha?: number;
  iterations?: number;
  seed?: number;
}): LatencyRatioResult {
  const q = input.quantile ?? 0.95;
  const alpha = input.alpha ?? 0.05;
  const iterations = input.iterations ?? LATENCY_RATIO_ITERATIONS;
  const n = input.a.length;
  if (input.b.length !== n) {
    throw new StatsInputError(
      'LENGTH_MISMATCH',
      `latency arrays differ in length: ${n} and ${input.b.length}`,
    );
  }
  if (!(q > 0 && q < 1) || !(alpha > 0 && alpha < 1) || !Number.isInteger(iterations) || iterations < 1) {
    throw new StatsInputError(
      'INVALID_PARAMETER',
      'quantile and alpha must be in (0, 1), iterations a positive integer',
    );
  }
  const nan = {
    quantile: q,
    estimate: Number.NaN,
    ciLow: Number.NaN,
    ciHigh: Number.NaN,
    alpha,
    iterations,
    n,
  };
  if (n === 0) return nan;
  const a = Float64Array.from(input.a);
  const b = Float64Array.from(input.b);
  for (const v of [...a, ...b]) {
    if (!Number.isFinite(v) || v < 0)
      throw new StatsInputError('INVALID_VALUE', `latency must be finite and >= 0, got ${v}`);
  }
  const base = quantileOf(a, q);
  if (base <= 0) return nan;
  const estimate = quantileOf(b, q) / base;
  const rng = createSeededRandom(input.seed ?? LATENCY_RATIO_SEED);
  const ratios = new Float64Array(iterations);
  const ra = new Float64Array(n);
  const rb = new Float64Array(n);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) {
      const k = rng.nextInt(n);
      ra[i] = a[k]!;
      rb[i] = b[k]!;
    }
    const qa = quantileOf(ra, q);
    ratios[it] = qa > 0 ? quantileOf(rb, q) / qa : Number.POSITIVE_INFINITY;
  }
  ratios.sort();
  return {
    quantile: q,
    estimate,
    ciLow: quantileSorted(ratios, alpha / 2),
    ciHigh: quantileSorted(ratios, 1 - alpha / 2),
    alpha,
    iterations,
    n,
  };
}
