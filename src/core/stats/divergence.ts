/**
 * Distances between two histograms over the same bins: the population stability index (PSI) and
 * the Jensen-Shannon divergence. Empty bins are smoothed with a small pseudo-count so a bin seen on
 * one side only gives a large finite value instead of infinity. Pure.
 */
import { StatsInputError } from './errors';

/** Pseudo-count added to every bin before normalising (Laplace-style smoothing). */
export const HISTOGRAM_PSEUDO_COUNT = 0.5;

function shares(counts: readonly number[], pseudo: number): number[] {
  const total = counts.reduce((s, c) => s + c, 0) + pseudo * counts.length;
  return counts.map((c) => (c + pseudo) / total);
}

function check(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length || a.length === 0) {
    throw new StatsInputError(
      'LENGTH_MISMATCH',
      `histograms need the same non-zero bin count, got ${a.length} and ${b.length}`,
    );
  }
  for (const c of [...a, ...b]) {
    if (!Number.isFinite(c) || c < 0)
      throw new StatsInputError('INVALID_VALUE', `bin counts must be finite and >= 0, got ${c}`);
  }
}

/** PSI = sum (q - p) ln(q / p) over bins, p the reference and q the current shares. NaN when either side is empty. */
export function populationStabilityIndex(
  reference: readonly number[],
  current: readonly number[],
  pseudo = HISTOGRAM_PSEUDO_COUNT,
): number {
  check(reference, current);
  if (reference.every((c) => c === 0) || current.every((c) => c === 0)) return Number.NaN;
  const p = shares(reference, pseudo);
  const q = shares(current, pseudo);
  return p.reduce((s, pi, i) => s + (q[i]! - pi) * Math.log(q[i]! / pi), 0);
}

/** Jensen-Shannon divergence in bits (0..1). NaN when either side is empty. */
export function jensenShannon(reference: readonly number[], current: readonly number[], pseudo = 0): number {
  check(reference, current);
  if (reference.every((c) => c === 0) || current.every((c) => c === 0)) return Number.NaN;
  const p = shares(reference, pseudo);
  const q = shares(current, pseudo);
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    if (p[i]! > 0) js += 0.5 * p[i]! * Math.log2(p[i]! / m);
    if (q[i]! > 0) js += 0.5 * q[i]! * Math.log2(q[i]! / m);
  }
  return js;
}
