/**
 * Gateway test fixtures: real fraud models from the reference trainer (deploy/trainer/train.py) in a
 * real MLflow, registered the way the registration step does it (digest manifest beside the model,
 * its sha256 pinned as `mlops.manifest_sha256`). A trained model's files are cached per seed in the
 * temp folder, so the trainer runs once per machine and each test uploads the files into a run of its
 * own.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { MlflowClient } from '../../src/mlflow';
import { buildManifest, manifestArtifactPath } from '../../src/security/digests';
import { MANIFEST_SHA256_TAG, MODEL_FOLDER } from '../../src/gateway/models';
import { generateFraudDataset, writeCsv, type FraudRow } from '../../src/workload/generator';

const TRAINER = path.resolve(__dirname, '../../deploy/trainer/train.py');
/** Rows the fixture model trains on: enough for a real model, few enough to train in seconds. */
export const FIXTURE_TRAIN_ROWS = 3000;
const EXPERIMENT = 'gateway-fixtures';
/** Hyperparameters of the test models: 60 trees train in seconds and score like the reference. */
export const FIXTURE_HYPERPARAMS: Readonly<Record<string, number>> = { n_estimators: 60 };
/** The reference trainer's own defaults (deploy/trainer/train.py), as `npm run demo` trains. */
export const REFERENCE_HYPERPARAMS: Readonly<Record<string, number>> = {};

export type ModelFile = { path: string; content: Buffer };

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`trainer exited ${code}:\n${out.slice(-2000)}`));
    });
  });
}

/** The model folder's files of a model trained with `seed` (cached per trainer source and seed). */
export async function trainedModelFiles(
  mlflow: MlflowClient,
  python: string,
  seed: number,
  /** Trainer hyperparameters; the fixture default is a small forest that trains in seconds. */
  hyperparams: Record<string, number> = FIXTURE_HYPERPARAMS,
): Promise<ModelFile[]> {
  const trainerSha = createHash('sha256').update(readFileSync(TRAINER)).digest('hex').slice(0, 16);
  const hpKey = createHash('sha256').update(JSON.stringify(hyperparams)).digest('hex').slice(0, 8);
  const cache = path.join(os.tmpdir(), 'mlops-gateway-fixtures', `${trainerSha}-${seed}-${hpKey}`);
  if (!existsSync(path.join(cache, 'model.onnx'))) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-gateway-train-'));
    try {
      const csv = path.join(dir, 'train.csv');
      await writeCsv(csv, generateFraudDataset({ rows: FIXTURE_TRAIN_ROWS, seed }));
      const experimentId = await mlflow.getOrCreateExperiment(EXPERIMENT);
      const runInfo = await mlflow.createRun({ experimentId, runName: `fixture-${seed}` });
      await run(
        python,
        [TRAINER],
        {
          MLFLOW_TRACKING_URI: mlflow.trackingUri,
          MLFLOW_RUN_ID: runInfo.info.runId,
          MLOPS_DATASET_PATH: csv,
          MLOPS_DATASET_SHA256: createHash('sha256').update(readFileSync(csv)).digest('hex'),
          MLOPS_FEATURE_SPEC: JSON.stringify(FRAUD_FEATURE_SPEC),
          MLOPS_ARTIFACT_PATH: MODEL_FOLDER,
          MLOPS_SEED: String(seed),
          MLOPS_HYPERPARAMS: JSON.stringify(hyperparams),
        },
        180_000,
      );
      const listed = await mlflow.listArtifactsRecursive(runInfo.info.runId, MODEL_FOLDER);
      mkdirSync(cache, { recursive: true });
      for (const f of listed) {
        writeFileSync(
          path.join(cache, path.basename(f.path)),
          await mlflow.downloadArtifact(runInfo.info.runId, f.path),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return readdirSync(cache)
    .sort()
    .map((name) => ({ path: `${MODEL_FOLDER}/${name}`, content: readFileSync(path.join(cache, name)) }));
}

/**
 * Uploads model files into a fresh run and registers a version the way the registration step does:
 * manifest at `manifests/model.digests.json`, its sha256 pinned on the version. Returns the version.
 */
export async function registerModelFiles(
  mlflow: MlflowClient,
  model: string,
  files: ModelFile[],
): Promise<{ version: string; runId: string }> {
  const experimentId = await mlflow.getOrCreateExperiment(EXPERIMENT);
  const runInfo = await mlflow.createRun({ experimentId, runName: `${model}-upload` });
  const runId = runInfo.info.runId;
  for (const f of files) await mlflow.uploadArtifact(runId, f.path, f.content);
  const { json, sha256 } = buildManifest(MODEL_FOLDER, files);
  await mlflow.uploadArtifact(runId, manifestArtifactPath(MODEL_FOLDER), json);
  await mlflow.updateRun({ runId, status: 'FINISHED' });
  await mlflow.ensureRegisteredModel(model);
  let mv = await mlflow.createModelVersion({
    name: model,
    source: `runs:/${runId}/${MODEL_FOLDER}`,
    runId,
    tags: { [MANIFEST_SHA256_TAG]: sha256 },
  });
  const deadline = Date.now() + 60_000;
  while (mv.status !== 'READY' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    mv = await mlflow.getModelVersion(model, mv.version);
  }
  return { version: mv.version, runId };
}

/** Valid fraud features of generated rows (the label and ids dropped). */
export function fraudFeatures(count: number, seed: number): Array<Record<string, number | string | null>> {
  return generateFraudDataset({ rows: count, seed }).map((r: FraudRow) => {
    const out: Record<string, number | string | null> = {};
    for (const f of FRAUD_FEATURE_SPEC.features) {
      out[f.name] = (r as unknown as Record<string, number | string | null>)[f.name] ?? null;
    }
    return out;
  });
}
