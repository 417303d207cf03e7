/**
 * End to end as a user drives it: a worker on the test stack, and the `temporal` binary to start
 * the pipeline, query its status and read its result.
 */
import { NativeConnection, type Worker } from '@temporalio/worker';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { PipelineResult, PipelineStatus } from '../../src/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import { createWorker } from '../../workers/worker';
import { json, startPipeline, temporal } from '../helpers/cli';
import { mlflowClient, tempDir, testWorkerConfig, uniqueModel, writeDataset } from '../helpers/env';

let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let config: WorkerConfig;
let dataset: string;

beforeAll(async () => {
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  config = testWorkerConfig(tempDir('e2e'));
  worker = await createWorker({ connection, config });
  running = worker.run();
  dataset = await writeDataset(tempDir('e2e-data'), 'fraud.csv', { rows: 3000, seed: 21 });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
});

describe('temporal CLI end to end', () => {
  it('starts retrainingPipeline, queries status, reads the result', async () => {
    // A model name without a built-in spec must say so; `fraud` has one, so the e2e model is `fraud`
    // under a unique workflow id on its own task queue.
    const workflowId = `retrain-${uniqueModel('fraud-e2e')}`;
    const input = {
      model: 'fraud',
      dataset: { uri: pathToFileURL(dataset).href },
      trigger: { kind: 'manual', by: 'e2e' },
    };
    const started = await startPipeline(config.taskQueue, workflowId, input);
    expect(started.code, started.stderr).toBe(0);

    const status = json<{ queryResult: PipelineStatus[] }>(
      await temporal(['workflow', 'query', '--workflow-id', workflowId, '--name', 'status', '-o', 'json']),
    );
    expect(status.queryResult[0]?.workflowId).toBe(workflowId);
    expect(status.queryResult[0]?.model).toBe('fraud');

    const result = json<{ status: string; result: PipelineResult }>(
      await temporal(['workflow', 'result', '--workflow-id', workflowId, '-o', 'json']),
    );
    expect(result.status).toMatch(/COMPLETED/);
    expect(result.result.outcome).toBe('registered');
    const version = result.result.status.candidate?.version;
    expect(version).toBeDefined();

    const after = json<{ queryResult: PipelineStatus[] }>(
      await temporal(['workflow', 'query', '--workflow-id', workflowId, '--name', 'status', '-o', 'json']),
    );
    expect(after.queryResult[0]?.stage).toBe('completed');

    const mv = await mlflowClient().getModelVersion('fraud', version!);
    expect(mv.tags['mlops.workflow_id']).toBe(workflowId);
  });

  it('reports a malformed input as a failed workflow naming the field', async () => {
    const workflowId = `retrain-bad-${Date.now()}`;
    const started = await startPipeline(config.taskQueue, workflowId, {
      model: 'fraud',
      dataset: {},
      trigger: { kind: 'manual' },
    });
    expect(started.code).toBe(0);
    const result = await temporal(['workflow', 'result', '--workflow-id', workflowId, '-o', 'json']);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/dataset\.uri/);
  });
});
