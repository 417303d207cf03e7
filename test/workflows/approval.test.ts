/**
 * Evaluation, gate, approval and promotion of retrainingPipeline on a real Temporal dev server,
 * real MLflow, the real trainer and onnxruntime scoring. Approvals arrive as a user would send
 * them: signals and the submitApproval update.
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalPolicyInput } from '../../src/core/contracts/approval';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import {
  approveSignal,
  rejectSignal,
  retrainWorkflowId,
  statusQuery,
  submitApprovalUpdate,
  type PipelineResult,
  type PipelineStatus,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import { verifyAuditLog } from '../../src/audit';
import { generateApproverKeyPair, signApproval } from '../../src/security/approval-signing';
import {
  awaitApproval,
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
let policyDir: string;
let trainA: string;
let trainB: string;
let holdout: string;

const APPROVERS: ApprovalPolicyInput['approvers'] = [
  { id: 'alice', roles: ['ml-lead'] },
  { id: 'bob', roles: ['risk-officer'] },
  { id: 'carol', roles: ['risk-officer'] },
  { id: 'intern', roles: ['viewer'] },
];

function writePolicy(model: string, approval: Partial<ApprovalPolicyInput> = {}): void {
  const policy: ModelPolicyInput = {
    // Fairness is the gate unit tests' subject; per-group TPRs on this small holdout are noisy.
    gate: {
      minHoldoutSize: 200,
      minPositives: 20,
      absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 },
      guardrails: { maxFairnessGap: 0.3 },
    },
    approval: { approvers: APPROVERS, requiredRoles: ['ml-lead', 'risk-officer'], ...approval },
  };
  writeFileSync(path.join(policyDir, `${model}.json`), JSON.stringify(policy));
}

beforeAll(async () => {
  env = await createLocalEnv();
  const stateDir = tempDir('approval');
  policyDir = tempDir('policies');
  config = testWorkerConfig(stateDir, {}, { policyDir });
  const data = tempDir('approval-data');
  [trainA, trainB, holdout] = await Promise.all([
    writeDataset(data, 'train-a.csv', { rows: 4000, seed: 31 }),
    writeDataset(data, 'train-b.csv', { rows: 4000, seed: 32 }),
    writeDataset(data, 'holdout.csv', { rows: 2500, seed: 99 }),
  ]);
  worker = await runWorker({ connection: env.nativeConnection, config });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function input(model: string, dataset: string, initiator = 'dana'): RetrainingInput {
  return {
    model,
    dataset: { uri: dataset },
    holdout: { uri: holdout },
    trigger: { kind: 'manual', by: initiator },
    initiator,
    featureSpec: FRAUD_FEATURE_SPEC,
  };
}

async function startAndAwaitApproval(
  model: string,
  dataset = trainA,
  initiator = 'dana',
): Promise<{ handle: WorkflowHandle; status: PipelineStatus }> {
  const handle = await env.client.workflow.start('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId: retrainWorkflowId(model),
    args: [input(model, dataset, initiator)],
  });
  const status = await awaitApproval(model, () => handle.query(statusQuery));
  return { handle, status };
}

async function updateError(handle: WorkflowHandle, payload: unknown): Promise<ApplicationFailure> {
  const err = await handle.executeUpdate(submitApprovalUpdate, { args: [payload as never] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('evaluation, gate and approval', () => {
  it('evaluates a first model against absolute minimums, writes a model card, and promotes on approval', async () => {
    const model = uniqueModel('appr');
    writePolicy(model);
    const { handle, status } = await startAndAwaitApproval(model);
    expect(status.gate?.decision).toBe('promote');
    expect(status.evaluation?.champion).toBeUndefined();
    expect(status.evaluation?.challenger.metrics.pr_auc).toBeGreaterThan(0.15);
    expect(status.approval?.outcome).toBe('pending');
    expect(status.approval?.eligibleApprovers).toEqual(['alice', 'bob', 'carol']);
    expect(status.modelCard).toMatch(/model_card\.md$/);

    await handle.signal(approveSignal, { approver: 'bob', comment: 'metrics and fairness look fine' });
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
    const version = result.status.candidate!.version;

    const mlflow = mlflowClient();
    expect((await mlflow.getModelVersionByAlias(model, 'champion')).version).toBe(version);
    expect(await mlflow.findModelVersionByAlias(model, 'previous-champion')).toBeUndefined();
    const mv = await mlflow.getModelVersion(model, version);
    expect(mv.tags['mlops.approved_by']).toBe('bob');
    expect(mv.tags['mlops.outcome']).toBe('promoted');
    const card = (await mlflow.downloadArtifact(mv.runId!, 'model_card/model_card.md')).toString('utf8');
    expect(card).toContain(`# Model card: ${model} v${version}`);
    expect(card).toContain('Outcome: **approved**');
    expect(card).toContain('bob');
    const cardJson = JSON.parse(
      (await mlflow.downloadArtifact(mv.runId!, 'model_card/model_card.json')).toString('utf8'),
    );
    expect(cardJson.verdict.decision).toBe('promote');
    expect(cardJson.data.holdout.sha256).toMatch(/^[0-9a-f]{64}$/);
    // Per-example outcomes were kept for paired tests.
    const perExample = (await mlflow.downloadArtifact(mv.runId!, 'evaluation/per_example.csv')).toString(
      'utf8',
    );
    expect(perExample.split('\n')[0]).toBe('index,label,group,champion_score,challenger_score');

    // A second candidate now faces the champion on the same holdout with a paired bootstrap.
    const second = await env.client.workflow.execute('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: `${retrainWorkflowId(model)}-2`,
      args: [input(model, trainB)],
    });
    expect(second.status.evaluation?.champion?.version).toBe(version);
    expect(second.status.evaluation?.comparison?.method).toBe('bootstrap');
    const cmp = second.status.evaluation?.comparison;
    if (cmp?.method === 'bootstrap') expect(cmp.ciLow).toBeLessThanOrEqual(cmp.ciHigh);
    if (second.outcome !== 'promoted') {
      // Not a significant gain on comparable data: the champion stays where it was.
      expect(second.outcome).toBe('not-promoted');
      expect((await mlflow.getModelVersionByAlias(model, 'champion')).version).toBe(version);
    }
  });

  it('a rejection leaves the champion untouched and tags the version with the reason', async () => {
    const model = uniqueModel('rej');
    writePolicy(model);
    const { handle } = await startAndAwaitApproval(model);
    await handle.signal(rejectSignal, { approver: 'carol', reason: 'holdout too old for this season' });
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('rejected');
    const mlflow = mlflowClient();
    expect(await mlflow.findModelVersionByAlias(model, 'champion')).toBeUndefined();
    const mv = await mlflow.getModelVersion(model, result.status.candidate!.version);
    expect(mv.tags['mlops.outcome']).toBe('rejected');
    expect(mv.tags['mlops.outcome_reason']).toContain('holdout too old');
  });

  it('refuses self-approval, unknown and role-less approvers, and malformed payloads, recording each, workflow unharmed', async () => {
    const model = uniqueModel('self');
    writePolicy(model);
    const { handle } = await startAndAwaitApproval(model, trainA, 'alice');

    const self = await updateError(handle, { decision: 'approve', approver: 'alice' });
    expect(self.type).toBe('ApprovalRefused');
    expect(self.message).toContain('self-approval');

    const unknown = await updateError(handle, { decision: 'approve', approver: 'mallory' });
    expect(unknown.message).toContain('unknown-approver');

    const noRole = await updateError(handle, { decision: 'approve', approver: 'intern' });
    expect(noRole.message).toContain('missing-role');

    const wrongVersion = await updateError(handle, {
      decision: 'approve',
      approver: 'bob',
      modelVersion: '999',
    });
    expect(wrongVersion.message).toContain('wrong-version');

    // The validator refuses a malformed payload before it reaches the workflow.
    const malformed = await updateError(handle, { decision: 'approve' });
    expect(malformed.type).toBe('InvalidApproval');
    expect(malformed.message).toMatch(/approver/);

    // Signals with bad payloads are refused and recorded too.
    await handle.signal(approveSignal, { approver: 42 } as never);
    await handle.signal(approveSignal, { approver: 'mallory' });

    const mid = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.approval && s.approval.attempts.length >= 6 ? s : undefined;
    });
    expect(mid.stage).toBe('awaiting-approval');
    expect(mid.approval?.outcome).toBe('pending');
    expect(mid.approval?.attempts.map((a) => a.code)).toEqual([
      'self-approval',
      'unknown-approver',
      'missing-role',
      'wrong-version',
      'malformed',
      'unknown-approver',
    ]);

    const ok = await handle.executeUpdate(submitApprovalUpdate, {
      args: [{ decision: 'approve', approver: 'bob' }],
    });
    expect(ok.accepted).toBe(true);
    expect(ok.outcome).toBe('approved');
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');

    // Every attempt, refused ones included, is in the hash-chained audit log, which verifies.
    const verified = await verifyAuditLog(config.auditLogPath);
    expect(verified.ok).toBe(true);
    const { readFileSync } = await import('node:fs');
    const entries = readFileSync(config.auditLogPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; workflowId: string; details: { code?: string } });
    const mine = entries.filter((e) => e.workflowId === retrainWorkflowId(model));
    const attempts = mine.filter((e) => e.type === 'approval.attempt');
    expect(attempts).toHaveLength(7);
    expect(attempts.filter((e) => e.details.code).map((e) => e.details.code)).toContain('self-approval');
    expect(mine.map((e) => e.type)).toEqual(
      expect.arrayContaining(['dataset.validated', 'gate.verdict', 'approval.requested', 'model.promoted']),
    );
  });

  it('needs two distinct approvals when the policy says so, refusing a duplicate', async () => {
    const model = uniqueModel('two');
    writePolicy(model, { minApprovals: 2 });
    const { handle } = await startAndAwaitApproval(model);
    const first = await handle.executeUpdate(submitApprovalUpdate, {
      args: [{ decision: 'approve', approver: 'alice' }],
    });
    expect(first).toMatchObject({ accepted: true, outcome: 'pending', approvals: 1, requiredApprovals: 2 });
    const dup = await updateError(handle, { decision: 'approve', approver: 'alice' });
    expect(dup.message).toContain('duplicate');
    expect((await handle.query(statusQuery)).stage).toBe('awaiting-approval');
    await handle.signal(approveSignal, { approver: 'carol' });
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
    expect(result.status.approval?.approvals).toEqual(['alice', 'carol']);
    expect(
      (await mlflowClient().getModelVersion(model, result.status.candidate!.version)).tags[
        'mlops.approved_by'
      ],
    ).toBe('alice,carol');
  });

  it('expires when nobody decides within the timeout, leaving the champion untouched', async () => {
    const model = uniqueModel('exp');
    writePolicy(model, { timeout: '2s' });
    const result = (await env.client.workflow.execute('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: retrainWorkflowId(model),
      args: [input(model, trainA)],
    })) as PipelineResult;
    expect(result.outcome).toBe('expired');
    expect(result.status.stage).toBe('expired');
    expect(result.status.approval?.outcome).toBe('expired');
    expect(await mlflowClient().findModelVersionByAlias(model, 'champion')).toBeUndefined();
  });

  it('with signatures required, refuses unsigned and wrongly signed approvals and accepts a valid one', async () => {
    const model = uniqueModel('sig');
    const bobKeys = generateApproverKeyPair();
    const otherKeys = generateApproverKeyPair();
    writePolicy(model, {
      approvers: APPROVERS.map((a) => ({ ...a, publicKey: generateApproverKeyPair().publicKeyPem })).map(
        (a) => (a.id === 'bob' ? { ...a, publicKey: bobKeys.publicKeyPem } : a),
      ),
      requireSignature: true,
    });
    const { handle, status } = await startAndAwaitApproval(model);
    const version = status.candidate!.version;
    const fields = {
      workflowId: retrainWorkflowId(model),
      modelVersion: version,
      decision: 'approve' as const,
      approver: 'bob',
    };

    const unsigned = await updateError(handle, { decision: 'approve', approver: 'bob' });
    expect(unsigned.message).toContain('signature-required');

    const issuedAt = new Date().toISOString();
    const forged = signApproval({ ...fields, issuedAt }, otherKeys.privateKeyPem);
    const bad = await updateError(handle, { decision: 'approve', approver: 'bob', signature: forged });
    expect(bad.message).toContain('signature-invalid');

    const otherVersion = signApproval(
      { ...fields, modelVersion: `${version}0`, issuedAt },
      bobKeys.privateKeyPem,
    );
    const replay = await updateError(handle, {
      decision: 'approve',
      approver: 'bob',
      signature: otherVersion,
    });
    expect(replay.message).toContain('signature-invalid');

    const good = signApproval({ ...fields, issuedAt }, bobKeys.privateKeyPem);
    const ok = await handle.executeUpdate(submitApprovalUpdate, {
      args: [{ decision: 'approve', approver: 'bob', signature: good }],
    });
    expect(ok.accepted).toBe(true);
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
    expect(result.status.approval?.attempts.at(-1)?.signed).toBe(true);
  });

  it('fails the pipeline before training when the model has no governance policy', async () => {
    const model = uniqueModel('nopolicy');
    const err = await env.client.workflow
      .execute('retrainingPipeline', {
        taskQueue: config.taskQueue,
        workflowId: retrainWorkflowId(model),
        args: [input(model, trainA)],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    let cause: unknown = err;
    while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('PolicyInvalid');
    expect((cause as ApplicationFailure).message).toMatch(/no governance policy/);
    const versions = await mlflowClient().searchModelVersions({ filter: `name='${model}'` });
    expect(versions.modelVersions).toHaveLength(0);
  });
});
