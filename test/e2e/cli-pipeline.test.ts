/**
 * End to end as a user drives it: a worker on the test stack, and the `temporal` binary to start
 * the pipeline, query its status and read its result.
 */
import { NativeConnection } from '@temporalio/worker';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { PipelineResult, PipelineStatus } from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import { json, startPipeline, temporal } from '../helpers/cli';
import {
  eventually,
  mlflowClient,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

let connection: NativeConnection;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let dataset: string;

beforeAll(async () => {
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  config = testWorkerConfig(tempDir('e2e'));
  worker = await runWorker({ connection, config });
  dataset = await writeDataset(tempDir('e2e-data'), 'fraud.csv', { rows: 3000, seed: 21 });
});

afterAll(async () => {
  await worker?.stop();
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

  it('runs from a schedule created with the CLI (overlap policy Skip)', async () => {
    const scheduleId = `retrain-${uniqueModel('sched')}`;
    const input = {
      model: 'fraud',
      dataset: { uri: pathToFileURL(dataset).href },
      trigger: { kind: 'schedule', scheduleId },
    };
    // prettier-ignore
    const created = await temporal([
      'schedule', 'create',
      '--schedule-id', scheduleId,
      '--interval', '168h',
      '--overlap-policy', 'Skip',
      '--workflow-id', scheduleId,
      '--task-queue', config.taskQueue,
      '--type', 'retrainingPipeline',
      '--input', JSON.stringify(input),
    ]);
    expect(created.code, created.stderr).toBe(0);
    try {
      expect((await temporal(['schedule', 'trigger', '--schedule-id', scheduleId])).code).toBe(0);
      const runId = await eventually(async () => {
        const d = json<{
          info?: { recentActions?: Array<{ startWorkflowResult?: { workflowId?: string } }> };
        }>(await temporal(['schedule', 'describe', '--schedule-id', scheduleId, '-o', 'json']));
        return d.info?.recentActions?.[0]?.startWorkflowResult?.workflowId;
      }, 60_000);
      expect(runId.startsWith(scheduleId)).toBe(true);
      const result = json<{ result: PipelineResult }>(
        await temporal(['workflow', 'result', '--workflow-id', runId, '-o', 'json']),
      );
      expect(result.result.outcome).toBe('registered');
      expect(result.result.status.trigger).toEqual({ kind: 'schedule', scheduleId });
      const mv = await mlflowClient().getModelVersion('fraud', result.result.status.candidate!.version);
      expect(mv.tags['mlops.trigger']).toBe('schedule');
    } finally {
      await temporal(['schedule', 'delete', '--schedule-id', scheduleId]);
    }
  });
});
