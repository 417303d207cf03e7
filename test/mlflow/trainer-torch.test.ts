/**
 * The reference trainer's PyTorch path (MLOPS_BACKEND=torch), run for real on CPU against a real MLflow:
 * torch is Debian's python3-torch in the `torch` reference environment (deploy/stack/reference/torch.txt).
 *
 * - Checkpoint and resume: an attempt stopped after k epochs (MLOPS_MAX_EPOCHS_PER_ATTEMPT, the trainer's
 *   own option for capacity windows shorter than the training) leaves `checkpoints/last.pt` in its run and
 *   the run RUNNING; resubmitted with the same run id, the next attempt continues from epoch k. The model it
 *   ends with is the one an uninterrupted run with the same seed produces (same ONNX bytes), exported,
 *   parity-checked and registered the same way.
 * - Identity: a checkpoint written for another run, or for the same run on other data, is refused (named,
 *   tagged on the run) and training starts from epoch 1; a checkpoint holding a pickled object is refused
 *   unread (the trainer loads tensors only).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRegistryActivities } from '../../activities/registry';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { RegisteredVersion } from '../../src/core/contracts/retraining';
import { MlflowClient } from '../../src/mlflow';
import { MlflowModelRegistry } from '../../src/registry';
import { ensureReferenceEnv } from '../../src/stack/provision';
import { TRAINER_SCRIPT } from '../../src/stack/paths';
import { generateFraudDataset, writeCsv, type FraudRow } from '../../src/workload/generator';

const EXPERIMENT = 'trainer-torch-test';
/** Rows of the training datasets: enough for a stratified split, small for a quick CPU run. */
const ROWS = 2000;
/** Epochs of every run here, and where the interrupted run is stopped and stopped again. */
const EPOCHS = 6;
const FIRST_STOP = 2;
const SECOND_STOP = 5;
const HYPERPARAMS = { epochs: EPOCHS, hidden_units: 16, batch_size: 64, learning_rate: 0.01 };
/** Exit code of an attempt that stopped after its epoch budget with a checkpoint (JOB_CONTRACT.md). */
const EXIT_YIELDED = 75;
/** One trainer run on the shared 2-core machine (torch, MLflow client and sklearn imports included). */
const RUN_MS = 150_000;
/** Rows of a fresh dataset both models score. */
const SCORED_ROWS = 500;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

let python: string;
let dir: string;
let client: MlflowClient;
let experimentId: string;
let contract: Record<string, string>;
let otherData: { path: string; sha256: string };

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Runs the trainer on the torch environment with only the contract's variables (plus PATH/HOME). */
function runTrainer(env: Record<string, string>): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [TRAINER_SCRIPT], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const shown = (e: Exit): string => `exit ${e.code}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}`;

async function newRun(name: string): Promise<string> {
  return (await client.createRun({ experimentId, runName: name })).info.runId;
}

/** Runs a Python snippet in the torch environment (MLflow client at hand), failing loudly. */
function py(code: string, args: string[]): string {
  const r = spawnSync(python, ['-c', code, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HOME: dir },
  });
  if (r.status !== 0) throw new Error(`python snippet failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Copies run `from`'s checkpoint into run `to`'s artifacts, as a mix-up in the artifact store would. */
function copyCheckpoint(from: string, to: string): void {
  py(
    [
      'import sys, tempfile',
      'from mlflow.tracking import MlflowClient',
      'c = MlflowClient(tracking_uri=sys.argv[1])',
      "p = c.download_artifacts(sys.argv[2], 'checkpoints/last.pt', tempfile.mkdtemp())",
      "c.log_artifact(sys.argv[3], p, artifact_path='checkpoints')",
    ].join('\n'),
    [inject('mlflowTrackingUri'), from, to],
  );
}

async function artifactFiles(runId: string, folder: string): Promise<string[]> {
  return (await client.listArtifacts(runId, folder)).map((f) => f.path);
}

/** The positive-class probabilities the run's ONNX model gives `rows` (onnxruntime, one [N, 1] tensor per column). */
async function scoreWith(runId: string, rows: FraudRow[]): Promise<number[]> {
  const session = await ort.InferenceSession.create(await client.downloadArtifact(runId, 'model/model.onnx'));
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const f of FRAUD_FEATURE_SPEC.features) {
      const values = rows.map((row) => row[f.name as keyof FraudRow]);
      feeds[f.name] =
        f.kind === 'numeric'
          ? new ort.Tensor(
              'float32',
              Float32Array.from(values, (v) => (v === null ? NaN : Number(v))),
              [rows.length, 1],
            )
          : new ort.Tensor(
              'string',
              values.map((v) => (v === null ? '' : String(v))),
              [rows.length, 1],
            );
    }
    const probs = (await session.run(feeds)).probabilities as ort.Tensor;
    const data = probs.data as Float32Array;
    return rows.map((_, i) => data[i * 2 + 1] as number);
  } finally {
    await session.release();
  }
}

beforeAll(async () => {
  python = ensureReferenceEnv('torch');
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-trainer-torch-'));
  client = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
  experimentId = await client.getOrCreateExperiment(EXPERIMENT);
  const train = path.join(dir, 'train.csv');
  await writeCsv(train, generateFraudDataset({ rows: ROWS, seed: 31 }));
  const other = path.join(dir, 'other.csv');
  await writeCsv(other, generateFraudDataset({ rows: ROWS, seed: 32 }));
  otherData = { path: other, sha256: sha256(other) };
  contract = {
    MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
    MLOPS_DATASET_PATH: train,
    MLOPS_DATASET_SHA256: sha256(train),
    MLOPS_FEATURE_SPEC: JSON.stringify(FRAUD_FEATURE_SPEC),
    MLOPS_ARTIFACT_PATH: 'model',
    MLOPS_SEED: '11',
    MLOPS_BACKEND: 'torch',
    MLOPS_HYPERPARAMS: JSON.stringify(HYPERPARAMS),
  };
}, 900_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('reference trainer, PyTorch path (Debian CPU torch)', () => {
  let uninterrupted: string;
  let resumed: string;

  it(
    'an attempt stopped after its epoch budget leaves a checkpoint; resubmitted, it continues from there to the same model',
    async () => {
      uninterrupted = await newRun('torch-uninterrupted');
      const straight = await runTrainer({ ...contract, MLFLOW_RUN_ID: uninterrupted });
      expect(straight.code, shown(straight)).toBe(0);
      expect(straight.stdout).toMatch(/trainer: torch 1\.13[^ ]* on cpu/);

      resumed = await newRun('torch-resumed');
      const env = { ...contract, MLFLOW_RUN_ID: resumed };
      // Attempt 1: epochs 1-2, then a checkpoint and exit 75; nothing is exported yet, the run stays open.
      const first = await runTrainer({ ...env, MLOPS_MAX_EPOCHS_PER_ATTEMPT: String(FIRST_STOP) });
      expect(first.code, shown(first)).toBe(EXIT_YIELDED);
      expect(first.stdout).toContain(`stopped after epoch ${FIRST_STOP}/${EPOCHS}`);
      expect(first.stdout).not.toMatch(/resuming/);
      expect(await artifactFiles(resumed, 'checkpoints')).toEqual(['checkpoints/last.pt']);
      expect(await artifactFiles(resumed, 'model')).toEqual([]);
      expect((await client.getRun(resumed)).info.status).toBe('RUNNING');

      // Attempt 2: resumes at epoch 3 and stops after epoch 5.
      const second = await runTrainer({
        ...env,
        MLOPS_MAX_EPOCHS_PER_ATTEMPT: String(SECOND_STOP - FIRST_STOP),
      });
      expect(second.code, shown(second)).toBe(EXIT_YIELDED);
      expect(second.stdout).toContain(`resuming from the checkpoint of epoch ${FIRST_STOP}/${EPOCHS}`);
      expect(second.stdout).toContain(`stopped after epoch ${SECOND_STOP}/${EPOCHS}`);

      // Attempt 3, no budget: the last epoch, then export, parity check and the run finished.
      const last = await runTrainer(env);
      expect(last.code, shown(last)).toBe(0);
      expect(last.stdout).toContain(`resuming from the checkpoint of epoch ${SECOND_STOP}/${EPOCHS}`);
      expect(last.stdout).toMatch(/ONNX parity on \d+ rows/);
      const run = await client.getRun(resumed);
      expect(run.info.status).toBe('FINISHED');
      expect(run.data.metrics.resumed_from_epoch).toBe(SECOND_STOP);
      expect(run.data.params).toMatchObject({ backend: 'torch', epochs: String(EPOCHS), device: 'cpu' });
      expect((await artifactFiles(resumed, 'model')).sort()).toEqual([
        'model/feature_spec.json',
        'model/input_schema.json',
        'model/model.onnx',
      ]);

      // Same seed, same data: the resumed training ends with exactly the uninterrupted model (the ONNX
      // files differ in serialisation details, not in what they compute: the same scores on new data).
      const reference = await client.getRun(uninterrupted);
      expect(reference.data.metrics.resumed_from_epoch).toBe(0);
      const fresh = generateFraudDataset({ rows: SCORED_ROWS, seed: 33 });
      const scores = await scoreWith(resumed, fresh);
      expect(scores).toEqual(await scoreWith(uninterrupted, fresh));
      expect(new Set(scores.map((v) => v.toFixed(4))).size).toBeGreaterThan(10);
      for (const m of ['val_roc_auc', 'val_log_loss', 'val_brier']) {
        expect(run.data.metrics[m], m).toBe(reference.data.metrics[m]);
      }
      expect(run.data.metrics.val_roc_auc).toBeGreaterThan(0.8);
    },
    4 * RUN_MS,
  );

  it('the resumed model registers like any other: a version of the run with its digest manifest', async () => {
    const registry = new MlflowModelRegistry(client);
    const acts = createRegistryActivities({ registry });
    const model = `torch-resume-${process.pid}`;
    const env = new MockActivityEnvironment({
      workflowExecution: { workflowId: `retrain-${model}`, runId: 'run-1' },
    });
    const registered = (await env.run(acts.registerModelVersion, {
      model,
      runId: resumed,
      datasetSha256: contract.MLOPS_DATASET_SHA256 ?? '',
      trigger: { kind: 'manual' as const },
      featureSpec: `${FRAUD_FEATURE_SPEC.name}@${FRAUD_FEATURE_SPEC.version}`,
    })) as RegisteredVersion;
    expect(registered).toMatchObject({ name: model, runId: resumed, files: 3 });
    expect(registered.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    const version = await registry.getVersion(model, registered.version);
    expect(version.tags['mlops.manifest_sha256']).toBe(registered.manifestSha256);
    // The checkpoint is the run's, not the model's: the version's files are the model folder only.
    expect(registered.source).toMatch(new RegExp(`${resumed}/artifacts/model$`));
  });

  it(
    'a checkpoint from another run is refused: training starts from epoch 1 and the run says why',
    async () => {
      const stray = await newRun('torch-foreign-checkpoint');
      copyCheckpoint(resumed, stray);
      const exit = await runTrainer({ ...contract, MLFLOW_RUN_ID: stray, MLOPS_MAX_EPOCHS_PER_ATTEMPT: '1' });
      expect(exit.code, shown(exit)).toBe(EXIT_YIELDED);
      expect(exit.stdout).toMatch(/checkpoint checkpoints\/last\.pt refused: written for another run_id;/);
      expect(exit.stdout).not.toMatch(/resuming/);
      expect(exit.stdout).toContain(`stopped after epoch 1/${EPOCHS}`);
      expect((await client.getRun(stray)).data.tags['mlops.checkpoint.refused']).toBe(
        'written for another run_id',
      );
    },
    RUN_MS,
  );

  it(
    'the same run resubmitted on other data refuses its own checkpoint (dataset_sha256 differs)',
    async () => {
      const runId = await newRun('torch-other-data');
      const env = { ...contract, MLFLOW_RUN_ID: runId };
      const first = await runTrainer({ ...env, MLOPS_MAX_EPOCHS_PER_ATTEMPT: '1' });
      expect(first.code, shown(first)).toBe(EXIT_YIELDED);
      const swapped = await runTrainer({
        ...env,
        MLOPS_DATASET_PATH: otherData.path,
        MLOPS_DATASET_SHA256: otherData.sha256,
        MLOPS_MAX_EPOCHS_PER_ATTEMPT: '1',
      });
      expect(swapped.code, shown(swapped)).toBe(EXIT_YIELDED);
      expect(swapped.stdout).toMatch(/refused: written for another dataset_sha256;/);
      expect(swapped.stdout).not.toMatch(/resuming/);
    },
    2 * RUN_MS,
  );

  it(
    'a checkpoint holding a pickled object is refused unread: the object is never constructed',
    async () => {
      const runId = await newRun('torch-pickled-checkpoint');
      const marker = path.join(dir, 'pickle-ran');
      // A torch.save file whose payload would run code when unpickled without weights_only.
      py(
        [
          'import os, sys, tempfile, torch',
          'from mlflow.tracking import MlflowClient',
          'class Payload:',
          '    def __reduce__(self):',
          "        return (os.system, ('touch ' + sys.argv[3],))",
          "path = os.path.join(tempfile.mkdtemp(), 'last.pt')",
          "torch.save({'identity': Payload(), 'epoch': 3}, path)",
          "MlflowClient(tracking_uri=sys.argv[1]).log_artifact(sys.argv[2], path, artifact_path='checkpoints')",
        ].join('\n'),
        [inject('mlflowTrackingUri'), runId, marker],
      );
      const exit = await runTrainer({ ...contract, MLFLOW_RUN_ID: runId, MLOPS_MAX_EPOCHS_PER_ATTEMPT: '1' });
      expect(exit.code, shown(exit)).toBe(EXIT_YIELDED);
      expect(exit.stdout).toMatch(/checkpoint checkpoints\/last\.pt refused: unreadable/);
      expect(existsSync(marker)).toBe(false);
    },
    RUN_MS,
  );

  it(
    'MLOPS_MAX_EPOCHS_PER_ATTEMPT is refused for the sklearn backend (it trains no epochs)',
    async () => {
      const exit = await runTrainer({
        ...contract,
        MLFLOW_RUN_ID: 'not-used',
        MLOPS_BACKEND: 'sklearn',
        MLOPS_HYPERPARAMS: '{}',
        MLOPS_MAX_EPOCHS_PER_ATTEMPT: '2',
      });
      expect(exit.code).toBe(2);
      expect(exit.stderr).toContain('MLOPS_MAX_EPOCHS_PER_ATTEMPT needs MLOPS_BACKEND=torch');
    },
    RUN_MS,
  );
});
