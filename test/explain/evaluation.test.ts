/**
 * The explain part of evaluation (src/explain/evaluation.ts) on the committed fixture models (good as the
 * challenger, weak as the champion) with a generated training snapshot and holdout, loaded as the evaluation
 * activity loads them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AttributionSummarySchema } from '../../src/core/contracts/attribution';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { loadHoldout } from '../../src/eval/holdout';
import { parseInputSchema } from '../../src/eval/score';
import { explainEvaluation } from '../../src/explain/evaluation';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';

const FIXTURES = path.join(__dirname, '../fixtures/models');
const model = (name: string) => ({
  onnx: readFileSync(path.join(FIXTURES, name, 'model.onnx')),
  schema: parseInputSchema(readFileSync(path.join(FIXTURES, name, 'input_schema.json'))),
});

const dir = mkdtempSync(path.join(os.tmpdir(), 'explain-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('explainEvaluation', () => {
  it('explains champion and challenger alike, per region, with permutation importance and drift', async () => {
    const training = path.join(dir, 'train.csv');
    const holdoutPath = path.join(dir, 'holdout.csv');
    await writeCsv(training, generateFraudDataset({ rows: 3000, seed: 21 }));
    await writeCsv(holdoutPath, generateFraudDataset({ rows: 2000, seed: 22 }));
    const holdout = await loadHoldout(holdoutPath, FRAUD_FEATURE_SPEC);
    const r = await explainEvaluation({
      models: [model('good'), model('weak')],
      holdout,
      trainingSnapshotPath: training,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(AttributionSummarySchema.parse(r.challenger)).toEqual(r.challenger);
    expect(r.challenger.method).toBe('tree-shap');
    expect(r.champion?.method).toBe('tree-shap');
    expect(r.challenger.rows).toBe(500);
    expect(r.challenger.background).toBe(100);
    expect(r.background).toHaveLength(100);
    const shares = Object.values(r.challenger.global).reduce((a, g) => a + g.share, 0);
    expect(shares).toBeCloseTo(1, 12);
    expect(Object.keys(r.challenger.bySegment).sort()).toEqual(['east', 'north', 'south', 'west']);
    // The good model ranks; the weak one (shuffled labels) learned nothing: its permutation drops are ~0.
    expect(r.challenger.permutation?.baseline).toBeGreaterThan(0.75);
    const top = Math.max(...Object.values(r.challenger.permutation?.mean ?? {}));
    const weakTop = Math.max(...Object.values(r.champion?.permutation?.mean ?? {}));
    expect(top).toBeGreaterThan(weakTop);
    expect(r.drift?.shifts).toHaveLength(3);
    // Reproducible: same seeds, same answer.
    const again = await explainEvaluation({
      models: [model('good'), model('weak')],
      holdout,
      trainingSnapshotPath: training,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(again.challenger).toEqual(r.challenger);
  });
});
