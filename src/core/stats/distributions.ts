/**
 * Probability distributions needed by the significance tests (sandbox-safe, pure).
 *
 * Rules:
 * - `logGamma` uses the Lanczos approximation (g = 7, 9 terms), relative error about 1e-15 for x > 0.
 * - The regularised incomplete gamma functions use the power series below `x < a + 1` and a continued
 *   fraction (modified Lentz) above it, each to double precision; `chiSquareSurvival(x, k) = Q(k/2, x/2)`.
 * - `binomialCdf` sums the probability mass in log space, so it neither overflows nor underflows for large n.
 * - Invalid parameters throw {@link StatsInputError} (`INVALID_PARAMETER`); a NaN statistic gives NaN.
 */
import { StatsInputError } from './errors';

/** Relative convergence tolerance of the series and continued fraction: double-precision epsilon. */
const CONVERGENCE_EPSILON = 2 ** -52;
/** Iteration cap for the series and continued fraction; convergence needs far fewer for any x we meet. */
const MAX_ITERATIONS = 10_000;
/** Smallest magnitude used to keep Lentz's algorithm away from division by zero. */
const TINY = 1e-300;

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);

/** Natural log of the gamma function for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) {
    throw new StatsInputError('INVALID_PARAMETER', `logGamma needs x > 0, got ${x}`);
  }
  if (x < 0.5) {
    // Reflection keeps the approximation in its accurate range: G(x) G(1 - x) = pi / sin(pi x).
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let sum = LANCZOS_COEFFICIENTS[0] as number;
  for (let i = 1; i < LANCZOS_COEFFICIENTS.length; i++) sum += (LANCZOS_COEFFICIENTS[i] as number) / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return HALF_LOG_TWO_PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

function gammaSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < MAX_ITERATIONS; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * CONVERGENCE_EPSILON) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < CONVERGENCE_EPSILON) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

function assertShape(a: number): void {
  if (!(a > 0) || !Number.isFinite(a)) {
    throw new StatsInputError('INVALID_PARAMETER', `gamma shape must be a finite number > 0, got ${a}`);
  }
}

/** Regularised lower incomplete gamma P(a, x). */
export function regularizedGammaP(a: number, x: number): number {
  assertShape(a);
  if (Number.isNaN(x)) return NaN;
  if (x <= 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Regularised upper incomplete gamma Q(a, x) = 1 - P(a, x), accurate in the upper tail. */
export function regularizedGammaQ(a: number, x: number): number {
  assertShape(a);
  if (Number.isNaN(x)) return NaN;
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

/** Survival function P(X > x) of the chi-square distribution with `df` degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  if (!(df > 0) || !Number.isFinite(df)) {
    throw new StatsInputError('INVALID_PARAMETER', `df must be a finite number > 0, got ${df}`);
  }
  return regularizedGammaQ(df / 2, x / 2);
}

/** Binomial cumulative distribution P(X <= k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (!Number.isInteger(n) || n < 0) {
    throw new StatsInputError('INVALID_PARAMETER', `n must be a non-negative integer, got ${n}`);
  }
  if (!Number.isFinite(p) || p < 0 || p > 1) {
    throw new StatsInputError('INVALID_PARAMETER', `p must be a number in [0, 1], got ${p}`);
  }
  if (Number.isNaN(k)) return NaN;
  const kk = Math.floor(k);
  if (kk < 0) return 0;
  if (kk >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logNFact = logGamma(n + 1);
  let sum = 0;
  for (let i = 0; i <= kk; i++) {
    sum += Math.exp(logNFact - logGamma(i + 1) - logGamma(n - i + 1) + i * logP + (n - i) * logQ);
  }
  return Math.min(1, sum);
}
