/**
 * Intervals for rates (error rate, OOD rate): Wilson score intervals for one proportion and
 * Newcombe's hybrid score interval for the difference of two independent proportions. Both stay
 * inside [0, 1] and behave at 0 and n events, where the normal approximation does not. Pure.
 */
import { StatsInputError } from './errors';

/** Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9 after refinement). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1))
    throw new StatsInputError('INVALID_PARAMETER', `normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let q: number;
  if (p < low) {
    const r = Math.sqrt(-2 * Math.log(p));
    q =
      (((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) /
      ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  } else if (p <= 1 - low) {
    const r = p - 0.5;
    const s = r * r;
    q =
      ((((((a[0]! * s + a[1]!) * s + a[2]!) * s + a[3]!) * s + a[4]!) * s + a[5]!) * r) /
      (((((b[0]! * s + b[1]!) * s + b[2]!) * s + b[3]!) * s + b[4]!) * s + 1);
  } else {
    const r = Math.sqrt(-2 * Math.log(1 - p));
    q =
      -(((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) /
      ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  }
  return q;
}

export interface RateInterval {
  estimate: number;
  low: number;
  high: number;
}

function checkCounts(events: number, n: number): void {
  if (!Number.isInteger(events) || !Number.isInteger(n) || events < 0 || n < 0 || events > n) {
    throw new StatsInputError(
      'INVALID_VALUE',
      `rate needs integer counts 0 <= events <= n, got ${events}/${n}`,
    );
  }
}

/** Two-sided Wilson score interval at confidence `1 - alpha`; NaN bounds when n is 0. */
export function wilsonInterval(events: number, n: number, alpha = 0.05): RateInterval {
  checkCounts(events, n);
  if (n === 0) return { estimate: Number.NaN, low: Number.NaN, high: Number.NaN };
  const z = normalQuantile(1 - alpha / 2);
  const p = events / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Newcombe's hybrid score interval (method 10) for `rateB - rateA` of two independent samples, at
 * confidence `1 - alpha`; NaN when either sample is empty.
 */
export function rateDifferenceInterval(
  a: { events: number; n: number },
  b: { events: number; n: number },
  alpha = 0.05,
): RateInterval {
  const ia = wilsonInterval(a.events, a.n, alpha);
  const ib = wilsonInterval(b.events, b.n, alpha);
  if (a.n === 0 || b.n === 0) return { estimate: Number.NaN, low: Number.NaN, high: Number.NaN };
  const d = ib.estimate - ia.estimate;
  const low = d - Math.sqrt((ib.estimate - ib.low) ** 2 + (ia.high - ia.estimate) ** 2);
  const high = d + Math.sqrt((ib.high - ib.estimate) ** 2 + (ia.estimate - ia.low) ** 2);
  return { estimate: d, low: Math.max(-1, low), high: Math.min(1, high) };
}
