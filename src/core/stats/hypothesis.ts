/**
 * Small hypothesis tests for counts, used by the poisoning screen against history
 * (`src/core/policy/poisoning-history.ts`): two-sided normal p-values, exact upper tails of the binomial and
 * Poisson distributions, a two-proportion z-test, the Woolf test of an interaction between two 2x2 tables,
 * and Holm's step-down adjustment for a family of tests.
 *
 * Rules:
 * - Sandbox-safe and pure. Structural misuse (negative counts, p outside [0, 1]) throws StatsInputError; a
 *   statistic that is undefined for the data (an empty sample) is NaN.
 */
import { binomialCdf, logGamma, regularizedGammaP, regularizedGammaQ } from './distributions';
import { StatsInputError } from './errors';

/** Continuity added to every cell of a 2x2 table in the log-odds-ratio test (Haldane-Anscombe). */
export const HALDANE_CORRECTION = 0.5;
/** Terms of a tail sum below this share of the running sum end the sum (the tail decays geometrically). */
const TAIL_SUM_TOLERANCE = 1e-17;

function checkCount(name: string, k: number): void {
  if (!Number.isInteger(k) || k < 0) {
    throw new StatsInputError('INVALID_VALUE', `${name} must be a non-negative integer, got ${k}`);
  }
}

/** P(|Z| >= |z|) for a standard normal Z; NaN stays NaN. */
export function normalTwoSidedP(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  if (!Number.isFinite(z)) return 0;
  return regularizedGammaQ(0.5, (z * z) / 2);
}

/** P(Z >= z) for a standard normal Z. */
export function normalUpperP(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  const two = normalTwoSidedP(z) / 2;
  return z >= 0 ? two : 1 - two;
}

/** P(X >= k) for X ~ Binomial(n, p), summed from the side that keeps precision in the far tail. */
export function binomialUpperTail(k: number, n: number, p: number): number {
  checkCount('n', n);
  if (!Number.isFinite(p) || p < 0 || p > 1) {
    throw new StatsInputError('INVALID_PARAMETER', `p must be a number in [0, 1], got ${p}`);
  }
  if (Number.isNaN(k)) return Number.NaN;
  const kk = Math.ceil(k);
  if (kk <= 0) return 1;
  if (kk > n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  if (kk <= n * p) return Math.max(0, 1 - binomialCdf(kk - 1, n, p));
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logNFact = logGamma(n + 1);
  let sum = 0;
  for (let i = kk; i <= n; i += 1) {
    const term = Math.exp(logNFact - logGamma(i + 1) - logGamma(n - i + 1) + i * logP + (n - i) * logQ);
    sum += term;
    if (term <= sum * TAIL_SUM_TOLERANCE) break;
  }
  return Math.min(1, sum);
}

/** P(X >= k) for X ~ Poisson(lambda): the regularized lower incomplete gamma P(k, lambda). */
export function poissonUpperTail(k: number, lambda: number): number {
  if (!Number.isFinite(lambda) || lambda < 0) {
    throw new StatsInputError('INVALID_PARAMETER', `lambda must be a finite number >= 0, got ${lambda}`);
  }
  if (Number.isNaN(k)) return Number.NaN;
  const kk = Math.ceil(k);
  if (kk <= 0) return 1;
  if (lambda === 0) return 0;
  return regularizedGammaP(kk, lambda);
}

export interface ProportionTest {
  /** Rate of sample b minus rate of sample a. */
  difference: number;
  /** z statistic with the pooled variance (NaN when a sample is empty or the pooled rate is 0 or 1). */
  z: number;
  /** Two-sided p-value (1 when both rates are equal, including the degenerate pooled rate 0 or 1). */
  pValue: number;
}

/** Two-sided two-proportion z-test of `b.events / b.n` against `a.events / a.n` (pooled variance). */
export function twoProportionTest(
  a: { events: number; n: number },
  b: { events: number; n: number },
): ProportionTest {
  for (const [name, s] of [
    ['a', a],
    ['b', b],
  ] as const) {
    checkCount(`${name}.n`, s.n);
    checkCount(`${name}.events`, s.events);
    if (s.events > s.n) {
      throw new StatsInputError('INVALID_VALUE', `${name}: events ${s.events} exceed n ${s.n}`);
    }
  }
  if (a.n === 0 || b.n === 0) return { difference: Number.NaN, z: Number.NaN, pValue: Number.NaN };
  const pa = a.events / a.n;
  const pb = b.events / b.n;
  const pooled = (a.events + b.events) / (a.n + b.n);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n));
  if (se === 0) return { difference: pb - pa, z: 0, pValue: 1 };
  const z = (pb - pa) / se;
  return { difference: pb - pa, z, pValue: normalTwoSidedP(z) };
}

/** Positive and negative counts of one sample. */
export interface Counts2 {
  pos: number;
  neg: number;
}

export interface InteractionTest {
  /** ln OR(segment: current vs reference) - ln OR(rest: current vs reference), cells corrected. */
  logRatio: number;
  /** Its standard error (Woolf: square root of the sum of the eight cells' reciprocals). */
  se: number;
  z: number;
  pValue: number;
  /** Two-sided interval of `logRatio` at the requested confidence. */
  low: number;
  high: number;
}

/**
 * Whether the odds of a positive label moved differently in a segment than in the rest of the data between a
 * reference and a current sample: the difference of the two log odds ratios with Woolf's variance and the
 * Haldane-Anscombe correction ({@link HALDANE_CORRECTION} added to every cell), so a shift that moves every
 * segment alike (genuine drift of the base rate) is not a segment's finding. `zCritical` sets the interval.
 */
export function segmentInteractionTest(
  segment: { reference: Counts2; current: Counts2 },
  rest: { reference: Counts2; current: Counts2 },
  zCritical: number,
): InteractionTest {
  const cells = [segment.reference, segment.current, rest.reference, rest.current];
  for (const c of cells) {
    checkCount('pos', c.pos);
    checkCount('neg', c.neg);
  }
  const h = HALDANE_CORRECTION;
  const lor = (ref: Counts2, cur: Counts2): number =>
    Math.log((cur.pos + h) / (cur.neg + h)) - Math.log((ref.pos + h) / (ref.neg + h));
  const logRatio = lor(segment.reference, segment.current) - lor(rest.reference, rest.current);
  const se = Math.sqrt(cells.reduce((s, c) => s + 1 / (c.pos + h) + 1 / (c.neg + h), 0));
  const z = logRatio / se;
  return {
    logRatio,
    se,
    z,
    pValue: normalTwoSidedP(z),
    low: logRatio - zCritical * se,
    high: logRatio + zCritical * se,
  };
}

/**
 * Holm's step-down adjusted p-values (controls the family-wise error rate under any dependence; uniformly
 * more powerful than Bonferroni). NaN entries stay NaN and are not counted in the family.
 */
export function holm(p: readonly number[]): number[] {
  const idx = p.map((x, i) => [x, i] as const).filter(([x]) => Number.isFinite(x));
  idx.sort((x, y) => x[0] - y[0]);
  const m = idx.length;
  const out = p.map(() => Number.NaN);
  let running = 0;
  idx.forEach(([x, i], r) => {
    running = Math.max(running, Math.min(1, (m - r) * x));
    out[i] = running;
  });
  return out;
}
