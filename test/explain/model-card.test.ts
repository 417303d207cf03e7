import { describe, expect, it } from 'vitest';
import type { AttributionSummary } from '../../src/core/contracts/attribution';
import type { ModelCard } from '../../src/core/contracts/model-card';
import { fairnessReport } from '../../src/core/stats/fairness';
import { evaluateModel } from '../../src/core/stats/metrics';
import { renderModelCard } from '../../src/eval/model-card';

function attribution(region: number): AttributionSummary {
  const shares = { device_risk_score: 0.6 - region, amount: 0.4, region };
  const global = Object.fromEntries(
    Object.entries(shares).map(([f, s]) => [f, { meanAbs: s / 10, share: s }]),
  );
  return {
    method: 'tree-shap',
    output: 'margin',
    features: Object.keys(shares),
    rows: 40,
    background: 20,
    seed: 1,
    global,
    bySegment: { north: { n: 20, global }, south: { n: 20, global } },
  };
}

describe('model card: fairness report and attributions', () => {
  it('renders every gap with its interval, counts and too-small groups, and the attributions with their drift', () => {
    const labels = Array.from({ length: 400 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const scores = labels.map((y, i) => (y ? 0.7 : 0.2) + ((i * 37) % 10) / 40);
    const groups = labels.map((_, i) => (i < 390 ? (i % 2 ? 'north' : 'south') : 'tiny'));
    const challenger = evaluateModel({ labels, scores, groups, latenciesMs: [0.1], threshold: 0.5 });
    const champion = evaluateModel({ labels, scores, groups, latenciesMs: [0.1], threshold: 0.5 });
    challenger.fairness!.report = fairnessReport({
      labels,
      scores,
      championScores: scores,
      groups,
      threshold: 0.5,
      iterations: 50,
    });
    challenger.attribution = attribution(0.2);
    champion.attribution = attribution(0.01);
    const card: ModelCard = {
      model: 'fraud',
      version: '2',
      runId: 'r',
      workflowId: 'w',
      generatedAt: '2026-12-01T00:00:00Z',
      intendedUse: 'testing',
      featureSpec: 'fraud@1',
      trigger: 'manual',
      data: { training: { uri: 'file:///t.csv', sha256: 'ab' } },
      primaryMetric: 'pr_auc',
      challenger,
      champion: { version: '1', evaluation: champion },
      limitations: [],
    };
    const md = renderModelCard(card);
    expect(md).toContain('### Fairness report');
    for (const m of [
      'demographic_parity',
      'equal_opportunity',
      'equalized_odds',
      'predictive_parity',
      'calibration',
    ])
      expect(md).toMatch(new RegExp(`\\| ${m} \\(`));
    expect(md).toMatch(
      /\| equal_opportunity \(positives\) \| [0-9.]+ \| [0-9.]+ to [0-9.]+ \| 0\.0000 \(champion [0-9.]+\) \| 0\.0000 to 0\.0000 \| north, south \| tiny \|/,
    );
    expect(md).toContain('## Attributions');
    expect(md).toMatch(/\| region \| 0\.200 \| 0\.0200 \| 0\.010 \| \+0\.190 \| {2}\|/);
    expect(md).toMatch(
      /Spearman rank correlation 0\.500; largest shifts device_risk_score -0\.190, region \+0\.190/,
    );
    expect(md).toContain('north (n=20)');
  });
});
