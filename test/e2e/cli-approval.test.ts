/**
 * Human approval end to end, as users drive it: a worker on the test stack with the shipped governance
 * policies (deploy/policies), the `temporal` binary to start the pipeline, watch its `status` and send the
 * `submitApproval` update and the `approve` signal, and the project's own `approve` command
 * (src/cli/approve.ts) run as a separate process, including the command it prints with `--print-command`.
 *
 * Rules of this file:
 * - Model `fraud` with the default policy dir is used when `fraud` has no champion on the MLflow server (a
 *   fresh test stack): the gate then judges the candidate on the policy's absolute minimums. When an
 *   outside MLflow server already holds a `fraud` champion, a candidate trained on the same kind of data may
 *   fairly be judged no better, so the test uses a unique model whose policy is a verbatim copy of
 *   deploy/policies/fraud.json instead. The assertions are the same either way.
 * - The rejection test runs before the promotion test, so neither candidate faces a champion made here.
 * - The shipped policy requires signed approvals: the approvers' keys are generated into a folder of this
 *   test (MLOPS_APPROVER_KEYS_DIR of the worker, where the policy's `publicKeyFile`s are registered), the
 *   private keys in owner-only files that only the approve command (`--key-file`) and the signing helper read.
 */
import { NativeConnection } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WorkerConfig } from '../../src/config';
import { DEFAULT_POLICY_DIR } from '../../src/config';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { PipelineResult, PipelineStatus } from '../../src/core/contracts/retraining';
import { PROJECT_ROOT } from '../../src/stack/paths';
import { registerApprovers, signedApprove, type TestApprovers } from '../helpers/approvers';
import { json, startPipeline as cliStartPipeline, temporal, type CliResult } from '../helpers/cli';
import {
  awaitApproval,
  eventually,
  mlflowClient,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

/**
 * Holdout size: large enough that per-region true-positive rates (the gate's fairness guardrail, max gap 0.1)
 * are not noise. At 2500 rows a region has only 12-20 frauds, and the shipped gate rejected the candidate on
 * an equal-opportunity gap of 0.1176 (one or two frauds).
 */
const HOLDOUT_ROWS = 10_000;
/** The shipped policy's approvers that hold a required role, in policy order. */
const ELIGIBLE_APPROVERS = ['alice', 'bob', 'carol'];

let connection: NativeConnection;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let train: string;
let holdout: string;
/** `fraud`, or a unique model under a copy of its policy (see the file comment). */
let model: string;
/** Passed only for a model other than `fraud`, whose feature spec is built in. */
let featureSpec: typeof FRAUD_FEATURE_SPEC | undefined;
/** The `champion` version of `model` before this file ran (undefined on a fresh stack). */
let championBefore: string | undefined;
/** The shipped approvers' keys, registered with the worker. */
let approvers: TestApprovers;

beforeAll(async () => {
  championBefore = (await mlflowClient().findModelVersionByAlias('fraud', 'champion'))?.version;
  let policyDir = DEFAULT_POLICY_DIR;
  model = 'fraud';
  if (championBefore !== undefined) {
    model = uniqueModel('fraud-appr');
    policyDir = tempDir('e2e-approval-policies');
    copyFileSync(path.join(DEFAULT_POLICY_DIR, 'fraud.json'), path.join(policyDir, `${model}.json`));
    featureSpec = FRAUD_FEATURE_SPEC;
    championBefore = undefined;
    console.warn(
      `[cli-approval] fraud already has a champion here; using ${model} with a copy of its policy`,
    );
  }
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  approvers = registerApprovers(policyDir, ELIGIBLE_APPROVERS, tempDir('e2e-approver-keys'));
  config = testWorkerConfig(tempDir('e2e-approval'), {}, { policyDir, approverKeysDir: approvers.keysDir });
  expect(config.policyDir).toBe(policyDir);
  worker = await runWorker({ connection, config });
  const data = tempDir('e2e-approval-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 4000, seed: 41 }),
    writeDataset(data, 'holdout.csv', { rows: HOLDOUT_ROWS, seed: 99 }),
  ]);
});

afterAll(async () => {
  await worker?.stop();
  await connection?.close();
});

/** `temporal workflow start` of a pipeline with a holdout, as a user types it. */
async function startPipeline(workflowId: string, initiator: string): Promise<void> {
  const input = {
    model,
    dataset: { uri: pathToFileURL(train).href },
    holdout: { uri: pathToFileURL(holdout).href },
    trigger: { kind: 'manual', by: initiator },
    initiator,
    ...(featureSpec !== undefined ? { featureSpec } : {}),
  };
  const started = await cliStartPipeline(config.taskQueue, workflowId, input);
  expect(started.code, started.stderr).toBe(0);
}

async function queryStatus(workflowId: string): Promise<PipelineStatus> {
  const r = json<{ queryResult: PipelineStatus[] }>(
    await temporal(['workflow', 'query', '--workflow-id', workflowId, '--name', 'status', '-o', 'json']),
  );
  const status = r.queryResult[0];
  if (status === undefined) throw new Error(`status query of ${workflowId} returned nothing`);
  return status;
}

async function pipelineResult(workflowId: string): Promise<{ status: string; result: PipelineResult }> {
  return json(await temporal(['workflow', 'result', '--workflow-id', workflowId, '-o', 'json']));
}

function submitApproval(workflowId: string, payload: Record<string, unknown>): Promise<CliResult> {
  // prettier-ignore
  return temporal([
    'workflow', 'update', 'execute',
    '--workflow-id', workflowId,
    '--name', 'submitApproval',
    '--input', JSON.stringify(payload),
  ]);
}

/** Runs `npx tsx src/cli/approve.ts ...` with the Temporal connection from the environment, as a user would. */
function approveCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runProcess('npx', ['tsx', path.join('src', 'cli', 'approve.ts'), ...args], {
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    ...env,
  });
}

function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: PROJECT_ROOT, env, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('approval through the temporal CLI and the approve command', () => {
  it('approve command: refuses unknown and self approvals with exit 1, sends a rejection, runs its printed command', async () => {
    const workflowId = `retrain-${uniqueModel('cli-reject')}`;
    // alice (ml-lead) starts it, so the shipped four-eyes rule forbids her approving it.
    await startPipeline(workflowId, 'alice');
    const waiting = await awaitApproval(workflowId, () => queryStatus(workflowId));
    const version = waiting.candidate?.version;
    expect(version).toMatch(/^\d+$/);
    expect(waiting.gate?.decision).toBe('promote');
    expect(waiting.approval).toMatchObject({ outcome: 'pending', initiator: 'alice', modelVersion: version });
    expect(waiting.approval?.eligibleApprovers).toEqual(ELIGIBLE_APPROVERS);

    // --print-command does not connect: it prints the temporal command, which a user then runs.
    const printed = await approveCli(
      ['--workflow-id', workflowId, '--approver', 'mallory', '--version', version!, '--print-command'],
      { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    expect(printed.code, printed.stderr).toBe(0);
    const command = printed.stdout.trim();
    expect(command).toBe(
      `temporal workflow signal --workflow-id ${workflowId} --name approve ` +
        `--input '${JSON.stringify({ approver: 'mallory', modelVersion: version })}'`,
    );
    const cliDir = path.dirname(inject('temporalCli'));
    const viaShell = await runProcess('sh', ['-c', command], {
      ...process.env,
      PATH: `${cliDir}${path.delimiter}${process.env.PATH ?? ''}`,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
    });
    expect(viaShell.code, viaShell.stderr).toBe(0);
    // A signal is fire-and-forget: the refusal shows up in status.
    const afterSignal = await eventually(async () => {
      const s = await queryStatus(workflowId);
      return (s.approval?.attempts.length ?? 0) >= 1 ? s : undefined;
    });
    expect(afterSignal.approval?.attempts[0]).toMatchObject({
      approver: 'mallory',
      accepted: false,
      code: 'unknown-approver',
    });

    const both = await approveCli(['--model', model, '--workflow-id', workflowId, '--approver', 'mallory']);
    // --model and --workflow-id together are a usage error (exit 2); the id alone names the pipeline.
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --model or --workflow-id, not both');

    const mallory = await approveCli(['--workflow-id', workflowId, '--approver', 'mallory']);
    expect(mallory.code, mallory.stdout + mallory.stderr).toBe(1);
    expect(mallory.stderr).toContain('unknown-approver');
    expect(mallory.stderr).toContain('mallory is not an approver');

    const self = await approveCli(['--workflow-id', workflowId, '--approver', 'alice', '--comment', 'lgtm']);
    expect(self.code, self.stdout + self.stderr).toBe(1);
    expect(self.stderr).toContain('self-approval');

    const stillWaiting = await queryStatus(workflowId);
    expect(stillWaiting.stage).toBe('awaiting-approval');
    expect(stillWaiting.approval?.outcome).toBe('pending');

    // The shipped policy requires signatures: carol's unsigned rejection is refused, her signed one lands.
    const unsignedReject = [
      '--workflow-id',
      workflowId,
      '--approver',
      'carol',
      '--reject',
      '--reason',
      'too risky',
    ];
    const unsigned = await approveCli(unsignedReject);
    expect(unsigned.code, unsigned.stdout + unsigned.stderr).toBe(1);
    expect(unsigned.stderr).toContain('signature-required');
    const reject = await approveCli([...unsignedReject, '--key-file', approvers.keyFiles.carol!]);
    expect(reject.code, reject.stdout + reject.stderr).toBe(0);
    expect(reject.stdout).toMatch(/^accepted: .*outcome rejected/m);

    const { status, result } = await pipelineResult(workflowId);
    expect(status).toMatch(/COMPLETED/);
    expect(result.outcome).toBe('rejected');
    expect(result.status.stage).toBe('rejected');
    expect(result.status.approval).toMatchObject({
      outcome: 'rejected',
      rejectedBy: 'carol',
      rejectReason: 'too risky',
    });
    // The workflow returns `approvals: []`; `temporal workflow result -o json` (CLI 1.5.1) prints an empty
    // array inside a payload as null, so both spellings of "nobody approved" are accepted here.
    expect(result.status.approval?.approvals ?? []).toEqual([]);
    expect(result.status.approval?.attempts.at(-1)?.signed).toBe(true);
    expect(result.status.approval?.attempts.map((a) => [a.approver, a.decision, a.accepted, a.code])).toEqual(
      [
        ['mallory', 'approve', false, 'unknown-approver'],
        ['mallory', 'approve', false, 'unknown-approver'],
        ['alice', 'approve', false, 'self-approval'],
        ['carol', 'reject', false, 'signature-required'],
        ['carol', 'reject', true, undefined],
      ],
    );

    const mlflow = mlflowClient();
    expect((await mlflow.findModelVersionByAlias(model, 'champion'))?.version).toBe(championBefore);
    const mv = await mlflow.getModelVersion(model, version!);
    expect(mv.tags['mlops.workflow_id']).toBe(workflowId);
    expect(mv.tags['mlops.outcome']).toBe('rejected');
    expect(mv.tags['mlops.outcome_reason']).toContain('too risky');
  });

  it('temporal CLI: the update refuses malformed, unknown and unsigned approvals (audited), a signed approve signal promotes', async () => {
    const workflowId = `retrain-${uniqueModel('cli-approve')}`;
    await startPipeline(workflowId, 'dana');
    const waiting = await awaitApproval(workflowId, () => queryStatus(workflowId));
    const version = waiting.candidate?.version;
    expect(version).toMatch(/^\d+$/);
    expect(waiting.gate?.decision).toBe('promote');
    expect(waiting.evaluation?.champion).toBeUndefined();
    expect(waiting.evaluation?.holdoutRows).toBe(HOLDOUT_ROWS);
    expect(waiting.approval).toMatchObject({
      outcome: 'pending',
      initiator: 'dana',
      modelVersion: version,
      requiredApprovals: 1,
      requiredRoles: ['ml-lead', 'risk-officer'],
      timeout: '72h',
    });

    // The validator turns a payload without an approver away before it reaches the workflow.
    const malformed = await submitApproval(workflowId, { decision: 'approve' });
    expect(malformed.code).not.toBe(0);
    expect(malformed.stdout + malformed.stderr).toMatch(
      /malformed submitApproval payload: approver: Required/,
    );

    // dana started it, but is not in the policy at all.
    const unknown = await submitApproval(workflowId, { decision: 'approve', approver: 'dana' });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout + unknown.stderr).toContain('unknown-approver');

    const mid = await queryStatus(workflowId);
    expect(mid.stage).toBe('awaiting-approval');
    // The validator's refusal never reached the workflow; the policy refusal is recorded.
    expect(mid.approval?.attempts.map((a) => [a.approver, a.code])).toEqual([['dana', 'unknown-approver']]);

    // bob is an approver with the right role, but the shipped policy requires a signed decision.
    const unsigned = await submitApproval(workflowId, {
      decision: 'approve',
      approver: 'bob',
      comment: 'ok',
    });
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stdout + unsigned.stderr).toContain(
      'approval refused (signature-required): this model requires a signed decision; none was given',
    );
    const refused = await queryStatus(workflowId);
    expect(refused.stage).toBe('awaiting-approval');
    expect(refused.approval?.approvals ?? []).toEqual([]);
    expect(refused.approval?.attempts.at(-1)).toMatchObject({
      approver: 'bob',
      accepted: false,
      code: 'signature-required',
      signed: false,
    });
    // ... and the refusal is in the audit log, with its code and reason.
    const audited = readFileSync(config.auditLogPath, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(
        (l) =>
          JSON.parse(l) as {
            type: string;
            workflowId: string;
            actor?: string;
            details: Record<string, unknown>;
          },
      )
      .filter((e) => e.workflowId === workflowId && e.type === 'approval.attempt' && e.actor === 'bob');
    expect(audited.map((e) => [e.details.accepted, e.details.code, e.details.signed])).toEqual([
      [false, 'signature-required', false],
    ]);
    expect(String(audited[0]?.details.reason)).toContain('requires a signed decision');

    // The same approval signed with bob's key (as `npm run approve -- --key-file` builds it), sent as a signal.
    const payload = signedApprove(approvers, {
      workflowId,
      approver: 'bob',
      version: version!,
      comment: 'ok',
    });
    // prettier-ignore
    const signalled = await temporal([
      'workflow', 'signal',
      '--workflow-id', workflowId,
      '--name', 'approve',
      '--input', JSON.stringify(payload),
    ]);
    expect(signalled.code, signalled.stderr).toBe(0);

    const { status, result } = await pipelineResult(workflowId);
    expect(status).toMatch(/COMPLETED/);
    expect(result.outcome).toBe('promoted');
    expect(result.status.stage).toBe('completed');
    expect(result.status.champion?.version).toBe(version);
    expect(result.status.approval).toMatchObject({ outcome: 'approved', approvals: ['bob'] });
    expect(result.status.approval?.attempts.at(-1)).toMatchObject({
      approver: 'bob',
      accepted: true,
      comment: 'ok',
      signed: true,
    });

    const mlflow = mlflowClient();
    expect((await mlflow.getModelVersionByAlias(model, 'champion')).version).toBe(version);
    const mv = await mlflow.getModelVersion(model, version!);
    expect(mv.tags['mlops.workflow_id']).toBe(workflowId);
    expect(mv.tags['mlops.approved_by']).toBe('bob');
    expect(mv.tags['mlops.outcome']).toBe('promoted');

    // Once decided the workflow has completed: a late approval is refused as not pending (exit 1).
    const late = await approveCli(['--workflow-id', workflowId, '--approver', 'carol']);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(
      `refused (not-pending): ${workflowId} is completed; nothing awaits approval`,
    );
  });
});
