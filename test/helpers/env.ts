/**
 * Shared test plumbing: a Temporal test environment on the project's own CLI, a worker wired to
 * the run's real MLflow server with a private state folder, and dataset files from the generator.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { loadWorkerConfig, type WorkerConfig } from '../../src/config';
import { MlflowClient } from '../../src/mlflow';
import { generateFraudDataset, writeCsv, type GenerateOptions } from '../../src/workload/generator';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `mlops-${prefix}-`));
}

export async function createLocalEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: inject('temporalCli') }, ip: '127.0.0.1' },
  });
}

export function testWorkerConfig(stateDir: string, extraImages: Record<string, string[]> = {}): WorkerConfig {
  const cfg = loadWorkerConfig({
    MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
    MLOPS_STATE_DIR: stateDir,
    MLOPS_TASK_QUEUE: `test-${path.basename(stateDir)}`,
  });
  return { ...cfg, localImages: { ...cfg.localImages, ...extraImages } };
}

export function mlflowClient(): MlflowClient {
  return new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
}

/** Writes a generated fraud dataset and returns its path. */
export async function writeDataset(dir: string, name: string, opts: GenerateOptions): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeCsv(file, generateFraudDataset(opts));
  return file;
}

export function writeFile(dir: string, name: string, content: string | Buffer): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** A unique model name per test so tests sharing one MLflow server never collide. */
export function uniqueModel(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}
