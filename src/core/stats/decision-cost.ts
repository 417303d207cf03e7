/**
 * Cost per decision of two independent samples of labelled decisions, and the interval of their
 * difference (sandbox-safe).
 *
 * A labelled decision costs `falsePositive` (flagged, label 0), `falseNegative` (not flagged,
 * label 1) or nothing; a version's cost per decision is the mean over its labelled decisions.
 * Interval of `cost(b) - cost(a)`:
 * - percentile bootstrap: each iteration redraws every labelled decision of each sample with
 *   replacement from its own sample (a seeded stream, {@link createSeededRandom}), so rare missed
 *   frauds keep their skew; two-sided at `1 - alpha`, interpolated between order statistics;
 * - above {@link COST_BOOTSTRAP_MAX_LABELLED} decisions in a sample the Wald interval on the
 *   difference of means (the bootstrap's own normal limit at that size, in O(1)).
 * Each result names the method it used. Empty samples give NaN.
 */
import { StatsInputError } from './errors';
import { normalQuantile } from './proportions';
import { createSeededRandom, seedFromString } from './random';
import { quantileSorted } from './metrics';

/** Bootstrap resamples of the cost difference: stable 95% percentile bounds. */
export const COST_BOOTSTRAP_ITERATIONS = 1000;
/**
 * Largest sample the bootstrap redraws (per version; 1000 x 2 x 5000 draws, well under a second in
 * a workflow task): beyond it the mean of that many bounded draws is normal within the bootstrap's
 * own Monte Carlo error, and the Wald interval costs nothing.
 */
export const COST_BOOTSTRAP_MAX_LABELLED = 5_000;

export interface CostCounts {
  /** Labelled decisions. */
  n: number;
  fp: number;
  fn: number;
}

export interface DecisionCosts {
  falsePositive: number;
  falseNegative: number;
}

export interface CostDifference {
  /** cost(b) - cost(a). */
  estimate: number;
  low: number;
  high: number;
  a: number;
  b: number;
  method: 'bootstrap' | 'wald';
}

/** Cost per labelled decision; NaN when nothing is labelled. */
export function costPerDecision(c: CostCounts, costs: DecisionCosts): number {
  return c.n > 0 ? (costs.falsePositive * c.fp + costs.falseNegative * c.fn) / c.n : Number.NaN;
}

function variance(c: CostCounts, costs: DecisionCosts): number {
  const m = costPerDecision(c, costs);
  const second = (costs.falsePositive ** 2 * c.fp + costs.falseNegative ** 2 * c.fn) / c.n;
  return Math.max(0, second - m * m);
}

function checkCounts(c: CostCounts, what: string): void {
  if (![c.n, c.fp, c.fn].every((v) => Number.isInteger(v) && v >= 0) || c.fp + c.fn > c.n) {
    throw new StatsInputError(
      'INVALID_VALUE',
      `${what}: cost counts need integers 0 <= fp + fn <= n, got ${JSON.stringify(c)}`,
    );
  }
}

/** One bootstrap redraw of a sample's mean cost: `n` draws over its cells (fp first, then fn). */
function redraw(
  c: CostCounts,
  costs: DecisionCosts,
  draws: Int32Array,
  rng: ReturnType<typeof createSeededRandom>,
): number {
  rng.fillInts(draws, c.n);
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < draws.length; i++) {
    const d = draws[i]!;
    if (d < c.fp) fp++;
    else if (d < c.fp + c.fn) fn++;
  }
  return (costs.falsePositive * fp + costs.falseNegative * fn) / c.n;
}

/** The interval of `cost(b) - cost(a)` at `1 - alpha` (see the module rules). */
export function costDifferenceInterval(
  a: CostCounts,
  b: CostCounts,
  costs: DecisionCosts,
  alpha: number,
  iterations = COST_BOOTSTRAP_ITERATIONS,
): CostDifference {
  checkCounts(a, 'a');
  checkCounts(b, 'b');
  const ca = costPerDecision(a, costs);
  const cb = costPerDecision(b, costs);
  const estimate = cb - ca;
  if (a.n === 0 || b.n === 0)
    return { estimate: Number.NaN, low: Number.NaN, high: Number.NaN, a: ca, b: cb, method: 'wald' };
  if (a.n > COST_BOOTSTRAP_MAX_LABELLED || b.n > COST_BOOTSTRAP_MAX_LABELLED) {
    const se = Math.sqrt(variance(a, costs) / a.n + variance(b, costs) / b.n);
    const z = normalQuantile(1 - alpha / 2);
    return { estimate, low: estimate - z * se, high: estimate + z * se, a: ca, b: cb, method: 'wald' };
  }
  // The seed is the data itself: the same counts give the same interval on every replay.
  const rng = createSeededRandom(seedFromString(`cost:${a.n}/${a.fp}/${a.fn}:${b.n}/${b.fp}/${b.fn}`));
  const da = new Int32Array(a.n);
  const db = new Int32Array(b.n);
  const diffs = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) diffs[i] = redraw(b, costs, db, rng) - redraw(a, costs, da, rng);
  diffs.sort();
  return {
    estimate,
    low: quantileSorted(diffs, alpha / 2),
    high: quantileSorted(diffs, 1 - alpha / 2),
    a: ca,
    b: cb,
    method: 'bootstrap',
  };
}
