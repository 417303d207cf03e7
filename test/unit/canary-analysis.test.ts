import { describe, expect, it } from 'vitest';
import { CanaryPolicySchema, type VersionKpis } from '../../src/core/contracts/canary';
import { CheckPhase } from '../../src/core/contracts/checks';
import { judgeCanary, nextRolloutAction } from '../../src/core/policy/canary-analysis';
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
