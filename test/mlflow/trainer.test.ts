/**
 * The reference trainer against a real MLflow server: it honours the job contract (environment in,
 * params / metrics / ONNX model out into the given run), and the ONNX model it logs scores a fresh dataset
 * with onnxruntime-node through the documented input signature far better than the base rate.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { MlflowClient } from '../../src/mlflow';
import { generateFraudDataset, writeCsv, type FraudRow } from '../../src/workload/generator';

const TRAINER = path.resolve('deploy/trainer/train.py');
const EXPERIMENT = 'trainer-contract-test';
const TRAIN_ROWS = 4000;
const HOLDOUT_ROWS = 4000;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function python(): string {
  return process.env.MLOPS_PYTHON ?? inject('pythonBin');
}

/** Runs the trainer with only the contract's variables (plus PATH/HOME) so nothing leaks in from the test. */
function runTrainer(env: Record<string, string>, timeoutMs = 110_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), [TRAINER], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Average precision (area under the precision-recall curve, step-wise). */
function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number),
  );
  const positives = Array.from(labels).reduce((s, y) => s + y, 0);
  let tp = 0;
  let ap = 0;
  order.forEach((idx, k) => {
    if (labels[idx] === 1) {
      tp += 1;
      ap += tp / (k + 1) / positives;
    }
  });
  return ap;
}

interface SchemaInput {
  name: string;
  kind: 'numeric' | 'categorical';
  dtype: 'float32' | 'string';
  shape: Array<number | null>;
  order: number;
}

describe('reference trainer (deploy/trainer/train.py)', () => {
  let dir: string;
  let client: MlflowClient;
  let experimentId: string;
  let trainPath: string;
  let holdout: FraudRow[];
  let contract: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-trainer-test-'));
    client = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    experimentId = await client.getOrCreateExperiment(EXPERIMENT);
    trainPath = path.join(dir, 'train.csv');
    await writeCsv(trainPath, generateFraudDataset({ rows: TRAIN_ROWS, seed: 21 }));
    holdout = generateFraudDataset({ rows: HOLDOUT_ROWS, seed: 22 });
    contract = {
      MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
      MLOPS_DATASET_PATH: trainPath,
      MLOPS_DATASET_SHA256: sha256(trainPath),
      MLOPS_FEATURE_SPEC: JSON.stringify(FRAUD_FEATURE_SPEC),
      MLOPS_ARTIFACT_PATH: 'model',
      MLOPS_SEED: '5',
      MLOPS_HYPERPARAMS: JSON.stringify({ n_estimators: 150 }),
    };
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('trains, logs into the given run and exports an ONNX model that scores new data', async () => {
    const run = await client.createRun({ experimentId, runName: 'trainer-ok' });
    const runId = run.info.runId;
    const exit = await runTrainer({ ...contract, MLFLOW_RUN_ID: runId });
    expect(exit.stderr, exit.stderr).not.toMatch(/^trainer: /m);
    expect(exit.code, `stdout:\n${exit.stdout}\nstderr:\n${exit.stderr}`).toBe(0);
    expect(exit.stdout).toMatch(/trainer: ONNX parity on \d+ rows/);

    // Params, metrics and status are in the run we created: no new run.
    const logged = await client.getRun(runId);
    expect(logged.info.status).toBe('FINISHED');
    const { params, metrics } = logged.data;
    expect(params.dataset_sha256).toBe(contract.MLOPS_DATASET_SHA256);
    expect(params.feature_spec_name).toBe(FRAUD_FEATURE_SPEC.name);
    expect(params.feature_spec_version).toBe(FRAUD_FEATURE_SPEC.version);
    expect(params.n_estimators).toBe('150');
    expect(params.backend).toBe('sklearn');
    expect(Number(params.train_rows) + Number(params.validation_rows)).toBe(TRAIN_ROWS);
    for (const key of ['val_roc_auc', 'val_pr_auc', 'val_brier', 'val_positive_rate', 'train_time_seconds']) {
      expect(metrics[key], key).toBeTypeOf('number');
    }
    const baseRate = metrics.val_positive_rate as number;
    expect(baseRate).toBeGreaterThan(0.01);
    expect(metrics.val_roc_auc).toBeGreaterThan(0.75);
    expect(metrics.val_pr_auc).toBeGreaterThan(3 * baseRate);
    expect(metrics.onnx_max_abs_diff).toBeLessThanOrEqual(1e-4);
    const runs = await client.searchRuns({ experimentIds: [experimentId] });
    expect(runs.runs.filter((r) => r.info.runId === runId)).toHaveLength(1);

    // The artifacts, fetched through the artifact proxy.
    const schema = JSON.parse(
      (await client.downloadArtifact(runId, 'model/input_schema.json')).toString(),
    ) as {
      inputs: SchemaInput[];
      probabilityOutput: string;
      positiveClassIndex: number;
    };
    expect(schema.inputs.map((i) => i.name)).toEqual(FRAUD_FEATURE_SPEC.features.map((f) => f.name));
    for (const input of schema.inputs) {
      const feature = FRAUD_FEATURE_SPEC.features[input.order];
      expect(feature?.name).toBe(input.name);
      expect(input.dtype).toBe(feature?.kind === 'numeric' ? 'float32' : 'string');
      expect(input.shape).toEqual([null, 1]);
    }
    const onnx = await client.downloadArtifact(runId, 'model/model.onnx');
    const session = await ort.InferenceSession.create(onnx);
    try {
      expect([...session.inputNames].sort()).toEqual(schema.inputs.map((i) => i.name).sort());
      expect(session.outputNames).toContain(schema.probabilityOutput);

      // Score a dataset of another seed: one [N, 1] tensor per column, as input_schema.json says.
      const n = holdout.length;
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of schema.inputs) {
        const values = holdout.map((row) => row[input.name as keyof FraudRow]);
        feeds[input.name] =
          input.dtype === 'float32'
            ? new ort.Tensor(
                'float32',
                Float32Array.from(values, (v) => (v === null ? NaN : Number(v))),
                [n, 1],
              )
            : new ort.Tensor(
                'string',
                values.map((v) => (v === null ? '' : String(v))),
                [n, 1],
              );
      }
      const out = await session.run(feeds);
      const probs = out[schema.probabilityOutput] as ort.Tensor;
      expect(probs.dims).toEqual([n, 2]);
      const data = probs.data as Float32Array;
      const scores = Array.from({ length: n }, (_, i) => data[i * 2 + schema.positiveClassIndex] as number);
      const labels = holdout.map((r) => r.is_fraud);
      const holdoutRate = labels.reduce((s: number, y) => s + y, 0) / n;
      const ap = averagePrecision(scores, labels);
      expect(ap, `holdout PR-AUC ${ap} vs base rate ${holdoutRate}`).toBeGreaterThan(4 * holdoutRate);
      expect(ap).toBeLessThan(0.95);
      for (const s of scores) expect(s >= 0 && s <= 1).toBe(true);
    } finally {
      await session.release();
    }
  });

  it('refuses a dataset whose sha256 does not match, and marks the run failed', async () => {
    const run = await client.createRun({ experimentId, runName: 'trainer-bad-sha' });
    const runId = run.info.runId;
    const wrong = createHash('sha256').update('not the dataset').digest('hex');
    const exit = await runTrainer({ ...contract, MLFLOW_RUN_ID: runId, MLOPS_DATASET_SHA256: wrong });
    expect(exit.code).toBe(3);
    expect(exit.stderr).toMatch(/^trainer: .*sha256/m);
    expect(exit.stderr).toContain(wrong);
    expect(exit.stdout).not.toMatch(/trained/);
    const logged = await client.getRun(runId);
    expect(logged.info.status).toBe('FAILED');
    expect(logged.data.tags['mlops.failure']).toMatch(/sha256/);
    expect(logged.data.params.dataset_sha256).toBeUndefined();
  });

  it('rejects a malformed contract with a message naming the variable', async () => {
    const run = await client.createRun({ experimentId, runName: 'trainer-bad-hyperparams' });
    const exit = await runTrainer({
      ...contract,
      MLFLOW_RUN_ID: run.info.runId,
      MLOPS_HYPERPARAMS: JSON.stringify({ n_trees: 5 }),
    });
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/^trainer: MLOPS_HYPERPARAMS\.n_trees: unknown hyperparameter/m);
  });

  const torchMissing = spawnSync(python(), ['-c', 'import torch']).status !== 0;
  it.skipIf(!torchMissing)(
    'says so clearly when the torch backend is asked for without PyTorch',
    async () => {
      const run = await client.createRun({ experimentId, runName: 'trainer-no-torch' });
      const exit = await runTrainer({
        ...contract,
        MLFLOW_RUN_ID: run.info.runId,
        MLOPS_BACKEND: 'torch',
        MLOPS_HYPERPARAMS: '',
      });
      expect(exit.code).toBe(6);
      expect(exit.stderr).toMatch(/^trainer: MLOPS_BACKEND=torch but PyTorch is not installed/m);
    },
  );
});
