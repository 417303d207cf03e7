import { describe, expect, it } from 'vitest';
import { ModelEvaluationSchema } from '../../src/core/contracts/gate';
import { METRIC_DIRECTIONS, METRIC_NAMES as CONTRACT_METRIC_NAMES } from '../../src/core/contracts/metrics';
import { StatsInputError } from '../../src/core/stats/errors';
import {
  brierScore,
  confusionAt,
  DEFAULT_ECE_BINS,
  demographicParityDifference,
  equalOpportunityDifference,
  evaluateModel,
  expectedCalibrationError,
  fairnessReport,
  latencySummary,
  LOG_LOSS_EPSILON,
  logLoss,
  METRIC_NAMES,
  METRICS,
  orientedDifference,
  prAuc,
  precisionAtRecall,
  predictAt,
  recallAtPrecision,
  rocAuc,
} from '../../src/core/stats/metrics';

// Hand-checked vectors. Values in comments are derived by hand; the sklearn semantics (roc_auc_score,
// average_precision_score, brier_score_loss, log_loss) give the same numbers.

/** sklearn's documentation example. Sorted: .8(+) .4(-) .35(+) .1(-). */
const DOC = { y: [0, 0, 1, 1], s: [0.1, 0.4, 0.35, 0.8] };
/** Ties across classes. Sorted groups: .9{+} .6{+,-} .3{-,+} .1{-}. */
const TIES = { y: [1, 1, 0, 0, 1, 0], s: [0.9, 0.6, 0.6, 0.3, 0.3, 0.1] };
const PERFECT = { y: [0, 0, 1, 1], s: [0.1, 0.2, 0.8, 0.9] };
const INVERTED = { y: [0, 0, 1, 1], s: [0.9, 0.8, 0.2, 0.1] };
const ALL_SAME = { y: [1, 0, 1, 0], s: [0.5, 0.5, 0.5, 0.5] };

function expectStatsError(fn: () => unknown, code: StatsInputError['code'], fragment?: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StatsInputError);
    expect((e as StatsInputError).code).toBe(code);
    expect((e as StatsInputError).name).toBe('StatsInputError');
    if (fragment !== undefined) expect((e as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`expected StatsInputError ${code}`);
}

describe('rocAuc', () => {
  it.each([
    ['sklearn doc example: 3 of 4 pairs ordered', DOC, 0.75],
    ['ties count one half: (3 + 2.5 + 1.5) / 9', TIES, 7 / 9],
    ['perfect ranking', PERFECT, 1],
    ['inverted ranking', INVERTED, 0],
    ['all scores equal', ALL_SAME, 0.5],
  ])('%s', (_name, v, expected) => {
    expect(rocAuc(v.y, v.s)).toBeCloseTo(expected, 14);
  });

  it('is rank-based: scores outside [0, 1] are fine', () => {
    expect(rocAuc(DOC.y, [-10, 40, 35, 80])).toBeCloseTo(0.75, 14);
  });

  it('accepts typed arrays', () => {
    expect(rocAuc(Uint8Array.from(DOC.y), Float32Array.from(DOC.s))).toBeCloseTo(0.75, 14);
  });
});

describe('prAuc (average precision, step-wise as sklearn)', () => {
  it.each([
    ['sklearn doc example: .5 * 1 + .5 * 2/3', DOC, 5 / 6],
    ['tied thresholds: (1 + 2/3 + 3/5) / 3', TIES, 34 / 45],
    ['perfect ranking', PERFECT, 1],
    ['inverted ranking: .5 * 1/3 + .5 * 1/2', INVERTED, 5 / 12],
    ['all scores equal: one threshold, precision = prevalence', ALL_SAME, 0.5],
    ['only positives: precision is 1 everywhere', { y: [1, 1, 1], s: [0.2, 0.5, 0.5] }, 1],
  ])('%s', (_name, v, expected) => {
    expect(prAuc(v.y, v.s)).toBeCloseTo(expected, 14);
  });

  it('does not interpolate: differs from the trapezoidal area', () => {
    // Trapezoid over (R, P) = (0, 1), (.5, 1), (.5, .5), (1, 2/3) would give .5 + .5 * (1/2 + 2/3) / 2 = .7917.
    expect(prAuc(DOC.y, DOC.s)).not.toBeCloseTo(0.7917, 3);
  });
});

describe('recallAtPrecision / precisionAtRecall', () => {
  it.each([
    // TIES operating points (precision, recall): .9 -> (1, 1/3); .6 -> (2/3, 2/3); .3 -> (3/5, 1); .1 -> (1/2, 1)
    [0.9, 1 / 3],
    [0.65, 2 / 3],
    [0.6, 1], // precision exactly 3/5 qualifies (>=)
    [0.5, 1],
    [0, 1],
    [1, 1 / 3],
  ])('recall at precision >= %s on tied vector is %s', (minPrecision, expected) => {
    expect(recallAtPrecision(TIES.y, TIES.s, minPrecision)).toBeCloseTo(expected, 14);
  });

  it('is 0 when no threshold reaches the precision', () => {
    expect(recallAtPrecision(INVERTED.y, INVERTED.s, 0.9)).toBe(0);
    expect(recallAtPrecision(ALL_SAME.y, ALL_SAME.s, 0.9)).toBe(0);
  });

  it.each([
    [1 / 3, 1],
    [0.5, 2 / 3],
    [2 / 3, 2 / 3],
    [0.7, 0.6],
    [1, 0.6],
  ])('precision at recall >= %s on tied vector is %s', (minRecall, expected) => {
    expect(precisionAtRecall(TIES.y, TIES.s, minRecall)).toBeCloseTo(expected, 14);
  });

  it('all-equal scores give the prevalence', () => {
    expect(precisionAtRecall(ALL_SAME.y, ALL_SAME.s, 0.8)).toBe(0.5);
  });

  it.each([
    ['minPrecision above 1', () => recallAtPrecision(DOC.y, DOC.s, 1.5)],
    ['minPrecision NaN', () => recallAtPrecision(DOC.y, DOC.s, NaN)],
    ['minRecall 0', () => precisionAtRecall(DOC.y, DOC.s, 0)],
    ['minRecall negative', () => precisionAtRecall(DOC.y, DOC.s, -0.1)],
  ])('%s throws INVALID_PARAMETER', (_name, fn) => {
    expectStatsError(fn, 'INVALID_PARAMETER');
  });
});

describe('brierScore and logLoss', () => {
  it.each([
    ['doc example: (.01 + .16 + .4225 + .04) / 4', DOC, 0.158125],
    ['confident and right', { y: [0, 1], s: [0, 1] }, 0],
    ['confident and wrong', { y: [0, 1], s: [1, 0] }, 1],
    ['all 0.5', ALL_SAME, 0.25],
  ])('brier: %s', (_name, v, expected) => {
    expect(brierScore(v.y, v.s)).toBeCloseTo(expected, 14);
  });

  it('log loss of a coin flip is ln 2 and clips 0/1 at machine epsilon', () => {
    expect(logLoss(ALL_SAME.y, ALL_SAME.s)).toBeCloseTo(Math.LN2, 14);
    expect(logLoss([1], [0])).toBeCloseTo(-Math.log(LOG_LOSS_EPSILON), 10);
    expect(logLoss([1], [0])).toBeCloseTo(52 * Math.LN2, 10);
    expect(logLoss([0, 1], [0, 1])).toBeLessThan(1e-15);
  });
});

describe('expectedCalibrationError', () => {
  it(`uses ${DEFAULT_ECE_BINS} equal-width bins by default`, () => {
    // bins 9: |1 - .9|; 6: |(1 - .6) + (0 - .6)|; 3: |(0 - .3) + (1 - .3)|; 1: |0 - .1|  -> (.1+.2+.4+.1)/6
    expect(expectedCalibrationError(TIES.y, TIES.s)).toBeCloseTo(0.8 / 6, 14);
  });

  it('is 0 for a perfectly calibrated bin', () => {
    const y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    expect(expectedCalibrationError(y, new Array(10).fill(0.3))).toBeCloseTo(0, 14);
  });

  it('depends on the number of bins', () => {
    // One bin: |sum(y) - sum(s)| / n = |3 - 2.8| / 6
    expect(expectedCalibrationError(TIES.y, TIES.s, 1)).toBeCloseTo(0.2 / 6, 14);
  });

  it('bins by floor: 0.14 and 0.16 share bin [0.1, 0.2)', () => {
    // |(0 - .14) + (1 - .16)| / 2; separate bins would give (.14 + .84) / 2 = .49
    expect(expectedCalibrationError([0, 1], [0.14, 0.16])).toBeCloseTo(0.35, 14);
    // 0.2 starts the next bin: |0 - .19| + |1 - .2| over 2
    expect(expectedCalibrationError([0, 1], [0.19, 0.2])).toBeCloseTo((0.19 + 0.8) / 2, 14);
  });

  it('puts a score of exactly 1 in the last bin', () => {
    expect(expectedCalibrationError([1, 0], [1, 0])).toBe(0);
  });

  it('rejects a non-positive or fractional bin count', () => {
    expectStatsError(() => expectedCalibrationError(DOC.y, DOC.s, 0), 'INVALID_PARAMETER', 'bins');
    expectStatsError(() => expectedCalibrationError(DOC.y, DOC.s, 2.5), 'INVALID_PARAMETER', 'bins');
  });
});

describe('degenerate inputs', () => {
  const all = {
    rocAuc,
    prAuc,
    recallAtPrecision: (y: number[], s: number[]) => recallAtPrecision(y, s, 0.9),
    precisionAtRecall: (y: number[], s: number[]) => precisionAtRecall(y, s, 0.8),
    brierScore,
    logLoss,
    expectedCalibrationError: (y: number[], s: number[]) => expectedCalibrationError(y, s),
  };
  const names = Object.keys(all) as Array<keyof typeof all>;

  it.each(names)('%s is NaN on empty input', (name) => {
    expect(all[name]([], [])).toBeNaN();
  });

  it.each(names)('%s is NaN when a score is NaN', (name) => {
    expect(all[name](DOC.y, [0.1, NaN, 0.35, 0.8])).toBeNaN();
  });

  it.each(names)('%s is NaN when a score is infinite', (name) => {
    expect(all[name](DOC.y, [0.1, Infinity, 0.35, 0.8])).toBeNaN();
  });

  it.each(names)('%s throws LENGTH_MISMATCH on arrays of different lengths', (name) => {
    expectStatsError(() => all[name]([0, 1, 1], [0.1, 0.2]), 'LENGTH_MISMATCH', 'scores has 2 entries');
  });

  it.each(names)('%s throws INVALID_LABEL for a label other than 0/1', (name) => {
    expectStatsError(() => all[name]([0, 2], [0.1, 0.2]), 'INVALID_LABEL', 'labels[1]');
    expectStatsError(() => all[name]([NaN, 1], [0.1, 0.2]), 'INVALID_LABEL', 'labels[0]');
  });

  it.each([
    ['rocAuc, only negatives', () => rocAuc([0, 0], [0.1, 0.2])],
    ['rocAuc, only positives', () => rocAuc([1, 1], [0.1, 0.2])],
    ['prAuc, only negatives', () => prAuc([0, 0], [0.1, 0.2])],
    ['recallAtPrecision, only negatives', () => recallAtPrecision([0, 0], [0.1, 0.2], 0.5)],
    ['precisionAtRecall, only negatives', () => precisionAtRecall([0, 0], [0.1, 0.2], 0.5)],
  ])('%s is NaN (undefined with one class)', (_name, fn) => {
    expect(fn()).toBeNaN();
  });

  it('calibration metrics stay defined with one class', () => {
    expect(brierScore([0, 0], [0.1, 0.3])).toBeCloseTo(0.05, 14);
    expect(expectedCalibrationError([0, 0], [0.1, 0.3])).toBeCloseTo(0.2, 14);
  });

  it('probability metrics are NaN for a score outside [0, 1]; ranking metrics are not', () => {
    const s = [0.1, 0.4, 0.35, 1.5]; // same ranking as DOC
    expect(brierScore(DOC.y, s)).toBeNaN();
    expect(logLoss(DOC.y, s)).toBeNaN();
    expect(expectedCalibrationError(DOC.y, s)).toBeNaN();
    expect(rocAuc(DOC.y, s)).toBeCloseTo(0.75, 14);
  });
});

describe('confusionAt and predictAt', () => {
  it.each([
    [0.6, { tp: 2, fp: 1, tn: 2, fn: 1 }], // score == threshold is positive
    [0.61, { tp: 1, fp: 0, tn: 3, fn: 2 }],
    [0, { tp: 3, fp: 3, tn: 0, fn: 0 }],
    [1, { tp: 0, fp: 0, tn: 3, fn: 3 }],
  ])('threshold %s', (threshold, expected) => {
    expect(confusionAt(TIES.y, TIES.s, threshold)).toEqual(expected);
  });

  it('throws INVALID_VALUE on a non-finite score (counts cannot be NaN)', () => {
    expectStatsError(() => confusionAt([0, 1], [0.1, NaN], 0.5), 'INVALID_VALUE', 'scores[1]');
    expectStatsError(() => predictAt([Infinity], 0.5), 'INVALID_VALUE', 'scores[0]');
  });

  it('throws on a non-finite threshold and on mismatched lengths', () => {
    expectStatsError(() => predictAt([0.2], NaN), 'INVALID_PARAMETER', 'threshold');
    expectStatsError(() => confusionAt([0, 1], [0.1], 0.5), 'LENGTH_MISMATCH');
  });

  it('predictAt returns 0/1', () => {
    expect([...predictAt([0.2, 0.5, 0.9], 0.5)]).toEqual([0, 1, 1]);
  });
});

describe('fairness', () => {
  const y = [1, 0, 1, 1, 1, 0];
  const s = [0.9, 0.2, 0.7, 0.8, 0.1, 0.3];
  const g = ['a', 'a', 'a', 'b', 'b', 'b'];

  it('demographic parity difference: a predicts 2/3 positive, b 1/3', () => {
    const dp = demographicParityDifference(s, g, 0.5);
    expect(dp.value).toBeCloseTo(1 / 3, 14);
    expect(dp.perGroup).toEqual({ a: 2 / 3, b: 1 / 3 });
    expect(dp.ignoredGroups).toEqual([]);
  });

  it('equal opportunity difference: TPR a = 2/2, b = 1/2', () => {
    const eo = equalOpportunityDifference(y, s, g, 0.5);
    expect(eo.value).toBeCloseTo(0.5, 14);
    expect(eo.perGroup).toEqual({ a: 1, b: 0.5 });
  });

  it('ignores a group without positives for EOD and says so, but counts it for DPD', () => {
    const y2 = [...y, 0];
    const s2 = [...s, 0.6];
    const g2 = [...g, 'c'];
    const eo = equalOpportunityDifference(y2, s2, g2, 0.5);
    expect(eo.value).toBeCloseTo(0.5, 14);
    expect(eo.ignoredGroups).toEqual(['c']);
    expect(Object.keys(eo.perGroup)).toEqual(['a', 'b']);
    expect(demographicParityDifference(s2, g2, 0.5).value).toBeCloseTo(1 - 1 / 3, 14);
  });

  it('accepts 0/1 predictions', () => {
    expect(demographicParityDifference([1, 0, 1, 0], ['x', 'x', 'y', 'y'], 0.5).value).toBe(0);
    expect(demographicParityDifference([1, 1, 0, 0], ['x', 'x', 'y', 'y'], 0.5).value).toBe(1);
  });

  it.each([
    ['one group -> 0', () => demographicParityDifference([0.9, 0.1], ['a', 'a']).value, 0],
    ['empty -> NaN', () => demographicParityDifference([], []).value, NaN],
    ['NaN score -> NaN', () => demographicParityDifference([0.9, NaN, 0.2], ['a', 'b', 'b']).value, NaN],
    [
      'EOD with no positives at all -> NaN',
      () => equalOpportunityDifference([0, 0], [0.9, 0.1], ['a', 'b']).value,
      NaN,
    ],
    [
      'EOD NaN score in a group with positives -> NaN',
      () => equalOpportunityDifference([1, 1], [0.9, NaN], ['a', 'b']).value,
      NaN,
    ],
  ])('%s', (_name, fn, expected) => {
    if (Number.isNaN(expected)) expect(fn()).toBeNaN();
    else expect(fn()).toBe(expected);
  });

  it('handles a group named like an Object.prototype key', () => {
    const dp = demographicParityDifference([1, 0], ['__proto__', 'constructor'], 0.5);
    expect(Object.keys(dp.perGroup).sort()).toEqual(['__proto__', 'constructor']);
    expect(dp.value).toBe(1);
  });

  it('throws on mismatched groups or a non-string group', () => {
    expectStatsError(() => demographicParityDifference([0.1, 0.2], ['a']), 'LENGTH_MISMATCH', 'groups');
    expectStatsError(() => equalOpportunityDifference([1], [0.2, 0.3], ['a', 'b']), 'LENGTH_MISMATCH');
    const bad = ['a', 3] as unknown as string[];
    expectStatsError(() => demographicParityDifference([0.1, 0.2], bad), 'INVALID_VALUE', 'groups[1]');
  });

  it('fairnessReport gathers both gaps and per-group detail', () => {
    const r = fairnessReport([...y, 0], [...s, 0.6], [...g, 'c'], 0.5);
    expect(r.dpd).toBeCloseTo(2 / 3, 14);
    expect(r.eod).toBeCloseTo(0.5, 14);
    expect(r.ignoredGroups).toEqual(['c']);
    expect(r.perGroup.b).toEqual({ n: 3, positives: 2, positiveRate: 1 / 3, tpr: 0.5 });
    expect(r.perGroup.c?.n).toBe(1);
    expect(r.perGroup.c?.tpr).toBeNaN();
  });
});

describe('latencySummary', () => {
  it('linear-interpolation percentiles of 1..100 (numpy default)', () => {
    const ms = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted on purpose
    const l = latencySummary(ms);
    expect(l.p50).toBeCloseTo(50.5, 12);
    expect(l.p95).toBeCloseTo(95.05, 12);
    expect(l.p99).toBeCloseTo(99.01, 12);
    expect(l.mean).toBeCloseTo(50.5, 12);
  });

  it('single value', () => {
    expect(latencySummary([7])).toEqual({ p50: 7, p95: 7, p99: 7, mean: 7 });
  });

  it('empty or non-finite -> all NaN', () => {
    for (const ms of [[], [1, Infinity], [1, NaN]]) {
      const l = latencySummary(ms);
      expect([l.p50, l.p95, l.p99, l.mean].every(Number.isNaN)).toBe(true);
    }
  });

  it('negative latency throws INVALID_VALUE', () => {
    expectStatsError(() => latencySummary([3, -1]), 'INVALID_VALUE', 'latency[1]');
  });
});

describe('metric registry', () => {
  it('covers every metric name with a direction', () => {
    expect(Object.keys(METRICS).sort()).toEqual([...METRIC_NAMES].sort());
    for (const name of METRIC_NAMES) expect(METRICS[name].name).toBe(name);
    expect(METRICS.pr_auc.direction).toBe('higher');
    expect(METRICS.roc_auc.direction).toBe('higher');
    expect(METRICS.recall_at_precision.direction).toBe('higher');
    expect(METRICS.brier.direction).toBe('lower');
    expect(METRICS.ece.direction).toBe('lower');
    expect(METRICS.log_loss.direction).toBe('lower');
  });

  it('implements the contract: the names and directions are the data of src/core/contracts/metrics.ts', () => {
    expect(METRIC_NAMES).toBe(CONTRACT_METRIC_NAMES);
    for (const name of CONTRACT_METRIC_NAMES) expect(METRICS[name].direction).toBe(METRIC_DIRECTIONS[name]);
    expect(Object.keys(METRIC_DIRECTIONS).sort()).toEqual([...CONTRACT_METRIC_NAMES].sort());
  });

  it.each(METRIC_NAMES)('%s: registry compute agrees with the plain function', (name) => {
    const plain: Record<string, number> = {
      pr_auc: prAuc(TIES.y, TIES.s),
      roc_auc: rocAuc(TIES.y, TIES.s),
      recall_at_precision: recallAtPrecision(TIES.y, TIES.s, 0.9),
      precision_at_recall: precisionAtRecall(TIES.y, TIES.s, 0.8),
      brier: brierScore(TIES.y, TIES.s),
      ece: expectedCalibrationError(TIES.y, TIES.s),
      log_loss: logLoss(TIES.y, TIES.s),
    };
    expect(METRICS[name].compute(TIES.y, TIES.s)).toBe(plain[name]);
  });

  it('orientedDifference is positive when the candidate is better, whatever the direction', () => {
    expect(orientedDifference('pr_auc', 0.5, 0.6)).toBeCloseTo(0.1, 14);
    expect(orientedDifference('brier', 0.2, 0.1)).toBeCloseTo(0.1, 14);
    expect(orientedDifference('ece', 0.05, 0.08)).toBeCloseTo(-0.03, 14);
  });
});

describe('evaluateModel', () => {
  it('builds a contract-valid evaluation that survives JSON (NaN -> null)', () => {
    const e = evaluateModel({
      labels: [...TIES.y, 0],
      scores: [...TIES.s, 0.2],
      groups: ['a', 'a', 'a', 'b', 'b', 'b', 'c'],
      latenciesMs: [3, 4, 5],
      threshold: 0.5,
    });
    expect(e.n).toBe(7);
    expect(e.positives).toBe(3);
    expect(e.metrics.roc_auc).toBeCloseTo(rocAuc([...TIES.y, 0], [...TIES.s, 0.2]), 14);
    expect(e.calibration.brier).toBeCloseTo(brierScore([...TIES.y, 0], [...TIES.s, 0.2]), 14);
    expect(e.latency.p50).toBe(4);
    expect(e.fairness?.ignoredGroups).toEqual(['c']);
    const parsed = ModelEvaluationSchema.parse(JSON.parse(JSON.stringify(e)));
    expect(parsed.fairness?.perGroup.c?.tpr).toBeNull();
    expect(parsed.metrics.pr_auc).toBeCloseTo(e.metrics.pr_auc as number, 14);
  });

  it('keeps NaN metrics instead of throwing when a score is NaN, and omits fairness without groups', () => {
    const e = evaluateModel({ labels: DOC.y, scores: [0.1, NaN, 0.35, 0.8], latenciesMs: [1] });
    expect(e.metrics.pr_auc).toBeNaN();
    expect(e.calibration.ece).toBeNaN();
    expect(e.fairness).toBeUndefined();
    expect(ModelEvaluationSchema.safeParse(e).success).toBe(true);
  });
});
