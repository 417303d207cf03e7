/**
 * Shared test plumbing: a Temporal test environment on the project's own CLI or a time-skipping one
 * on the project-fetched test server, a worker wired to the run's real MLflow server with a private
 * state folder, and dataset files from the generator.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { loadWorkerConfig, type WorkerConfig } from '../../src/config';
import { createWorker, type CreateWorkerOptions } from '../../workers/worker';
import { TERMINAL_STAGES, type PipelineStatus } from '../../src/core/contracts/retraining';
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

/**
 * A time-skipping environment on the project-fetched test server (a JVM program; the global setup
 * provisions it for the workflows and e2e layers). Time jumps ahead whenever the test awaits a
 * workflow result or calls `env.sleep`, so 72h approval timeouts run in seconds.
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const executable = inject('timeSkippingServer');
  if (!executable) {
    throw new Error('timeSkippingServer was not provided: run this test in the workflows or e2e project');
  }
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: executable } },
  });
}

export function testWorkerConfig(
  stateDir: string,
  extraImages: Record<string, string[]> = {},
  overrides: Partial<WorkerConfig> = {},
): WorkerConfig {
  const cfg = loadWorkerConfig({
    MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
    MLOPS_STATE_DIR: stateDir,
    MLOPS_TASK_QUEUE: `test-${path.basename(stateDir)}`,
  });
  return { ...cfg, ...overrides, localImages: { ...cfg.localImages, ...extraImages } };
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

/** Polls `probe` until it returns a value, or fails after `timeoutMs`; an error thrown by `probe` ends it at once. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** How long a test waits for a pipeline to train, register, evaluate and reach approval. */
export const AWAIT_APPROVAL_TIMEOUT_MS = 240_000;

/**
 * Polls a pipeline's `status` (through the SDK or the CLI) until it waits for approval; a terminal
 * stage fails at once with the gate's reasons and the decisions so far.
 */
export async function awaitApproval(
  label: string,
  status: () => Promise<PipelineStatus>,
): Promise<PipelineStatus> {
  return eventually(async () => {
    const s = await status();
    if (TERMINAL_STAGES.includes(s.stage)) {
      throw new Error(
        `${label} ended at ${s.stage} before approval (gate: ${JSON.stringify(s.gate)}, error: ${s.error ?? '-'}): ${JSON.stringify(s.decisions)}`,
      );
    }
    return s.stage === 'awaiting-approval' ? s : undefined;
  }, AWAIT_APPROVAL_TIMEOUT_MS);
}

export interface RunningWorker {
  /** Shuts the worker down and waits until it has drained. */
  stop(): Promise<void>;
}

/** Starts a project worker (the same factory as production) and returns how to stop it. */
export async function runWorker(options: CreateWorkerOptions): Promise<RunningWorker> {
  const worker = await createWorker(options);
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
