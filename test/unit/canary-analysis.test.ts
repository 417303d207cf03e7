import { describe, expect, it } from 'vitest';
import { CanaryPolicySchema, type VersionKpis } from '../../src/core/contracts/canary';
import { CheckPhase } from '../../src/core/contracts/checks';
import {
  judgeCanary,
  latencyQuantileInterval,
  nextRolloutAction,
} from '../../src/core/policy/canary-analysis';
import { jensenShannon, populationStabilityIndex } from '../../src/core/stats/divergence';
import { normalQuantile, rateDifferenceInterval, wilsonInterval } from '../../src/core/stats/proportions';

const policy = CanaryPolicySchema.parse({});
const hist = (n: number) => [n * 0.5, n * 0.3, n * 0.1, n * 0.05, n * 0.05].map(Math.round);
const kpis = (over: Partial<VersionKpis> = {}): VersionKpis => ({
  requests: 1000,
  errors: 5,
  p99Ms: 0.4,
  oodRequests: 10,
  predictionHistogram: hist(1000),
  ...over,
});
const judge = (canary: Partial<VersionKpis>, stable: Partial<VersionKpis> = {}) =>
  judgeCanary({ canary: kpis(canary), stable: kpis(stable), from: '', to: '' }, policy, 25);
const phaseOf = (r: ReturnType<typeof judge>, name: string) => r.checks.find((c) => c.name === name)?.phase;

describe('rate intervals', () => {
  it('normal quantile matches known values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });
  it('Wilson interval: 0/50 and 5/100 (reference values)', () => {
    const z = wilsonInterval(0, 50);
    expect(z.low).toBe(0);
    expect(z.high).toBeCloseTo(0.07135, 4);
    const w = wilsonInterval(5, 100);
    expect(w.low).toBeCloseTo(0.02154, 4);
    expect(w.high).toBeCloseTo(0.11175, 4);
  });
  it('Newcombe difference interval (Newcombe 1998, example: 56/70 vs 48/80)', () => {
    const d = rateDifferenceInterval({ events: 48, n: 80 }, { events: 56, n: 70 });
    expect(d.estimate).toBeCloseTo(0.2, 9);
    expect(d.low).toBeCloseTo(0.0524, 3);
    expect(d.high).toBeCloseTo(0.3339, 3);
  });
  it('refuses impossible counts', () => {
    expect(() => wilsonInterval(3, 2)).toThrow(/events <= n/);
  });
});

describe('histogram distances', () => {
  it('PSI is 0 for identical histograms and grows with a shift', () => {
    expect(populationStabilityIndex([10, 20, 30], [10, 20, 30])).toBeCloseTo(0, 12);
    expect(populationStabilityIndex([50, 30, 20], [20, 30, 50])).toBeGreaterThan(0.3);
  });
  it('JS divergence is symmetric and bounded by 1 bit', () => {
    const a = [1, 0, 0];
    const b = [0, 0, 1];
    expect(jensenShannon(a, b)).toBeCloseTo(1, 9);
    expect(jensenShannon([3, 1], [1, 3])).toBeCloseTo(jensenShannon([1, 3], [3, 1]), 12);
  });
});

describe('judgeCanary', () => {
  it('a canary like stable succeeds', () => {
    const r = judge({});
    expect(r.phase).toBe(CheckPhase.successful);
    expect(r.checks.map((c) => c.name)).toEqual([
      'canary.error-rate.absolute',
      'canary.error-rate.vs-stable',
      'canary.ood-rate.absolute',
      'canary.latency.p99.absolute',
      'canary.latency.p99.ratio',
      'canary.predictions.psi',
    ]);
  });
  it('too few canary requests is inconclusive, never a pass or a fail', () => {
    const r = judge({ requests: 20, errors: 20 });
    expect(r.phase).toBe(CheckPhase.inconclusive);
    expect(r.checks).toHaveLength(1);
  });
  it('a canary failing 30% of requests fails on both absolute and relative error rate', () => {
    const r = judge({ errors: 300 });
    expect(r.phase).toBe(CheckPhase.failed);
    expect(phaseOf(r, 'canary.error-rate.absolute')).toBe(CheckPhase.failed);
    expect(phaseOf(r, 'canary.error-rate.vs-stable')).toBe(CheckPhase.failed);
  });
  it('an error rate above the ceiling but not significantly so is inconclusive', () => {
    const r = judge({ requests: 60, errors: 4 }, { requests: 1000, errors: 40 });
    expect(phaseOf(r, 'canary.error-rate.absolute')).toBe(CheckPhase.inconclusive);
  });
  it('sub-millisecond p99 ratios are timer noise: not judged below the floor', () => {
    const r = judge({ p99Ms: 0.31 }, { p99Ms: 0.15 });
    expect(phaseOf(r, 'canary.latency.p99.ratio')).toBe(CheckPhase.successful);
    expect(r.checks.find((c) => c.name === 'canary.latency.p99.ratio')?.detail).toMatch(
      /below the 1 ms floor/,
    );
  });
  it('above the floor a p99 ratio over the limit fails, and so does the absolute ceiling', () => {
    expect(phaseOf(judge({ p99Ms: 40 }, { p99Ms: 20 }), 'canary.latency.p99.ratio')).toBe(CheckPhase.failed);
    expect(phaseOf(judge({ p99Ms: 400 }, { p99Ms: 390 }), 'canary.latency.p99.absolute')).toBe(
      CheckPhase.failed,
    );
  });
  it('a distribution turned inside out fails on PSI; a moderate shift of a retrained model does not', () => {
    expect(phaseOf(judge({ predictionHistogram: [20, 30, 100, 300, 550] }), 'canary.predictions.psi')).toBe(
      CheckPhase.failed,
    );
    expect(phaseOf(judge({ predictionHistogram: [400, 330, 150, 70, 50] }), 'canary.predictions.psi')).toBe(
      CheckPhase.successful,
    );
  });
  it('a PSI over the limit on a tiny window is not significant, so it does not fail', () => {
    const r = judgeCanary(
      {
        canary: kpis({ requests: 30, predictionHistogram: [6, 6, 6, 6, 6] }),
        stable: kpis({ requests: 30, predictionHistogram: [10, 8, 6, 4, 2] }),
        from: '',
        to: '',
      },
      { ...policy, minRequests: 20, maxPredictionPsi: 0.1 },
      5,
    );
    const psi = r.checks.find((c) => c.name === 'canary.predictions.psi');
    expect(psi?.observed).toBeGreaterThan(0.1);
    expect(psi?.phase).toBe(CheckPhase.successful);
  });
  it('at 100% the latency ratio against an earlier stable window is not judged; the ceiling still is', () => {
    const r = judgeCanary(
      {
        canary: kpis({ p99Ms: 40 }),
        stable: kpis({ p99Ms: 10 }),
        stableFromEarlierWindow: true,
        from: '',
        to: '',
      },
      policy,
      100,
    );
    expect(phaseOf(r, 'canary.latency.p99.ratio')).toBe(CheckPhase.successful);
    expect(r.checks.find((c) => c.name === 'canary.latency.p99.ratio')?.detail).toMatch(/earlier window/);
    const slow = judgeCanary(
      {
        canary: kpis({ p99Ms: 400 }),
        stable: kpis({ p99Ms: 10 }),
        stableFromEarlierWindow: true,
        from: '',
        to: '',
      },
      policy,
      100,
    );
    expect(phaseOf(slow, 'canary.latency.p99.absolute')).toBe(CheckPhase.failed);
  });
  it('a flood of out-of-distribution inputs fails the OOD ceiling', () => {
    expect(phaseOf(judge({ oodRequests: 400 }), 'canary.ood-rate.absolute')).toBe(CheckPhase.failed);
  });
});

describe('nextRolloutAction (Argo-style limits)', () => {
  const a = (phase: CheckPhase, step = 5) => ({ phase, step });
  const limits = { failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 3 };
  it.each([
    [[], 'continue'],
    [[a('successful')], 'continue'],
    [[a('failed')], 'rollback'],
    [[a('successful'), a('inconclusive')], 'pause'],
    [[a('error')], 'remeasure'],
    [[a('error'), a('error')], 'remeasure'],
    [[a('error'), a('error'), a('error')], 'rollback'],
    [[a('error'), a('successful'), a('error'), a('error')], 'remeasure'],
  ] as const)('%j -> %s', (analyses, action) => {
    expect(nextRolloutAction(analyses, limits).action).toBe(action);
  });
  it('an inconclusive within its limit is measured again, past it pauses', () => {
    const l = { ...limits, inconclusiveLimit: 1 };
    expect(nextRolloutAction([a('inconclusive')], l).action).toBe('remeasure');
    expect(nextRolloutAction([a('inconclusive'), a('inconclusive')], l).action).toBe('pause');
  });
  it('after a resume, earlier inconclusive analyses no longer count', () => {
    expect(nextRolloutAction([a('inconclusive'), a('successful')], limits, 1).action).toBe('continue');
  });
});

/** The gateway's latency buckets in seconds (+Inf as null); cumulative counts per test. */
const LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, null];
const cumulative = (perBucket: number[]) =>
  perBucket.map((_, i) => perBucket.slice(0, i + 1).reduce((a, b) => a + b, 0));

describe('p99 ratio on order-statistic intervals', () => {
  it('the interval of a p99 spans the ranks around n*q and is unbounded inside the +Inf bucket', () => {
    const h = { bounds: LATENCY_BOUNDS, counts: cumulative([0, 500, 490, 0, 10, 0, 0, 0, 0, 0, 0]) };
    const i = latencyQuantileInterval(h, 0.99, 0.05)!;
    // rank 990 +/- 1.96 * sqrt(9.9): ranks 983..998, i.e. inside the 2.5-5 ms bucket up to the 10-25 ms one.
    expect(i.low).toBeGreaterThan(2.5);
    expect(i.low).toBeLessThan(5);
    expect(i.high).toBeGreaterThan(10);
    expect(i.high).toBeLessThanOrEqual(25);
    const tail = { bounds: LATENCY_BOUNDS, counts: cumulative([0, 990, 0, 0, 0, 0, 0, 0, 0, 0, 10]) };
    expect(latencyQuantileInterval(tail, 0.99, 0.05)!.high).toBe(Number.POSITIVE_INFINITY);
    expect(
      latencyQuantileInterval(
        { bounds: LATENCY_BOUNDS, counts: cumulative(new Array(11).fill(0)) },
        0.99,
        0.05,
      ),
    ).toBeUndefined();
  });

  it('a few stalled requests that move the point p99 past the ratio do not fail it', () => {
    // Same model on a busy machine: stable's ten slowest in 10-25 ms, the canary's in 25-50 ms.
    const stable = cumulative([0, 500, 485, 0, 15, 0, 0, 0, 0, 0, 0]);
    const canary = cumulative([0, 500, 485, 0, 5, 10, 0, 0, 0, 0, 0]);
    const r = judge(
      { p99Ms: 25, latencyHistogram: { bounds: LATENCY_BOUNDS, counts: canary } },
      { p99Ms: 15, latencyHistogram: { bounds: LATENCY_BOUNDS, counts: stable } },
    );
    const c = r.checks.find((x) => x.name === 'canary.latency.p99.ratio')!;
    expect(c.observed).toBeGreaterThan(policy.maxP99Ratio);
    expect(c.phase).toBe(CheckPhase.successful);
    expect(c.detail).toMatch(/lower bound/);
  });

  it('a canary slower across the whole window fails the ratio', () => {
    const stable = cumulative([0, 500, 500, 0, 0, 0, 0, 0, 0, 0, 0]);
    const canary = cumulative([0, 0, 0, 0, 0, 1000, 0, 0, 0, 0, 0]);
    const r = judge(
      { p99Ms: 49.7, latencyHistogram: { bounds: LATENCY_BOUNDS, counts: canary } },
      { p99Ms: 4.97, latencyHistogram: { bounds: LATENCY_BOUNDS, counts: stable } },
    );
    expect(phaseOf(r, 'canary.latency.p99.ratio')).toBe(CheckPhase.failed);
  });
});
