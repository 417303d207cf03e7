/**
 * Dataset placement for Kubernetes Jobs (src/jobs/dataset-placement.ts) and its configuration from
 * the worker's environment: pure rewrites of the Job's dataset variables, named refusals.
 */
import { describe, expect, it } from 'vitest';
import {
  DatasetNotReachableError,
  DatasetPlacementConfig,
  localDatasetOf,
  mountDataset,
  stageDataset,
  stagedKey,
  type SnapshotStager,
} from '../../src/jobs/dataset-placement';
import { kubernetesRunnerConfigFromEnv, kubernetesRunnerFromEnv } from '../../src/jobs/kubernetes-runner';
import { JobSpecError, type JobSpec } from '../../src/jobs/types';

const SHA = 'c'.repeat(64);

function spec(env: Record<string, string>): JobSpec {
  return { name: 'train-fraud-1', image: 'mlops/reference-trainer:v1', env, labels: {} };
}

const local = spec({
  MLOPS_DATASET_PATH: '/var/lib/mlops/data/snapshots/x.parquet',
  MLOPS_DATASET_URI: 'file:///var/lib/mlops/data/snapshots/x.parquet',
  MLOPS_DATASET_SHA256: SHA,
});

describe('dataset placement', () => {
  it('finds the worker-local dataset in either variable, and refuses two that disagree', () => {
    expect(localDatasetOf(local)).toBe('/var/lib/mlops/data/snapshots/x.parquet');
    expect(localDatasetOf(spec({ MLOPS_DATASET_URI: 'file:///d/a.csv' }))).toBe('/d/a.csv');
    expect(localDatasetOf(spec({ MLOPS_DATASET_URI: 's3://b/k.csv' }))).toBeUndefined();
    expect(localDatasetOf(spec({}))).toBeUndefined();
    expect(() =>
      localDatasetOf(spec({ MLOPS_DATASET_PATH: '/d/a.csv', MLOPS_DATASET_URI: 'file:///d/b.csv' })),
    ).toThrow(/MLOPS_DATASET_PATH and env.MLOPS_DATASET_URI name different files/);
  });

  it('a remote dataset passes unchanged; a local one with nothing configured is refused by name', () => {
    const remote = spec({ MLOPS_DATASET_URI: 's3://b/k.csv', MLOPS_DATASET_SHA256: SHA });
    expect(mountDataset(remote, DatasetPlacementConfig.parse({})).spec).toBe(remote);
    expect(() => mountDataset(local, DatasetPlacementConfig.parse({}))).toThrow(DatasetNotReachableError);
  });

  it('a shared volume holding the snapshot folder: the path is rewritten under the mount; outside it: refused', () => {
    const cfg = DatasetPlacementConfig.parse({
      sharedVolume: { claimName: 'datasets', localRoot: '/var/lib/mlops/data', mountPath: '/mnt/data' },
    });
    const { spec: placed, mount } = mountDataset(local, cfg);
    expect(placed.env.MLOPS_DATASET_PATH).toBe('/mnt/data/snapshots/x.parquet');
    expect(placed.env.MLOPS_DATASET_URI).toBe('file:///mnt/data/snapshots/x.parquet');
    expect(mount?.volume.persistentVolumeClaim).toEqual({ claimName: 'datasets', readOnly: true });
    expect(mount?.mount).toEqual({ name: 'datasets', mountPath: '/mnt/data', readOnly: true });
    const beside = spec({ MLOPS_DATASET_PATH: '/var/lib/mlops/data-other/x.csv', MLOPS_DATASET_SHA256: SHA });
    expect(() => mountDataset(beside, cfg)).toThrow(DatasetNotReachableError);
  });

  it('object store: staged under its sha256, the Job pointed at it with Secret references for credentials', async () => {
    const calls: unknown[] = [];
    const stager: SnapshotStager = {
      stage: async (p) => (calls.push(p), 'uploaded'),
    };
    const cfg = DatasetPlacementConfig.parse({
      objectStore: { bucket: 'ml-data', endpoint: 'http://s3.internal:9000', credentialsSecret: 'job-s3' },
    });
    const placed = await stageDataset(local, cfg, stager);
    expect(calls).toEqual([
      {
        file: '/var/lib/mlops/data/snapshots/x.parquet',
        sha256: SHA,
        bucket: 'ml-data',
        key: `mlops/snapshots/${SHA}.parquet`,
      },
    ]);
    expect(placed.env).toEqual({
      MLOPS_DATASET_URI: `s3://ml-data/mlops/snapshots/${SHA}.parquet`,
      MLOPS_DATASET_SHA256: SHA,
      MLOPS_S3_ENDPOINT: 'http://s3.internal:9000',
    });
    expect(placed.secretEnv).toEqual({
      AWS_ACCESS_KEY_ID: { secret: 'job-s3', key: 'AWS_ACCESS_KEY_ID' },
      AWS_SECRET_ACCESS_KEY: { secret: 'job-s3', key: 'AWS_SECRET_ACCESS_KEY' },
    });
    // Without the snapshot's sha256 there is no content address: refused.
    await expect(stageDataset(spec({ MLOPS_DATASET_PATH: '/d/a.csv' }), cfg, stager)).rejects.toThrow(
      /MLOPS_DATASET_SHA256 must be the snapshot's sha256/,
    );
    expect(stagedKey('', SHA, '/d/a.weird')).toBe(SHA);
  });

  it('from the worker environment: the bucket needs the Job Secret, the claim its folder, object store the S3 connector', () => {
    const base = { MLOPS_K8S_NAMESPACE: 'training' };
    expect(() => kubernetesRunnerConfigFromEnv({ ...base, MLOPS_K8S_DATASET_BUCKET: 'ml-data' })).toThrow(
      /MLOPS_K8S_DATASET_SECRET is required/,
    );
    expect(() => kubernetesRunnerConfigFromEnv({ ...base, MLOPS_K8S_DATASET_CLAIM: 'datasets' })).toThrow(
      /MLOPS_K8S_DATASET_VOLUME_ROOT is required/,
    );
    const cfg = kubernetesRunnerConfigFromEnv({
      ...base,
      MLOPS_K8S_DATASET_BUCKET: 'ml-data',
      MLOPS_K8S_DATASET_SECRET: 'job-s3',
      MLOPS_S3_ENDPOINT: 'http://127.0.0.1:9000',
      MLOPS_K8S_DATASET_CLAIM: 'datasets',
      MLOPS_K8S_DATASET_VOLUME_ROOT: '/var/lib/mlops/data',
    });
    expect(cfg.datasets).toEqual({
      objectStore: { bucket: 'ml-data', credentialsSecret: 'job-s3', endpoint: 'http://127.0.0.1:9000' },
      sharedVolume: { claimName: 'datasets', localRoot: '/var/lib/mlops/data' },
    });
    expect(() =>
      kubernetesRunnerFromEnv(
        { ...base, MLOPS_K8S_DATASET_BUCKET: 'ml-data', MLOPS_K8S_DATASET_SECRET: 'job-s3' },
        '/tmp/state',
      ),
    ).toThrow(JobSpecError);
  });
});
