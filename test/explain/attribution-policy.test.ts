import { describe, expect, it } from 'vitest';
import type { AttributionSummary } from '../../src/core/contracts/attribution';
import { attributionChecks, attributionDrift, spearman } from '../../src/core/policy/attribution';

function summary(shares: Record<string, number>): AttributionSummary {
  const features = Object.keys(shares);
  const global = Object.fromEntries(
    features.map((f) => [f, { meanAbs: shares[f] as number, share: shares[f] as number }]),
  );
  return {
    method: 'tree-shap',
    output: 'margin',
    features,
    rows: 100,
    background: 50,
    seed: 1,
    global,
    bySegment: {},
  };
}

const champion = summary({ device: 0.5, amount: 0.3, hour: 0.17, region: 0.02, distance: 0.01 });

describe('spearman', () => {
  it.each([
    { a: [1, 2, 3], b: [10, 20, 30], want: 1 },
    { a: [1, 2, 3], b: [3, 2, 1], want: -1 },
    { a: [1, 2, 3, 4], b: [1, 3, 2, 4], want: 0.8 },
    { a: [1, 1, 2], b: [1, 2, 3], want: Math.sqrt(3) / 2 },
  ])('$a vs $b -> $want', ({ a, b, want }) => {
    expect(spearman(a, b)).toBeCloseTo(want, 12);
  });
  it.each([
    { a: [1], b: [1] },
    { a: [1, 1], b: [1, 2] },
    { a: [1, 2], b: [1] },
  ])('undefined for $a vs $b', ({ a, b }) => {
    expect(Number.isNaN(spearman(a, b))).toBe(true);
  });
});

describe('attributionDrift', () => {
  it('same importances: correlation 1, no shift', () => {
    const d = attributionDrift(champion, champion);
    expect(d.rankCorrelation).toBe(1);
    expect(d.shifts.every((s) => s.change === 0)).toBe(true);
  });
  it('lists the features whose share changed most, largest first', () => {
    const c = summary({ device: 0.3, amount: 0.3, hour: 0.1, region: 0.29, distance: 0.01 });
    const d = attributionDrift(champion, c, 2);
    expect(d.shifts.map((s) => s.feature)).toEqual(['region', 'device']);
    expect(d.shifts[0]?.change).toBeCloseTo(0.27, 12);
    expect(d.rankCorrelation).toBeLessThan(1);
  });
  it('compares only the features both models have', () => {
    const c = summary({ device: 0.6, amount: 0.4 });
    expect(
      attributionDrift(champion, c)
        .shifts.map((s) => s.feature)
        .sort(),
    ).toEqual(['amount', 'device']);
  });
});

describe('attributionChecks', () => {
  const policy = {
    sensitiveFeatures: ['region'],
    proxyFeatures: ['distance'],
    maxSensitiveShare: 0.05,
    maxProxyShareIncrease: 0.1,
  };
  it.each([
    {
      name: 'no policy: nothing judged',
      policy: undefined,
      shares: { region: 0.9 },
      failing: [] as string[],
    },
    {
      name: 'sensitive share within the bound',
      policy,
      shares: { region: 0.05, distance: 0.01 },
      failing: [],
    },
    {
      name: 'sensitive share above the bound',
      policy,
      shares: { region: 0.051, distance: 0.01 },
      failing: ['guardrail.attribution.sensitive.region'],
    },
    {
      name: 'proxy share rose by the allowed amount',
      policy,
      shares: { region: 0.01, distance: 0.11 },
      failing: [],
    },
    {
      name: 'proxy share rose beyond it',
      policy,
      shares: { region: 0.01, distance: 0.12 },
      failing: ['guardrail.attribution.proxy.distance'],
    },
    {
      name: 'both',
      policy,
      shares: { region: 0.3, distance: 0.3 },
      failing: ['guardrail.attribution.sensitive.region', 'guardrail.attribution.proxy.distance'],
    },
    {
      name: 'a policy feature the model lacks is not judged',
      policy: { sensitiveFeatures: ['gender'] },
      shares: { region: 0.9 },
      failing: [],
    },
  ])('$name', ({ policy: p, shares, failing }) => {
    const checks = attributionChecks(
      p,
      summary({ device: 0.5, ...(shares as Record<string, number>) }),
      champion,
    );
    const failed = checks.filter((c) => !c.passed);
    expect(failed.map((c) => c.name)).toEqual(failing);
    for (const c of failed) {
      expect(c.phase).toBe('inconclusive');
      expect(c.detail).toMatch(/^requires review/);
    }
  });
  it('without a champion a proxy share is judged against zero', () => {
    const checks = attributionChecks(policy, summary({ region: 0.01, distance: 0.2 }), undefined);
    expect(checks.find((c) => c.name === 'guardrail.attribution.proxy.distance')?.passed).toBe(false);
  });
  it('missing attributions: review only when the policy requires them', () => {
    expect(attributionChecks(policy, undefined, champion)).toEqual([]);
    const [c] = attributionChecks({ ...policy, requireAttributions: true }, undefined, champion);
    expect(c?.phase).toBe('inconclusive');
  });
  it('an invalid policy is an error check naming the field', () => {
    const [c] = attributionChecks({ maxSensitiveShare: 2 }, summary({ region: 0 }), champion);
    expect(c?.phase).toBe('error');
    expect(c?.detail).toMatch(/maxSensitiveShare/);
  });
});
