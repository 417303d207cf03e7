/**
 * MLflow unreachable: the worker talks to MLflow through a loopback TCP relay that is closed at
 * first (connections refused, as when the server is down). Temporal retries the activities with
 * backoff; once the relay opens, the pipeline finishes with exactly one run and one version.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { retrainWorkflowId, statusQuery, type PipelineResult } from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import { freePort } from '../../src/stack/process';
import {
  createLocalEnv,
  eventually,
  mlflowClient,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let relayPort: number;
let relay: net.Server | undefined;
const sockets = new Set<net.Socket>();

/** Opens the relay: from now on connections reach the real MLflow server. */
async function openRelay(): Promise<void> {
  const target = new URL(inject('mlflowTrackingUri'));
  relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    relay!.once('error', reject);
    relay!.listen(relayPort, '127.0.0.1', resolve);
  });
}

beforeAll(async () => {
  env = await createLocalEnv();
  relayPort = await freePort();
  config = { ...testWorkerConfig(tempDir('outage')), trackingUri: `http://127.0.0.1:${relayPort}` };
  worker = await runWorker({ connection: env.nativeConnection, config });
});

afterAll(async () => {
  await worker?.stop();
  for (const s of sockets) s.destroy();
  await new Promise((r) => (relay ? relay.close(r) : r(undefined)));
  await env?.teardown();
});

describe('MLflow outage', () => {
  it('retries with backoff while MLflow is unreachable, then registers exactly one version', async () => {
    const model = uniqueModel('outage');
    const dataset = await writeDataset(tempDir('outage-data'), 'train.csv', { rows: 3000, seed: 61 });
    const handle = await env.client.workflow.start('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: retrainWorkflowId(model),
      args: [
        { model, dataset: { uri: dataset }, trigger: { kind: 'manual' }, featureSpec: FRAUD_FEATURE_SPEC },
      ],
    });

    // The first activity that needs the registry keeps failing on the unreachable server and is
    // retried: validation, whose poisoning screen looks up the champion's training snapshot there.
    const pending = await eventually(async () => {
      const d = await handle.describe();
      const p = d.raw.pendingActivities?.[0];
      return p && (p.attempt ?? 0) >= 3 ? p : undefined;
    }, 60_000);
    expect(pending.activityType?.name).toBe('validateDataset');
    expect(pending.lastFailure?.message).toMatch(/unreachable|ECONNREFUSED|connect/i);
    expect((await handle.query(statusQuery)).stage).toBe('validating');

    await openRelay();
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('registered');

    const mlflow = mlflowClient();
    const versions = await mlflow.searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(1);
    const exp = await mlflow.getExperimentByName(`mlops/${model}`);
    expect((await mlflow.searchRuns({ experimentIds: [exp!.experimentId] })).runs).toHaveLength(1);
  });
});
