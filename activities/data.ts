/**
 * Dataset activities: a content-addressed snapshot of the input dataset, and its validation
 * against the feature spec. An unreadable or corrupt dataset is a permanent failure (the pipeline
 * ends as `rejected-data`), never a retry loop.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { DatasetProfile, FeatureSpec, ValidationReport } from '../src/core/contracts/feature-spec';
import type { DatasetRef, DatasetSnapshot } from '../src/core/contracts/retraining';
import { DatasetFormatError, DatasetReadError, profileDataset, sniffFormat } from '../src/data/profile';
import { failedReport, judgeDataset } from '../src/core/policy/validation';
import { FailureType as FailureTypes } from '../src/core/contracts/failures';

export interface DataActivityConfig {
  /** Folder of content-addressed dataset snapshots (`<sha256>.csv` or `<sha256>.parquet`). */
  snapshotDir: string;
}

/** Resolves a dataset URI to a local path; other schemes need their own connector. */
export function resolveDatasetPath(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw ApplicationFailure.nonRetryable(
      `dataset.uri: scheme of "${uri}" is not supported by the local data connector (use file:// or a path)`,
      FailureTypes.InvalidInput,
    );
  }
  return path.resolve(uri);
}

const SNAPSHOT_NAME = /^([0-9a-f]{64})\.(csv|parquet)$/;

/** The sha256 a snapshot of this store is named by; undefined for any other file (it is hashed when profiled). */
function snapshotDigest(snapshotDir: string, file: string): string | undefined {
  const resolved = path.resolve(file);
  if (path.dirname(resolved) !== path.resolve(snapshotDir)) return undefined;
  return SNAPSHOT_NAME.exec(path.basename(resolved))?.[1];
}

export function createDataActivities(cfg: DataActivityConfig) {
  return {
    /** Hashes the dataset while copying it into the snapshot store; idempotent by content. */
    async snapshotDataset(input: { dataset: DatasetRef }): Promise<DatasetSnapshot> {
      const source = resolveDatasetPath(input.dataset.uri);
      let bytes: number;
      try {
        const st = statSync(source);
        if (!st.isFile()) throw new Error('not a regular file');
        bytes = st.size;
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `dataset ${input.dataset.uri} is unreadable: ${(err as Error).message}`,
          FailureTypes.DatasetUnreadable,
        );
      }
      mkdirSync(cfg.snapshotDir, { recursive: true });
      const tmp = path.join(cfg.snapshotDir, `.incoming-${process.pid}-${Date.now()}`);
      const hash = createHash('sha256');
      let head: Buffer | undefined;
      try {
        await pipeline(
          createReadStream(source),
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              hash.update(chunk);
              head ??= chunk;
              yield chunk;
            }
          },
          createWriteStream(tmp),
        );
      } catch (err) {
        rmSync(tmp, { force: true });
        throw ApplicationFailure.nonRetryable(
          `dataset ${input.dataset.uri} could not be read: ${(err as Error).message}`,
          FailureTypes.DatasetUnreadable,
        );
      }
      const sha256 = hash.digest('hex');
      if (input.dataset.sha256 && input.dataset.sha256 !== sha256) {
        rmSync(tmp, { force: true });
        throw ApplicationFailure.nonRetryable(
          `dataset ${input.dataset.uri} hashes to ${sha256}, not the expected ${input.dataset.sha256}`,
          FailureTypes.DatasetIntegrity,
        );
      }
      // The extension follows the content (the engine sniffs it too), never the source's name.
      const snapshotPath = path.join(cfg.snapshotDir, `${sha256}.${sniffFormat(head ?? Buffer.alloc(0))}`);
      if (existsSync(snapshotPath)) rmSync(tmp, { force: true });
      else renameSync(tmp, snapshotPath);
      return { sourceUri: input.dataset.uri, snapshotPath, sha256, bytes };
    },

    /**
     * Profiles the snapshot and judges it against the spec; a malformed file is a failed report. A snapshot of
     * this store is named by its sha256, so its bytes are read once, by the engine, and not hashed again.
     */
    async validateDataset(input: {
      snapshotPath: string;
      spec: FeatureSpec;
    }): Promise<{ report: ValidationReport; profile?: DatasetProfile }> {
      try {
        const profile = await profileDataset(input.snapshotPath, input.spec, {
          sha256: snapshotDigest(cfg.snapshotDir, input.snapshotPath),
        });
        return { report: judgeDataset(profile, input.spec), profile };
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
