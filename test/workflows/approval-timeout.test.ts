/**
 * The real retrainingPipeline's default 72-hour approval timeout, on the time-skipping test server
 * (real activities: MLflow, the trainer, ONNX scoring). Timers are skipped, so 72 hours of
 * workflow time pass in seconds of wall-clock time.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_APPROVAL_TIMEOUT } from '../../src/core/contracts/approval';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import {
  approveSignal,
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import {
  awaitApproval,
  createTimeSkippingEnv,
  mlflowClient,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

const HOUR_MS = 3_600_000;

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let policyDir: string;
let train: string;
let holdout: string;

beforeAll(async () => {
  env = await createTimeSkippingEnv();
  policyDir = tempDir('ts-policies');
  config = testWorkerConfig(tempDir('ts'), {}, { policyDir });
  const data = tempDir('ts-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 4000, seed: 51 }),
    writeDataset(data, 'holdout.csv', { rows: 2500, seed: 98 }),
  ]);
  worker = await runWorker({ connection: env.nativeConnection, config });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function start(model: string): Promise<WorkflowHandle> {
  // The default policy timeout: the policy file does not set one.
  const policy: ModelPolicyInput = {
    // Fairness is the gate unit tests' subject; per-group TPRs on this small holdout are noisy.
    gate: { absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 }, guardrails: { maxFairnessGap: 0.3 } },
    approval: { approvers: [{ id: 'bob', roles: ['risk-officer'] }] },
  };
  writeFileSync(path.join(policyDir, `${model}.json`), JSON.stringify(policy));
  const input: RetrainingInput = {
    model,
    dataset: { uri: train },
    holdout: { uri: holdout },
    trigger: { kind: 'schedule', scheduleId: 'weekly' },
    featureSpec: FRAUD_FEATURE_SPEC,
  };
  return env.client.workflow.start('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId: retrainWorkflowId(model),
    args: [input],
  });
}

describe('approval timeout (time-skipping)', () => {
  it(`expires after the default ${DEFAULT_APPROVAL_TIMEOUT} without anyone deciding`, async () => {
    expect(DEFAULT_APPROVAL_TIMEOUT).toBe('72h');
    const model = uniqueModel('ts-exp');
    const handle = await start(model);
    const wall = Date.now();
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome, JSON.stringify(result.status.gate)).toBe('expired');
    expect(result.status.approval?.outcome).toBe('expired');
    const d = await handle.describe();
    const workflowTime = d.closeTime!.getTime() - d.startTime.getTime();
    expect(workflowTime).toBeGreaterThanOrEqual(72 * HOUR_MS);
    expect(workflowTime).toBeLessThan(73 * HOUR_MS);
    expect(Date.now() - wall).toBeLessThan(10 * 60_000);
    expect(await mlflowClient().findModelVersionByAlias(model, 'champion')).toBeUndefined();
  });

  it('still accepts an approval 71 hours in', async () => {
    const model = uniqueModel('ts-ok');
    const handle = await start(model);
    await awaitApproval(model, () => handle.query(statusQuery));
    await env.sleep('71h');
    expect((await handle.query(statusQuery)).stage).toBe('awaiting-approval');
    await handle.signal(approveSignal, { approver: 'bob' });
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
  });
});
