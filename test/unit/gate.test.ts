import { describe, expect, it } from 'vitest';
import type {
  BootstrapComparison,
  Comparison,
  GatePolicyInput,
  McNemarComparison,
  ModelEvaluation,
} from '../../src/core/contracts/gate';
import {
  DEFAULT_ABSOLUTE_MINIMUMS,
  DEFAULT_GATE_POLICY,
  DEFAULT_MIN_HOLDOUT_SIZE,
  DEFAULT_MIN_IMPROVEMENT,
  GatePolicySchema,
  ModelEvaluationSchema,
} from '../../src/core/contracts/gate';
import { CheckSchema, worstPhaseOf } from '../../src/core/contracts/checks';
import type { GateVerdict } from '../../src/core/contracts/gate';
import type { PromotionInput } from '../../src/core/policy/gate';
import { DECISION_BY_PHASE, decidePromotion, summariseVerdict } from '../../src/core/policy/gate';
import { mcnemar, pairedBootstrap } from '../../src/core/stats/bootstrap';
import { evaluateModel, predictAt } from '../../src/core/stats/metrics';
import { createSeededRandom } from '../../src/core/stats/random';

// ---------------------------------------------------------------------------------------------------------
// Builders: a healthy champion, a challenger that is clearly better, and a significant bootstrap.

type DeepPartial<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K];
};

function evaluation(patch: DeepPartial<ModelEvaluation> = {}): ModelEvaluation {
  const fairness = { dpd: 0.04, eod: 0.05, perGroup: {}, ignoredGroups: [] };
  const base: ModelEvaluation = {
    n: 5000,
    positives: 250,
    threshold: 0.5,
    metrics: { pr_auc: 0.6, roc_auc: 0.9, brier: 0.05, ece: 0.02 },
    fairness,
    calibration: { brier: 0.05, ece: 0.02 },
    latency: { p50: 5, p95: 20, p99: 30, mean: 7 },
  };
  return {
    ...base,
    ...patch,
    metrics: { ...base.metrics, ...patch.metrics },
    fairness: { ...fairness, ...patch.fairness },
    calibration: { ...base.calibration, ...patch.calibration },
    latency: { ...base.latency, ...patch.latency },
  } as ModelEvaluation;
}

const champion = () => evaluation();
const challenger = (patch: DeepPartial<ModelEvaluation> = {}) =>
  evaluation({ ...patch, metrics: { pr_auc: 0.64, roc_auc: 0.92, ...patch.metrics } });

function bootstrap(patch: Partial<BootstrapComparison> = {}): BootstrapComparison {
  return {
    method: 'bootstrap',
    metric: 'pr_auc',
    metricA: 0.6,
    metricB: 0.64,
    estimate: 0.04,
    ciLow: 0.02,
    ciHigh: 0.06,
    pValue: 0.002,
    pValueOneSided: 0.001,
    alpha: 0.05,
    iterations: 1000,
    validIterations: 1000,
    seed: 1,
    n: 5000,
    ...patch,
  };
}

function mcnemarComparison(patch: Partial<McNemarComparison> = {}): McNemarComparison {
  return { method: 'mcnemar', b: 20, c: 45, statistic: 8.86, pValue: 0.003, exact: false, n: 5000, ...patch };
}

function decide(
  patch: {
    policy?: GatePolicyInput;
    challenger?: ModelEvaluation;
    champion?: ModelEvaluation | null;
    comparison?: Comparison | null;
    latencyComparison?: PromotionInput['latencyComparison'];
  } = {},
): GateVerdict {
  const input: PromotionInput = {
    policy: patch.policy ?? {},
    challenger: patch.challenger ?? challenger(),
    latencyComparison: patch.latencyComparison,
  };
  const champ = patch.champion === undefined ? champion() : patch.champion;
  if (champ !== null) input.champion = champ;
  const comp = patch.comparison === undefined ? bootstrap() : patch.comparison;
  if (comp !== null) input.comparison = comp;
  return decidePromotion(input);
}

const failed = (v: GateVerdict) => v.checks.filter((c) => !c.passed).map((c) => c.name);
const reasonsText = (v: GateVerdict) => v.reasons.join(' | ');

// ---------------------------------------------------------------------------------------------------------

describe('policy contract', () => {
  it('parses {} to the documented defaults', () => {
    expect(GatePolicySchema.parse({})).toEqual(DEFAULT_GATE_POLICY);
    expect(DEFAULT_GATE_POLICY.primaryMetric).toBe('pr_auc');
    expect(DEFAULT_GATE_POLICY.method).toBe('bootstrap');
    expect(DEFAULT_GATE_POLICY.minImprovement).toBe(DEFAULT_MIN_IMPROVEMENT);
    expect(DEFAULT_GATE_POLICY.minHoldoutSize).toBe(DEFAULT_MIN_HOLDOUT_SIZE);
    expect(DEFAULT_GATE_POLICY.absoluteMinimums).toEqual(DEFAULT_ABSOLUTE_MINIMUMS);
    expect(DEFAULT_GATE_POLICY.guardrails.maxLatencyRegressionRatio).toBeGreaterThanOrEqual(1);
  });

  it('fills nested guardrail defaults when only one is given', () => {
    const p = GatePolicySchema.parse({ guardrails: { maxP95LatencyMs: 250 } });
    expect(p.guardrails.maxP95LatencyMs).toBe(250);
    expect(p.guardrails.maxFairnessGap).toBe(DEFAULT_GATE_POLICY.guardrails.maxFairnessGap);
  });

  it.each([
    [{ alpha: 0 }, 'alpha'],
    [{ alpha: 0.9 }, 'alpha'],
    [{ primaryMetric: 'accuracy' }, 'primaryMetric'],
    [{ minImprovment: 0.01 }, 'minImprovment'],
    [{ guardrails: { maxLatencyRegressionRatio: 0.5 } }, 'guardrails.maxLatencyRegressionRatio'],
    [{ minHoldoutSize: 10, minPositives: 20 }, 'minPositives'],
    [{ absoluteMinimums: { f1: 0.5 } }, 'absoluteMinimums'],
    [{ bootstrapIterations: 10 }, 'bootstrapIterations'],
  ])('rejects %j naming %s', (policy, path) => {
    const r = GatePolicySchema.safeParse(policy);
    expect(r.success).toBe(false);
    const text = r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('\n');
    expect(text).toContain(path);
  });

  it('evaluation contract accepts NaN and null, refuses Infinity naming the field', () => {
    expect(ModelEvaluationSchema.safeParse(evaluation({ metrics: { pr_auc: NaN } })).success).toBe(true);
    expect(ModelEvaluationSchema.safeParse(evaluation({ metrics: { pr_auc: null } })).success).toBe(true);
    const r = ModelEvaluationSchema.safeParse(evaluation({ latency: { p95: Infinity } }));
    expect(r.success).toBe(false);
    expect(r.success ? '' : r.error.issues[0]?.path.join('.')).toBe('latency.p95');
  });
});

describe('decidePromotion with a champion', () => {
  it('promotes a clear, significant gain with all guardrails holding', () => {
    const v = decide();
    expect(v.decision).toBe('promote');
    expect(failed(v)).toEqual([]);
    expect(reasonsText(v)).toContain('pr_auc improvement 0.04');
    expect(reasonsText(v)).toContain('95% CI [0.02, 0.06]');
  });

  it('inconclusive on a tie: CI straddles 0 and the gain is below the margin', () => {
    const v = decide({
      challenger: challenger({ metrics: { pr_auc: 0.6 } }),
      comparison: bootstrap({ estimate: 0, ciLow: -0.012, ciHigh: 0.011, pValue: 0.97 }),
    });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v).sort()).toEqual(['primary.improvement', 'primary.significance']);
    expect(reasonsText(v)).toContain('not significant');
    expect(reasonsText(v)).toContain('below the required 0.005');
  });

  it('inconclusive on a gain that is large enough but not significant', () => {
    const v = decide({ comparison: bootstrap({ estimate: 0.02, ciLow: -0.001, ciHigh: 0.041 }) });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toEqual(['primary.significance']);
  });

  it('inconclusive on a significant gain below the minimum improvement', () => {
    const v = decide({ comparison: bootstrap({ estimate: 0.003, ciLow: 0.001, ciHigh: 0.005 }) });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toEqual(['primary.improvement']);
    expect(reasonsText(v)).toContain('pr_auc improvement 0.003 is below the required 0.005');
  });

  it('rejects a significantly worse challenger and says so', () => {
    const v = decide({ comparison: bootstrap({ estimate: -0.03, ciLow: -0.05, ciHigh: -0.01 }) });
    expect(v.decision).toBe('reject');
    expect(reasonsText(v)).toContain('significantly worse on pr_auc');
  });

  it.each([
    [
      'holdout below minHoldoutSize',
      { n: 150, positives: 30 },
      'holdout.size',
      'holdout too small: holdout has 150 examples',
    ],
    ['too few positives', { n: 5000, positives: 12 }, 'holdout.positives', 'too few positives'],
  ])('inconclusive on %s', (_name, size, check, text) => {
    const v = decide({
      challenger: challenger(size),
      champion: evaluation(size),
      comparison: bootstrap({ n: size.n }),
    });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toContain(check);
    expect(reasonsText(v)).toContain(text);
  });

  it('inconclusive when champion and challenger were evaluated on different holdouts', () => {
    const v = decide({ champion: evaluation({ n: 4000 }) });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toContain('holdout.same');
  });

  it.each([
    [
      'demographic parity regression',
      { fairness: { dpd: 0.07 } },
      'guardrail.fairness.dpd.regression',
      'demographic parity difference (dpd) regressed: challenger 0.07 vs champion 0.04 (increase 0.03, allowed 0.02)',
    ],
    [
      'equal opportunity above the ceiling',
      { fairness: { eod: 0.12 } },
      'guardrail.fairness.eod.max',
      'challenger equal opportunity difference (eod) 0.12 exceeds allowed 0.1',
    ],
    [
      'calibration (ECE) regression',
      { calibration: { ece: 0.05 } },
      'guardrail.calibration.ece',
      'calibration ece regressed: challenger 0.05 vs champion 0.02 (increase 0.03, allowed 0.01)',
    ],
    [
      'calibration (Brier) regression',
      { calibration: { brier: 0.075 } },
      'guardrail.calibration.brier',
      'calibration brier regressed',
    ],
    [
      'latency ratio regression',
      { latency: { p95: 30 } },
      'guardrail.latency.p95.ratio',
      'latency regressed: p95 latency ratio challenger/champion 1.5 (30 ms vs 20 ms), allowed 1.25',
    ],
    [
      'latency above the absolute ceiling',
      { latency: { p95: 120 } },
      'guardrail.latency.p95.max',
      'challenger p95 latency 120 ms exceeds allowed 100 ms',
    ],
  ])('rejects on %s, naming the guardrail with observed vs allowed', (_name, patch, check, text) => {
    const v = decide({ challenger: challenger(patch as DeepPartial<ModelEvaluation>) });
    expect(v.decision).toBe('reject');
    expect(failed(v)).toContain(check);
    expect(reasonsText(v)).toContain(text);
  });

  it('lists every failing guardrail, not just the first', () => {
    const v = decide({
      challenger: challenger({
        calibration: { ece: 0.06, brier: 0.09 },
        fairness: { dpd: 0.15 },
        latency: { p95: 40 },
      }),
    });
    expect(v.decision).toBe('reject');
    expect(failed(v).sort()).toEqual([
      'guardrail.calibration.brier',
      'guardrail.calibration.ece',
      'guardrail.fairness.dpd.max',
      'guardrail.fairness.dpd.regression',
      'guardrail.latency.p95.ratio',
    ]);
    expect(v.reasons).toHaveLength(5);
  });

  describe('p95 latency ratio applies only above the floor (latencyRatioFloorMs, default 1 ms)', () => {
    const ratioCheck = (v: GateVerdict) => v.checks.find((c) => c.name === 'guardrail.latency.p95.ratio');
    it.each([
      // challenger p95, champion p95, policy, decision, passed, detail
      [0.11, 0.083, {}, 'promote', true, 'at or below the 1 ms floor of the ratio limit (ratio 1.325'],
      [0.31, 0.15, {}, 'promote', true, 'at or below the 1 ms floor'],
      [1, 0.5, {}, 'promote', true, 'at or below the 1 ms floor'],
      [
        4,
        2,
        {},
        'reject',
        false,
        'latency regressed: p95 latency ratio challenger/champion 2 (4 ms vs 2 ms)',
      ],
      [3, 2, {}, 'reject', false, 'ratio challenger/champion 1.5 (3 ms vs 2 ms), allowed 1.25'],
      [1.2, 1, {}, 'promote', true, 'ratio challenger/champion 1.2 (1.2 ms vs 1 ms), allowed 1.25'],
      [0.11, 0.083, { latencyRatioFloorMs: 0 }, 'reject', false, 'ratio challenger/champion 1.325'],
      [4, 2, { latencyRatioFloorMs: 5 }, 'promote', true, 'at or below the 5 ms floor'],
      [0.5, 0, {}, 'promote', true, 'floor of the ratio limit'],
    ] as const)(
      'challenger %s ms vs champion %s ms, guardrails %j -> %s',
      (b, a, guardrails, decision, passed, detail) => {
        const v = decide({
          policy: { guardrails },
          champion: evaluation({ latency: { p95: a } }),
          challenger: challenger({ latency: { p95: b } }),
        });
        expect(v.decision).toBe(decision);
        expect(ratioCheck(v)?.passed).toBe(passed);
        expect(ratioCheck(v)?.detail).toContain(detail);
      },
    );

    it('the demo case: 0.11 ms vs 0.083 ms (ratio 1.33) passes, the absolute ceiling still applies', () => {
      const v = decide({
        champion: evaluation({ latency: { p95: 0.083 } }),
        challenger: challenger({ latency: { p95: 0.11 } }),
      });
      expect(v.decision).toBe('promote');
      const tooSlow = decide({
        policy: { guardrails: { maxP95LatencyMs: 0.1 } },
        champion: evaluation({ latency: { p95: 0.083 } }),
        challenger: challenger({ latency: { p95: 0.11 } }),
      });
      expect(tooSlow.decision).toBe('reject');
      expect(failed(tooSlow)).toEqual(['guardrail.latency.p95.max']);
    });

    it.each([
      // challenger p95, champion p95, interval, decision, detail
      [
        5.569,
        2.011,
        [0.9, 4.1],
        'promote',
        'CI [0.9, 4.1] over 200 interleaved rows, allowed 1.25: no significant regression',
      ],
      [
        4,
        2,
        [1.8, 2.3],
        'reject',
        'latency regressed: p95 latency ratio challenger/champion 2 (4 ms vs 2 ms), 95% CI [1.8, 2.3]',
      ],
      [1.2, 1, [1.26, 1.3], 'reject', 'latency regressed'],
    ] as const)(
      'with a paired interval: %s ms vs %s ms, CI %j -> %s',
      (b, a, [ciLow, ciHigh], decision, detail) => {
        const v = decide({
          champion: evaluation({ latency: { p95: a } }),
          challenger: challenger({ latency: { p95: b } }),
          latencyComparison: {
            quantile: 0.95,
            estimate: b / a,
            ciLow,
            ciHigh,
            alpha: 0.05,
            iterations: 1000,
            n: 200,
          },
        });
        expect(v.decision).toBe(decision);
        expect(ratioCheck(v)?.detail).toContain(detail);
      },
    );

    it('a negative floor is refused naming the field', () => {
      const r = GatePolicySchema.safeParse({ guardrails: { latencyRatioFloorMs: -1 } });
      expect(r.success ? '' : r.error.issues[0]?.path.join('.')).toBe('guardrails.latencyRatioFloorMs');
    });
  });

  it('reject dominates inconclusive, and both reasons are listed', () => {
    const v = decide({
      challenger: challenger({ calibration: { ece: 0.06 } }),
      comparison: bootstrap({ estimate: 0.01, ciLow: -0.01, ciHigh: 0.03 }),
    });
    expect(v.decision).toBe('reject');
    expect(reasonsText(v)).toContain('not significant');
    expect(reasonsText(v)).toContain('calibration ece regressed');
  });

  it('tolerances are inclusive despite float rounding (0.07 - 0.06 = 0.010000000000000009 is within 0.01)', () => {
    const v = decide({
      champion: evaluation({ calibration: { ece: 0.06 }, fairness: { dpd: 0.05 } }),
      challenger: challenger({ calibration: { ece: 0.07 }, fairness: { dpd: 0.07 }, latency: { p95: 25 } }),
    });
    expect(0.07 - 0.06).toBeGreaterThan(0.01); // the rounding this guards against
    expect(v.decision).toBe('promote');
  });

  it('improvement exactly at the margin passes (0.105 - 0.1 = 0.0049999999999999906)', () => {
    const v = decide({
      champion: evaluation({ metrics: { pr_auc: 0.1 } }),
      challenger: challenger({ metrics: { pr_auc: 0.105 } }),
      comparison: bootstrap({ estimate: 0.105 - 0.1, ciLow: 0.001, ciHigh: 0.01 }),
    });
    expect(v.decision).toBe('promote');
  });

  describe('NaN never promotes and the reason names the statistic', () => {
    it.each([
      [
        'challenger pr_auc NaN',
        { challenger: challenger({ metrics: { pr_auc: NaN } }) },
        'challenger pr_auc',
      ],
      [
        'challenger pr_auc null (NaN after JSON)',
        { challenger: challenger({ metrics: { pr_auc: null } }) },
        'challenger pr_auc',
      ],
      [
        'challenger pr_auc missing',
        { challenger: { ...challenger(), metrics: { roc_auc: 0.9 } } },
        'challenger pr_auc',
      ],
      ['champion pr_auc NaN', { champion: evaluation({ metrics: { pr_auc: NaN } }) }, 'champion pr_auc'],
      ['bootstrap estimate NaN', { comparison: bootstrap({ estimate: NaN }) }, 'pr_auc improvement'],
      [
        'bootstrap CI NaN',
        { comparison: bootstrap({ ciLow: NaN, ciHigh: NaN }) },
        'pr_auc bootstrap interval',
      ],
      [
        'challenger ECE NaN',
        { challenger: challenger({ calibration: { ece: NaN } }) },
        'challenger calibration ece',
      ],
      [
        'champion Brier null',
        { champion: evaluation({ calibration: { brier: null } }) },
        'champion calibration brier',
      ],
      [
        'challenger dpd NaN',
        { challenger: challenger({ fairness: { dpd: NaN } }) },
        'demographic parity difference (dpd)',
      ],
      [
        'champion eod NaN',
        { champion: evaluation({ fairness: { eod: NaN } }) },
        'champion equal opportunity difference (eod)',
      ],
      ['challenger p95 NaN', { challenger: challenger({ latency: { p95: NaN } }) }, 'challenger p95 latency'],
      ['champion p95 NaN', { champion: evaluation({ latency: { p95: NaN } }) }, 'champion p95 latency'],
      [
        'McNemar p-value NaN',
        { policy: { method: 'mcnemar' as const }, comparison: mcnemarComparison({ pValue: NaN }) },
        'McNemar p-value',
      ],
    ])('%s', (_name, patch, text) => {
      const v = decide(patch as Parameters<typeof decide>[0]);
      expect(v.decision).toBe('inconclusive');
      expect(reasonsText(v)).toContain(text);
      expect(reasonsText(v)).toContain('not measured');
      // The verdict stays plain JSON: no NaN smuggled into `observed`.
      expect(JSON.parse(JSON.stringify(v))).toEqual(v);
    });
  });

  describe('significance at the alpha boundary', () => {
    it.each([
      ['CI lower bound exactly 0', bootstrap({ ciLow: 0 }), 'inconclusive'],
      ['CI lower bound just above 0', bootstrap({ ciLow: 1e-9 }), 'promote'],
      ['CI upper bound exactly 0', bootstrap({ estimate: -0.02, ciLow: -0.04, ciHigh: 0 }), 'inconclusive'],
    ] as const)('bootstrap: %s -> %s', (_name, comparison, decision) => {
      expect(decide({ comparison }).decision).toBe(decision);
    });

    it.each([
      ['p exactly alpha', 0.05, 'inconclusive'],
      ['p just below alpha', 0.0499, 'promote'],
      ['p just above alpha', 0.0501, 'inconclusive'],
    ] as const)('McNemar: %s -> %s', (_name, pValue, decision) => {
      const v = decide({
        policy: { method: 'mcnemar', alpha: 0.05 },
        comparison: mcnemarComparison({ pValue }),
      });
      expect(v.decision).toBe(decision);
    });

    it('McNemar: significant in favour of the champion -> reject, saying which', () => {
      const v = decide({ policy: { method: 'mcnemar' }, comparison: mcnemarComparison({ b: 45, c: 20 }) });
      expect(v.decision).toBe('reject');
      expect(reasonsText(v)).toContain('challenger is significantly worse: McNemar p=0.003');
      expect(reasonsText(v)).toContain('champion-only correct b=45, challenger-only correct c=20');
    });

    it('McNemar uses the evaluations for the improvement size', () => {
      const v = decide({
        policy: { method: 'mcnemar' },
        challenger: challenger({ metrics: { pr_auc: 0.602 } }),
        comparison: mcnemarComparison(),
      });
      expect(v.decision).toBe('inconclusive');
      expect(reasonsText(v)).toContain('pr_auc improvement 0.002 is below');
    });

    it('a stricter policy alpha than the interval was computed at is inconclusive', () => {
      const v = decide({ policy: { alpha: 0.01 }, comparison: bootstrap({ alpha: 0.05 }) });
      expect(v.decision).toBe('inconclusive');
      expect(failed(v)).toEqual(['comparison.alpha']);
    });

    it('an interval computed at a stricter alpha than the policy is acceptable', () => {
      expect(decide({ policy: { alpha: 0.1 }, comparison: bootstrap({ alpha: 0.05 }) }).decision).toBe(
        'promote',
      );
    });
  });

  it.each([
    ['no comparison', { comparison: null }, 'comparison.present'],
    ['method mismatch', { policy: { method: 'mcnemar' as const } }, 'comparison.method'],
    ['metric mismatch', { comparison: bootstrap({ metric: 'roc_auc' }) }, 'comparison.metric'],
    [
      'too few resamples',
      { comparison: bootstrap({ iterations: 500, validIterations: 500 }) },
      'comparison.iterations',
    ],
    [
      'too many invalid resamples',
      { comparison: bootstrap({ validIterations: 900 }) },
      'comparison.valid_iterations',
    ],
    ['comparison on another holdout', { comparison: bootstrap({ n: 4999 }) }, 'comparison.holdout'],
  ])('inconclusive on %s', (_name, patch, check) => {
    const v = decide(patch as Parameters<typeof decide>[0]);
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toContain(check);
  });

  it('lower-is-better primary metric: improvement is a decrease', () => {
    const v = decide({
      policy: { primaryMetric: 'brier', method: 'mcnemar' },
      challenger: challenger({ metrics: { brier: 0.04 } }),
      comparison: mcnemarComparison(),
    });
    expect(v.decision).toBe('promote');
    expect(reasonsText(v)).toContain('brier improvement 0.01');
  });

  it('fairness required but not measured -> inconclusive; not required -> ignored', () => {
    const noFairness = { ...challenger() };
    delete noFairness.fairness;
    const v = decide({ challenger: noFairness });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v)).toEqual(['guardrail.fairness.measured']);
    expect(
      decide({ challenger: noFairness, policy: { guardrails: { requireFairness: false } } }).decision,
    ).toBe('promote');
  });

  it('invalid inputs give inconclusive naming the field, never a throw', () => {
    const v = decide({ policy: { alpha: 2 } as GatePolicyInput });
    expect(v.decision).toBe('inconclusive');
    expect(reasonsText(v)).toContain('policy.alpha');
    const w = decidePromotion({ policy: {}, challenger: { ...challenger(), n: -1 } });
    expect(w.decision).toBe('inconclusive');
    expect(reasonsText(w)).toContain('challenger.n');
    const x = decide({ comparison: { ...bootstrap(), ciLow: Infinity } });
    expect(reasonsText(x)).toContain('comparison.ciLow');
  });
});

describe('decidePromotion for a first model (no champion)', () => {
  const first = (e: ModelEvaluation, policy: GatePolicyInput = {}) =>
    decide({ champion: null, comparison: null, challenger: e, policy });

  it('promotes when absolute minimums and absolute guardrails hold', () => {
    const v = first(evaluation({ metrics: { pr_auc: 0.35, roc_auc: 0.75 } }));
    expect(v.decision).toBe('promote');
    expect(v.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'minimum.pr_auc',
        'minimum.roc_auc',
        'guardrail.latency.p95.max',
        'guardrail.fairness.dpd.max',
      ]),
    );
    expect(reasonsText(v)).toContain('first model');
  });

  it('rejects below a minimum, naming the metric and the bar', () => {
    const v = first(evaluation({ metrics: { pr_auc: 0.25, roc_auc: 0.65 } }));
    expect(v.decision).toBe('reject');
    expect(v.reasons).toEqual([
      'pr_auc 0.25 fails the first-model bar (at least 0.3)',
      'roc_auc 0.65 fails the first-model bar (at least 0.7)',
    ]);
  });

  it('lower-is-better minimums are ceilings', () => {
    const policy = { absoluteMinimums: { ece: 0.05 } };
    expect(first(evaluation({ metrics: { ece: 0.04 } }), policy).decision).toBe('promote');
    const v = first(evaluation({ metrics: { ece: 0.06 } }), policy);
    expect(v.decision).toBe('reject');
    expect(reasonsText(v)).toContain('ece 0.06 fails the first-model bar (at most 0.05)');
  });

  it('NaN on a minimum is inconclusive', () => {
    const v = first(evaluation({ metrics: { roc_auc: NaN } }));
    expect(v.decision).toBe('inconclusive');
    expect(reasonsText(v)).toContain('challenger roc_auc is not measured');
  });

  it('absolute guardrails apply: fairness ceiling and p95 ceiling', () => {
    const v = first(evaluation({ fairness: { eod: 0.2 }, latency: { p95: 150 } }));
    expect(v.decision).toBe('reject');
    expect(failed(v).sort()).toEqual(['guardrail.fairness.eod.max', 'guardrail.latency.p95.max']);
  });

  it('small holdout is inconclusive for a first model too', () => {
    expect(first(evaluation({ n: 100, positives: 30 })).decision).toBe('inconclusive');
  });
});

describe('verdict phases (the shared check shape)', () => {
  it.each([
    ['a clear gain', {}, 'promote', 'successful'],
    [
      'a tie',
      { comparison: bootstrap({ estimate: 0.001, ciLow: -0.01, ciHigh: 0.012 }) },
      'inconclusive',
      'inconclusive',
    ],
    ['a guardrail breach', { challenger: challenger({ calibration: { ece: 0.06 } }) }, 'reject', 'failed'],
    [
      'a breach and a tie: failed is worse than inconclusive',
      {
        challenger: challenger({ calibration: { ece: 0.06 } }),
        comparison: bootstrap({ estimate: 0.001, ciLow: -0.01, ciHigh: 0.012 }),
      },
      'reject',
      'failed',
    ],
    ['an invalid input', { policy: { minImprovement: -1 } }, 'inconclusive', 'error'],
  ] as const)('%s -> %s (worst phase %s)', (_label, patch, decision, phase) => {
    const v = decide(patch as Parameters<typeof decide>[0]);
    expect(v.decision).toBe(decision);
    expect(v.phase).toBe(phase);
    expect(DECISION_BY_PHASE[v.phase]).toBe(v.decision);
  });

  it('every check is in the shared shape, passed exactly when successful, failing at its severity', () => {
    const verdicts = [
      decide(),
      decide({ challenger: challenger({ calibration: { ece: 0.06 } }), comparison: null }),
      decide({ policy: { alpha: 2 } }),
    ];
    for (const v of verdicts) {
      for (const c of v.checks) {
        expect(CheckSchema.safeParse(c).success).toBe(true);
        if (c.passed) expect(c.phase).toBe('successful');
        else if (c.name !== 'input.valid') expect(c.phase).toBe(c.severity);
        else expect(c.phase).toBe('error');
      }
      expect(v.phase).toBe(worstPhaseOf(v.checks));
    }
  });

  it('guardrail breaches are failed, missing evidence is inconclusive', () => {
    const v = decide({ challenger: challenger({ latency: { p95: 30 } }), comparison: null });
    const phaseOf = (name: string) => v.checks.find((c) => c.name === name)?.phase;
    expect(phaseOf('guardrail.latency.p95.ratio')).toBe('failed');
    expect(phaseOf('comparison.present')).toBe('inconclusive');
    expect(phaseOf('holdout.size')).toBe('successful');
  });
});

describe('summariseVerdict', () => {
  it('gives one line with the decision, the check count and every reason', () => {
    const v = decide({ challenger: challenger({ calibration: { ece: 0.06 }, latency: { p95: 40 } }) });
    const line = summariseVerdict(v);
    expect(line).not.toContain('\n');
    expect(line.startsWith('REJECT (')).toBe(true);
    expect(line).toContain(`/${v.checks.length} checks passed`);
    for (const r of v.reasons) expect(line).toContain(r);
  });

  it('summarises a promotion', () => {
    expect(summariseVerdict(decide())).toMatch(/^PROMOTE \((\d+)\/\1 checks passed\): pr_auc improvement/);
  });
});

describe('end to end: real metrics and a real bootstrap feed the gate', () => {
  function holdout(n: number, seed: number) {
    const rng = createSeededRandom(seed);
    const labels: number[] = [];
    const groups: string[] = [];
    const weak: number[] = [];
    const strong: number[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < n; i++) {
      const y = rng.nextFloat() < 0.1 ? 1 : 0;
      labels.push(y);
      groups.push(rng.nextFloat() < 0.5 ? 'g1' : 'g2');
      weak.push(Math.min(1, 0.3 * y + 0.6 * rng.nextFloat()));
      strong.push(Math.min(1, 0.5 * y + 0.5 * rng.nextFloat()));
      latencies.push(5 + 10 * rng.nextFloat());
    }
    return { labels, groups, weak, strong, latencies };
  }

  const d = holdout(3000, 17);
  const policy = GatePolicySchema.parse({
    guardrails: { maxCalibrationRegression: 0.05, maxFairnessGap: 0.2 },
  });
  const evalOf = (scores: number[]) =>
    evaluateModel({ labels: d.labels, scores, groups: d.groups, latenciesMs: d.latencies, threshold: 0.5 });

  it('a genuinely better model is promoted', () => {
    const comparison = pairedBootstrap({
      labels: d.labels,
      scoresA: d.weak,
      scoresB: d.strong,
      metric: policy.primaryMetric,
      iterations: policy.bootstrapIterations,
      seed: policy.bootstrapSeed,
      alpha: policy.alpha,
    });
    const v = decidePromotion({ policy, challenger: evalOf(d.strong), champion: evalOf(d.weak), comparison });
    expect(v.decision).toBe('promote');
  });

  it('the same model against itself is inconclusive', () => {
    const comparison = pairedBootstrap({
      labels: d.labels,
      scoresA: d.weak,
      scoresB: d.weak,
      metric: policy.primaryMetric,
      iterations: policy.bootstrapIterations,
      seed: policy.bootstrapSeed,
    });
    const v = decidePromotion({ policy, challenger: evalOf(d.weak), champion: evalOf(d.weak), comparison });
    expect(v.decision).toBe('inconclusive');
    expect(failed(v).sort()).toEqual(['primary.improvement', 'primary.significance']);
  });

  it('the worse model as challenger is rejected (McNemar at the policy threshold)', () => {
    const mcPolicy = { ...policy, method: 'mcnemar' as const };
    const comparison = mcnemar({
      labels: d.labels,
      predsA: predictAt(d.strong, mcPolicy.decisionThreshold),
      predsB: predictAt(d.weak, mcPolicy.decisionThreshold),
    });
    const v = decidePromotion({
      policy: mcPolicy,
      challenger: evalOf(d.weak),
      champion: evalOf(d.strong),
      comparison,
    });
    expect(v.decision).toBe('reject');
    expect(reasonsText(v)).toContain('significantly worse');
  });

  it('NaN scores from a broken challenger are inconclusive, after a JSON round trip', () => {
    const broken = [...d.strong];
    broken[10] = NaN;
    const comparison = pairedBootstrap({
      labels: d.labels,
      scoresA: d.weak,
      scoresB: broken,
      metric: 'pr_auc',
      seed: 1,
    });
    const json = JSON.parse(
      JSON.stringify({ challenger: evalOf(broken), champion: evalOf(d.weak), comparison }),
    );
    const v = decidePromotion({ policy, ...json });
    expect(v.decision).toBe('inconclusive');
    expect(reasonsText(v)).toContain('challenger pr_auc is not measured');
  });
});
