/**
 * The business-KPI check on delayed labels (pure): table tests of the judge, the cost-difference
 * interval, the alpha it is judged at inside a canary analysis, and the policy schema.
 */
import { describe, expect, it } from 'vitest';
import {
  BusinessKpiPolicySchema,
  type BusinessKpiPolicyInput,
  type LabelledOutcomes,
  type VersionOutcomes,
} from '../../src/core/contracts/business-kpi';
import { CanaryPolicySchema, type VersionKpis } from '../../src/core/contracts/canary';
import { CheckPhase } from '../../src/core/contracts/checks';
import { judgeBusinessKpi } from '../../src/core/policy/business-kpi';
import {
  businessKpiAlpha,
  judgeCanary,
  nextRolloutAction,
  relativeComparisons,
} from '../../src/core/policy/canary-analysis';
import { COST_BOOTSTRAP_MAX_LABELLED, costDifferenceInterval } from '../../src/core/stats/decision-cost';
import { createSeededRandom } from '../../src/core/stats/random';

/** Outcomes from cells; `predictions` defaults to the labelled count (full coverage). */
const vo = (tp: number, fp: number, tn: number, fn: number, predictions?: number): VersionOutcomes => ({
  predictions: predictions ?? tp + fp + tn + fn,
  labelled: tp + fp + tn + fn,
  tp,
  fp,
  tn,
  fn,
});
const labelled = (canary: VersionOutcomes, stable: VersionOutcomes): LabelledOutcomes => ({
  available: true,
  from: '2026-12-01T00:00:00.000Z',
  to: '2026-12-01T00:10:00.000Z',
  threshold: 0.2,
  canary,
  stable,
});
const policy = (over: BusinessKpiPolicyInput = {}) => BusinessKpiPolicySchema.parse(over);
const ALPHA = 0.05 / 3;

// Stable: 1000 labelled decisions, 25 frauds of which 15 caught, 50 false alarms:
// cost (50 * 1 + 10 * 4) / 1000 = 0.09, precision 15/65, recall 15/25.
const STABLE = vo(15, 50, 925, 10);

describe('judgeBusinessKpi', () => {
  const cases: Array<{
    name: string;
    outcomes: LabelledOutcomes | undefined;
    policy?: BusinessKpiPolicyInput;
    phase: CheckPhase;
    detail?: RegExp;
  }> = [
    {
      name: 'canary like stable: successful',
      outcomes: labelled(vo(15, 50, 925, 10), STABLE),
      phase: CheckPhase.successful,
    },
    {
      name: 'canary better than stable: successful',
      outcomes: labelled(vo(20, 30, 945, 5), STABLE),
      phase: CheckPhase.successful,
    },
    {
      name: 'canary cost tripled (0.27 vs 0.09): failed',
      outcomes: labelled(vo(5, 150, 825, 20), STABLE),
      phase: CheckPhase.failed,
      detail: /cost per decision at threshold 0.2, costs FP 1 FN 4: canary 0.23, stable 0.09/,
    },
    {
      name: 'canary a little worse, within the allowed 0.01: successful',
      outcomes: labelled(vo(15, 55, 920, 10), STABLE),
      phase: CheckPhase.successful,
    },
    {
      name: 'canary worse beyond the limit but within noise: inconclusive, not failed',
      outcomes: labelled(vo(14, 68, 907, 11), STABLE),
      phase: CheckPhase.inconclusive,
    },
    {
      name: 'too few labels, optional: skipped (passes, says why)',
      outcomes: labelled(vo(0, 40, 0, 20, 5000), STABLE),
      phase: CheckPhase.successful,
      detail:
        /not judged: labelled decisions canary 60, stable 1000; at least 100 each .*labels are optional/,
    },
    {
      name: 'too few labels, every one of them wrong, required: inconclusive, never failed',
      outcomes: labelled(vo(0, 40, 0, 20, 5000), STABLE),
      policy: { labels: 'required' },
      phase: CheckPhase.inconclusive,
      detail: /cannot be judged: .*canary 60 of 5000 predictions labelled \(1.2%\).*labels are required/,
    },
    {
      name: 'no label source, optional: skipped',
      outcomes: { available: false, reason: 'no delayed-label source is configured' },
      phase: CheckPhase.successful,
      detail: /not judged: no label source: no delayed-label source is configured/,
    },
    {
      name: 'no label source, required: inconclusive',
      outcomes: { available: false, reason: 'inference log unreadable' },
      policy: { labels: 'required' },
      phase: CheckPhase.inconclusive,
    },
    {
      name: 'not measured at all, required: inconclusive',
      outcomes: undefined,
      policy: { labels: 'required' },
      phase: CheckPhase.inconclusive,
    },
    {
      name: 'precision halved on 200 flagged each: failed (Newcombe)',
      outcomes: labelled(vo(40, 160, 790, 10), vo(80, 120, 790, 10)),
      policy: { metric: 'precision' },
      phase: CheckPhase.failed,
      detail:
        /precision .*canary 0.2, stable 0.4; worsening \(stable - canary\) 0.2, 98.3333% Newcombe CI \[0.09\d*, 0.30\d*\]/,
    },
    {
      name: 'recall: 25 labelled frauds per version is below the minimum: skipped',
      outcomes: labelled(vo(5, 50, 925, 20), STABLE),
      policy: { metric: 'recall' },
      phase: CheckPhase.successful,
      detail: /labelled frauds canary 25, stable 25/,
    },
    {
      name: 'recall with enough frauds and a large drop: failed',
      outcomes: labelled(vo(60, 50, 790, 140), vo(150, 50, 790, 50)),
      policy: { metric: 'recall' },
      phase: CheckPhase.failed,
    },
    {
      name: 'trades false alarms for missed frauds: failed at the default costs (a miss is 4 reviews)',
      outcomes: labelled(vo(15, 90, 2805, 90), vo(45, 150, 2775, 30)),
      phase: CheckPhase.failed,
    },
    {
      name: 'the same trade when a miss costs half a review: successful (canary cheaper)',
      outcomes: labelled(vo(15, 90, 2805, 90), vo(45, 150, 2775, 30)),
      policy: { costs: { falseNegative: 0.5 } },
      phase: CheckPhase.successful,
      detail: /costs FP 1 FN 0.5: canary 0.045, stable 0.055/,
    },
  ];
  it.each(cases)('$name', ({ outcomes, policy: p, phase, detail }) => {
    const c = judgeBusinessKpi(outcomes, policy(p), ALPHA);
    expect(c.phase, c.detail).toBe(phase);
    expect(c.passed).toBe(phase === CheckPhase.successful);
    if (detail) expect(c.detail).toMatch(detail);
  });

  it('reports estimate, interval, rule and label coverage', () => {
    const c = judgeBusinessKpi(
      labelled(vo(5, 150, 825, 20, 1100), vo(15, 50, 925, 10, 1250)),
      policy(),
      ALPHA,
    );
    expect(c.name).toBe('canary.business.cost.vs-stable');
    expect(c.observed).toBeCloseTo(0.23 - 0.09, 9);
    expect(c.threshold).toBeCloseTo(0.01, 9);
    expect(c.detail).toMatch(
      /worsening \(canary - stable\) 0.14, 98.3333% percentile bootstrap CI \[0.0\d+, 0.2\d+\]/,
    );
    expect(c.detail).toMatch(
      /allowed 0.01 \(the larger of 0.01 and 10% of stable's\); failed when the lower bound exceeds it/,
    );
    expect(c.detail).toMatch(
      /canary 1000 of 1100 predictions labelled \(90.9%\), stable 1000 of 1250 predictions labelled \(80%\)/,
    );
  });

  it('the relative limit applies when it is the larger one', () => {
    // stable cost 0.09: 50% of it is 0.045; canary 0.12 (+0.03) is within it.
    const c = judgeBusinessKpi(
      labelled(vo(15, 80, 895, 10), STABLE),
      policy({ maxRelativeDegradation: 0.5 }),
      ALPHA,
    );
    expect(c.threshold).toBeCloseTo(0.045, 9);
    expect(c.phase).toBe(CheckPhase.successful);
  });

  it('never fails on noise: identical versions, 200 labels each, 100 seeded draws', () => {
    const rng = createSeededRandom(7);
    const draw = (n: number): VersionOutcomes => {
      const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
      for (let i = 0; i < n; i++) {
        const u = rng.nextFloat();
        if (u < 0.01) c.tp++;
        else if (u < 0.09) c.fp++;
        else if (u < 0.11) c.fn++;
        else c.tn++;
      }
      return vo(c.tp, c.fp, c.tn, c.fn);
    };
    let failed = 0;
    for (let t = 0; t < 100; t++) {
      if (
        judgeBusinessKpi(labelled(draw(200), draw(200)), policy({ minLabelled: 150 }), ALPHA).phase ===
        'failed'
      )
        failed++;
    }
    expect(failed).toBeLessThanOrEqual(1);
  });
});

describe('costDifferenceInterval', () => {
  const costs = { falsePositive: 1, falseNegative: 4 };
  it('is reproducible: the same counts give the same bootstrap interval', () => {
    const a = { n: 500, fp: 30, fn: 6 };
    const b = { n: 400, fp: 40, fn: 9 };
    expect(costDifferenceInterval(a, b, costs, 0.05)).toEqual(costDifferenceInterval(a, b, costs, 0.05));
  });
  it('agrees with the Wald interval on large samples, and switches to it above the bootstrap limit', () => {
    const a = { n: 4000, fp: 200, fn: 40 };
    const b = { n: 4000, fp: 240, fn: 50 };
    const boot = costDifferenceInterval(a, b, costs, 0.05);
    expect(boot.method).toBe('bootstrap');
    const big = (c: typeof a) => ({ n: c.n * 2, fp: c.fp * 2, fn: c.fn * 2 });
    const wald = costDifferenceInterval(big(a), big(b), costs, 0.05);
    expect(big(a).n).toBeGreaterThan(COST_BOOTSTRAP_MAX_LABELLED);
    expect(wald.method).toBe('wald');
    expect(boot.estimate).toBeCloseTo(wald.estimate, 12);
    // Same estimate; the doubled sample's Wald half-width is the bootstrap's over sqrt(2), within MC error.
    const halfBoot = (boot.high - boot.low) / 2;
    const halfWald = (wald.high - wald.low) / 2;
    expect(halfWald * Math.SQRT2).toBeCloseTo(halfBoot, 2);
  });
  it('is NaN on an empty sample and refuses impossible counts', () => {
    expect(
      costDifferenceInterval({ n: 0, fp: 0, fn: 0 }, { n: 10, fp: 1, fn: 1 }, costs, 0.05).estimate,
    ).toBeNaN();
    expect(() =>
      costDifferenceInterval({ n: 5, fp: 4, fn: 2 }, { n: 10, fp: 1, fn: 1 }, costs, 0.05),
    ).toThrow(/fp \+ fn <= n/);
  });
});

describe('business KPI inside a canary analysis', () => {
  const kpis = (): VersionKpis => ({
    requests: 1000,
    errors: 5,
    p99Ms: 0.4,
    oodRequests: 10,
    predictionHistogram: [500, 300, 100, 50, 50],
  });
  const canaryPolicy = CanaryPolicySchema.parse({ businessKpi: {} });

  it('shares alpha three ways, and divides the rollout-long window by the planned analyses', () => {
    expect(relativeComparisons(CanaryPolicySchema.parse({}))).toBe(2);
    expect(relativeComparisons(canaryPolicy)).toBe(3);
    expect(businessKpiAlpha(canaryPolicy)).toBeCloseTo(0.05 / 3 / 4, 12);
    expect(businessKpiAlpha(CanaryPolicySchema.parse({ shadow: true, businessKpi: {} }))).toBeCloseTo(
      0.05 / 3 / 5,
      12,
    );
    expect(businessKpiAlpha(CanaryPolicySchema.parse({ businessKpi: { window: 'step' } }))).toBeCloseTo(
      0.05 / 3,
      12,
    );
  });

  it('a clearly worse business KPI fails the analysis and rolls back with its reason; the outcomes are kept', () => {
    const outcomes = labelled(vo(5, 150, 825, 20), STABLE);
    const r = judgeCanary({ canary: kpis(), stable: kpis(), outcomes, from: '', to: '' }, canaryPolicy, 25);
    expect(r.phase).toBe(CheckPhase.failed);
    expect(r.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual(['canary.business.cost.vs-stable']);
    expect(r.checks.find((c) => c.name === 'canary.error-rate.vs-stable')?.detail).toMatch(
      /Bonferroni alpha 0.0167/,
    );
    expect(r.outcomes).toEqual(outcomes);
    expect(nextRolloutAction([r], canaryPolicy)).toMatchObject({ action: 'rollback' });
  });

  it('too few labels leaves an otherwise healthy analysis successful (optional) or inconclusive (required)', () => {
    const outcomes = labelled(vo(0, 10, 0, 5, 300), STABLE);
    const m = { canary: kpis(), stable: kpis(), outcomes, from: '', to: '' };
    expect(judgeCanary(m, canaryPolicy, 25).phase).toBe(CheckPhase.successful);
    const required = CanaryPolicySchema.parse({ businessKpi: { labels: 'required' } });
    const r = judgeCanary(m, required, 25);
    expect(r.phase).toBe(CheckPhase.inconclusive);
    expect(nextRolloutAction([r], required)).toMatchObject({ action: 'pause' });
  });

  it('without a business KPI policy nothing changes: two comparisons, no business check', () => {
    const r = judgeCanary(
      { canary: kpis(), stable: kpis(), from: '', to: '' },
      CanaryPolicySchema.parse({}),
      25,
    );
    expect(r.checks.some((c) => c.name.startsWith('canary.business'))).toBe(false);
    expect(r.checks.find((c) => c.name === 'canary.error-rate.vs-stable')?.detail).toMatch(
      /Bonferroni alpha 0.025/,
    );
    expect(r.outcomes).toBeUndefined();
  });
});

describe('BusinessKpiPolicySchema', () => {
  it('defaults: cost at 0.2 with FP 1, FN 4, 100 labels, optional, rollout window', () => {
    expect(policy()).toEqual({
      metric: 'cost',
      threshold: 0.2,
      costs: { falsePositive: 1, falseNegative: 4 },
      minLabelled: 100,
      maxRelativeDegradation: 0.1,
      maxDegradation: 0.01,
      labels: 'optional',
      window: 'rollout',
    });
  });
  it('refuses bad fields by name', () => {
    const bad = (v: unknown) => {
      const r = CanaryPolicySchema.safeParse({ businessKpi: v });
      return r.success ? '' : JSON.stringify(r.error.issues.map((i) => [i.path.join('.'), i.message]));
    };
    expect(bad({ costs: { falsePositive: 0, falseNegative: 0 } })).toMatch(
      /businessKpi.costs.*at least one cost/,
    );
    expect(bad({ threshold: 1 })).toMatch(/businessKpi.threshold/);
    expect(bad({ metric: 'f1' })).toMatch(/businessKpi.metric/);
    expect(bad({ minLabeled: 5 })).toMatch(/minLabeled/);
  });
});
