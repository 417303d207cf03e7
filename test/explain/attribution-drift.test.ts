/**
 * The attribution-drift guardrail on real models: the demo's October champion and November challenger (the
 * reference trainer's pipeline on generated data, trained by the reference script with the trainer's own code),
 * and a November challenger trained on data whose labels depend on the region itself (generator option
 * `sensitiveEffect`). The shipped fraud policy's guardrails judge them; the fairness report rides along.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { ModelPolicySchema } from '../../src/core/contracts/model-policy';
import { attributionChecks } from '../../src/core/policy/attribution';
import { fairnessGap, fairnessReport } from '../../src/core/stats/fairness';
import { parseInputSchema } from '../../src/eval/score';
import { ExplainableModel, type Row } from '../../src/explain/model';
import { rowFromFeatures } from '../../src/explain/rows';
import { explainVersions, sampleIndices, type VersionAttributions } from '../../src/explain/versions';
import { generateFraudDataset, writeCsv, type FraudRow } from '../../src/workload/generator';
import { runReference } from './helpers';

/** The demo's datasets (src/cli/demo.ts): October 2000 rows, November 16000, holdout 8000, seed 7. */
const DEMO_SEED = 7;

const policy = ModelPolicySchema.parse(
  JSON.parse(readFileSync(path.join(__dirname, '../../deploy/policies/fraud.json'), 'utf8')),
);

let dir: string;
const models: Record<string, ExplainableModel> = {};
let holdout: FraudRow[];
let ordinary: VersionAttributions;
let biased: VersionAttributions;

async function train(name: string, data: FraudRow[]): Promise<ExplainableModel> {
  const out = path.join(dir, name);
  const csv = path.join(dir, `${name}.csv`);
  await writeCsv(csv, data);
  runReference('explain_ref.py', {
    csv,
    spec: JSON.stringify(FRAUD_FEATURE_SPEC),
    out,
    background: [],
    explain: [],
    // the trainer's own training split, as the pipeline trains
    split: true,
  });
  const schema = parseInputSchema(readFileSync(path.join(out, 'input_schema.json')));
  return ExplainableModel.load(readFileSync(path.join(out, 'model.onnx')), schema);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'explain-drift-'));
  const october = generateFraudDataset({ rows: 2000, seed: DEMO_SEED });
  models.october = await train('october', october);
  models.november = await train('november', generateFraudDataset({ rows: 16000, seed: DEMO_SEED + 1 }));
  models.biased = await train(
    'biased',
    generateFraudDataset({ rows: 16000, seed: DEMO_SEED + 1, sensitiveEffect: 1 }),
  );
  holdout = generateFraudDataset({ rows: 8000, seed: DEMO_SEED + 1000 });
  const schema = models.october.schema;
  const toRow = (r: FraudRow): Row => rowFromFeatures(schema, r as unknown as Record<string, unknown>);
  const idx = sampleIndices(holdout.length, 500, 1);
  const rows = idx.map((i) => toRow(holdout[i] as FraudRow));
  const segments = idx.map((i) => (holdout[i] as FraudRow).region);
  const background = sampleIndices(october.length, 100, 2).map((i) => toRow(october[i] as FraudRow));
  ordinary = await explainVersions({
    challenger: models.november,
    champion: models.october,
    rows,
    segments,
    background,
  });
  biased = await explainVersions({
    challenger: models.biased,
    champion: models.october,
    rows,
    segments,
    background,
  });
}, 600_000);

afterAll(async () => {
  for (const m of Object.values(models)) await m.release();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const share = (v: VersionAttributions['challenger'], f: string) => v.global[f]?.share ?? NaN;

describe('attribution drift guardrail on the fraud policy', () => {
  it('the policy marks region sensitive', () => {
    expect(policy.gate.guardrails.attribution?.sensitiveFeatures).toContain('region');
  });

  it('does not fire on the ordinary November retraining', () => {
    const checks = attributionChecks(
      policy.gate.guardrails.attribution,
      ordinary.challenger,
      ordinary.champion,
    );
    console.log(
      `[explain] November vs October: region share ${share(ordinary.challenger, 'region').toFixed(4)} (champion ${share(ordinary.champion!, 'region').toFixed(4)}), rank correlation ${ordinary.drift?.rankCorrelation.toFixed(3)}, shifts ${JSON.stringify(ordinary.drift?.shifts)}`,
    );
    expect(ordinary.challenger.method).toBe('tree-shap');
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.filter((c) => !c.passed).map((c) => c.detail)).toEqual([]);
    expect(ordinary.drift?.rankCorrelation).toBeGreaterThan(0.5);
  });

  it('fires on a challenger trained where the generator makes region predictive', () => {
    const checks = attributionChecks(policy.gate.guardrails.attribution, biased.challenger, biased.champion);
    console.log(
      `[explain] biased vs October: region share ${share(biased.challenger, 'region').toFixed(4)}, shifts ${JSON.stringify(biased.drift?.shifts)}`,
    );
    const failed = checks.filter((c) => !c.passed);
    expect(failed.map((c) => c.name)).toContain('guardrail.attribution.sensitive.region');
    expect(failed[0]?.phase).toBe('inconclusive');
    expect(biased.drift?.shifts[0]?.feature).toBe('region');
  });

  it('per segment of the sensitive attribute: every region explained, rows add up', () => {
    const seg = ordinary.challenger.bySegment;
    expect(Object.keys(seg).sort()).toEqual(['east', 'north', 'south', 'west']);
    expect(Object.values(seg).reduce((a, s) => a + s.n, 0)).toBe(ordinary.challenger.rows);
  });

  it("the demo's models on its holdout: both pass the shipped policy's fairness ceiling and November does not regress", async () => {
    const schema = (models.november as ExplainableModel).schema;
    const rows = holdout.map((r) => rowFromFeatures(schema, r as unknown as Record<string, unknown>));
    const labels = holdout.map((r) => r.is_fraud);
    const groups = holdout.map((r) => r.region);
    const [nov, oct] = await Promise.all([
      (models.november as ExplainableModel).predict(rows),
      (models.october as ExplainableModel).predict(rows),
    ]);
    const report = fairnessReport({
      labels,
      scores: nov,
      championScores: oct,
      groups,
      threshold: policy.gate.decisionThreshold,
      minGroupCount: policy.gate.guardrails.fairnessMinGroupCount,
    });
    const g = policy.gate.guardrails;
    const first = fairnessReport({
      labels,
      scores: oct,
      groups,
      threshold: policy.gate.decisionThreshold,
      minGroupCount: g.fairnessMinGroupCount,
    });
    for (const m of first.metrics.filter(
      (x) => x.metric === 'demographic_parity' || x.metric === 'equal_opportunity',
    )) {
      console.log(`[explain] October (first model) ${m.metric}: ${JSON.stringify(m.gap)}`);
      expect(m.gap.ciLow as number).toBeLessThanOrEqual(g.maxFairnessGap);
    }
    for (const m of ['demographic_parity', 'equal_opportunity'] as const) {
      const gap = fairnessGap(report, m);
      console.log(
        `[explain] November ${m}: ${JSON.stringify(gap?.gap)} vs champion ${JSON.stringify(gap?.vsChampion)} groups ${gap?.judged}`,
      );
      expect(gap?.judged).toHaveLength(4);
      expect(gap?.gap.ciLow as number).toBeLessThanOrEqual(g.maxFairnessGap);
      expect(gap?.vsChampion?.ciLow as number).toBeLessThanOrEqual(g.maxFairnessRegression);
    }
  });
});
