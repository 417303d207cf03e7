/**
 * Dataset activities: a content-addressed snapshot of the input dataset, and its validation
 * against the feature spec. An unreadable or corrupt dataset is a permanent failure (the pipeline
 * ends as `rejected-data`), never a retry loop.
 */
import { readPolicyJson } from './policy';
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DatasetProfile, FeatureSpec, ValidationReport } from '../src/core/contracts/feature-spec';
import type { DatasetRef, DatasetSnapshot } from '../src/core/contracts/retraining';
import type { DriftReference } from '../src/data/drift-reference';
import {
  DatasetFormatError,
  DatasetReadError,
  fingerprintsPathOf,
  profileDatasetWithExtras,
  sniffFormat,
} from '../src/data/profile';
import {
  DatasetAccessDeniedError,
  DatasetNotFoundError,
  DatasetOutsideRootsError,
  DatasetSourceError,
  UnsupportedDatasetSchemeError,
  openDatasetSource,
  s3ConnectorFromEnv,
  type DatasetSourceConfig,
} from '../src/data/sources';
import { failedReport, judgeDataset } from '../src/core/policy/validation';
import { FailureType as FailureTypes } from '../src/core/contracts/failures';
import { formatZodError } from '../src/core/contracts/errors';
import {
  ValidationPolicySchema,
  type HistoryScreen,
  type HistoryScreenPolicy,
} from '../src/core/contracts/poisoning-history';
import { Aliases, VersionTags } from '../src/core/contracts/registry';
import {
  judgeHistory,
  skippedHistory,
  withHistory,
  type ScreenedValidationReport,
} from '../src/core/policy/poisoning-history';
import { measureHistory } from '../src/data/history';
import type { ModelRegistry } from '../src/ports/model-registry';
import { mapped } from './errors';

export { fingerprintsPathOf };

/** Environment variable listing the folders datasets may be read from (path-delimiter separated). */
export const DATASET_ROOTS_ENV = 'MLOPS_DATASET_ROOTS';

export interface DataActivityConfig {
  /** Folder of content-addressed dataset snapshots (`<sha256>.csv` or `<sha256>.parquet`). */
  snapshotDir: string;
  /**
   * Folders `file://` datasets may be read from; default `$MLOPS_DATASET_ROOTS`, else {@link defaultDatasetRoots}.
   */
  datasetRoots?: readonly string[];
  /**
   * The `s3://` connector (endpoint, credentials from the secret store); default from the environment
   * (`MLOPS_S3_ENDPOINT`, `MLOPS_S3_*_REF`, see `s3ConnectorFromEnv`); s3:// is refused without one.
   */
  s3?: DatasetSourceConfig['s3'];
  /**
   * The model registry, where the poisoning screen against history finds the champion's training snapshot
   * (its `mlops.dataset_sha256` tag, looked up in {@link snapshotDir}); without one the screen does not run.
   */
  registry?: ModelRegistry;
  /** Folder of per-model policies; the `validation.history` section configures that screen (defaults without). */
  policyDir?: string;
}

/**
 * Dataset roots when none are configured: the state folder's `data/` (where the demo writes its datasets) and
 * the OS temp folder (development and tests). Production sets {@link DATASET_ROOTS_ENV}.
 */
export function defaultDatasetRoots(snapshotDir: string): string[] {
  return [path.join(path.dirname(path.resolve(snapshotDir)), 'data'), os.tmpdir()];
}

function datasetRoots(cfg: DataActivityConfig): readonly string[] {
  if (cfg.datasetRoots !== undefined) return cfg.datasetRoots;
  const fromEnv = process.env[DATASET_ROOTS_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return fromEnv.split(path.delimiter).filter((r) => r.trim() !== '');
  }
  return defaultDatasetRoots(cfg.snapshotDir);
}

const SNAPSHOT_NAME = /^([0-9a-f]{64})\.(csv|parquet)$/;

/** The sha256 a snapshot of this store is named by; undefined for any other file (it is hashed when profiled). */
function snapshotDigest(snapshotDir: string, file: string): string | undefined {
  const resolved = path.resolve(file);
  if (path.dirname(resolved) !== path.resolve(snapshotDir)) return undefined;
  return SNAPSHOT_NAME.exec(path.basename(resolved))?.[1];
}

/** A connector error as the activity's named, non-retryable failure. */
function sourceFailure(uri: string, err: unknown): ApplicationFailure {
  const message = (err as Error).message;
  if (err instanceof DatasetOutsideRootsError) {
    return ApplicationFailure.nonRetryable(message, FailureTypes.DatasetOutsideRoots);
  }
  if (err instanceof DatasetAccessDeniedError) {
    return ApplicationFailure.nonRetryable(message, FailureTypes.DatasetAccessDenied);
  }
  if (err instanceof UnsupportedDatasetSchemeError) {
    return ApplicationFailure.nonRetryable(`dataset.uri: ${message}`, FailureTypes.InvalidInput);
  }
  if (err instanceof DatasetNotFoundError || err instanceof DatasetSourceError) {
    return ApplicationFailure.nonRetryable(
      `dataset ${uri} is unreadable: ${message}`,
      FailureTypes.DatasetUnreadable,
    );
  }
  return ApplicationFailure.nonRetryable(
    `dataset ${uri} could not be read: ${message}`,
    FailureTypes.DatasetUnreadable,
  );
}

/** The `validation` section of the model's policy file; the defaults when there is no file. */
async function historyPolicy(policyDir: string | undefined, model: string): Promise<HistoryScreenPolicy> {
  if (policyDir === undefined) return ValidationPolicySchema.parse({}).history;
  const read = await readPolicyJson(policyDir, model);
  if (read === undefined) return ValidationPolicySchema.parse({}).history;
  const { file, json } = read;
  const section = (json as { validation?: unknown } | null)?.validation ?? {};
  const parsed = ValidationPolicySchema.safeParse(section);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `${file}: ${formatZodError(parsed.error, 'validation')}`,
      FailureTypes.PolicyInvalid,
    );
  }
  return parsed.data.history;
}

/** The champion's training snapshot in the store, by the sha256 its version was tagged with. */
function championSnapshot(snapshotDir: string, sha256: string): string | undefined {
  for (const ext of ['csv', 'parquet']) {
    const file = path.join(snapshotDir, `${sha256}.${ext}`);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/**
 * The poisoning screen against history (`src/core/policy/poisoning-history.ts`): the champion is found in the
 * registry, its training snapshot in the snapshot store; without either, the screen is skipped and says why.
 */
async function screenAgainstHistory(
  cfg: DataActivityConfig,
  registry: ModelRegistry,
  input: { snapshotPath: string; sha256: string; spec: FeatureSpec; model: string },
): Promise<HistoryScreen> {
  const policy = await historyPolicy(cfg.policyDir, input.model);
  if (!policy.enabled) return skippedHistory('disabled by the policy (validation.history.enabled is false)');
  const champion = await mapped(() => registry.findVersionByAlias(input.model, Aliases.champion));
  if (champion === undefined) {
    return skippedHistory(
      `model "${input.model}" has no champion yet (first model): nothing to compare with`,
    );
  }
  const sha256 = champion.tags[VersionTags.datasetSha256];
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
    return skippedHistory(`champion v${champion.version} carries no ${VersionTags.datasetSha256} tag`);
  }
  if (sha256 === input.sha256) {
    return skippedHistory(`champion v${champion.version} was trained on this very snapshot`);
  }
  const reference = championSnapshot(cfg.snapshotDir, sha256);
  if (reference === undefined) {
    return skippedHistory(
      `champion v${champion.version}'s training snapshot ${sha256} is not in the snapshot store ${cfg.snapshotDir}`,
    );
  }
  const segments =
    policy.segments === undefined
      ? undefined
      : [...new Set([...policy.segments, ...(policy.segmentShift.segments ?? [])])];
  try {
    const m = await measureHistory({
      current: { path: input.snapshotPath, sha256: input.sha256 },
      reference: { path: reference, sha256, version: champion.version },
      spec: input.spec,
      tolerance: policy.nearDuplicateTolerance,
      ...(segments !== undefined && { segments }),
      sampleRows: policy.sampleRows,
    });
    return judgeHistory(m, policy);
  } catch (err) {
    if (err instanceof DatasetFormatError || err instanceof DatasetReadError) {
      return skippedHistory(
        `champion v${champion.version}'s training snapshot could not be read: ${err.message}`,
      );
    }
    throw err;
  }
}

export function createDataActivities(cfg: DataActivityConfig) {
  const s3 = cfg.s3 ?? s3ConnectorFromEnv(process.env, path.dirname(path.resolve(cfg.snapshotDir)));
  return {
    /** Hashes the dataset while copying it into the snapshot store; idempotent by content. */
    async snapshotDataset(input: { dataset: DatasetRef }): Promise<DatasetSnapshot> {
      const uri = input.dataset.uri;
      let source;
      try {
        source = await openDatasetSource(uri, { roots: datasetRoots(cfg), ...(s3 && { s3 }) });
      } catch (err) {
        throw sourceFailure(uri, err);
      }
      mkdirSync(cfg.snapshotDir, { recursive: true });
      const tmp = path.join(cfg.snapshotDir, `.incoming-${process.pid}-${Date.now()}`);
      const hash = createHash('sha256');
      let head: Buffer | undefined;
      let bytes = 0;
      try {
        await pipeline(
          source.stream,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              hash.update(chunk);
              bytes += chunk.length;
              head ??= chunk;
              yield chunk;
            }
          },
          createWriteStream(tmp, { highWaterMark: 1024 * 1024 }),
        );
      } catch (err) {
        rmSync(tmp, { force: true });
        throw sourceFailure(uri, err);
      }
      if (source.bytes !== undefined && source.bytes !== bytes) {
        rmSync(tmp, { force: true });
        throw ApplicationFailure.nonRetryable(
          `dataset ${uri} ended after ${bytes} of its ${source.bytes} bytes`,
          FailureTypes.DatasetUnreadable,
        );
      }
      const sha256 = hash.digest('hex');
      if (input.dataset.sha256 && input.dataset.sha256 !== sha256) {
        rmSync(tmp, { force: true });
        throw ApplicationFailure.nonRetryable(
          `dataset ${uri} hashes to ${sha256}, not the expected ${input.dataset.sha256}`,
          FailureTypes.DatasetIntegrity,
        );
      }
      // The extension follows the content (the engine sniffs it too), never the source's name.
      const snapshotPath = path.join(cfg.snapshotDir, `${sha256}.${sniffFormat(head ?? Buffer.alloc(0))}`);
      if (existsSync(snapshotPath)) rmSync(tmp, { force: true });
      else renameSync(tmp, snapshotPath);
      return { sourceUri: uri, snapshotPath, sha256, bytes };
    },

    /**
     * Profiles the snapshot and judges it against the spec; a malformed file is a failed report. A snapshot of
     * this store is named by its sha256, so its bytes are read once, by the engine, and not hashed again; that
     * same read gives the drift reference (returned) and the row fingerprints (written beside the snapshot,
     * {@link fingerprintsPathOf}) that evaluation's holdout-leak check reads instead of the snapshot.
     */
    async validateDataset(input: {
      snapshotPath: string;
      spec: FeatureSpec;
      /** The model trained on it: with a registry, the snapshot is also screened against its champion's. */
      model?: string;
    }): Promise<{ report: ScreenedValidationReport; profile?: DatasetProfile; drift?: DriftReference }> {
      try {
        const sha256 = snapshotDigest(cfg.snapshotDir, input.snapshotPath);
        const { profile, drift } = await profileDatasetWithExtras(input.snapshotPath, input.spec, {
          sha256,
          ...(sha256 !== undefined && { fingerprintsTo: fingerprintsPathOf(input.snapshotPath) }),
        });
        const report: ValidationReport = judgeDataset(profile, input.spec);
        if (cfg.registry === undefined || input.model === undefined) return { report, profile, drift };
        const history = await screenAgainstHistory(cfg, cfg.registry, {
          snapshotPath: input.snapshotPath,
          sha256: profile.sha256,
          spec: input.spec,
          model: input.model,
        });
        return { report: withHistory(report, history), profile, drift };
      } catch (err) {
        if (err instanceof DatasetFormatError) {
          return {
            report: failedReport(
              'format',
              err.message,
              'a CSV file with a header row or a Parquet file',
              `dataset is not a readable CSV or Parquet file: ${err.message}`,
            ),
          };
        }
        if (err instanceof DatasetReadError) {
          return {
            report: failedReport(
              'readable',
              err.message,
              'a readable file',
              `dataset snapshot is unreadable: ${err.message}`,
            ),
          };
        }
        throw err;
      }
    },
  };
}
