/**
 * Inference batching (src/gateway/batching.ts) over real onnxruntime sessions: the reference trainer's
 * fraud model (trained here through the real MLflow and Python of the test stack), and a model built
 * here with a fixed batch dimension of 1, which cannot be batched.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { FeatureSpecSchema } from '../../src/core/contracts/feature-spec';
import { parseInputSchema } from '../../src/eval/score';
import {
  checkRows,
  enableBatching,
  InferenceBatcher,
  predictOne,
  type BatchableModel,
} from '../../src/gateway/batching';
import { MODEL_FOLDER } from '../../src/gateway/models';
import { MlflowClient } from '../../src/mlflow';
import { fraudFeatures, trainedModelFiles } from './fixtures';

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
};

/** Lets every immediate queued so far run (a batch opened now has been called by then). */
const nextTurn = () => new Promise((r) => setImmediate(r));

describe('inference batching', () => {
  let fraud: BatchableModel & { spec: typeof FRAUD_FEATURE_SPEC };
  const rows = fraudFeatures(80, 4242);
  let single: number[];
  let onnxBytes: Buffer;

  beforeAll(async () => {
    const mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    const files = await trainedModelFiles(mlflow, inject('pythonBin'), 31);
    const file = (name: string) => files.find((f) => f.path === `${MODEL_FOLDER}/${name}`)?.content as Buffer;
    onnxBytes = file('model.onnx');
    fraud = {
      name: 'fraud',
      version: '1',
      session: await ort.InferenceSession.create(file('model.onnx'), SESSION_OPTIONS),
      schema: parseInputSchema(file('input_schema.json')),
      spec: FRAUD_FEATURE_SPEC,
    };
    single = [];
    for (const r of rows) single.push(await predictOne(fraud, r));
  });

  afterAll(async () => {
    await fraud?.session.release();
  });

  it('answers the predictions of one turn with one call per batch, each exactly as a call of its own would', async () => {
    const sizes: number[] = [];
    const batcher = await enableBatching(fraud, 32, (n) => sizes.push(n));
    expect(batcher).toBeInstanceOf(InferenceBatcher);
    expect(sizes).toEqual([]); // the load-time check's batch is not counted as traffic
    const scores = await Promise.all(rows.map((r) => (batcher as InferenceBatcher).predict(r)));
    expect(scores).toEqual(single);
    // 80 predictions asked for in one turn: batches of at most 32, in order.
    expect(sizes).toEqual([32, 32, 16]);
  });

  it('never holds a prediction back for a batch to fill: one asked for per turn runs alone', async () => {
    const sizes: number[] = [];
    const batcher = new InferenceBatcher(fraud, 32, (n) => sizes.push(n));
    for (let i = 0; i < 5; i++) {
      expect(await batcher.predict(rows[i] as (typeof rows)[number])).toBe(single[i]);
    }
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
  });

  it('keeps the batches of different turns apart', async () => {
    const sizes: number[] = [];
    const batcher = new InferenceBatcher(fraud, 32, (n) => sizes.push(n));
    const first = rows.slice(0, 7).map((r) => batcher.predict(r));
    await nextTurn();
    const second = rows.slice(7, 10).map((r) => batcher.predict(r));
    expect(await Promise.all([...first, ...second])).toEqual(single.slice(0, 10));
    expect(sizes).toEqual([7, 3]);
  });

  it('checks at load on rows at the bounds of each feature, between them, missing and unseen', () => {
    const check = checkRows(fraud.spec);
    expect(check).toHaveLength(4);
    for (const f of fraud.spec.features) {
      const values = check.map((r) => r[f.name]);
      if (f.kind === 'numeric') {
        const lo = f.min ?? 0;
        const hi = f.max ?? lo + 1;
        expect(values).toEqual([lo, hi, (lo + hi) / 2, null]);
      } else {
        expect(values).toEqual([f.categories[0], f.categories[f.categories.length - 1], null, '']);
      }
    }
  });

  it('is off with maxBatch 1', async () => {
    expect(await enableBatching(fraud, 1)).toBeUndefined();
  });

  it('rejects every waiting prediction, none left hanging, when the session can no longer run', async () => {
    const own = await ort.InferenceSession.create(onnxBytes, SESSION_OPTIONS);
    const model = { ...fraud, session: own };
    const batcher = new InferenceBatcher(model, 32);
    expect(await batcher.predict(rows[0] as (typeof rows)[number])).toBe(single[0]);
    await own.release();
    const results = await Promise.allSettled(rows.slice(0, 6).map((r) => batcher.predict(r)));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('rejected'));
  });

  let fixedDir: string | undefined;
  afterAll(() => {
    if (fixedDir) rmSync(fixedDir, { recursive: true, force: true });
  });

  it('stays off for a model whose batch dimension is fixed; a failed batch is retried row by row', async () => {
    fixedDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-batching-'));
    const onnxFile = path.join(fixedDir, 'fixed.onnx');
    // probabilities = [1 - x, x] for one row of shape [1, 1], written with the onnx package.
    execFileSync(inject('pythonBin'), [
      '-c',
      [
        'import sys, onnx',
        'from onnx import helper, TensorProto',
        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1])",
        "p = helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, [1, 2])",
        "one = helper.make_tensor('one', TensorProto.FLOAT, [1, 1], [1.0])",
        "g = helper.make_graph([helper.make_node('Sub', ['one', 'x'], ['neg']), helper.make_node('Concat', ['neg', 'x'], ['probabilities'], axis=1)], 'fixed', [x], [p], [one])",
        "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])",
        'm.ir_version = 8',
        'onnx.save(m, sys.argv[1])',
      ].join('\n'),
      onnxFile,
    ]);
    const spec = FeatureSpecSchema.parse({
      name: 'fixed',
      version: '1',
      label: { column: 'y', positiveValue: 1, negativeValue: 0 },
      features: [{ name: 'x', kind: 'numeric', min: 0, max: 1 }],
    });
    const model = {
      name: 'fixed',
      version: '1',
      session: await ort.InferenceSession.create(readFileSync(onnxFile), SESSION_OPTIONS),
      schema: parseInputSchema(
        Buffer.from(
          JSON.stringify({
            inputs: [{ name: 'x', kind: 'numeric', dtype: 'float32', order: 0 }],
            probabilityOutput: 'probabilities',
            positiveClassIndex: 1,
          }),
        ),
      ),
      spec,
    };
    try {
      expect(await enableBatching(model, 32)).toBeUndefined();
      const scores = await Promise.all([0.25, 0.5].map((x) => predictOne(model, { x })));
      expect(scores).toEqual([0.25, 0.5]);
      // A batcher made anyway: its batch of two fails, and each row is retried in a call of its own.
      const sizes: number[] = [];
      const forced = new InferenceBatcher(model, 32, (n) => sizes.push(n));
      expect(await Promise.all([0.25, 0.5].map((x) => forced.predict({ x })))).toEqual([0.25, 0.5]);
      expect(sizes).toEqual([2]);
    } finally {
      await model.session.release();
    }
  });
});
