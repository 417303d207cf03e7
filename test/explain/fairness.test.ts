import { describe, expect, it } from 'vitest';
import { FAIRNESS_METRICS } from '../../src/core/contracts/fairness';
import { fairnessGap, fairnessReport } from '../../src/core/stats/fairness';
import { createSeededRandom } from '../../src/core/stats/random';
import { runReference } from './helpers';

interface Case {
  labels: number[];
  scores: number[];
  groups: string[];
  threshold: number;
}

/** A generated case: groups of different sizes, base rates and score shifts, every rate defined. */
function generate(seed: number): Case {
  const rng = createSeededRandom(seed);
  const groupCount = 2 + rng.nextInt(4);
  const labels: number[] = [];
  const scores: number[] = [];
  const groups: string[] = [];
  for (let g = 0; g < groupCount; g++) {
    const n = 60 + rng.nextInt(400);
    const base = 0.05 + 0.4 * rng.nextFloat();
    const shift = 0.3 * (rng.nextFloat() - 0.5);
    for (let i = 0; i < n; i++) {
      const y = rng.nextFloat() < base ? 1 : 0;
      const s = Math.min(1, Math.max(0, (y ? 0.6 : 0.3) + shift + 0.5 * (rng.nextFloat() - 0.5)));
      labels.push(y);
      scores.push(s);
      groups.push(`g${g}`);
    }
    // Every rate defined: at least one of each label and both sides of the threshold in every group.
    labels.push(1, 1, 0, 0);
    scores.push(0.9, 0.1, 0.9, 0.1);
    groups.push(`g${g}`, `g${g}`, `g${g}`, `g${g}`);
  }
  return { labels, scores, groups, threshold: 0.3 + 0.3 * rng.nextFloat() };
}

interface FairlearnCase {
  groups: Record<string, Record<string, number>>;
  demographic_parity: number;
  equal_opportunity: number;
  equalized_odds: number;
  predictive_parity: number;
  calibration: number;
}

describe('fairness report against fairlearn', () => {
  it('per-group rates and the five gaps match fairlearn on generated cases to 1e-9', () => {
    const cases = Array.from({ length: 12 }, (_, k) => generate(1000 + k));
    const reference = runReference<FairlearnCase[]>('fairness_ref.py', { cases });
    expect(reference).toHaveLength(cases.length);
    let compared = 0;
    cases.forEach((c, k) => {
      const ours = fairnessReport({ ...c, minGroupCount: 1, iterations: 50 });
      const ref = reference[k] as FairlearnCase;
      expect(Object.keys(ours.groups)).toEqual(Object.keys(ref.groups).sort());
      for (const [g, row] of Object.entries(ref.groups)) {
        const mine = ours.groups[g];
        for (const key of ['selectionRate', 'tpr', 'fpr', 'ppv', 'calibrationInTheLarge', 'brier'] as const) {
          expect(Math.abs((mine?.[key] as number) - (row[key] as number)), `${k}/${g}/${key}`).toBeLessThan(
            1e-9,
          );
          compared++;
        }
      }
      for (const metric of FAIRNESS_METRICS) {
        const gap = fairnessGap(ours, metric)?.gap.estimate as number;
        expect(Math.abs(gap - ref[metric]), `${k}/${metric}`).toBeLessThan(1e-9);
        compared++;
      }
    });
    expect(compared).toBeGreaterThan(12 * 5);
  });
});

describe('fairness report: counts, intervals, champion', () => {
  const base = generate(7);

  it('a group below the minimum count is too small to judge and left out of the gap', () => {
    const labels = [...base.labels, 1, 0, 0];
    const scores = [...base.scores, 0.0, 1.0, 1.0];
    const groups = [...base.groups, 'tiny', 'tiny', 'tiny'];
    const r = fairnessReport({
      labels,
      scores,
      groups,
      threshold: base.threshold,
      minGroupCount: 5,
      iterations: 200,
    });
    for (const m of r.metrics) {
      expect(m.tooSmall).toContain('tiny');
      expect(m.judged).not.toContain('tiny');
    }
    const withTiny = fairnessReport({
      labels,
      scores,
      groups,
      threshold: base.threshold,
      minGroupCount: 1,
      iterations: 10,
    });
    // With the tiny group judged, its TPR of 0 and selection rate of 2/3 widen the gaps.
    expect(fairnessGap(withTiny, 'equal_opportunity')?.gap.estimate).toBeGreaterThan(
      fairnessGap(r, 'equal_opportunity')?.gap.estimate as number,
    );
    expect(r.groups.tiny).toMatchObject({ n: 3, positives: 1, negatives: 2, predictedPositives: 2 });
  });

  it('fewer than two judgeable groups: the gap is not measured', () => {
    const r = fairnessReport({ ...base, minGroupCount: 100_000, iterations: 20 });
    for (const m of r.metrics) {
      expect(m.judged).toHaveLength(0);
      expect(Number.isNaN(m.gap.estimate)).toBe(true);
    }
  });

  it('intervals are reproducible, contain the estimate and narrow with more data', () => {
    const a = fairnessReport({ ...base, iterations: 400, seed: 3 });
    const b = fairnessReport({ ...base, iterations: 400, seed: 3 });
    expect(a).toEqual(b);
    for (const m of a.metrics) {
      expect(m.gap.validIterations).toBeGreaterThan(350);
      expect(m.gap.ciLow as number).toBeLessThanOrEqual(m.gap.ciHigh as number);
      expect(m.rule).toMatch(/percentile interval of 400 bootstrap resamples/);
    }
    const rep = (x: number[]) => [...x, ...x, ...x, ...x, ...x, ...x, ...x, ...x, ...x];
    const big = fairnessReport({
      labels: rep(base.labels),
      scores: rep(base.scores),
      groups: [
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
        ...base.groups,
      ],
      threshold: base.threshold,
      iterations: 400,
      seed: 3,
    });
    const width = (r: typeof a) => {
      const g = fairnessGap(r, 'demographic_parity')?.gap;
      return (g?.ciHigh as number) - (g?.ciLow as number);
    };
    expect(width(big)).toBeLessThan(width(a) * 0.6);
  });

  it('the change against the champion is paired: identical scores give a zero-width interval at 0', () => {
    const r = fairnessReport({ ...base, championScores: base.scores, iterations: 200 });
    for (const m of r.metrics) {
      expect(m.vsChampion?.estimate).toBe(0);
      expect(m.vsChampion?.ciLow).toBe(0);
      expect(m.vsChampion?.ciHigh).toBe(0);
    }
    // A champion whose scores favour one group: the challenger's gap change is negative, its interval too.
    const unfair = base.scores.map((s, i) => (base.groups[i] === 'g0' ? Math.min(1, s + 0.3) : s));
    const fairer = fairnessReport({ ...base, championScores: unfair, iterations: 300 });
    const dp = fairnessGap(fairer, 'demographic_parity')?.vsChampion;
    expect(dp?.estimate as number).toBeLessThan(0);
    expect(dp?.ciHigh as number).toBeLessThan(0);
  });

  it('refuses structural errors naming the field', () => {
    expect(() => fairnessReport({ ...base, groups: base.groups.slice(1) })).toThrow(/groups/);
    expect(() => fairnessReport({ ...base, labels: base.labels.map(() => 2) })).toThrow(/labels\[0\]/);
    expect(() => fairnessReport({ ...base, scores: base.scores.map(() => NaN) })).toThrow(/scores\[0\]/);
  });
});
