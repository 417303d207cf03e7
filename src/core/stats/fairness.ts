/**
 * The fairness report: per-group rates and, for each fairness metric, the max-minus-min gap across the groups
 * large enough to judge, with a stratified bootstrap interval and (given a champion scored on the same rows) the
 * paired interval of the gap's change. Sandbox-safe: pure, seeded, no clocks.
 *
 * Definitions (those of fairlearn's MetricFrame `.difference()` with `method="between_groups"`):
 * - demographic parity: selection rate `P(score >= t)`; each group needs `minGroupCount` rows.
 * - equal opportunity: true-positive rate; each group needs `minGroupCount` positives.
 * - equalized odds: the larger of the TPR gap and the FPR gap; each group needs `minGroupCount` positives and
 *   as many negatives.
 * - predictive parity: precision (PPV); each group needs `minGroupCount` predicted positives.
 * - calibration: calibration-in-the-large, mean score minus observed positive rate; `minGroupCount` rows.
 *
 * Rules:
 * - A group below the count is "too small to judge": listed, and left out of that metric's gap. With fewer
 *   than two judgeable groups the gap is NaN.
 * - The bootstrap resamples rows within each group (group sizes fixed, as the holdout's are), the judged groups
 *   fixed by the point estimate; a resample in which a judged group's relevant count is 0 is skipped (not
 *   valid). The interval is the percentile interval at `alpha`.
 * - Champion and challenger are resampled with the same indices, so the interval on the change of the gap is
 *   paired: the noise both models share cancels.
 */
import type {
  FairnessGap,
  FairnessGroup,
  FairnessMetric,
  FairnessReport,
  GapInterval,
} from '../contracts/fairness';
import { FAIRNESS_METRICS } from '../contracts/fairness';
import { StatsInputError } from './errors';
import { createSeededRandom } from './random';

/** Smallest relevant count per group worth judging: a rate from fewer than 30 cases has a standard error near 0.09. */
export const DEFAULT_FAIRNESS_MIN_GROUP_COUNT = 30;
/** Bootstrap resamples of a fairness report: stable 95% percentile bounds at modest cost. */
export const DEFAULT_FAIRNESS_ITERATIONS = 1000;
/** Two-sided level of the fairness intervals. */
export const DEFAULT_FAIRNESS_ALPHA = 0.05;
/** Seed of the fairness bootstrap: fixed so a re-run reproduces the interval. */
export const DEFAULT_FAIRNESS_SEED = 20_261_201;
/** Largest bootstrap accepted, so a typo cannot stall an evaluation. */
export const MAX_FAIRNESS_ITERATIONS = 100_000;

export interface FairnessInput {
  labels: ArrayLike<number>;
  /** Challenger (or the only model) scores in [0, 1]. */
  scores: ArrayLike<number>;
  /** Champion scores on the same rows, for the paired change of each gap. */
  championScores?: ArrayLike<number>;
  groups: ArrayLike<string>;
  threshold: number;
  minGroupCount?: number;
  iterations?: number;
  alpha?: number;
  seed?: number;
}

/** Sufficient statistics of one group for one model. */
interface Tally {
  n: number;
  pos: number;
  predPos: number;
  tp: number;
  fp: number;
  sumScore: number;
  sumSq: number;
}

const emptyTally = (): Tally => ({ n: 0, pos: 0, predPos: 0, tp: 0, fp: 0, sumScore: 0, sumSq: 0 });

function add(t: Tally, y: number, s: number, threshold: number): void {
  t.n++;
  t.pos += y;
  t.sumScore += s;
  t.sumSq += (s - y) * (s - y);
  if (s >= threshold) {
    t.predPos++;
    if (y === 1) t.tp++;
    else t.fp++;
  }
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : NaN);

/** Per-metric value of a group, and the count that decides whether the group is judgeable. */
const METRIC_DEFS: {
  readonly [M in FairnessMetric]: {
    countOf: string;
    count: (t: Tally) => number;
    values: (t: Tally) => number[];
  };
} = {
  demographic_parity: { countOf: 'rows', count: (t) => t.n, values: (t) => [ratio(t.predPos, t.n)] },
  equal_opportunity: { countOf: 'positives', count: (t) => t.pos, values: (t) => [ratio(t.tp, t.pos)] },
  equalized_odds: {
    countOf: 'positives and negatives each',
    count: (t) => Math.min(t.pos, t.n - t.pos),
    values: (t) => [ratio(t.tp, t.pos), ratio(t.fp, t.n - t.pos)],
  },
  predictive_parity: {
    countOf: 'predicted positives',
    count: (t) => t.predPos,
    values: (t) => [ratio(t.tp, t.predPos)],
  },
  calibration: {
    countOf: 'rows',
    count: (t) => t.n,
    values: (t) => [ratio(t.sumScore, t.n) - ratio(t.pos, t.n)],
  },
};

/** The metric's gap over `tallies`: per component max - min, the largest component; NaN if any value is. */
function gapOf(metric: FairnessMetric, tallies: readonly Tally[]): number {
  const def = METRIC_DEFS[metric];
  if (tallies.length < 2) return NaN;
  let worst = -Infinity;
  const first = def.values(tallies[0] as Tally);
  for (let k = 0; k < first.length; k++) {
    let max = -Infinity;
    let min = Infinity;
    for (const t of tallies) {
      if (def.count(t) === 0) return NaN;
      const v = def.values(t)[k] as number;
      if (Number.isNaN(v)) return NaN;
      if (v > max) max = v;
      if (v < min) min = v;
    }
    if (max - min > worst) worst = max - min;
  }
  return worst;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

function interval(estimate: number, samples: number[], alpha: number): GapInterval {
  const sorted = Float64Array.from(samples).sort();
  return {
    estimate,
    ciLow: percentile(sorted, alpha / 2),
    ciHigh: percentile(sorted, 1 - alpha / 2),
    validIterations: sorted.length,
  };
}

function groupRow(t: Tally): FairnessGroup {
  return {
    n: t.n,
    positives: t.pos,
    negatives: t.n - t.pos,
    predictedPositives: t.predPos,
    selectionRate: ratio(t.predPos, t.n),
    tpr: ratio(t.tp, t.pos),
    fpr: ratio(t.fp, t.n - t.pos),
    ppv: ratio(t.tp, t.predPos),
    calibrationInTheLarge: ratio(t.sumScore, t.n) - ratio(t.pos, t.n),
    brier: ratio(t.sumSq, t.n),
  };
}

function validate(input: FairnessInput): void {
  const n = input.labels.length;
  for (const [name, arr] of [
    ['scores', input.scores],
    ['groups', input.groups],
    ['championScores', input.championScores],
  ] as const) {
    if (arr !== undefined && arr.length !== n) {
      throw new StatsInputError('LENGTH_MISMATCH', `${name} has ${arr.length} entries, labels ${n}`);
    }
  }
  for (let i = 0; i < n; i++) {
    const y = input.labels[i];
    if (y !== 0 && y !== 1)
      throw new StatsInputError('INVALID_LABEL', `labels[${i}] must be 0 or 1, got ${String(y)}`);
    if (typeof input.groups[i] !== 'string')
      throw new StatsInputError('INVALID_VALUE', `groups[${i}] must be a string`);
    for (const [name, arr] of [
      ['scores', input.scores],
      ['championScores', input.championScores],
    ] as const) {
      if (arr !== undefined && !Number.isFinite(arr[i]))
        throw new StatsInputError(
          'INVALID_VALUE',
          `${name}[${i}] must be a finite number, got ${String(arr[i])}`,
        );
    }
  }
  if (!(input.threshold >= 0 && input.threshold <= 1))
    throw new StatsInputError('INVALID_PARAMETER', `threshold must be in [0, 1], got ${input.threshold}`);
  const min = input.minGroupCount ?? DEFAULT_FAIRNESS_MIN_GROUP_COUNT;
  if (!Number.isInteger(min) || min < 1)
    throw new StatsInputError('INVALID_PARAMETER', `minGroupCount must be a positive integer, got ${min}`);
  const it = input.iterations ?? DEFAULT_FAIRNESS_ITERATIONS;
  if (!Number.isInteger(it) || it < 1 || it > MAX_FAIRNESS_ITERATIONS)
    throw new StatsInputError(
      'INVALID_PARAMETER',
      `iterations must be an integer in [1, ${MAX_FAIRNESS_ITERATIONS}]`,
    );
  const alpha = input.alpha ?? DEFAULT_FAIRNESS_ALPHA;
  if (!(alpha > 0 && alpha < 1)) throw new StatsInputError('INVALID_PARAMETER', `alpha must be in (0, 1)`);
}

/** Computes the fairness report (see the module comment). Throws StatsInputError on structural errors only. */
export function fairnessReport(input: FairnessInput): FairnessReport {
  validate(input);
  const minGroupCount = input.minGroupCount ?? DEFAULT_FAIRNESS_MIN_GROUP_COUNT;
  const iterations = input.iterations ?? DEFAULT_FAIRNESS_ITERATIONS;
  const alpha = input.alpha ?? DEFAULT_FAIRNESS_ALPHA;
  const seed = input.seed ?? DEFAULT_FAIRNESS_SEED;
  const { labels, scores, championScores, threshold } = input;

  const rowsByGroup = new Map<string, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const g = input.groups[i] as string;
    let rows = rowsByGroup.get(g);
    if (!rows) rowsByGroup.set(g, (rows = []));
    rows.push(i);
  }
  const names = [...rowsByGroup.keys()].sort();
  const index = names.map((g) => Int32Array.from(rowsByGroup.get(g) as number[]));

  const tallyOf = (s: ArrayLike<number>, g: number, pick?: Int32Array): Tally => {
    const t = emptyTally();
    const rows = index[g] as Int32Array;
    const m = rows.length;
    for (let k = 0; k < m; k++) {
      const i = rows[pick === undefined ? k : (pick[k] as number)] as number;
      add(t, labels[i] as number, s[i] as number, threshold);
    }
    return t;
  };
  const full = names.map((_, g) => tallyOf(scores, g));
  const fullChampion = championScores ? names.map((_, g) => tallyOf(championScores, g)) : undefined;

  const judgedByMetric = FAIRNESS_METRICS.map((metric) => {
    const def = METRIC_DEFS[metric];
    const judged: number[] = [];
    const tooSmall: string[] = [];
    names.forEach((g, k) => {
      if (def.count(full[k] as Tally) >= minGroupCount) judged.push(k);
      else tooSmall.push(g);
    });
    return { metric, judged, tooSmall };
  });

  const samples = FAIRNESS_METRICS.map(() => [] as number[]);
  const deltas = FAIRNESS_METRICS.map(() => [] as number[]);
  const rng = createSeededRandom(seed);
  const picks = index.map((rows) => new Int32Array(rows.length));
  for (let b = 0; b < iterations; b++) {
    const boot: Tally[] = [];
    const bootChampion: Tally[] = [];
    for (let g = 0; g < names.length; g++) {
      const pick = picks[g] as Int32Array;
      if (pick.length > 0) rng.fillInts(pick, pick.length);
      boot.push(tallyOf(scores, g, pick));
      if (championScores) bootChampion.push(tallyOf(championScores, g, pick));
    }
    judgedByMetric.forEach(({ metric, judged }, m) => {
      const v = gapOf(
        metric,
        judged.map((k) => boot[k] as Tally),
      );
      if (Number.isNaN(v)) return;
      (samples[m] as number[]).push(v);
      if (championScores) {
        const c = gapOf(
          metric,
          judged.map((k) => bootChampion[k] as Tally),
        );
        if (!Number.isNaN(c)) (deltas[m] as number[]).push(v - c);
      }
    });
  }

  const level = `${Number(((1 - alpha) * 100).toPrecision(4))}%`;
  const metrics: FairnessGap[] = judgedByMetric.map(({ metric, judged, tooSmall }, m) => {
    const def = METRIC_DEFS[metric];
    const estimate = gapOf(
      metric,
      judged.map((k) => full[k] as Tally),
    );
    const gap = Number.isNaN(estimate)
      ? { estimate, ciLow: NaN, ciHigh: NaN, validIterations: 0 }
      : interval(estimate, samples[m] as number[], alpha);
    const out: FairnessGap = {
      metric,
      judged: judged.map((k) => names[k] as string),
      tooSmall,
      countOf: def.countOf,
      gap,
      rule: `max - min over groups with at least ${minGroupCount} ${def.countOf}${metric === 'equalized_odds' ? ' (larger of the TPR and FPR gaps)' : ''}; ${level} percentile interval of ${iterations} bootstrap resamples within groups (seed ${seed})`,
    };
    if (fullChampion) {
      const champion = gapOf(
        metric,
        judged.map((k) => fullChampion[k] as Tally),
      );
      const delta = estimate - champion;
      out.vsChampion = {
        champion,
        ...(Number.isNaN(delta)
          ? { estimate: delta, ciLow: NaN, ciHigh: NaN, validIterations: 0 }
          : interval(delta, deltas[m] as number[], alpha)),
      };
    }
    return out;
  });

  const groups: Record<string, FairnessGroup> = {};
  names.forEach((g, k) => {
    Object.defineProperty(groups, g, {
      value: groupRow(full[k] as Tally),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  });
  return { threshold, minGroupCount, alpha, iterations, seed, groups, metrics };
}

/** The gap entry of `metric` in a report. */
export function fairnessGap(report: FairnessReport, metric: FairnessMetric): FairnessGap | undefined {
  return report.metrics.find((m) => m.metric === metric);
}
