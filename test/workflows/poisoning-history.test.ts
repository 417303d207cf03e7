/**
 * The poisoning screen against history in retrainingPipeline, on a real Temporal dev server, real MLflow and
 * the real reference trainer: the first model has no champion (the screen says it was skipped); once its
 * version is the champion, a batch that replays the champion's rows with flipped labels in one region, spread
 * over every batch so the in-snapshot screen sees nothing, ends `rejected-data` with the evidence and moves no
 * alias, while a clean batch passes the screen and is registered.
 *
 * The champion alias is set on the first version directly in MLflow: it stands for the evaluation, gate and
 * approval a pipeline with a holdout would go through (tested elsewhere); what is tested here is that the
 * screen finds that champion and its training snapshot.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerConfig } from '../../src/config';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ScreenedValidationReport } from '../../src/core/policy/poisoning-history';
import {
  retrainWorkflowId,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { GenerateOptions } from '../../src/workload/generator';
import {
  createLocalEnv,
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
  type RunningWorker,
} from '../helpers/env';

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let dataDir: string;
const CHAMPION_DATA: GenerateOptions = { rows: 3000, seed: 41 };

beforeAll(async () => {
  env = await createLocalEnv();
  dataDir = tempDir('wf-history-data');
  config = testWorkerConfig(tempDir('wf-history'));
  worker = await runWorker({ connection: env.nativeConnection, config });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

async function run(input: RetrainingInput, workflowId: string): Promise<PipelineResult> {
  return env.client.workflow.execute('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId,
    args: [input],
  });
}

const input = (model: string, file: string): RetrainingInput => ({
  model,
  dataset: { uri: pathToFileURL(file).href },
  trigger: { kind: 'new-data' },
  featureSpec: FRAUD_FEATURE_SPEC,
});

describe('retrainingPipeline: poisoning screen against the champion snapshot', () => {
  it('skips the screen for the first model, blocks a poisoned batch with its evidence, passes a clean one', async () => {
    const model = uniqueModel('history');
    const mlflow = mlflowClient();

    // 1. First model: no champion, the screen is skipped and says so.
    const first = await run(
      input(model, await writeDataset(dataDir, 'champion.csv', CHAMPION_DATA)),
      retrainWorkflowId(model),
    );
    expect(first.outcome).toBe('registered');
    const firstReport = first.validation as ScreenedValidationReport;
    expect(firstReport.history).toMatchObject({ status: 'skipped', blocked: 0 });
    expect(firstReport.history?.reason).toMatch(/no champion yet/);
    const v1 = first.status.candidate?.version as string;
    await mlflow.setAlias(model, 'champion', v1);

    // 2. Champion rows replayed with flipped labels in region east, spread over every batch.
    const poisonedFile = await writeDataset(dataDir, 'poisoned.csv', {
      rows: 3000,
      seed: 42,
      historyPoison: {
        reference: CHAMPION_DATA as never,
        mode: 'replay-flip',
        fraction: 0.05,
        region: 'east',
      },
    });
    const poisoned = await run(input(model, poisonedFile), `${retrainWorkflowId(model)}-poisoned`);
    expect(poisoned.outcome).toBe('rejected-data');
    expect(poisoned.status.stage).toBe('rejected-data');
    expect(poisoned.status.training).toBeUndefined();
    const report = poisoned.validation as ScreenedValidationReport;
    expect(report.ok).toBe(false);
    // The in-snapshot screen sees nothing: every failed check is a history check.
    const failed = report.checks.filter((c) => !c.passed);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((c) => c.check.startsWith('history.'))).toBe(true);
    expect(report.history).toMatchObject({ status: 'compared', champion: { version: v1 } });
    expect(report.history?.champion?.sha256).toBe(first.status.dataset?.sha256);
    const east = report.history?.checks.find(
      (c) => c.check === 'history.label-flips' && c.evidence.segment?.value === 'east',
    );
    expect(east).toMatchObject({ passed: false, phase: 'failed', action: 'block' });
    expect(east?.evidence.counts.flipped).toBeGreaterThan(50);
    expect(east?.evidence.adjustedPValue).toBeLessThan(1e-6);
    expect(east?.evidence.sampleRows?.[0]).toMatch(/^tx-2a-/);
    expect(poisoned.status.decisions.map((d) => d.reason).join(' ')).toMatch(/history\.label-flips/);

    // No alias moved and nothing was registered.
    expect((await mlflow.getModelVersionByAlias(model, 'champion')).version).toBe(v1);
    expect((await mlflow.getModelVersionByAlias(model, 'challenger')).version).toBe(v1);
    const versions = await mlflow.searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(1);

    // 3. A clean batch of the same world passes the screen against the champion and is registered.
    const clean = await run(
      input(model, await writeDataset(dataDir, 'clean.csv', { rows: 3000, seed: 43 })),
      `${retrainWorkflowId(model)}-clean`,
    );
    expect(clean.outcome).toBe('registered');
    const cleanReport = clean.validation as ScreenedValidationReport;
    expect(cleanReport.history).toMatchObject({ status: 'compared', blocked: 0 });
    expect(cleanReport.checks.some((c) => c.check.startsWith('history.'))).toBe(false);
    expect((await mlflow.getModelVersionByAlias(model, 'champion')).version).toBe(v1);
  });
});
