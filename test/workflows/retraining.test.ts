/**
 * retrainingPipeline on a real Temporal dev server (TestWorkflowEnvironment.createLocal with the
 * project-built CLI), real MLflow, and the real reference trainer run by the local job runner.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities';
import { MlflowModelRegistry } from '../../src/registry';
import { fetchVerifiedModel } from '../../src/registry/verified-model';
import {
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import {
  createLocalEnv,
  mlflowClient,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
  writeFile,
} from '../helpers/env';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let dataDir: string;
let cleanData: string;
/** Fault injection around the real activities: fail once *after* the real call succeeded. */
const failAfterSuccessOnce = new Set<string>();
const calls: Record<string, number> = {};

beforeAll(async () => {
  env = await createLocalEnv();
  const stateDir = tempDir('wf');
  dataDir = tempDir('wf-data');
  cleanData = await writeDataset(dataDir, 'clean.csv', { rows: 3000, seed: 11 });
  config = testWorkerConfig(stateDir, {
    // A trainer image whose process fails the way a broken user image would.
    'test/failing-trainer': ['sh', '-c', 'echo "loading data"; echo "fatal: CUDA out of memory" >&2; exit 3'],
  });
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    wrapActivities: (acts) => {
      const wrapped = { ...acts } as Record<string, (...a: never[]) => Promise<unknown>>;
      for (const [name, fn] of Object.entries(acts) as Array<[string, (...a: never[]) => Promise<unknown>]>) {
        wrapped[name] = async (...args: never[]) => {
          calls[name] = (calls[name] ?? 0) + 1;
          const out = await fn(...args);
          if (failAfterSuccessOnce.delete(name)) {
            throw ApplicationFailure.retryable(`injected: response of ${name} lost after it succeeded`);
          }
          return out;
        };
      }
      return wrapped as unknown as Activities;
    },
  });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

async function run(
  input: RetrainingInput,
  workflowId = retrainWorkflowId(input.model),
): Promise<PipelineResult> {
  return env.client.workflow.execute('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId,
    args: [input],
  });
}

async function expectFailure(input: unknown, workflowId: string): Promise<ApplicationFailure> {
  const err = await env.client.workflow
    .execute('retrainingPipeline', { taskQueue: config.taskQueue, workflowId, args: [input] })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('retrainingPipeline', () => {
  it('snapshots, validates, trains, registers with provenance tags and a verified manifest, aliases challenger', async () => {
    const model = uniqueModel('fraud');
    const result = await run({
      model,
      dataset: { uri: pathToFileURL(cleanData).href },
      trigger: { kind: 'manual', by: 'tester' },
      featureSpec: FRAUD_FEATURE_SPEC,
      codeVersion: 'test-sha',
    });
    expect(result.outcome).toBe('registered');
    expect(result.status.stage).toBe('completed');
    expect(result.validation?.ok).toBe(true);
    const version = result.status.candidate?.version;
    expect(version).toBeDefined();

    const mlflow = mlflowClient();
    const byAlias = await mlflow.getModelVersionByAlias(model, 'challenger');
    expect(byAlias.version).toBe(version);
    expect(byAlias.tags['mlops.dataset_sha256']).toBe(result.status.dataset?.sha256);
    expect(byAlias.tags['mlops.dataset_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(byAlias.tags['mlops.trigger']).toBe('manual');
    expect(byAlias.tags['mlops.code_version']).toBe('test-sha');
    expect(byAlias.tags['mlops.workflow_id']).toBe(retrainWorkflowId(model));
    const registry = new MlflowModelRegistry(mlflow);
    const verified = await fetchVerifiedModel(registry, await registry.getVersion(model, byAlias.version));
    expect(verified.files.map((f) => f.path)).toContain('model/model.onnx');

    // The status query reports the same as the result.
    const handle = env.client.workflow.getHandle(retrainWorkflowId(model));
    const status = await handle.query(statusQuery);
    expect(status.stage).toBe('completed');
    expect(status.candidate?.version).toBe(version);
    expect(status.decisions.map((d) => d.decision)).toEqual([
      'accepted',
      'registered',
      'model-signed',
      'evaluation-skipped',
    ]);
  });

  it('fails a malformed input at once with a non-retryable failure naming the field', async () => {
    const failure = await expectFailure(
      { model: 'Bad Name', dataset: { uri: '' }, trigger: { kind: 'manual' } },
      `retrain-bad-input-${Date.now()}`,
    );
    expect(failure.type).toBe('InvalidInput');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/model/);
    expect(failure.message).toMatch(/dataset\.uri/);

    const noTrigger = await expectFailure(
      { model: 'fraud', dataset: { uri: 'file:///tmp/x.csv' } },
      `retrain-bad-input2-${Date.now()}`,
    );
    expect(noTrigger.message).toMatch(/trigger/);
  });

  it('ends with rejected-data for a corrupt dataset, an unreadable one, and a sha256 mismatch', async () => {
    const model = uniqueModel('corrupt');
    const garbage = writeFile(
      dataDir,
      'garbage.csv',
      Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a, 0x00, 0x00]),
    );
    const corrupt = await run(
      { model, dataset: { uri: garbage }, trigger: { kind: 'new-data' }, featureSpec: FRAUD_FEATURE_SPEC },
      `retrain-${model}-1`,
    );
    expect(corrupt.outcome).toBe('rejected-data');
    expect(corrupt.status.stage).toBe('rejected-data');
    expect(corrupt.validation?.ok).toBe(false);
    expect(corrupt.validation?.checks.some((c) => !c.passed)).toBe(true);

    const missing = await run(
      {
        model,
        dataset: { uri: `${dataDir}/does-not-exist.csv` },
        trigger: { kind: 'new-data' },
        featureSpec: FRAUD_FEATURE_SPEC,
      },
      `retrain-${model}-2`,
    );
    expect(missing.outcome).toBe('rejected-data');
    expect(missing.status.error).toMatch(/does-not-exist\.csv/);

    const mismatch = await run(
      {
        model,
        dataset: { uri: cleanData, sha256: '0'.repeat(64) },
        trigger: { kind: 'new-data' },
        featureSpec: FRAUD_FEATURE_SPEC,
      },
      `retrain-${model}-3`,
    );
    expect(mismatch.outcome).toBe('rejected-data');
    expect(mismatch.status.error).toMatch(/expected 0000/);

    // Nothing was registered for this model.
    const versions = await mlflowClient().searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(0);
  });

  it('rejects a poisoned dataset before training', async () => {
    const model = uniqueModel('poison');
    const poisoned = await writeDataset(dataDir, 'poisoned.csv', {
      rows: 3000,
      seed: 12,
      poisonedBatch: { batch: 2 },
    });
    const result = await run({
      model,
      dataset: { uri: poisoned },
      trigger: { kind: 'new-data' },
      featureSpec: FRAUD_FEATURE_SPEC,
    });
    expect(result.outcome).toBe('rejected-data');
    expect(result.status.training).toBeUndefined();
    expect(
      result.validation?.checks
        .filter((c) => !c.passed)
        .map((c) => c.check)
        .join(' '),
    ).toMatch(/poison|label|batch/i);
  });

  it('fails the training stage with the trainer log tail and registers nothing when the trainer exits non-zero', async () => {
    const model = uniqueModel('trainfail');
    const failure = await expectFailure(
      {
        model,
        dataset: { uri: cleanData },
        trigger: { kind: 'manual' },
        featureSpec: FRAUD_FEATURE_SPEC,
        training: { image: 'test/failing-trainer' },
      },
      retrainWorkflowId(model),
    );
    expect(failure.type).toBe('TrainingFailed');
    expect(failure.message).toContain('CUDA out of memory');
    expect(failure.message).toContain('exited with code 3');
    const status = await env.client.workflow.getHandle(retrainWorkflowId(model)).query(statusQuery);
    expect(status.stage).toBe('failed');
    const versions = await mlflowClient().searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(0);
  });

  it('registers exactly one version and trains once when activity responses are lost and retried', async () => {
    const model = uniqueModel('retry');
    const before = { train: calls.trainCandidate ?? 0, register: calls.registerModelVersion ?? 0 };
    failAfterSuccessOnce.add('trainCandidate');
    failAfterSuccessOnce.add('registerModelVersion');
    failAfterSuccessOnce.add('setModelAlias');
    const result = await run({
      model,
      dataset: { uri: cleanData },
      trigger: { kind: 'schedule', scheduleId: 'nightly' },
      featureSpec: FRAUD_FEATURE_SPEC,
    });
    expect(result.outcome).toBe('registered');
    // Each activity ran twice (the first response was lost) ...
    expect((calls.trainCandidate ?? 0) - before.train).toBe(2);
    expect((calls.registerModelVersion ?? 0) - before.register).toBe(2);
    // ... yet there is one training run and one version.
    const mlflow = mlflowClient();
    const versions = await mlflow.searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(1);
    const exp = await mlflow.getExperimentByName(`mlops/${model}`);
    const runs = await mlflow.searchRuns({ experimentIds: [exp!.experimentId] });
    expect(runs.runs).toHaveLength(1);
    expect((await mlflow.getModelVersionByAlias(model, 'challenger')).version).toBe(
      versions.modelVersions[0]!.version,
    );
  });
});
