/**
 * Confidence-based performance estimation (CBPE) and the calibration checks it rests on
 * (sandbox-safe, pure).
 *
 * Rules:
 * - With calibrated scores, P(y = 1 | score s) = s, so the expected confusion matrix at a threshold
 *   t is E[TP] = sum over s >= t of s, E[FP] = sum over s >= t of (1 - s), E[FN] = sum over s < t of s,
 *   E[TN] = sum over s < t of (1 - s): precision, recall and accuracy follow without labels.
 * - The estimate is only as good as that assumption, so it is checked: on the champion's holdout
 *   (labels known) by Spiegelhalter's z test and the expected calibration error, and, once delayed
 *   labels land for a window, on those labels too (concept drift breaks calibration while leaving
 *   the features alone, so only labels can reveal it). Either check failing marks the estimate
 *   untrusted, with the reason.
 */
import { wilsonInterval } from './proportions';

/** Significance of the calibration test: a miscalibration this unlikely under calibration distrusts CBPE. */
export const DEFAULT_CALIBRATION_ALPHA = 0.01;
/** Largest expected calibration error (10 equal-width bins) at which the estimate is still trusted. */
export const DEFAULT_MAX_ECE = 0.03;
/** Equal-width bins of the expected calibration error. */
export const CBPE_ECE_BINS = 10;
/**
 * Above this many labelled rows the z test is left out of the verdict and ECE alone decides: on a
 * large holdout the test flags miscalibrations far below what moves an estimate (the drift alarm's
 * rule: tests for small samples, distances for large).
 */
export const CALIBRATION_TEST_MAX_ROWS = 10_000;
/** Fewest labelled rows for a calibration check to say anything. */
export const MIN_CALIBRATION_ROWS = 100;

export const CBPE_METRICS = ['precision', 'recall', 'accuracy'] as const;
export type CbpeMetric = (typeof CBPE_METRICS)[number];

export interface ConfusionEstimate {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function expectedConfusion(scores: ArrayLike<number>, threshold: number): ConfusionEstimate {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (!Number.isFinite(s)) continue;
    if (s >= threshold) {
      tp += s;
      fp += 1 - s;
    } else {
      fn += s;
      tn += 1 - s;
    }
  }
  return { tp, fp, tn, fn };
}

export function realizedConfusion(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): ConfusionEstimate {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! >= threshold;
    const y = labels[i] === 1;
    if (flagged && y) c.tp++;
    else if (flagged) c.fp++;
    else if (y) c.fn++;
    else c.tn++;
  }
  return c;
}

export function metricOf(c: ConfusionEstimate, metric: CbpeMetric): number {
  if (metric === 'precision') return c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : Number.NaN;
  if (metric === 'recall') return c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : Number.NaN;
  const n = c.tp + c.fp + c.tn + c.fn;
  return n > 0 ? (c.tp + c.tn) / n : Number.NaN;
}

/** The realized metric with its Wilson interval (events and trials of the metric's own proportion). */
export function realizedInterval(
  c: ConfusionEstimate,
  metric: CbpeMetric,
  alpha = 0.05,
): { value: number; lower: number; upper: number; n: number } {
  const [events, n] =
    metric === 'precision'
      ? [c.tp, c.tp + c.fp]
      : metric === 'recall'
        ? [c.tp, c.tp + c.fn]
        : [c.tp + c.tn, c.tp + c.fp + c.tn + c.fn];
  if (n === 0) return { value: Number.NaN, lower: Number.NaN, upper: Number.NaN, n: 0 };
  const ci = wilsonInterval(events, n, alpha);
  return { value: events / n, lower: ci.low, upper: ci.high, n };
}

export interface CalibrationCheck {
  rows: number;
  /** Spiegelhalter's z and its two-sided p-value. */
  z: number;
  pValue: number;
  ece: number;
  calibrated: boolean;
  reason: string;
}

/** Spiegelhalter's test plus ECE on labelled scores. */
export function checkCalibration(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  alpha = DEFAULT_CALIBRATION_ALPHA,
  maxEce = DEFAULT_MAX_ECE,
): CalibrationCheck {
  let num = 0;
  let den = 0;
  const binSum = new Float64Array(CBPE_ECE_BINS);
  const binY = new Float64Array(CBPE_ECE_BINS);
  const binN = new Float64Array(CBPE_ECE_BINS);
  let n = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = scores[i]!;
    if (!Number.isFinite(p)) continue;
    const y = labels[i] === 1 ? 1 : 0;
    n++;
    num += (y - p) * (1 - 2 * p);
    den += (1 - 2 * p) ** 2 * p * (1 - p);
    const b = Math.min(CBPE_ECE_BINS - 1, Math.floor(p * CBPE_ECE_BINS));
    binSum[b]! += p;
    binY[b]! += y;
    binN[b]!++;
  }
  let ece = 0;
  for (let b = 0; b < CBPE_ECE_BINS; b++) if (binN[b]! > 0) ece += Math.abs(binY[b]! - binSum[b]!) / n;
  const z = den > 0 ? num / Math.sqrt(den) : 0;
  const pValue = 2 * (1 - normalCdf(Math.abs(z)));
  if (n < MIN_CALIBRATION_ROWS)
    return {
      rows: n,
      z,
      pValue,
      ece,
      calibrated: false,
      reason: `only ${n} labelled rows, fewer than ${MIN_CALIBRATION_ROWS}`,
    };
  const failures: string[] = [];
  if (n <= CALIBRATION_TEST_MAX_ROWS && pValue < alpha)
    failures.push(`Spiegelhalter z ${z.toFixed(2)} (p ${pValue.toExponential(2)} < ${alpha})`);
  if (ece > maxEce) failures.push(`ECE ${ece.toFixed(4)} > ${maxEce}`);
  return {
    rows: n,
    z,
    pValue,
    ece,
    calibrated: failures.length === 0,
    reason: failures.length
      ? `miscalibrated: ${failures.join(', ')}`
      : `calibrated (z ${z.toFixed(2)}, ECE ${ece.toFixed(4)})`,
  };
}

function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' erfcc, relative error below 1.2e-7: enough for a test at 0.01). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export interface CbpeEstimate {
  metric: CbpeMetric;
  threshold: number;
  rows: number;
  value: number;
  trusted: boolean;
  reasons: string[];
}

/** CBPE of one metric for a window's scores, trusted only when every supplied calibration check passed. */
export function estimatePerformance(
  scores: ArrayLike<number>,
  threshold: number,
  metric: CbpeMetric,
  checks: {
    holdout?: CalibrationCheck;
    labelled?: CalibrationCheck;
    /** Realized intervals of the window's metrics once its delayed labels landed. */
    realized?: Partial<Record<CbpeMetric, { value: number; lower: number; upper: number; n: number }>>;
  },
): CbpeEstimate {
  const reasons: string[] = [];
  let trusted = true;
  if (!checks.holdout) {
    trusted = false;
    reasons.push('no holdout calibration check: the estimate assumes calibrated scores');
  } else if (!checks.holdout.calibrated) {
    trusted = false;
    reasons.push(`champion on its holdout: ${checks.holdout.reason}`);
  } else reasons.push(`champion on its holdout: ${checks.holdout.reason}`);
  if (checks.labelled && checks.labelled.rows >= MIN_CALIBRATION_ROWS) {
    if (!checks.labelled.calibrated) {
      trusted = false;
      reasons.push(`on the window's delayed labels: ${checks.labelled.reason} (concept drift?)`);
    } else reasons.push(`on the window's delayed labels: ${checks.labelled.reason}`);
  }
  const expected = expectedConfusion(scores, threshold);
  for (const [m, r] of Object.entries(checks.realized ?? {})) {
    if (!r || r.n === 0) continue;
    const est = metricOf(expected, m as CbpeMetric);
    if (est < r.lower || est > r.upper) {
      trusted = false;
      reasons.push(
        `estimated ${m} ${est.toFixed(4)} outside the realized 95% interval [${r.lower.toFixed(4)}, ${r.upper.toFixed(4)}] (concept drift?)`,
      );
    }
  }
  return { metric, threshold, rows: scores.length, value: metricOf(expected, metric), trusted, reasons };
}

/**
 * A monotone calibration map fitted on labelled reference scores by pool-adjacent-violators
 * (isotonic regression, as NannyML's CBPE calibrates on its reference period), evaluated by linear
 * interpolation between block centres and clamped at the ends.
 */
export interface IsotonicMap {
  x: number[];
  y: number[];
}

export function fitIsotonic(scores: ArrayLike<number>, labels: ArrayLike<number>): IsotonicMap {
  const idx: number[] = [];
  for (let i = 0; i < scores.length; i++) if (Number.isFinite(scores[i]!)) idx.push(i);
  idx.sort((a, b) => scores[a]! - scores[b]!);
  const sumX: number[] = [];
  const sumY: number[] = [];
  const w: number[] = [];
  for (const i of idx) {
    sumX.push(scores[i]!);
    sumY.push(labels[i] === 1 ? 1 : 0);
    w.push(1);
    while (
      w.length > 1 &&
      sumY[sumY.length - 2]! / w[w.length - 2]! >= sumY[sumY.length - 1]! / w[w.length - 1]!
    ) {
      const y = sumY.pop()!;
      const x = sumX.pop()!;
      const n = w.pop()!;
      sumY[sumY.length - 1]! += y;
      sumX[sumX.length - 1]! += x;
      w[w.length - 1]! += n;
    }
  }
  // Each block's rate is shrunk by one pseudo-row at the overall rate, so no block predicts exactly 0
  // or 1 (a row scored 0 that turns out positive would make Spiegelhalter's z infinite), then kept
  // monotone.
  const total = w.reduce((t, n) => t + n, 0);
  const rate = total > 0 ? sumY.reduce((t, v) => t + v, 0) / total : 0;
  const y = sumY.map((v, i) => (v + rate) / (w[i]! + 1));
  for (let i = 1; i < y.length; i++) y[i] = Math.max(y[i]!, y[i - 1]!);
  return { x: sumX.map((x, i) => x / w[i]!), y };
}

export function applyIsotonic(map: IsotonicMap, scores: ArrayLike<number>): Float64Array {
  const out = new Float64Array(scores.length);
  const { x, y } = map;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (!Number.isFinite(s) || x.length === 0) {
      out[i] = s;
      continue;
    }
    if (s <= x[0]!) out[i] = y[0]!;
    else if (s >= x[x.length - 1]!) out[i] = y[y.length - 1]!;
    else {
      let lo = 0;
      let hi = x.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (x[mid]! <= s) lo = mid;
        else hi = mid;
      }
      const t = (s - x[lo]!) / (x[hi]! - x[lo]!);
      out[i] = y[lo]! + t * (y[hi]! - y[lo]!);
    }
  }
  return out;
}

export interface HoldoutCalibration {
  map: IsotonicMap;
  /** The raw scores' calibration on the whole holdout. */
  raw: CalibrationCheck;
  /** Cross-fitted: the map fitted on even rows, checked on odd rows. The CBPE trust rests on this one. */
  check: CalibrationCheck;
}

/** Fits the calibration map on the champion's holdout and checks it out of sample. */
export function calibrateOnHoldout(scores: ArrayLike<number>, labels: ArrayLike<number>): HoldoutCalibration {
  const pick = (a: ArrayLike<number>, parity: number): number[] => {
    const out: number[] = [];
    for (let i = parity; i < a.length; i += 2) out.push(a[i]!);
    return out;
  };
  const half = fitIsotonic(pick(scores, 0), pick(labels, 0));
  const check = checkCalibration(applyIsotonic(half, pick(scores, 1)), pick(labels, 1));
  return { map: fitIsotonic(scores, labels), raw: checkCalibration(scores, labels), check };
}
