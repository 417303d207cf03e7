/**
 * Attributions against the reference tools on the reference model: the GradientBoosting pipeline of
 * deploy/trainer/train.py (the recipe of test/fixtures/models/good), trained by the reference script with the
 * trainer's own code on generated data and exported by skl2onnx; both sides explain that exported model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { parseInputSchema } from '../../src/eval/score';
import { kernelShap } from '../../src/explain/kernel-shap';
import { ExplainableModel, type Row } from '../../src/explain/model';
import { permutationImportance } from '../../src/explain/permutation';
import { rowFromFeatures } from '../../src/explain/rows';
import { treeMargin } from '../../src/explain/tree-ensemble';
import { treeShapRows } from '../../src/explain/tree-shap';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';
import { runReference } from './helpers';

/** The fixture models' recipe (test/fixtures/models/make_models.py). */
const HYPERPARAMS = { n_estimators: 60, max_depth: 3 };
const BACKGROUND = Array.from({ length: 50 }, (_, i) => i);
const EXPLAIN = Array.from({ length: 10 }, (_, i) => 100 + i);
const PERMUTATION = Array.from({ length: 3000 }, (_, i) => 1000 + i);
/** Budget below 2^9 - 2 = 510: coalitions are sampled. */
const SAMPLED_BUDGET = 64;
const SEEDS = [1, 2, 3];
const REPEATS = 10;

interface Reference {
  tree: { values: number[][]; expected: number; margin: number[] };
  kernel: Array<{ nsamples: number; seed: number; values: number[][]; expected: number }>;
  permutation: { mean: number[]; std: number[] };
}

let dir: string;
let ref: Reference;
let model: ExplainableModel;
let rows: Row[];
let labels: number[];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'explain-ref-'));
  const data = generateFraudDataset({ rows: 4000, seed: 5 });
  const csv = path.join(dir, 'train.csv');
  await writeCsv(csv, data);
  ref = runReference<Reference>('explain_ref.py', {
    csv,
    spec: JSON.stringify(FRAUD_FEATURE_SPEC),
    out: dir,
    hyperparams: HYPERPARAMS,
    background: BACKGROUND,
    explain: EXPLAIN,
    permutation: PERMUTATION,
    repeats: REPEATS,
    tree: true,
    kernel: [{ nsamples: 2066, seed: 1 }, ...SEEDS.map((seed) => ({ nsamples: SAMPLED_BUDGET, seed }))],
  });
  const schema = parseInputSchema(readFileSync(path.join(dir, 'input_schema.json')));
  model = await ExplainableModel.load(readFileSync(path.join(dir, 'model.onnx')), schema);
  rows = data.map((r) => rowFromFeatures(schema, r as unknown as Record<string, unknown>));
  labels = data.map((r) => r.is_fraud);
});

afterAll(async () => {
  await model?.release();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pick = (idx: number[]) => idx.map((i) => rows[i] as Row);
const maxAbsDiff = (a: ArrayLike<number>[], b: number[][]) => {
  let m = 0;
  a.forEach((row, i) => {
    for (let j = 0; j < row.length; j++)
      m = Math.max(m, Math.abs((row[j] as number) - ((b[i] as number[])[j] as number)));
  });
  return m;
};
const meanAbsDiff = (a: ArrayLike<number>[], b: ArrayLike<number>[]) => {
  let s = 0;
  let n = 0;
  a.forEach((row, i) => {
    for (let j = 0; j < row.length; j++) {
      s += Math.abs((row[j] as number) - ((b[i] as ArrayLike<number>)[j] as number));
      n++;
    }
  });
  return s / n;
};

describe('TreeSHAP from the ONNX graph', () => {
  it('reads the skl2onnx tree ensemble and its column owners (one-hot blocks belong to their input)', () => {
    expect(model.tree?.ensemble.trees).toHaveLength(HYPERPARAMS.n_estimators);
    expect(model.tree?.ensemble.postTransform).toBe('LOGISTIC');
    const owners = Array.from(model.tree?.owner ?? []);
    const names = owners.map((o) => model.features[o]);
    expect(names.slice(0, 7)).toEqual([
      'amount',
      'hour_of_day',
      'customer_age_days',
      'txn_count_24h',
      'distance_from_home_km',
      'card_present',
      'device_risk_score',
    ]);
    expect(names.filter((n) => n === 'merchant_category')).toHaveLength(9);
    expect(names.filter((n) => n === 'region')).toHaveLength(5);
  });

  it('matches shap.TreeExplainer (interventional, raw margin) to 1e-6 and sums to margin minus expected value', async () => {
    const ours = await treeShapRows(model, pick(EXPLAIN), pick(BACKGROUND), 'columns');
    expect(ours.values).toHaveLength(EXPLAIN.length);
    const diff = maxAbsDiff(ours.values, ref.tree.values);
    expect(diff).toBeLessThan(1e-6);
    expect(Math.abs(ours.expectedValue - ref.tree.expected)).toBeLessThan(1e-6);
    ours.values.forEach((v, i) => {
      const sum = v.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - ((ours.margins[i] as number) - ours.expectedValue))).toBeLessThan(1e-9);
      expect(Math.abs((ours.margins[i] as number) - (ref.tree.margin[i] as number))).toBeLessThan(1e-5);
    });
    console.log(
      `[explain] TreeSHAP vs shap.TreeExplainer: max |diff| ${diff.toExponential(2)} over ${EXPLAIN.length}x${ours.players.length} values`,
    );
  });

  it('per input feature: the exact Shapley values of the grouped game (brute force over all 2^9 coalitions)', async () => {
    const x = pick(EXPLAIN.slice(0, 3));
    const bg = pick(BACKGROUND.slice(0, 20));
    const ours = await treeShapRows(model, x, bg, 'features');
    const tree = model.tree;
    if (!tree) throw new Error('no tree');
    const [tx, tb] = await Promise.all([model.transform(x), model.transform(bg)]);
    const F = model.features.length;
    const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));
    tx.forEach((xr, r) => {
      const v = (S: number) => {
        let s = 0;
        for (const b of tb) {
          const h = Float32Array.from(b, (bv, c) =>
            S & (1 << (tree.owner[c] as number)) ? (xr[c] as number) : bv,
          );
          s += treeMargin(tree.ensemble, h);
        }
        return s / tb.length;
      };
      const values = new Float64Array(1 << F);
      for (let S = 0; S < 1 << F; S++) values[S] = v(S);
      for (let i = 0; i < F; i++) {
        let phi = 0;
        for (let S = 0; S < 1 << F; S++) {
          if (S & (1 << i)) continue;
          let size = 0;
          for (let m = S; m; m &= m - 1) size++;
          phi +=
            ((fact(size) * fact(F - size - 1)) / fact(F)) *
            ((values[S | (1 << i)] as number) - (values[S] as number));
        }
        expect(Math.abs(phi - ((ours.values[r] as Float64Array)[i] as number))).toBeLessThan(1e-9);
      }
    });
  });
});

describe('KernelSHAP', () => {
  it('with a budget covering every coalition: matches shap.KernelExplainer to 1e-6 (both exact), tree and onnxruntime value functions agree', async () => {
    const full = ref.kernel[0];
    if (!full) throw new Error('no full-budget reference');
    const ort = await kernelShap(model, pick(EXPLAIN), pick(BACKGROUND), {
      nsamples: 2066,
      valueFunction: 'onnxruntime',
    });
    const tree = await kernelShap(model, pick(EXPLAIN), pick(BACKGROUND), {
      nsamples: 2066,
      valueFunction: 'tree',
    });
    expect(ort.coalitions.every((c) => c === 510)).toBe(true);
    const diff = maxAbsDiff(ort.values, full.values);
    expect(diff).toBeLessThan(1e-6);
    expect(Math.abs(ort.expectedValue - full.expected)).toBeLessThan(1e-7);
    expect(
      maxAbsDiff(
        tree.values,
        ort.values.map((v) => Array.from(v)),
      ),
    ).toBeLessThan(1e-6);
    ort.values.forEach((v, i) => {
      const sum = v.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - ((ort.predictions[i] as number) - ort.expectedValue))).toBeLessThan(1e-9);
    });
    console.log(`[explain] KernelSHAP (all 510 coalitions) vs shap: max |diff| ${diff.toExponential(2)}`);
  });

  it(`with a sampled budget (${SAMPLED_BUDGET} coalitions): within shap's own sampling error of the exact values`, async () => {
    const exact = (ref.kernel[0] as Reference['kernel'][number]).values;
    const theirs = ref.kernel.slice(1).map((k) => k.values);
    const ours = [];
    for (const seed of SEEDS) {
      ours.push(
        (await kernelShap(model, pick(EXPLAIN), pick(BACKGROUND), { nsamples: SAMPLED_BUDGET, seed })).values,
      );
    }
    const errOurs = ours.map((v) => meanAbsDiff(v, exact)).reduce((a, b) => a + b, 0) / ours.length;
    const errTheirs = theirs.map((v) => meanAbsDiff(v, exact)).reduce((a, b) => a + b, 0) / theirs.length;
    const between = meanAbsDiff(ours[0] as Float64Array[], theirs[0] as number[][]);
    const spreadTheirs = meanAbsDiff(theirs[0] as number[][], theirs[1] as number[][]);
    console.log(
      `[explain] KernelSHAP at ${SAMPLED_BUDGET} coalitions: mean |err| vs exact ours ${errOurs.toExponential(2)}, shap ${errTheirs.toExponential(2)}; ours-vs-shap ${between.toExponential(2)}, shap-vs-shap (two seeds) ${spreadTheirs.toExponential(2)}`,
    );
    expect(errOurs).toBeGreaterThan(0);
    expect(errOurs).toBeLessThan(1.5 * errTheirs);
    expect(between).toBeLessThan(1.5 * spreadTheirs);
  });
});

describe('permutation importance', () => {
  it("matches scikit-learn's permutation_importance (roc_auc) within the repeats' sampling error", async () => {
    const ours = await permutationImportance(
      model,
      pick(PERMUTATION),
      PERMUTATION.map((i) => labels[i] as number),
      {
        repeats: REPEATS,
        scoring: 'roc_auc',
      },
    );
    let checked = 0;
    model.features.forEach((f, j) => {
      const se = Math.sqrt(
        ((ours.std[j] as number) ** 2 + (ref.permutation.std[j] as number) ** 2) / REPEATS,
      );
      const diff = Math.abs((ours.mean[j] as number) - (ref.permutation.mean[j] as number));
      expect(diff, `${f}: ours ${ours.mean[j]} sklearn ${ref.permutation.mean[j]} (se ${se})`).toBeLessThan(
        4 * se + 2e-3,
      );
      checked++;
    });
    expect(checked).toBe(9);
    // The ranking agrees on the model's most important feature.
    const top = (v: ArrayLike<number>) => Array.from(v).indexOf(Math.max(...Array.from(v)));
    expect(top(ours.mean)).toBe(top(ref.permutation.mean));
  });
});
