/**
 * Where a Kubernetes Job reads its training data from. The training activity hands every runner the
 * validated snapshot as a file of the worker (`MLOPS_DATASET_PATH`, `file://` `MLOPS_DATASET_URI`),
 * which a pod on another node cannot open. The Kubernetes runner places it before the Job exists:
 *
 * - **Shared volume** (configured): the worker's snapshot folder is a PersistentVolumeClaim that
 *   the pod mounts read-only; the Job gets the path under its mount.
 * - **Object store** (configured): the snapshot is staged content-addressed at
 *   `s3://<bucket>/<prefix>/<sha256>.<ext>` (uploaded once: an object already carrying that
 *   sha256 is left alone), and the Job gets that URI, the endpoint as the Job sees it, and the
 *   credentials as `secretKeyRef`s of a Secret in the training namespace, never as values. The
 *   trainer verifies the sha256 of what it downloads, as it does for a local file.
 * - **Neither**: the Job is refused with {@link DatasetNotReachableError} before anything is
 *   created, rather than handed a path that exists only on the worker's disk.
 *
 * A dataset that is already remote (an `s3://` URI and no local path) passes through unchanged.
 * Rules: Node-only; no credential value ever lands in a Job spec.
 */
import { HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { DatasetSourceConfig } from '../data/sources';
import { JobSpecError, type JobSpec } from './types';

/** The Job's dataset variables of the job contract (deploy/trainer/JOB_CONTRACT.md). */
export const DATASET_PATH_ENV = 'MLOPS_DATASET_PATH';
export const DATASET_URI_ENV = 'MLOPS_DATASET_URI';
export const DATASET_SHA256_ENV = 'MLOPS_DATASET_SHA256';
/** Where the trainer finds the object store (the Job's view of it). */
export const S3_ENDPOINT_ENV = 'MLOPS_S3_ENDPOINT';
export const S3_REGION_ENV = 'MLOPS_S3_REGION';
/** The standard variables boto3 (and every AWS SDK) reads credentials from. */
export const ACCESS_KEY_ENV = 'AWS_ACCESS_KEY_ID';
export const SECRET_KEY_ENV = 'AWS_SECRET_ACCESS_KEY';
/** Key prefix of staged snapshots in the bucket. */
export const DEFAULT_STAGING_PREFIX = 'mlops/snapshots';
/** Object metadata key holding the staged snapshot's sha256 (what makes a re-stage a no-op). */
export const STAGED_SHA256_METADATA = 'sha256';
/** Name of the dataset volume in the pod. */
export const DATASET_VOLUME = 'datasets';
/** Region sent to an S3-compatible server that has none (signing needs one). */
const DEFAULT_REGION = 'us-east-1';
/** File extensions a snapshot keeps in its staged key (the trainer tells formats apart by content). */
const KEPT_EXTENSIONS = new Set(['.csv', '.parquet']);

/** The Job would get a dataset that only exists on the worker's disk, and nothing is configured to place it. */
export class DatasetNotReachableError extends JobSpecError {
  override readonly name = 'DatasetNotReachableError';
}

const absolutePath = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path');
const k8sName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Kubernetes object name');
const envKey = z.string().regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret key');

/** How the runner places datasets (part of the runner's configuration; see the module comment). */
export const DatasetPlacementConfig = z.object({
  sharedVolume: z
    .object({
      /** The PersistentVolumeClaim (in the training namespace) holding the worker's snapshots. */
      claimName: k8sName,
      /** The folder of the worker that the claim holds (its snapshot folder, or one above it). */
      localRoot: absolutePath,
      /** Where the pod mounts it (read-only); default: the same path as on the worker. */
      mountPath: absolutePath.optional(),
    })
    .optional(),
  objectStore: z
    .object({
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'must be an S3 key prefix')
        .default(DEFAULT_STAGING_PREFIX),
      /** The endpoint as the Job sees it (absent: AWS). */
      endpoint: z.url().optional(),
      region: z.string().min(1).optional(),
      /** The Secret in the training namespace with the Job's (read-only) credentials. */
      credentialsSecret: k8sName,
      accessKeyIdKey: envKey.default(ACCESS_KEY_ENV),
      secretAccessKeyKey: envKey.default(SECRET_KEY_ENV),
    })
    .optional(),
});
export type DatasetPlacementConfig = z.output<typeof DatasetPlacementConfig>;

/** Uploads a snapshot to the object store (the worker's own credentials; never the Job's). */
export interface SnapshotStager {
  /** Puts `file` at `bucket/key` unless an object with that sha256 is there. */
  stage(p: { file: string; sha256: string; bucket: string; key: string }): Promise<'uploaded' | 'present'>;
}

/** A volume and its mount added to the pod for the dataset. */
export interface DatasetMount {
  volume: { name: string; persistentVolumeClaim: { claimName: string; readOnly: boolean } };
  mount: { name: string; mountPath: string; readOnly: boolean };
}

/** The worker-local dataset file named by the spec's env, or undefined when the dataset is remote. */
export function localDatasetOf(spec: Pick<JobSpec, 'name' | 'env'>): string | undefined {
  const byPath = spec.env[DATASET_PATH_ENV]?.trim() || undefined;
  const uri = spec.env[DATASET_URI_ENV]?.trim() || undefined;
  let byUri: string | undefined;
  if (uri !== undefined && /^file:/i.test(uri)) {
    try {
      byUri = fileURLToPath(uri);
    } catch {
      throw new JobSpecError(`job ${spec.name}: env.${DATASET_URI_ENV} "${uri}" is not a file URI`);
    }
  }
  if (byPath !== undefined && byUri !== undefined && path.resolve(byPath) !== path.resolve(byUri)) {
    throw new JobSpecError(
      `job ${spec.name}: env.${DATASET_PATH_ENV} and env.${DATASET_URI_ENV} name different files`,
    );
  }
  const local = byPath ?? byUri;
  return local === undefined ? undefined : path.resolve(local);
}

/** `file` under `root`, as a relative path; undefined when it lies outside. */
function under(root: string, file: string): string | undefined {
  const rel = path.relative(path.resolve(root), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : undefined;
}

/**
 * The spec as a Job may carry it when its local dataset lies on the shared volume (the env rewritten
 * to the mounted path, and the mount); the spec unchanged when its dataset is remote. Throws
 * {@link DatasetNotReachableError} for a local dataset that no shared volume holds.
 */
export function mountDataset<S extends JobSpec>(
  spec: S,
  config: DatasetPlacementConfig,
): { spec: S; mount?: DatasetMount } {
  const local = localDatasetOf(spec);
  if (local === undefined) return { spec };
  const shared = config.sharedVolume;
  const rel = shared ? under(shared.localRoot, local) : undefined;
  if (!shared || rel === undefined) {
    throw new DatasetNotReachableError(
      `job ${spec.name}: the dataset ${local} exists only on the worker's disk, which a Kubernetes pod cannot read; ` +
        'configure the runner to stage snapshots in an object store (datasets.objectStore, MLOPS_K8S_DATASET_BUCKET) ' +
        `or a shared volume holding ${path.dirname(local)} (datasets.sharedVolume, MLOPS_K8S_DATASET_CLAIM)`,
    );
  }
  const mountRoot = shared.mountPath ?? shared.localRoot;
  const inPod = path.posix.join(mountRoot, ...rel.split(path.sep));
  const env = { ...spec.env, [DATASET_PATH_ENV]: inPod, [DATASET_URI_ENV]: pathToFileURL(inPod).href };
  return {
    spec: { ...spec, env },
    mount: {
      volume: {
        name: DATASET_VOLUME,
        persistentVolumeClaim: { claimName: shared.claimName, readOnly: true },
      },
      mount: { name: DATASET_VOLUME, mountPath: mountRoot, readOnly: true },
    },
  };
}

/** The staged object's key: content-addressed, so every pipeline on the same data shares one object. */
export function stagedKey(prefix: string, sha256: string, file: string): string {
  const ext = path.extname(file).toLowerCase();
  const name = `${sha256}${KEPT_EXTENSIONS.has(ext) ? ext : ''}`;
  const clean = prefix.replace(/^\/+|\/+$/g, '');
  return clean ? `${clean}/${name}` : name;
}

/**
 * Stages the spec's local dataset in the object store and returns the spec pointing the Job at it
 * (URI, endpoint, credentials by Secret reference), when an object store is configured and no
 * shared volume already holds the dataset. Any other spec comes back unchanged.
 */
export async function stageDataset<S extends JobSpec>(
  spec: S,
  config: DatasetPlacementConfig,
  stager: SnapshotStager | undefined,
): Promise<S> {
  const local = localDatasetOf(spec);
  const store = config.objectStore;
  if (local === undefined || store === undefined) return spec;
  if (config.sharedVolume && under(config.sharedVolume.localRoot, local) !== undefined) return spec;
  if (!stager) {
    throw new JobSpecError(
      `job ${spec.name}: datasets.objectStore is configured but the runner has no uploader`,
    );
  }
  const sha256 = spec.env[DATASET_SHA256_ENV]?.trim().toLowerCase() ?? '';
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new JobSpecError(
      `job ${spec.name}: env.${DATASET_SHA256_ENV} must be the snapshot's sha256 to stage it (64 hex digits)`,
    );
  }
  const key = stagedKey(store.prefix, sha256, local);
  await stager.stage({ file: local, sha256, bucket: store.bucket, key });
  const env: Record<string, string> = { ...spec.env, [DATASET_URI_ENV]: `s3://${store.bucket}/${key}` };
  delete env[DATASET_PATH_ENV];
  if (store.endpoint !== undefined) env[S3_ENDPOINT_ENV] = store.endpoint;
  if (store.region !== undefined) env[S3_REGION_ENV] = store.region;
  return {
    ...spec,
    env,
    secretEnv: {
      ...spec.secretEnv,
      [ACCESS_KEY_ENV]: { secret: store.credentialsSecret, key: store.accessKeyIdKey },
      [SECRET_KEY_ENV]: { secret: store.credentialsSecret, key: store.secretAccessKeyKey },
    },
  };
}

/** The object store refused or failed a staging call (retryable unless the credentials were refused). */
export class SnapshotStagingError extends Error {
  override readonly name = 'SnapshotStagingError';
}

/**
 * A {@link SnapshotStager} over S3 with the worker's data-plane connector (endpoint, and credentials
 * from its secret store: the same ones that read `s3://` datasets).
 */
export function createS3SnapshotStager(connector: NonNullable<DatasetSourceConfig['s3']>): SnapshotStager {
  const { config, secrets } = connector;
  return {
    async stage({ file, sha256, bucket, key }) {
      const [accessKeyId, secretAccessKey] = await Promise.all([
        secrets.get(config.accessKeyId),
        secrets.get(config.secretAccessKey),
      ]);
      if (!accessKeyId || !secretAccessKey) {
        throw new SnapshotStagingError(
          `s3://${bucket}/${key}: no S3 credentials in the ${secrets.kind} secret store to stage the snapshot`,
        );
      }
      const client = new S3Client({
        ...(config.endpoint !== undefined && { endpoint: config.endpoint }),
        region: config.region ?? DEFAULT_REGION,
        forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
        credentials: { accessKeyId, secretAccessKey },
        // S3-compatible servers take plain payloads; the SDK's default streaming checksums they may not.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      const where = `s3://${bucket}/${key}`;
      try {
        try {
          const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
          if (head.Metadata?.[STAGED_SHA256_METADATA] === sha256) return 'present';
        } catch (err) {
          const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
          if (status !== 404) throw err;
        }
        const { size } = await stat(file);
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: size,
            Metadata: { [STAGED_SHA256_METADATA]: sha256 },
          }),
        );
        return 'uploaded';
      } catch (err) {
        if (err instanceof SnapshotStagingError) throw err;
        const name = err instanceof Error ? err.name : 'Error';
        throw new SnapshotStagingError(
          `${where}: staging the snapshot failed: ${name}: ${err instanceof Error ? err.message : String(err)}`,
        );
      } finally {
        client.destroy();
      }
    },
  };
}
