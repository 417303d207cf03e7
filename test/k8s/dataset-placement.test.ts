/**
 * Where a training Job reads its dataset from, on the layer's real API server, Kueue and S3 server
 * (src/jobs/dataset-placement.ts): a snapshot on the worker's disk is staged content-addressed in
 * the object store (the Job gets an s3:// URI and Secret references, never a credential value), or
 * mounted read-only from the shared volume's claim; with neither, the Job is refused by name before
 * anything is created. KWOK simulates the GPU nodes (no container runs: the trainer reading from S3
 * runs in pipeline.test.ts).
 */
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatasetNotReachableError } from '../../src/jobs/dataset-placement';
import { JobSpecError } from '../../src/jobs/types';
import {
  SHARED_DATASET_MOUNT,
  TRAINING_NAMESPACE,
  gpuSpec,
  kubeConfig,
  objectStoreDatasets,
  waitForStatus,
  workerRunner,
} from './helpers';
import { DATASET_BUCKET, DATASET_CLAIM, DATASET_SECRET, SHARED_DATASET_ROOT } from './setup';

/** Admission, scheduling and KWOK's simulated run of one pod: seconds; generous for a loaded machine. */
const RUN_MS = 60_000;

let dir: string;
let snapshot: string;
let sha256: string;
const content = 'amount,is_fraud\n1.5,0\n2.5,1\n';
const cleanup: (() => Promise<void>)[] = [];

function s3(): S3Client {
  return new S3Client({
    endpoint: inject('kubeS3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: inject('kubeS3AccessKeyId'),
      secretAccessKey: inject('kubeS3SecretAccessKey'),
    },
  });
}

const readJob = (name: string) =>
  kubeConfig()
    .makeApiClient(k8s.BatchV1Api)
    .readNamespacedJob({ name, namespace: TRAINING_NAMESPACE })
    .catch(() => undefined);

function datasetSpec(owner: string, file: string) {
  const spec = gpuSpec(owner);
  return {
    ...spec,
    env: {
      ...spec.env,
      MLOPS_DATASET_PATH: file,
      MLOPS_DATASET_URI: `file://${file}`,
      MLOPS_DATASET_SHA256: sha256,
    },
  };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-k8s-datasets-'));
  // A snapshot as the snapshot activity names it: <sha256>.csv in the worker's state folder.
  sha256 = createHash('sha256').update(`${content}${process.pid}`).digest('hex');
  snapshot = path.join(dir, `${sha256}.csv`);
  writeFileSync(snapshot, `${content}${process.pid}`);
});

afterEach(async () => {
  for (const f of cleanup.splice(0)) await f().catch(() => undefined);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the dataset of a Kubernetes training Job', () => {
  it('only on the worker’s disk, with no object store or shared volume holding it: refused by name, no Job', async () => {
    for (const datasets of [
      {},
      { sharedVolume: { claimName: DATASET_CLAIM, localRoot: SHARED_DATASET_ROOT } },
    ]) {
      const runner = await workerRunner({ datasets });
      const spec = datasetSpec('retrain-local-only', snapshot);
      const err = await runner.submit(spec).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatasetNotReachableError);
      // A JobSpecError: the activity maps it to a non-retryable failure.
      expect(err).toBeInstanceOf(JobSpecError);
      expect((err as Error).name).toBe('DatasetNotReachableError');
      expect((err as Error).message).toContain(snapshot);
      expect((err as Error).message).toMatch(/MLOPS_K8S_DATASET_BUCKET.*MLOPS_K8S_DATASET_CLAIM/s);
      expect(await readJob(spec.name)).toBeUndefined();
    }
  });

  it('staged in the object store by content hash: the Job gets the s3:// URI and the credentials by Secret reference only', async () => {
    const runner = await workerRunner({ datasets: objectStoreDatasets() });
    const spec = datasetSpec('retrain-staged', snapshot);
    cleanup.push(() => runner.delete(spec.name));
    await runner.submit(spec);
    const key = `mlops/snapshots/${sha256}.csv`;
    const client = s3();
    try {
      // The object is the snapshot, byte for byte, tagged with its sha256.
      const got = await client.send(new GetObjectCommand({ Bucket: DATASET_BUCKET, Key: key }));
      expect(await got.Body?.transformToString()).toBe(`${content}${process.pid}`);
      expect(got.Metadata?.sha256).toBe(sha256);
      const first = await client.send(new HeadObjectCommand({ Bucket: DATASET_BUCKET, Key: key }));

      const job = await readJob(spec.name);
      const env = job?.spec?.template.spec?.containers[0]?.env ?? [];
      const value = (name: string) => env.find((e) => e.name === name)?.value;
      expect(value('MLOPS_DATASET_URI')).toBe(`s3://${DATASET_BUCKET}/${key}`);
      expect(value('MLOPS_S3_ENDPOINT')).toBe(inject('kubeS3Endpoint'));
      expect(env.map((e) => e.name)).not.toContain('MLOPS_DATASET_PATH');
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
        const e = env.find((x) => x.name === name);
        expect(e?.value).toBeUndefined();
        expect(e?.valueFrom?.secretKeyRef).toEqual({ name: DATASET_SECRET, key: name });
      }
      const text = JSON.stringify(job);
      expect(text).not.toContain(inject('kubeS3SecretAccessKey'));
      expect(text).not.toContain(inject('kubeS3AccessKeyId'));
      expect(text).not.toContain(dir);

      // A second Job on the same snapshot reuses the staged object (no second upload) and is admitted.
      const again = datasetSpec('retrain-staged-again', snapshot);
      cleanup.push(() => runner.delete(again.name));
      await runner.submit(again);
      const second = await client.send(new HeadObjectCommand({ Bucket: DATASET_BUCKET, Key: key }));
      expect(second.ETag).toBe(first.ETag);
      expect(second.LastModified?.getTime()).toBe(first.LastModified?.getTime());
      const done = await waitForStatus(runner, again.name, (st) => st?.phase === 'succeeded', RUN_MS);
      expect(done?.queue?.admitted).toBe(true);
    } finally {
      client.destroy();
    }
  });

  it('on the shared volume: the pod mounts the claim read-only and reads the snapshot under its mount', async () => {
    const runner = await workerRunner();
    const file = path.join(SHARED_DATASET_ROOT, 'snapshots', `${sha256}.csv`);
    const spec = datasetSpec('retrain-shared', file);
    cleanup.push(() => runner.delete(spec.name));
    await runner.submit(spec);
    const pod = (await readJob(spec.name))?.spec?.template.spec;
    const inPod = `${SHARED_DATASET_MOUNT}/snapshots/${sha256}.csv`;
    const env = pod?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'MLOPS_DATASET_PATH')?.value).toBe(inPod);
    expect(env.find((e) => e.name === 'MLOPS_DATASET_URI')?.value).toBe(`file://${inPod}`);
    expect(pod?.volumes).toContainEqual({
      name: 'datasets',
      persistentVolumeClaim: { claimName: DATASET_CLAIM, readOnly: true },
    });
    expect(pod?.containers[0]?.volumeMounts).toContainEqual({
      name: 'datasets',
      mountPath: SHARED_DATASET_MOUNT,
      readOnly: true,
    });
    // The claim is bound, so the pod is scheduled onto a GPU node and the Job runs to the end.
    const done = await waitForStatus(runner, spec.name, (st) => st?.phase === 'succeeded', RUN_MS);
    expect(done?.pods?.[0]?.node).toMatch(/^gpu-\d$/);
  });
});
