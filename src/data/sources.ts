/**
 * Dataset connectors: where a pipeline's `dataset.uri` may be read from, opened as one byte stream that the
 * snapshot activity hashes while it copies (the source is read once).
 *
 * - `file://` URIs and plain paths: only under the configured roots. The path is resolved with every
 *   symlink followed (`realpath`) and must then lie inside a root (itself resolved); anything else throws
 *   {@link DatasetOutsideRootsError} before a byte of the file is read (only its metadata is looked at).
 * - `s3://bucket/key`: through the AWS SDK against the configured endpoint (the stack's S3 server, or AWS),
 *   with credentials from the secret store, never from input. A missing object or bucket throws
 *   {@link DatasetNotFoundError}; refused credentials {@link DatasetAccessDeniedError}.
 * - Any other scheme throws {@link UnsupportedDatasetSchemeError}.
 *
 * Rules: Node-only. Every error names the URI (never a credential).
 */
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import type { SecretRef, SecretStore } from '../ports/secret-store';
import { createEnvSecretStore, createFileSecretStore } from '../secrets/local';

/** Bytes read from a local file per chunk: large chunks keep the copy and the hash off the event loop. */
export const FILE_READ_CHUNK_BYTES = 1024 * 1024;
/** Region sent to an S3-compatible server that has none (the SDK requires one for signing). */
export const DEFAULT_S3_REGION = 'us-east-1';

/** The URI names a file outside every configured dataset root. */
export class DatasetOutsideRootsError extends Error {
  override readonly name = 'DatasetOutsideRootsError';
}
/** The URI's scheme has no connector. */
export class UnsupportedDatasetSchemeError extends Error {
  override readonly name = 'UnsupportedDatasetSchemeError';
}
/** No such file, bucket or object. */
export class DatasetNotFoundError extends Error {
  override readonly name = 'DatasetNotFoundError';
}
/** The store refused the credentials (unknown key, bad signature, no permission). */
export class DatasetAccessDeniedError extends Error {
  override readonly name = 'DatasetAccessDeniedError';
}
/** The source exists but cannot be read (not a regular file, I/O error, server error). */
export class DatasetSourceError extends Error {
  override readonly name = 'DatasetSourceError';
}

export interface S3SourceConfig {
  /** Endpoint of an S3-compatible server (e.g. `http://127.0.0.1:9000`); AWS when absent. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Where the access key id and secret live in the secret store. */
  accessKeyId: SecretRef;
  secretAccessKey: SecretRef;
}

export interface DatasetSourceConfig {
  /** Folders datasets may be read from (symlinks in them are resolved). */
  roots: readonly string[];
  s3?: { config: S3SourceConfig; secrets: SecretStore };
}

export interface OpenedSource {
  stream: Readable;
  /** Size in bytes when the source tells it up front. */
  bytes?: number;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** `s3://bucket/key` split into its parts; undefined for any other URI. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1] as string, key: m[2] as string } : undefined;
}

/** Whether `child` (resolved) lies inside `root` (resolved). */
function inside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The real path of a local dataset URI or path, checked against the roots: throws
 * {@link DatasetOutsideRootsError} (also for a symlink that leads out of them) or {@link DatasetNotFoundError}.
 */
export async function resolveLocalDataset(uri: string, roots: readonly string[]): Promise<string> {
  let file: string;
  try {
    file = uri.startsWith('file://') ? fileURLToPath(uri) : path.resolve(uri);
  } catch (err) {
    throw new DatasetSourceError(`${uri}: not a valid file URI: ${(err as Error).message}`);
  }
  let real: string;
  try {
    real = await realpath(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // Say "outside" rather than "missing" for paths outside the roots: no probing of other folders.
      if (!(await anyRootHolds(roots, path.resolve(file)))) throw outside(uri, roots);
      throw new DatasetNotFoundError(`${uri}: no such file`);
    }
    throw new DatasetSourceError(`${uri}: cannot resolve: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (!(await anyRootHolds(roots, real))) throw outside(uri, roots);
  return real;
}

async function anyRootHolds(roots: readonly string[], file: string): Promise<boolean> {
  for (const root of roots) {
    const resolved = await realpath(root).catch(() => undefined);
    if (resolved !== undefined && inside(resolved, file)) return true;
  }
  return false;
}

const outside = (uri: string, roots: readonly string[]): DatasetOutsideRootsError =>
  new DatasetOutsideRootsError(
    `${uri}: outside the configured dataset roots (${roots.length > 0 ? roots.join(', ') : 'none'}); ` +
      'set MLOPS_DATASET_ROOTS to allow its folder',
  );

async function s3Client(cfg: S3SourceConfig, secrets: SecretStore, uri: string): Promise<S3Client> {
  const [accessKeyId, secretAccessKey] = await Promise.all([
    secrets.get(cfg.accessKeyId),
    secrets.get(cfg.secretAccessKey),
  ]);
  if (!accessKeyId || !secretAccessKey) {
    throw new DatasetAccessDeniedError(
      `${uri}: no S3 credentials in the ${secrets.kind} secret store ` +
        `(${cfg.accessKeyId.secret}/${cfg.accessKeyId.key}, ${cfg.secretAccessKey.secret}/${cfg.secretAccessKey.key})`,
    );
  }
  return new S3Client({
    ...(cfg.endpoint !== undefined && { endpoint: cfg.endpoint }),
    region: cfg.region ?? DEFAULT_S3_REGION,
    forcePathStyle: cfg.forcePathStyle ?? cfg.endpoint !== undefined,
    credentials: { accessKeyId, secretAccessKey },
    // A refused credential or a missing object is permanent; the activity's retry policy handles the rest.
    maxAttempts: 1,
    // S3-compatible servers take plain payloads; the SDK's default streaming checksums they may not.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The S3 error classes that mean "does not exist" and "not allowed". */
const NOT_FOUND = new Set(['NoSuchKey', 'NoSuchBucket', 'NotFound']);
const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidSecurity',
  'Forbidden',
]);

/** Maps an S3 failure onto the connector's named errors. */
export function s3Error(uri: string, err: unknown): Error {
  const name = err instanceof S3ServiceException ? err.name : (err as Error).name;
  const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
  if (NOT_FOUND.has(name) || status === 404)
    return new DatasetNotFoundError(`${uri}: no such object (${name})`);
  if (DENIED.has(name) || status === 403) {
    return new DatasetAccessDeniedError(`${uri}: the S3 server refused the credentials (${name})`);
  }
  return new DatasetSourceError(`${uri}: S3 read failed: ${name}: ${(err as Error).message}`);
}

/**
 * Opens the dataset at `uri` for one sequential read. Throws the connector's named errors; a read error later
 * surfaces on the stream.
 */
export async function openDatasetSource(uri: string, cfg: DatasetSourceConfig): Promise<OpenedSource> {
  const scheme = SCHEME.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') {
    const file = await resolveLocalDataset(uri, cfg.roots);
    const st = await stat(file);
    if (!st.isFile()) throw new DatasetSourceError(`${uri}: not a regular file`);
    return { stream: createReadStream(file, { highWaterMark: FILE_READ_CHUNK_BYTES }), bytes: st.size };
  }
  if (scheme === 's3') {
    const where = parseS3Uri(uri);
    if (where === undefined) throw new DatasetSourceError(`${uri}: expected s3://<bucket>/<key>`);
    if (cfg.s3 === undefined) {
      throw new UnsupportedDatasetSchemeError(`${uri}: this worker has no S3 connector configured`);
    }
    const client = await s3Client(cfg.s3.config, cfg.s3.secrets, uri);
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: where.bucket, Key: where.key }));
      const body = out.Body as Readable | undefined;
      if (body === undefined) throw new DatasetSourceError(`${uri}: the S3 server returned no body`);
      body.once('close', () => client.destroy());
      return { stream: body, ...(out.ContentLength !== undefined && { bytes: out.ContentLength }) };
    } catch (err) {
      client.destroy();
      throw err instanceof DatasetSourceError ? err : s3Error(uri, err);
    }
  }
  throw new UnsupportedDatasetSchemeError(
    `${uri}: scheme "${scheme}" has no dataset connector (file://, s3://)`,
  );
}

/** A `<secret>/<key>` reference as written in the environment. */
const SecretRefText = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be <secret>/<key>');

/** Default secret references of the S3 connector's credentials. */
export const DEFAULT_S3_ACCESS_KEY_REF = 's3/access-key-id';
export const DEFAULT_S3_SECRET_KEY_REF = 's3/secret-access-key';

const S3EnvSchema = z.object({
  /** The S3-compatible server; with neither it nor MLOPS_S3_ENABLED=1 the worker has no s3:// connector. */
  MLOPS_S3_ENDPOINT: z.url().optional(),
  MLOPS_S3_ENABLED: z.enum(['0', '1']).optional(),
  MLOPS_S3_REGION: z.string().min(1).optional(),
  MLOPS_S3_ACCESS_KEY_REF: SecretRefText.default(DEFAULT_S3_ACCESS_KEY_REF),
  MLOPS_S3_SECRET_KEY_REF: SecretRefText.default(DEFAULT_S3_SECRET_KEY_REF),
  /** Which secret store holds the credentials: files under the state folder, or the environment. */
  MLOPS_SECRET_STORE: z.enum(['file', 'env']).default('file'),
  /** Folder of the file secret store (default `<state>/secrets`). */
  MLOPS_SECRETS_DIR: z.string().min(1).optional(),
});

const refOf = (text: string): SecretRef => {
  const [secret = '', key = ''] = text.split('/');
  return { secret, key };
};

/** The worker's s3:// connector from its environment; undefined when none is configured. */
export function s3ConnectorFromEnv(env: NodeJS.ProcessEnv, stateDir: string): DatasetSourceConfig['s3'] {
  const r = S3EnvSchema.safeParse(env);
  if (!r.success) throw new Error(`invalid S3 connector configuration: ${formatZodError(r.error)}`);
  const e = r.data;
  if (e.MLOPS_S3_ENDPOINT === undefined && e.MLOPS_S3_ENABLED !== '1') return undefined;
  return {
    config: {
      ...(e.MLOPS_S3_ENDPOINT !== undefined && { endpoint: e.MLOPS_S3_ENDPOINT }),
      ...(e.MLOPS_S3_REGION !== undefined && { region: e.MLOPS_S3_REGION }),
      accessKeyId: refOf(e.MLOPS_S3_ACCESS_KEY_REF),
      secretAccessKey: refOf(e.MLOPS_S3_SECRET_KEY_REF),
    },
    secrets:
      e.MLOPS_SECRET_STORE === 'env'
        ? createEnvSecretStore(env)
        : createFileSecretStore(e.MLOPS_SECRETS_DIR ?? path.join(stateDir, 'secrets')),
  };
}
