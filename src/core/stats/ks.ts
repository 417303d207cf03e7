/**
 * Two-sample Kolmogorov-Smirnov test, two-sided, giving the numbers scipy's `ks_2samp(method='auto')`
 * gives (sandbox-safe, pure, typed arrays).
 *
 * Rules:
 * - Inputs are sorted ascending Float64Arrays without NaN (callers sort once and reuse the sorted
 *   column for every statistic). The statistic is the largest gap between the two right-continuous
 *   ECDFs, found in one merge walk with ties consumed together.
 * - Both samples at most {@link KS_EXACT_MAX_N}: the exact p-value by counting lattice paths (the
 *   equal-sizes closed form when n1 = n2, else the inside-the-band recursion kept as ratios to the
 *   binomial coefficient, so nothing overflows); the statistic is then rounded to a multiple of
 *   1/lcm(n1, n2) as scipy does. Larger: the Kolmogorov distribution's survival at n = round(n1 n2 /
 *   (n1 + n2)) (Simard and L'Ecuyer's choice of method: Ruben-Gambino ends, the Durbin matrix,
 *   Pelz-Good, and twice the one-sided Smirnov tail from the Birnbaum-Tingey sum).
 * - Rounding follows numpy (half to even) wherever scipy calls `np.round`.
 */
import { StatsInputError } from './errors';

/** Largest sample size for the exact p-value (scipy's `MAX_AUTO_N`); above it, the asymptotic one. */
export const KS_EXACT_MAX_N = 10_000;
/** Above this n the one-sided Smirnov tail uses the closed-form approximation (as scipy's cephes code). */
const SMIRNOV_MAX_COMPUTE_N = 1_000_000;
/** Durbin-matrix rescaling step: 2^128 keeps the matrix power inside double range. */
const SCALE_EXPONENT = 128;
const SCALE_UP = 2 ** SCALE_EXPONENT;
const SCALE_DOWN = 2 ** -SCALE_EXPONENT;
/** Below exp(-708) a double underflows: Pelz-Good's theta series is then 0. */
const MIN_LOG = -708;

export interface KsResult {
  /** sup |F1 - F2|. */
  statistic: number;
  pValue: number;
  /** Which p-value was computed. */
  method: 'exact' | 'asymptotic';
}

/** numpy's round: half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Largest |F1 - F2| over the pooled sample, both ECDFs right-continuous. */
export function ksStatistic(a: Float64Array, b: Float64Array): number {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n1 && j < n2) {
    const v = a[i]! <= b[j]! ? a[i]! : b[j]!;
    while (i < n1 && a[i]! === v) i++;
    while (j < n2 && b[j]! === v) j++;
    const gap = Math.abs(i / n1 - j / n2);
    if (gap > d) d = gap;
  }
  return d;
}

/** P(D_{n,n} >= h/n): alternating sum of binomial ratios in Horner form. */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = ((n - k * h - j) * p1) / (n + k * h + j + 1);
    p = p1 * (1 - p);
  }
  return 2 * p;
}

/**
 * P(D >= h/lcm) for n1 != n2: one minus the share of lattice paths from (0,0) to (m,n) that stay strictly
 * inside the band |ng x - mg y| < h. Column by column, each count is kept as its ratio to the binomial
 * coefficient C(x + y, y), so B(x, y) = B(x-1, y) x/(x+y) + B(x, y-1) y/(x+y) stays in [0, 1].
 */
function probOutsideBand(n1: number, n2: number, g: number, h: number): number {
  const m = Math.max(n1, n2);
  const n = Math.min(n1, n2);
  const mg = m / g;
  const ng = n / g;
  const col = new Float64Array(n + 1);
  let lo = 0;
  let hi = Math.min(Math.ceil(h / mg), n + 1);
  col.fill(1, lo, hi);
  for (let i = 1; i <= m; i++) {
    const prevLo = lo;
    const prevHi = hi;
    lo = Math.max(Math.floor((ng * i - h) / mg) + 1, 0);
    hi = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (hi <= lo) return 1;
    let val = 0;
    for (let j = lo; j < hi; j++) {
      const old = j >= prevLo && j < prevHi ? col[j]! : 0;
      val = (old * i + val * j) / (i + j);
      col[j] = val;
    }
  }
  const inside = n >= lo && n < hi ? col[n]! : 0;
  return 1 - inside;
}

/** log(n! / n^n) by Stirling's series with n log n removed up front. */
function logFactorialOverPower(n: number): number {
  // Stirling's series coefficients B_2j / (2j (2j - 1)), j = 8 down to 1.
  const coeffs = [-3617 / 122400, 1 / 156, -691 / 360360, 1 / 1188, -1 / 1680, 1 / 1260, -1 / 360, 1 / 12];
  const rn = 1 / n;
  let poly = 0;
  for (const c of coeffs) poly = poly * (rn / n) + c;
  return Math.log(n) / 2 - n + Math.log(2 * Math.PI) / 2 + rn * poly;
}

/** One-sided Smirnov tail P(D_n^+ >= x), Birnbaum-Tingey sum in log space. */
export function smirnovSurvival(n: number, x: number): number {
  if (x <= 0) return 1;
  if (x >= 1) return 0;
  if (n > SMIRNOV_MAX_COMPUTE_N) {
    const logp = -((6 * n * x + 1) ** 2) / 18 / n;
    return logp < -Math.LN2 ? Math.exp(logp) : 1 + Math.expm1(logp);
  }
  const last = Math.floor(n * (1 - x));
  let logC = 0;
  let sum = 0;
  for (let j = 0; j <= last; j++) {
    if (j > 0) logC += Math.log((n - j + 1) / j);
    const base = 1 - x - j / n;
    if (base <= 0) break;
    sum += Math.exp(logC + (n - j) * Math.log(base) + (j - 1) * Math.log(x + j / n));
  }
  return Math.min(1, Math.max(0, x * sum));
}

/** Durbin's matrix method (Marsaglia-Tsang-Wang form): P(D_n <= d), exact. */
function kolmogorovCdfDurbin(n: number, d: number): number {
  if (d >= 1) return 1;
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1 - h ** j) * fac;
  }
  const tt = Math.max(2 * h - 1, 0) ** m - 2 * h ** m;
  v[m - 1] = (1 + tt) * fac;
  let hm: Float64Array = new Float64Array(m * m);
  for (let i = 1; i < m; i++) for (let r = i - 1; r < m; r++) hm[r * m + i] = w[r - i + 1]!;
  for (let r = 0; r < m; r++) hm[r * m] = v[r]!;
  for (let c = 0; c < m; c++) hm[(m - 1) * m + c] = v[m - 1 - c]!;
  let pw: Float64Array = new Float64Array(m * m);
  for (let i = 0; i < m; i++) pw[i * m + i] = 1;
  const mul = (x: Float64Array, y: Float64Array): Float64Array => {
    const out = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let l = 0; l < m; l++) {
        const xv = x[i * m + l]!;
        if (xv === 0) continue;
        for (let c = 0; c < m; c++) out[i * m + c]! += xv * y[l * m + c]!;
      }
    return out;
  };
  let nn = n;
  let expnt = 0;
  let hExpnt = 0;
  while (nn > 0) {
    if (nn % 2) {
      pw = mul(pw, hm);
      expnt += hExpnt;
    }
    hm = mul(hm, hm);
    hExpnt *= 2;
    if (Math.abs(hm[(k - 1) * m + k - 1]!) > SCALE_UP) {
      for (let i = 0; i < hm.length; i++) hm[i]! /= SCALE_UP;
      hExpnt += SCALE_EXPONENT;
    }
    nn = Math.floor(nn / 2);
  }
  let p = pw[(k - 1) * m + k - 1]!;
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < SCALE_DOWN) {
      p *= SCALE_UP;
      expnt -= SCALE_EXPONENT;
    }
  }
  return Math.min(1, Math.max(0, p * 2 ** expnt));
}

/** Pelz-Good asymptotic series for P(D_n <= x). */
function kolmogorovCdfPelzGood(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const pi2 = Math.PI ** 2;
  const pi4 = pi2 * pi2;
  const pi6 = pi4 * pi2;
  const sqrt2pi = Math.sqrt(2 * Math.PI);
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const qlog = -pi2 / 8 / z2;
  if (qlog < MIN_LOG) return 0;
  let q = Math.exp(qlog);
  const k1a = -z2;
  const k1b = pi2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * pi2) / 4;
  const k2c = (pi4 * (1 - 2 * z2)) / 16;
  const k3d = (pi6 * (5 - 30 * z2)) / 64;
  const k3c = (pi4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (pi2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z4 * z4;
  const kk = [0, 0, 0, 0];
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qp = q ** (8 * k);
    const c = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let t = 0; t < 4; t++) kk[t] = kk[t]! * qp + c[t]!;
  }
  const div = [z, 6 * z4, 72 * z4 * z2 * z, 6480 * z4 * z6];
  for (let t = 0; t < 4; t++) kk[t] = (kk[t]! * q * sqrt2pi) / div[t]!;
  q = Math.exp(-pi2 / 2 / z2);
  let k2extra = 0;
  let k3extra = 0;
  const sqrt3z = Math.sqrt(3) * z;
  for (let k = maxk; k > 0; k--) {
    const ks2 = k * k;
    const qk = q ** ks2;
    k2extra += ks2 * qk;
    const kspi = Math.PI * k;
    k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qk;
  }
  kk[2] = kk[2]! + (k2extra * pi2 * sqrt2pi) / (-36 * z2 * z);
  kk[3] = kk[3]! + (k3extra * pi2 * sqrt2pi) / (216 * z6);
  let sum = 0;
  for (let t = 0; t < 4; t++) sum += kk[t]! / n ** (t / 2);
  return sum;
}

const clip01 = (p: number): number => Math.min(1, Math.max(0, p));

/** Survival P(D_n >= x) of the two-sided one-sample Kolmogorov statistic (scipy's `kstwo.sf`). */
export function kolmogorovSurvival(n: number, x: number): number {
  if (!Number.isInteger(n) || n <= 0) return Number.NaN;
  if (x >= 1) return 0;
  if (x <= 0) return 1;
  const t = n * x;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    let prob: number;
    if (n <= 140) {
      prob = 1;
      for (let i = 1; i <= n; i++) prob *= i * (1 / n) * (2 * t - 1);
    } else prob = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    return clip01(1 - prob);
  }
  if (t >= n - 1) return clip01(2 * (1 - x) ** n);
  if (x >= 0.5) return clip01(2 * smirnovSurvival(n, x));
  const nx2 = t * x;
  if (n <= 140) {
    // Durbin's matrix is exact (as scipy's Pomeranz branch up to nx^2 = 4); beyond, twice Smirnov.
    if (nx2 <= 4) return clip01(1 - kolmogorovCdfDurbin(n, x));
    return clip01(2 * smirnovSurvival(n, x));
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return clip01(2 * smirnovSurvival(n, x));
  let cdf: number;
  if (nx2 >= 18) cdf = 1;
  else if (n <= 100_000 && n * x ** 1.5 <= 1.4) cdf = kolmogorovCdfDurbin(n, x);
  else cdf = kolmogorovCdfPelzGood(n, x);
  return clip01(1 - cdf);
}

/** The two-sided p-value (and scipy's rounded statistic) for a KS statistic `d` of samples of n1 and n2. */
export function ksPValue(n1: number, n2: number, d0: number): KsResult {
  if (n1 === 0 || n2 === 0) return { statistic: Number.NaN, pValue: Number.NaN, method: 'asymptotic' };
  let d = d0;
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    const g = gcd(n1, n2);
    const lcm = (n1 / g) * n2;
    const h = roundHalfEven(d * lcm);
    d = h / lcm;
    if (h === 0) return { statistic: d, pValue: 1, method: 'exact' };
    const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h);
    if (p >= 0 && p <= 1) return { statistic: d, pValue: p, method: 'exact' };
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  const en = (m * n) / (m + n);
  return { statistic: d, pValue: clip01(kolmogorovSurvival(roundHalfEven(en), d)), method: 'asymptotic' };
}

/** Two-sided two-sample KS test on sorted samples (scipy `ks_2samp`, method 'auto'). */
export function ksTwoSample(a: Float64Array, b: Float64Array): KsResult {
  if (a.length === 0 || b.length === 0)
    return { statistic: Number.NaN, pValue: Number.NaN, method: 'asymptotic' };
  return ksPValue(a.length, b.length, ksStatistic(a, b));
}

/**
 * KS statistic and Wasserstein-1 of two sorted samples in one merge walk (the full report's hot
 * loop): the same numbers as {@link ksStatistic} and `wasserstein1`.
 */
export function ksAndWasserstein(a: Float64Array, b: Float64Array): { d: number; w1: number } {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { d: Number.NaN, w1: Number.NaN };
  let i = 0;
  let j = 0;
  let d = 0;
  let w1 = 0;
  // The next value of each side held in a local (an exhausted side keeps its last value and is
  // never chosen again), so each step reads each array once.
  let x = a[0]!;
  let y = b[0]!;
  let prev = x <= y ? x : y;
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && x <= y) ? x : y;
    if (v !== prev) {
      w1 += Math.abs(i / n1 - j / n2) * (v - prev);
      prev = v;
    }
    if (i < n1 && x === v) {
      do i++;
      while (i < n1 && a[i] === v);
      if (i < n1) x = a[i]!;
    }
    if (j < n2 && y === v) {
      do j++;
      while (j < n2 && b[j] === v);
      if (j < n2) y = b[j]!;
    }
    const gap = Math.abs(i / n1 - j / n2);
    if (gap > d) d = gap;
  }
  return { d, w1 };
}

/** Throws when a sample is not sorted ascending or holds NaN (a caller bug). */
export function assertSorted(x: Float64Array, name: string): void {
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]!) || (i > 0 && x[i]! < x[i - 1]!))
      throw new StatsInputError('INVALID_VALUE', `${name} must be sorted ascending without NaN (index ${i})`);
  }
}
