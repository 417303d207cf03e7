/**
 * The data plane against the stack's real S3 server (s3proxy, objects AES-encrypted at rest by the server) and
 * a real MLflow whose artifacts live in a bucket on it: a Parquet dataset in a bucket is snapshotted, validated,
 * trained on by the reference trainer and registered, and its model files sit encrypted in the store while the
 * digest checks pass over what MLflow serves back. Wrong credentials, a missing object, a truncated Parquet file
 * and a CSV with a broken row each end in a named failure or a failed report, leaving nothing half-written; a
 * `file://` dataset outside the roots (also through a symlink) is refused before a byte is read.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDataActivities, fingerprintsPathOf } from '../../activities/data';
import { createRegistryActivities } from '../../activities/registry';
import { createTrainingActivities } from '../../activities/training';
import { FailureType } from '../../src/core/contracts/failures';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import {
  TrainingOptionsSchema,
  type RegisteredVersion,
  type TrainingResult,
} from '../../src/core/contracts/retraining';
import { openEngine, sqlString } from '../../src/data/engine';
import { countSharedRows } from '../../src/data/profile';
import { LocalProcessRunner } from '../../src/jobs';
import { MlflowClient } from '../../src/mlflow';
import { MlflowModelRegistry } from '../../src/registry/mlflow';
import { fetchVerifiedModel } from '../../src/registry/verified-model';
import { createFileSecretStore } from '../../src/secrets/local';
import { TRAINER_SCRIPT } from '../../src/stack/paths';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';
import { tempDir } from '../helpers/env';

const BUCKET = 'datasets';
const ROWS = 3000;
const WORKFLOW = { workflowId: 'retrain-s3fraud', runId: 'run-s3-1' };
const CREDS = {
  accessKeyId: { secret: 's3', key: 'access-key-id' },
  secretAccessKey: { secret: 's3', key: 'secret' },
};

let client: S3Client;
let root: string;
let secretsDir: string;
let parquetBytes: Buffer;

function activities(snapshotDir: string, secretRoot = secretsDir) {
  return createDataActivities({
    snapshotDir,
    datasetRoots: [root],
    s3: {
      config: { endpoint: inject('s3Endpoint'), ...CREDS },
      secrets: createFileSecretStore(secretRoot),
    },
  });
}

async function put(key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** Every file under `dir`, recursively (what a raw read of the store's disk sees). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

beforeAll(async () => {
  client = new S3Client({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: inject('s3AccessKeyId'), secretAccessKey: inject('s3SecretAccessKey') },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  root = tempDir('s3-roots');
  secretsDir = tempDir('s3-secrets');
  const store = createFileSecretStore(secretsDir);
  await store.put(CREDS.accessKeyId, inject('s3AccessKeyId'));
  await store.put(CREDS.secretAccessKey, inject('s3SecretAccessKey'));

  const csv = path.join(root, 'fraud.csv');
  await writeCsv(csv, generateFraudDataset({ rows: ROWS, seed: 21 }));
  const parquet = path.join(root, 'fraud.parquet');
  const db = await openEngine();
  try {
    await db.run(
      `COPY (SELECT * FROM read_csv(${sqlString(csv)}, header = true)) TO ${sqlString(parquet)} (FORMAT parquet)`,
    );
  } finally {
    db.close();
  }
  parquetBytes = readFileSync(parquet);
  await put('fraud/2026-11.parquet', parquetBytes);
  await put('fraud/truncated.parquet', parquetBytes.subarray(0, Math.floor(parquetBytes.length / 2)));
  const lines = readFileSync(csv, 'utf8').split('\n');
  lines[1500] = `${lines[1500]},"unterminated`;
  await put('fraud/broken.csv', lines.join('\n'));
}, 120_000);

afterAll(() => client?.destroy());

describe('a Parquet dataset in a bucket', () => {
  it('is snapshotted, validated, trained on and registered; its model files are encrypted at rest', async () => {
    const snapshots = tempDir('s3-snapshots');
    const data = activities(snapshots);
    const snapshot = await data.snapshotDataset({ dataset: { uri: `s3://${BUCKET}/fraud/2026-11.parquet` } });
    expect(snapshot.snapshotPath).toMatch(/[0-9a-f]{64}\.parquet$/);
    expect(readFileSync(snapshot.snapshotPath).equals(parquetBytes)).toBe(true);
    expect(snapshot.bytes).toBe(parquetBytes.length);

    const { report, profile, drift } = await data.validateDataset({
      snapshotPath: snapshot.snapshotPath,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(profile).toMatchObject({ format: 'parquet', rows: ROWS, sha256: snapshot.sha256 });
    expect(drift?.numeric.find((n) => n.column === 'amount')?.counts.reduce((a, b) => a + b, 0)).toBe(
      drift?.numeric.find((n) => n.column === 'amount')?.count,
    );
    // The holdout-leak check reads the fingerprints written beside the snapshot, not the snapshot.
    expect(
      await countSharedRows(
        fingerprintsPathOf(snapshot.snapshotPath),
        snapshot.snapshotPath,
        FRAUD_FEATURE_SPEC,
      ),
    ).toEqual({ rows: ROWS, shared: ROWS });

    const registry = new MlflowModelRegistry(new MlflowClient({ trackingUri: inject('s3MlflowUri') }));
    const jobs = new LocalProcessRunner({
      root: tempDir('s3-jobs'),
      images: { 'mlops/reference-trainer': [inject('s3PythonBin'), TRAINER_SCRIPT] },
      secrets: () => undefined,
    });
    const env = new MockActivityEnvironment({ workflowExecution: WORKFLOW });
    const training = createTrainingActivities({ registry, jobs, pollIntervalMs: 200 });
    const trained: TrainingResult = await env.run(training.trainCandidate, {
      model: 's3fraud',
      snapshot,
      spec: FRAUD_FEATURE_SPEC,
      training: TrainingOptionsSchema.parse({ image: 'mlops/reference-trainer', timeout: '5m' }),
      trigger: { kind: 'manual' as const },
    });
    const registered: RegisteredVersion = await env.run(
      createRegistryActivities({ registry }).registerModelVersion,
      {
        model: 's3fraud',
        runId: trained.runId,
        datasetSha256: snapshot.sha256,
        datasetRows: profile?.rows,
        trigger: { kind: 'manual' as const },
        featureSpec: `${FRAUD_FEATURE_SPEC.name}@${FRAUD_FEATURE_SPEC.version}`,
      },
    );
    expect(registered.files).toBeGreaterThan(0);

    // The digest manifest verifies over the bytes MLflow serves back from the bucket.
    const version = await registry.getVersion('s3fraud', registered.version);
    const { files } = await fetchVerifiedModel(registry, version);
    const onnx = files.find((f) => f.path.endsWith('model.onnx'));
    expect(onnx?.content.length).toBeGreaterThan(1000);

    // A raw read of the store holds no model bytes: every stored object is ciphertext.
    const stored = filesUnder(path.join(inject('s3DataDir'), 'mlflow-artifacts'));
    expect(stored.some((f) => f.includes('model.onnx'))).toBe(true);
    const probe = (onnx?.content as Buffer).subarray(64, 128);
    for (const f of stored) expect(readFileSync(f).includes(probe)).toBe(false);
    const storedDataset = filesUnder(path.join(inject('s3DataDir'), BUCKET)).find((f) =>
      f.includes('2026-11.parquet'),
    );
    expect(storedDataset).toBeDefined();
    expect(readFileSync(storedDataset as string).includes(parquetBytes.subarray(0, 4 + 64))).toBe(false);
  }, 300_000);
});

describe('what cannot become a snapshot', () => {
  it('wrong credentials: DatasetAccessDenied, nothing written', async () => {
    const snapshots = tempDir('s3-snapshots');
    const wrong = tempDir('s3-wrong-secrets');
    const store = createFileSecretStore(wrong);
    await store.put(CREDS.accessKeyId, inject('s3AccessKeyId'));
    await store.put(CREDS.secretAccessKey, 'not-the-secret');
    const f = await failure(
      activities(snapshots, wrong).snapshotDataset({
        dataset: { uri: `s3://${BUCKET}/fraud/2026-11.parquet` },
      }),
    );
    expect(f.type).toBe(FailureType.DatasetAccessDenied);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).not.toContain('not-the-secret');
    expect(readdirSync(snapshots)).toEqual([]);
  });

  it('no credentials in the secret store: DatasetAccessDenied naming the references', async () => {
    const f = await failure(
      activities(tempDir('s3-snapshots'), tempDir('s3-empty-secrets')).snapshotDataset({
        dataset: { uri: `s3://${BUCKET}/fraud/2026-11.parquet` },
      }),
    );
    expect(f.type).toBe(FailureType.DatasetAccessDenied);
    expect(f.message).toContain('s3/access-key-id');
  });

  it('a missing object: DatasetUnreadable, nothing written', async () => {
    const snapshots = tempDir('s3-snapshots');
    const f = await failure(
      activities(snapshots).snapshotDataset({ dataset: { uri: `s3://${BUCKET}/fraud/nope.parquet` } }),
    );
    expect(f.type).toBe(FailureType.DatasetUnreadable);
    expect(f.message).toContain('no such object');
    expect(readdirSync(snapshots).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(readdirSync(snapshots)).toEqual([]);
  });

  it('a truncated Parquet file: snapshotted as it is, then a failed format check (rejected-data)', async () => {
    const snapshots = tempDir('s3-snapshots');
    const data = activities(snapshots);
    const snapshot = await data.snapshotDataset({
      dataset: { uri: `s3://${BUCKET}/fraud/truncated.parquet` },
    });
    const { report, profile } = await data.validateDataset({
      snapshotPath: snapshot.snapshotPath,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(profile).toBeUndefined();
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['format', false]]);
    expect(report.checks[0]?.message).toMatch(/not a readable Parquet file/);
    // No fingerprints for a dataset that could not be read; no temp files left.
    expect(readdirSync(snapshots)).toEqual([path.basename(snapshot.snapshotPath)]);
  });

  it('a CSV with a broken row: a failed format check naming the line (rejected-data)', async () => {
    const snapshots = tempDir('s3-snapshots');
    const data = activities(snapshots);
    const snapshot = await data.snapshotDataset({ dataset: { uri: `s3://${BUCKET}/fraud/broken.csv` } });
    expect(snapshot.snapshotPath).toMatch(/\.csv$/);
    const { report } = await data.validateDataset({
      snapshotPath: snapshot.snapshotPath,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['format', false]]);
    expect(report.checks[0]?.message).toMatch(/line 1501/);
    expect(readdirSync(snapshots)).toEqual([path.basename(snapshot.snapshotPath)]);
  });
});

describe('file:// datasets only under the configured roots', () => {
  it('refuses /etc/passwd and a symlink out of a root before reading, and reads a file inside', async () => {
    const snapshots = tempDir('s3-snapshots');
    const data = activities(snapshots);
    const passwd = await failure(data.snapshotDataset({ dataset: { uri: 'file:///etc/passwd' } }));
    expect(passwd.type).toBe(FailureType.DatasetOutsideRoots);
    expect(passwd.nonRetryable).toBe(true);
    const link = path.join(root, 'innocent.csv');
    symlinkSync('/etc/passwd', link);
    const viaLink = await failure(data.snapshotDataset({ dataset: { uri: pathToFileURL(link).href } }));
    expect(viaLink.type).toBe(FailureType.DatasetOutsideRoots);
    const dotdot = await failure(data.snapshotDataset({ dataset: { uri: `${root}/../../etc/passwd` } }));
    expect(dotdot.type).toBe(FailureType.DatasetOutsideRoots);
    expect(readdirSync(snapshots)).toEqual([]);

    const inside = path.join(root, 'sub', 'ok.csv');
    mkdirSync(path.dirname(inside), { recursive: true });
    writeFileSync(inside, readFileSync(path.join(root, 'fraud.csv')));
    const ok = await data.snapshotDataset({ dataset: { uri: pathToFileURL(inside).href } });
    expect(ok.snapshotPath).toMatch(/\.csv$/);
    const missing = await failure(data.snapshotDataset({ dataset: { uri: path.join(root, 'gone.csv') } }));
    expect(missing.type).toBe(FailureType.DatasetUnreadable);
  });
});
