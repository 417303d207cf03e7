import { describe, expect, it } from 'vitest';
import { ComparisonSchema } from '../../src/core/contracts/gate';
import type { PairedBootstrapInput } from '../../src/core/stats/bootstrap';
import {
  MCNEMAR_EXACT_THRESHOLD,
  mcnemar,
  mcnemarFromCounts,
  naivePairedBootstrap,
  pairedBootstrap,
} from '../../src/core/stats/bootstrap';
import {
  binomialCdf,
  chiSquareSurvival,
  logGamma,
  regularizedGammaP,
  regularizedGammaQ,
} from '../../src/core/stats/distributions';
import { StatsInputError } from '../../src/core/stats/errors';
import { METRIC_NAMES, type MetricName } from '../../src/core/contracts/metrics';
import { brierScore, prAuc, rocAuc } from '../../src/core/stats/metrics';
import { createSeededRandom, MAX_SEED, seedFromString } from '../../src/core/stats/random';

function expectStatsError(fn: () => unknown, code: StatsInputError['code'], fragment?: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StatsInputError);
    expect((e as StatsInputError).code).toBe(code);
    if (fragment !== undefined) expect((e as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`expected StatsInputError ${code}`);
}

/**
 * Two models scoring the same examples. Negatives score U(0, 1); positives U(shift, 1 + shift), drawn
 * independently for each model. Population ROC AUC for shift s in [0, 1] is 1 - (1 - s)^2 / 2.
 */
function shiftedUniforms(n: number, prevalence: number, shiftA: number, shiftB: number, seed: number) {
  const rng = createSeededRandom(seed);
  const labels: number[] = [];
  const scoresA: number[] = [];
  const scoresB: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.nextFloat() < prevalence ? 1 : 0;
    labels.push(y);
    scoresA.push(rng.nextFloat() + y * shiftA);
    scoresB.push(rng.nextFloat() + y * shiftB);
  }
  return { labels, scoresA, scoresB };
}
const trueAuc = (shift: number) => 1 - (1 - shift) ** 2 / 2;

/** Probabilities in [0, 1] rounded to 2 decimals (many ties) for checks across every metric. */
function tiedProbabilities(n: number, seed: number) {
  const rng = createSeededRandom(seed);
  const labels: number[] = [];
  const scoresA: number[] = [];
  const scoresB: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.nextFloat() < 0.3 ? 1 : 0;
    labels.push(y);
    scoresA.push(Math.round(Math.min(1, 0.25 * y + 0.75 * rng.nextFloat()) * 20) / 20);
    scoresB.push(Math.round(Math.min(1, 0.35 * y + 0.65 * rng.nextFloat()) * 20) / 20);
  }
  return { labels, scoresA, scoresB };
}

describe('seeded random', () => {
  it('is reproducible for a seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const r = createSeededRandom(seed);
      return Array.from({ length: 20 }, () => r.nextInt(1000));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it('fillInts yields exactly the nextInt sequence', () => {
    const a = createSeededRandom(9);
    const b = createSeededRandom(9);
    for (const bound of [1, 2, 3, 7, 1000, 20_000, 2 ** 31]) {
      const filled = new Int32Array(500);
      a.fillInts(filled, bound);
      const single = Array.from({ length: 500 }, () => b.nextInt(bound));
      expect([...filled]).toEqual(single);
    }
  });

  it('nextInt stays in range and is close to uniform (chi-square over 10 cells)', () => {
    const r = createSeededRandom(1);
    const cells = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const v = r.nextInt(10);
      expect(v >= 0 && v < 10 && Number.isInteger(v)).toBe(true);
      cells[v]++;
    }
    const chi2 = cells.reduce((s, c) => s + (c - 2000) ** 2 / 2000, 0);
    expect(chiSquareSurvival(chi2, 9)).toBeGreaterThan(0.001);
  });

  it('nextFloat is in [0, 1)', () => {
    const r = createSeededRandom(5);
    for (let i = 0; i < 1000; i++) {
      const v = r.nextFloat();
      expect(v >= 0 && v < 1).toBe(true);
    }
  });

  it.each([-1, MAX_SEED + 1, 1.5, NaN])('refuses seed %s', (seed) => {
    expectStatsError(() => createSeededRandom(seed), 'INVALID_PARAMETER', 'seed');
  });

  it('refuses a bad bound', () => {
    const r = createSeededRandom(1);
    expectStatsError(() => r.nextInt(0), 'INVALID_PARAMETER', 'bound');
    expectStatsError(() => r.fillInts(new Int32Array(1), 2 ** 31 + 1), 'INVALID_PARAMETER', 'bound');
  });

  it.each([
    ['', 2166136261],
    ['a', 723832900],
    ['retrain-fraud', 1303812867],
    ['é€', 982701632],
  ])('seedFromString(%j) is FNV-1a over UTF-16LE = %s', (text, expected) => {
    expect(seedFromString(text)).toBe(expected);
    expect(() => createSeededRandom(seedFromString(text))).not.toThrow();
  });
});

describe('pairedBootstrap', () => {
  const big = shiftedUniforms(2000, 0.3, 0.1, 0.6, 1);
  const base: PairedBootstrapInput = { ...big, metric: 'roc_auc', seed: 7, iterations: 1000, alpha: 0.05 };

  it('is deterministic for a seed, and the seed matters', () => {
    const r1 = pairedBootstrap(base);
    const r2 = pairedBootstrap(base);
    expect(r2).toEqual(r1);
    const r3 = pairedBootstrap({ ...base, seed: 8 });
    expect(r3.ciLow).not.toBe(r1.ciLow);
    expect(r3.estimate).toBe(r1.estimate); // the point estimate does not depend on resampling
  });

  it('reports the full-holdout estimate as metric(B) - metric(A)', () => {
    const r = pairedBootstrap(base);
    expect(r.metricA).toBeCloseTo(rocAuc(big.labels, big.scoresA), 14);
    expect(r.metricB).toBeCloseTo(rocAuc(big.labels, big.scoresB), 14);
    expect(r.estimate).toBeCloseTo(r.metricB - r.metricA, 14);
    expect(r).toMatchObject({
      method: 'bootstrap',
      metric: 'roc_auc',
      iterations: 1000,
      seed: 7,
      n: 2000,
      alpha: 0.05,
    });
  });

  it('large known effect: the CI contains the true AUC difference and excludes 0', () => {
    const truth = trueAuc(0.6) - trueAuc(0.1); // 0.92 - 0.595 = 0.325
    const r = pairedBootstrap(base);
    expect(r.ciLow).toBeLessThan(truth);
    expect(r.ciHigh).toBeGreaterThan(truth);
    expect(r.ciLow).toBeGreaterThan(0);
    expect(Math.abs(r.estimate - truth)).toBeLessThan(0.05);
    expect(r.pValue).toBeLessThan(0.01);
    expect(r.pValueOneSided).toBeCloseTo(1 / 1001, 14); // no resample without improvement
    expect(r.validIterations).toBe(1000);
  });

  it('coverage: the 95% CI contains the true difference in most of 40 replicate holdouts', () => {
    const truth = trueAuc(0.5) - trueAuc(0.3);
    let covered = 0;
    for (let rep = 0; rep < 40; rep++) {
      const d = shiftedUniforms(400, 0.3, 0.3, 0.5, 100 + rep);
      const r = pairedBootstrap({ ...d, metric: 'roc_auc', seed: rep, iterations: 400 });
      if (r.ciLow <= truth && truth <= r.ciHigh) covered++;
    }
    expect(covered).toBeGreaterThanOrEqual(34); // nominal 38 of 40
  });

  it('identical models: estimate 0, CI [0, 0], p = 1', () => {
    const r = pairedBootstrap({ ...base, scoresB: base.scoresA });
    expect(r.estimate).toBe(0);
    expect(r.ciLow).toBe(0);
    expect(r.ciHigh).toBe(0);
    expect(r.pValue).toBe(1);
    expect(r.pValueOneSided).toBe(1);
  });

  it('two different but equally good models: the CI straddles 0 and p > alpha', () => {
    const same = shiftedUniforms(1000, 0.3, 0.4, 0.4, 3);
    for (const metric of ['roc_auc', 'pr_auc'] as const) {
      const r = pairedBootstrap({ ...same, metric, seed: 11 });
      expect(r.ciLow).toBeLessThan(0);
      expect(r.ciHigh).toBeGreaterThan(0);
      expect(r.pValue).toBeGreaterThan(0.05);
    }
  });

  it('null coverage: identical-quality models rarely look significant over 40 replicates', () => {
    let straddles = 0;
    for (let rep = 0; rep < 40; rep++) {
      const d = shiftedUniforms(400, 0.3, 0.4, 0.4, 500 + rep);
      const r = pairedBootstrap({ ...d, metric: 'pr_auc', seed: rep, iterations: 400 });
      if (r.ciLow <= 0 && 0 <= r.ciHigh) straddles++;
    }
    expect(straddles).toBeGreaterThanOrEqual(34);
  });

  it('orients lower-is-better metrics: a better-calibrated challenger gets a positive estimate', () => {
    const d = tiedProbabilities(600, 4);
    const overconfident = d.scoresA.map((s) => Math.min(1, s * 1.6));
    const r = pairedBootstrap({
      labels: d.labels,
      scoresA: overconfident,
      scoresB: d.scoresA,
      metric: 'brier',
      seed: 1,
    });
    const expected = brierScore(d.labels, overconfident) - brierScore(d.labels, d.scoresA);
    expect(expected).toBeGreaterThan(0);
    expect(r.estimate).toBeCloseTo(expected, 14);
    expect(r.ciLow).toBeGreaterThan(0);
  });

  it('a smaller alpha gives a wider interval', () => {
    const narrow = pairedBootstrap({ ...base, alpha: 0.2 });
    const wide = pairedBootstrap({ ...base, alpha: 0.01 });
    expect(wide.ciLow).toBeLessThan(narrow.ciLow);
    expect(wide.ciHigh).toBeGreaterThan(narrow.ciHigh);
  });

  it.each(METRIC_NAMES)(
    '%s: fast path equals the naive resample-and-recompute reference',
    (metric: MetricName) => {
      const d = tiedProbabilities(300, 21);
      const input = { ...d, metric, seed: 99, iterations: 200 };
      const fast = pairedBootstrap(input);
      const naive = naivePairedBootstrap(input);
      expect(fast.validIterations).toBe(naive.validIterations);
      expect(fast.estimate).toBeCloseTo(naive.estimate, 12);
      expect(fast.ciLow).toBeCloseTo(naive.ciLow, 12);
      expect(fast.ciHigh).toBeCloseTo(naive.ciHigh, 12);
      expect(fast.pValue).toBe(naive.pValue);
      expect(fast.pValueOneSided).toBe(naive.pValueOneSided);
      expect(fast.ciLow).toBeLessThan(fast.ciHigh);
    },
  );

  it('skips resamples where the metric is undefined and counts the valid ones', () => {
    // 2 positives in 40: about (38/40)^40 = 13% of resamples draw no positive.
    const labels = Array.from({ length: 40 }, (_, i) => (i < 2 ? 1 : 0));
    const scoresA = labels.map((_, i) => ((i * 7919) % 40) / 40);
    const scoresB = labels.map((_, i) => ((i * 104729) % 40) / 40);
    const r = pairedBootstrap({ labels, scoresA, scoresB, metric: 'pr_auc', seed: 3, iterations: 500 });
    expect(r.validIterations).toBeLessThan(500);
    expect(r.validIterations).toBeGreaterThan(350);
    expect(Number.isFinite(r.ciLow)).toBe(true);
    expect(r.estimate).toBeCloseTo(prAuc(labels, scoresB) - prAuc(labels, scoresA), 14);
  });

  it('NaN scores: every statistic NaN, no valid resample, and the result still crosses JSON', () => {
    const scoresB = [...big.scoresB];
    scoresB[5] = NaN;
    const r = pairedBootstrap({ ...base, scoresB });
    expect(r.estimate).toBeNaN();
    expect(r.ciLow).toBeNaN();
    expect(r.pValue).toBeNaN();
    expect(r.validIterations).toBe(0);
    const parsed = ComparisonSchema.parse(JSON.parse(JSON.stringify(r)));
    expect(parsed.method === 'bootstrap' && parsed.estimate).toBeNull();
  });

  it('single-class holdout: NaN estimate for AUC', () => {
    const r = pairedBootstrap({
      labels: [0, 0, 0],
      scoresA: [0.1, 0.2, 0.3],
      scoresB: [0.3, 0.2, 0.1],
      metric: 'roc_auc',
      seed: 1,
    });
    expect(r.estimate).toBeNaN();
    expect(r.validIterations).toBe(0);
  });

  it('result is a valid Comparison contract', () => {
    const r = pairedBootstrap({ ...base, iterations: 100 });
    expect(ComparisonSchema.parse(JSON.parse(JSON.stringify(r)))).toEqual(r);
  });

  it.each([
    ['scoresA length', { scoresA: [0.1] }, 'LENGTH_MISMATCH', 'scoresA'],
    ['scoresB length', { scoresB: [0.1] }, 'LENGTH_MISMATCH', 'scoresB'],
    ['iterations 0', { iterations: 0 }, 'INVALID_PARAMETER', 'iterations'],
    ['iterations fractional', { iterations: 10.5 }, 'INVALID_PARAMETER', 'iterations'],
    ['iterations too many', { iterations: 1e7 }, 'INVALID_PARAMETER', 'iterations'],
    ['alpha 0', { alpha: 0 }, 'INVALID_PARAMETER', 'alpha'],
    ['alpha 1', { alpha: 1 }, 'INVALID_PARAMETER', 'alpha'],
    ['alpha NaN', { alpha: NaN }, 'INVALID_PARAMETER', 'alpha'],
    ['seed negative', { seed: -1 }, 'INVALID_PARAMETER', 'seed'],
    ['unknown metric', { metric: 'accuracy' as MetricName }, 'INVALID_PARAMETER', 'metric'],
    ['bad label', { labels: big.labels.map((y, i) => (i === 3 ? 2 : y)) }, 'INVALID_LABEL', 'labels[3]'],
  ] as const)('%s -> %s', (_name, patch, code, fragment) => {
    expectStatsError(() => pairedBootstrap({ ...base, ...patch }), code, fragment);
  });

  it('handles 20k examples x 1000 resamples with every resample valid (speed: test/bench/bootstrap.bench.ts)', () => {
    const d = shiftedUniforms(20_000, 0.05, 0.2, 0.3, 2);
    const r = pairedBootstrap({ ...d, metric: 'pr_auc', seed: 1, iterations: 1000 });
    expect(r.validIterations).toBe(1000);
    expect(r.ciLow).toBeLessThanOrEqual(r.estimate);
    expect(r.ciHigh).toBeGreaterThanOrEqual(r.estimate);
  });
});

describe('distributions', () => {
  it.each([
    // scipy.stats.chi2.sf(x, df)
    [0.5, 1, 0.47950012218695337],
    [1, 1, 0.31731050786291115],
    [3.841458820694124, 1, 0.05],
    [6.634896601021214, 1, 0.01],
    [10.827566170662733, 1, 0.001],
    [0.0003, 1, 0.9861809249783522],
    [4, 2, Math.exp(-2)],
    [11.070497693516351, 5, 0.05],
    [2, 5, 0.8491450360846096],
  ])('chiSquareSurvival(%s, df=%s) = %s', (x, df, expected) => {
    expect(chiSquareSurvival(x, df)).toBeCloseTo(expected, 13);
  });

  it.each([
    [30, 4.3204630578274955e-8],
    [100, 1.5239706048320995e-23],
  ])('chi-square(1) far tail at %s keeps relative precision', (x, expected) => {
    expect(Math.abs(chiSquareSurvival(x, 1) / expected - 1)).toBeLessThan(1e-10);
  });

  it('chi-square survival edge values', () => {
    expect(chiSquareSurvival(0, 1)).toBe(1);
    expect(chiSquareSurvival(-3, 1)).toBe(1);
    expect(chiSquareSurvival(Infinity, 1)).toBe(0);
    expect(chiSquareSurvival(NaN, 1)).toBeNaN();
    expectStatsError(() => chiSquareSurvival(1, 0), 'INVALID_PARAMETER', 'df');
  });

  it('P + Q = 1 across the series / continued-fraction switch', () => {
    for (const a of [0.5, 1, 2.5, 10]) {
      for (const x of [0.1, a + 0.999, a + 1, a + 1.001, 3 * a + 5]) {
        expect(regularizedGammaP(a, x) + regularizedGammaQ(a, x)).toBeCloseTo(1, 14);
      }
    }
  });

  it.each([
    [0.5, 0.5723649429247], // ln sqrt(pi)
    [1, 0],
    [2, 0],
    [10, 12.801827480081469], // ln 9!
    [100.5, 361.43554046777757],
    [0.001, 6.907178885383853],
  ])('logGamma(%s) = %s', (x, expected) => {
    expect(logGamma(x)).toBeCloseTo(expected, 12);
  });

  it.each([
    // scipy.stats.binom.cdf(k, n, p)
    [2, 12, 0.5, 79 / 4096],
    [5, 20, 0.3, 0.4163708294474809],
    [0, 24, 0.5, 2 ** -24],
    [500, 1000, 0.5, 0.5126125090891802],
    [450, 1000, 0.5, 0.0008652680424881513],
  ])('binomialCdf(%s; n=%s, p=%s) = %s', (k, n, p, expected) => {
    expect(Math.abs(binomialCdf(k, n, p) - expected)).toBeLessThan(1e-13 + 1e-11 * expected);
  });

  it('binomialCdf edges', () => {
    expect(binomialCdf(-1, 10, 0.5)).toBe(0);
    expect(binomialCdf(10, 10, 0.5)).toBe(1);
    expect(binomialCdf(3, 10, 0)).toBe(1);
    expect(binomialCdf(3, 10, 1)).toBe(0);
    expectStatsError(() => binomialCdf(1, 2.5, 0.5), 'INVALID_PARAMETER', 'n');
    expectStatsError(() => binomialCdf(1, 10, 1.5), 'INVALID_PARAMETER', 'p');
  });
});

describe('mcnemar', () => {
  it.each([
    // [b, c, exact, statistic, pValue] — exact: 2 * binom.cdf(min, b + c, .5); otherwise chi2.sf((|b-c|-1)^2/(b+c), 1)
    [10, 2, true, 2, (2 * 79) / 4096],
    [2, 10, true, 2, (2 * 79) / 4096],
    [0, 0, true, 0, 1],
    [12, 12, true, 12, 1],
    [0, 5, true, 0, 2 / 32],
    [100, 70, false, 841 / 170, 0.02613509411386816],
    [40, 20, false, 361 / 60, 0.014171388254012323],
    [13, 12, false, 0, 1], // |b - c| - 1 = 0
  ])('b=%s c=%s', (b, c, exact, statistic, pValue) => {
    const r = mcnemarFromCounts(b, c);
    expect(r.exact).toBe(exact);
    expect(r.statistic).toBeCloseTo(statistic, 12);
    expect(r.pValue).toBeCloseTo(pValue, 13);
    expect(r).toMatchObject({ method: 'mcnemar', b, c });
  });

  it(`switches to chi-square at b + c = ${MCNEMAR_EXACT_THRESHOLD}`, () => {
    expect(mcnemarFromCounts(20, 4).exact).toBe(true);
    expect(mcnemarFromCounts(20, 5).exact).toBe(false);
  });

  it('counts discordant pairs from predictions: b = champion-only correct, c = challenger-only correct', () => {
    // 10 examples only A gets right, 2 only B gets right, 5 both right, 3 both wrong.
    const labels: number[] = [];
    const predsA: number[] = [];
    const predsB: number[] = [];
    const push = (y: number, a: number, b: number, times: number) => {
      for (let i = 0; i < times; i++) {
        labels.push(y);
        predsA.push(a);
        predsB.push(b);
      }
    };
    push(1, 1, 0, 6);
    push(0, 0, 1, 4); // A right, B wrong: 10 in all
    push(1, 0, 1, 2); // B right, A wrong
    push(1, 1, 1, 5);
    push(0, 1, 1, 3);
    const r = mcnemar({ labels, predsA, predsB });
    expect(r).toMatchObject({ b: 10, c: 2, exact: true, n: 20 });
    expect(r.pValue).toBeCloseTo(0.03857421875, 14);
    expect(ComparisonSchema.parse(r)).toEqual(r);
  });

  it.each([
    ['non-binary prediction', { predsA: [0, 2] }, 'INVALID_PREDICTION', 'predsA[1]'],
    ['NaN prediction', { predsB: [NaN, 1] }, 'INVALID_PREDICTION', 'predsB[0]'],
    ['length mismatch', { predsB: [1] }, 'LENGTH_MISMATCH', 'predsB'],
    ['bad label', { labels: [3, 1] }, 'INVALID_LABEL', 'labels[0]'],
  ] as const)('%s throws', (_name, patch, code, fragment) => {
    expectStatsError(
      () => mcnemar({ labels: [0, 1], predsA: [0, 1], predsB: [1, 1], ...patch }),
      code,
      fragment,
    );
  });

  it('refuses negative or fractional counts', () => {
    expectStatsError(() => mcnemarFromCounts(-1, 2), 'INVALID_PARAMETER', 'b');
    expectStatsError(() => mcnemarFromCounts(1, 2.5), 'INVALID_PARAMETER', 'c');
  });
});
