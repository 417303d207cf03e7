/**
 * Workflow-logic layer: the real retrainingPipeline bundle and the real activities on the
 * time-skipping test server, with the outside systems replaced by the ports' fakes (in-memory
 * registry and audit sink, a scripted job runner that "trains" by logging a committed ONNX
 * fixture). Each branch of the pipeline runs in seconds: rejected data, training failures, a lost
 * job resubmitted, a deadline-killed job failed and not retrained, the gate refusing a weak model,
 * approval, rejection and the 72-hour expiry. The real-server layers cover the same stages against
 * MLflow, the reference trainer and a dev server.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../src/audit';
import { loadWorkerConfig, type WorkerConfig } from '../../src/config';
import { AuditEventType } from '../../src/core/contracts/audit';
import { FailureType } from '../../src/core/contracts/failures';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { kpiBreachSignal } from '../../src/core/contracts/canary';
import { Aliases, VersionTags } from '../../src/core/contracts/registry';
import {
  approveSignal,
  rejectSignal,
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import { MemoryModelRegistry } from '../../src/registry';
import { ScriptedJobRunner } from '../fakes/job-runner';
import { MemoryTrafficRouter, SimulatedKpiSource } from '../fakes/traffic';
import {
  createTimeSkippingEnv,
  runWorker,
  tempDir,
  uniqueModel,
  writeDataset,
  type RunningWorker,
} from '../helpers/env';
import { failureOf } from '../../workflows/shared/failures';
import { registerApprovers, signedApprove, signedReject, type TestApprovers } from '../helpers/approvers';

const POLICY = path.resolve(__dirname, '..', '..', 'deploy', 'policies', 'fraud.json');
const HOUR_MS = 3_600_000;

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let train: string;
let holdout: string;
let approvers: TestApprovers;
const registry = new MemoryModelRegistry();
const audit = new MemoryAuditSink();
const jobs = new ScriptedJobRunner(registry);
const router = new MemoryTrafficRouter();
const kpi = new SimulatedKpiSource(router);

beforeAll(async () => {
  env = await createTimeSkippingEnv();
  const state = tempDir('logic');
  config = loadWorkerConfig({
    // Never contacted: the registry port is the in-memory fake.
    MLFLOW_TRACKING_URI: 'http://127.0.0.1:9',
    MLOPS_STATE_DIR: state,
    MLOPS_TASK_QUEUE: `logic-${path.basename(state)}`,
    MLOPS_POLICY_DIR: tempDir('logic-policies'),
  });
  // The shipped policy's approvers, registered where the worker looks (<policy folder>/approver-keys).
  approvers = registerApprovers(config.policyDir);
  const data = tempDir('logic-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 3000, seed: 21 }),
    // Large enough for the fairness report to judge every region (at least 30 positives each).
    writeDataset(data, 'holdout.csv', { rows: 8000, seed: 77 }),
  ]);
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: { registry, jobs, audit, router, kpi },
    jobPollIntervalMs: 10,
  });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function start(
  model: string,
  opts: { image?: string; dataset?: string; holdout?: boolean; canary?: boolean; kpiGuard?: boolean } = {},
): Promise<WorkflowHandle> {
  // The shipped fraud policy with the fairness guardrails opened: the committed fixtures are not
  // fairness subjects (the explain layer tests the fairness gate), and the branches here are the
  // pipeline's, not the policy's.
  const policy = JSON.parse(readFileSync(POLICY, 'utf8')) as {
    gate: { guardrails: Record<string, unknown> };
  };
  policy.gate.guardrails.maxFairnessGap = 1;
  policy.gate.guardrails.maxFairnessRegression = 1;
  writeFileSync(path.join(config.policyDir, `${model}.json`), JSON.stringify(policy));
  const input: RetrainingInput = {
    model,
    dataset: { uri: opts.dataset ?? train },
    ...(opts.holdout === false ? {} : { holdout: { uri: holdout } }),
    trigger: { kind: 'manual', by: 'dave' },
    featureSpec: FRAUD_FEATURE_SPEC,
    training: { image: opts.image ?? 'fixture/good' },
    ...(opts.canary ? { canary: { steps: [10, 50, 100], bakeTime: '5m', minRequests: 30 } } : {}),
    ...(opts.kpiGuard ? { kpiGuard: { window: '10m', interval: '2m', minRequests: 30 } } : {}),
  };
  return env.client.workflow.start('retrainingPipeline', {
    taskQueue: config.taskQueue,
    workflowId: retrainWorkflowId(model),
    args: [input],
  });
}

/**
 * An approval signed with `approver`'s registered key (the shipped policy requires signatures), issued at
 * the test server's time: time skipping moves the workflows' clock past the wall clock.
 */
async function signedBy(handle: WorkflowHandle, approver: string, comment?: string) {
  const version = (await handle.query(statusQuery)).candidate?.version ?? '';
  const issuedAt = new Date(await env.currentTimeMs()).toISOString();
  return signedApprove(approvers, {
    workflowId: handle.workflowId,
    approver,
    version,
    issuedAt,
    ...(comment !== undefined ? { comment } : {}),
  });
}

/** A rejection signed like {@link signedBy}. */
async function rejectedBy(handle: WorkflowHandle, approver: string, reason: string) {
  const version = (await handle.query(statusQuery)).candidate?.version ?? '';
  const issuedAt = new Date(await env.currentTimeMs()).toISOString();
  return signedReject(approvers, { workflowId: handle.workflowId, approver, version, reason, issuedAt });
}

async function untilAwaitingApproval(handle: WorkflowHandle): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const s = await handle.query(statusQuery);
    if (s.stage === 'awaiting-approval') return;
    if (['completed', 'rejected', 'rejected-data', 'failed', 'expired'].includes(s.stage)) {
      throw new Error(`pipeline ended at ${s.stage}: ${JSON.stringify(s.decisions)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('pipeline never reached awaiting-approval');
}

async function failureTypeOf(handle: WorkflowHandle): Promise<string | undefined> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return failureOf((err as WorkflowFailedError).cause).type;
}

describe('retrainingPipeline branches on fakes (time-skipping)', () => {
  it('rejects a dataset that is not a CSV of the spec, before any training', async () => {
    const model = uniqueModel('lg-bad');
    const bad = path.join(tempDir('logic-bad'), 'bad.csv');
    writeFileSync(bad, 'this,is\nnot,the,fraud,schema\n');
    const result = (await (await start(model, { dataset: bad })).result()) as PipelineResult;
    expect(result.outcome).toBe('rejected-data');
    expect(result.validation?.ok).toBe(false);
    expect(jobs.submissions.some((n) => n.startsWith(`train-${model}`))).toBe(false);
  });

  it('rejects a dataset that cannot be read', async () => {
    const model = uniqueModel('lg-gone');
    // Inside the dataset roots (the OS temp folder in tests), but absent.
    const gone = path.join(tempDir('logic-gone'), 'x.csv');
    const result = (await (await start(model, { dataset: gone })).result()) as PipelineResult;
    expect(result.outcome).toBe('rejected-data');
    expect(result.status.error).toMatch(/unreadable/);
  });

  it('fails with TrainingFailed when the trainer exits non-zero, and registers nothing', async () => {
    const model = uniqueModel('lg-exit');
    const handle = await start(model, { image: 'fixture/exit-3' });
    expect(await failureTypeOf(handle)).toBe(FailureType.TrainingFailed);
    const status = await handle.query(statusQuery);
    expect(status.stage).toBe('failed');
    expect(status.error).toMatch(/exited with code 3/);
    expect(registry.versionCount(model)).toBe(0);
  });

  it('fails a job killed at its deadline instead of training it again', async () => {
    const model = uniqueModel('lg-deadline');
    const handle = await start(model, { image: 'fixture/deadline' });
    expect(await failureTypeOf(handle)).toBe(FailureType.TrainingFailed);
    const failedStatus = await handle.query(statusQuery);
    expect(failedStatus.error).toMatch(/deadline-exceeded/);
    // The activity reported the job's state to the pipeline while it waited.
    expect(failedStatus.job).toMatchObject({ phase: 'failed', reason: 'deadline-exceeded', resubmits: 0 });
    expect(jobs.submissions.filter((n) => n.startsWith(`train-${model}`))).toHaveLength(1);
  });

  it('resubmits a job that was lost and completes (no holdout: registered)', async () => {
    const model = uniqueModel('lg-lost');
    const result = (await (
      await start(model, { image: 'fixture/lost-once', holdout: false })
    ).result()) as PipelineResult;
    expect(result.outcome).toBe('registered');
    expect(jobs.submissions.filter((n) => n.startsWith(`train-${model}`))).toHaveLength(2);
    expect(result.status.job).toMatchObject({ phase: 'succeeded', resubmits: 1 });
    expect((await registry.findVersionByAlias(model, Aliases.challenger))?.version).toBe('1');
  });

  it('does not promote a model that learned nothing (gate)', async () => {
    const model = uniqueModel('lg-weak');
    const result = (await (await start(model, { image: 'fixture/weak' })).result()) as PipelineResult;
    expect(result.outcome).toBe('not-promoted');
    expect(result.status.gate?.decision).toBe('reject');
    expect((await registry.getVersion(model, '1')).tags[VersionTags.outcome]).toBe('not-promoted');
    expect(await registry.findVersionByAlias(model, Aliases.champion)).toBeUndefined();
  });

  it('promotes a good model once a listed approver approves; the initiator may not', async () => {
    const model = uniqueModel('lg-ok');
    const handle = await start(model);
    await untilAwaitingApproval(handle);
    await handle.signal(approveSignal, { approver: 'dave' });
    // The shipped policy requires signed decisions: bob's unsigned approval is refused, his signed one counts.
    await handle.signal(approveSignal, { approver: 'bob', comment: 'fine' });
    await handle.signal(approveSignal, await signedBy(handle, 'bob', 'fine'));
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
    expect(result.status.approval?.attempts.map((a) => [a.approver, a.accepted, a.code, a.signed])).toEqual([
      ['dave', false, 'unknown-approver', false],
      ['bob', false, 'signature-required', false],
      ['bob', true, undefined, true],
    ]);
    const attempts: Array<Record<string, unknown>> = [];
    for await (const e of audit.entries())
      if (e.workflowId === handle.workflowId && e.type === AuditEventType.approvalAttempt)
        attempts.push(e.details);
    // Signals delivered together are audited by concurrent appends: compare regardless of order.
    const byCode = (d: Record<string, unknown>) => String(d.code ?? '');
    expect(attempts.map((d) => [d.accepted, d.code ?? null]).sort()).toEqual([
      [false, 'signature-required'],
      [false, 'unknown-approver'],
      [true, null],
    ]);
    expect(attempts.find((d) => byCode(d) === 'signature-required')?.reason).toBe(
      'this model requires a signed decision; none was given',
    );
    const champion = await registry.findVersionByAlias(model, Aliases.champion);
    expect(champion?.version).toBe('1');
    expect(champion?.tags[VersionTags.approvedBy]).toBe('bob');
    expect(champion?.tags[VersionTags.modelCard]).toMatch(/^runs:\/.+\/model_card\/model_card\.md$/);
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  it('leaves every alias alone when an approver rejects', async () => {
    const model = uniqueModel('lg-rej');
    const handle = await start(model);
    await untilAwaitingApproval(handle);
    await handle.signal(rejectSignal, await rejectedBy(handle, 'carol', 'not this quarter'));
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('rejected');
    expect(result.status.decisions.at(-1)?.reason).toMatch(/carol: not this quarter/);
    expect(await registry.findVersionByAlias(model, Aliases.champion)).toBeUndefined();
  });

  it('expires after the policy timeout of 72h without a decision', async () => {
    const model = uniqueModel('lg-exp');
    const handle = await start(model);
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('expired');
    const d = await handle.describe();
    expect(d.closeTime!.getTime() - d.startTime.getTime()).toBeGreaterThanOrEqual(72 * HOUR_MS);
    expect((await registry.getVersion(model, '1')).tags[VersionTags.outcome]).toBe('expired');
  });

  it('rolls an approved version out through the canary child, then promotes registry and traffic', async () => {
    const model = uniqueModel('lg-can');
    router.serve(model, '7');
    await registry.ensureModel(model);
    const handle = await start(model, { canary: true });
    await untilAwaitingApproval(handle);
    await handle.signal(approveSignal, await signedBy(handle, 'alice'));
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('promoted');
    expect(result.status.canary).toMatchObject({ workflowId: `canary-${model}-v1`, outcome: 'promoted' });
    expect(await router.getRoute(model)).toMatchObject({ stable: '1', canaryWeight: 0 });
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe('1');
  });

  it('ends rolled-back with champion and traffic untouched when the canary fails its analysis', async () => {
    const model = uniqueModel('lg-canbad');
    router.serve(model, '7');
    kpi.errorRates.set('1', 0.3);
    const handle = await start(model, { canary: true });
    await untilAwaitingApproval(handle);
    await handle.signal(approveSignal, await signedBy(handle, 'alice'));
    const result = (await handle.result()) as PipelineResult;
    kpi.errorRates.delete('1');
    expect(result.outcome).toBe('rolled-back');
    expect(result.status.stage).toBe('rolled-back');
    expect(result.status.canary?.reason).toMatch(/analysis failed at 10%/);
    expect(await router.getRoute(model)).toMatchObject({ stable: '7', canaryWeight: 0 });
    expect(await registry.findVersionByAlias(model, Aliases.champion)).toBeUndefined();
    expect((await registry.getVersion(model, '1')).tags[VersionTags.outcome]).toBe('rolled-back');
  });
  /** An old champion v1 of `model` in the registry (a run without artifacts: it is never scored). */
  async function oldChampionVersion(model: string): Promise<void> {
    await registry.ensureModel(model);
    const experimentId = await registry.ensureExperiment(`old-${model}`);
    const run = await registry.createRun({ experimentId, runName: 'old-champion', tags: {} });
    await registry.createVersion({
      model,
      runId: run.runId,
      source: `runs:/${run.runId}/model`,
      tags: {},
      description: 'old',
    });
  }

  it('keeps a promoted champion whose KPIs hold through the kpiGuard window', async () => {
    const model = uniqueModel('lg-guard');
    router.serve(model, '7');
    const handle = await start(model, { canary: true, kpiGuard: true });
    await untilAwaitingApproval(handle);
    await handle.signal(approveSignal, await signedBy(handle, 'alice'));
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('promoted');
    expect(result.status.stage).toBe('completed');
    expect(result.status.kpiGuard).toMatchObject({ version: '1', restoreTo: '7', outcome: 'passed' });
    expect(result.status.kpiGuard?.windows.map((w) => w.phase)).toEqual(Array(5).fill('successful'));
    expect(await router.getRoute(model)).toMatchObject({ stable: '1', canaryWeight: 0 });
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe('1');
  });

  it('restores the previous champion in traffic and registry when the new one fails after promotion', async () => {
    const model = uniqueModel('lg-guardbad');
    await oldChampionVersion(model);
    router.serve(model, '1');
    // v2 passes the canary (0 errors while it is the canary) and fails once it serves everyone.
    kpi.errorRatesAsStable.set('2', 0.3);
    try {
      const handle = await start(model, { canary: true, kpiGuard: true });
      await untilAwaitingApproval(handle);
      // Champion only now, so the evaluation before did not score the artifact-less old version.
      await registry.setAlias(model, Aliases.champion, '1');
      await handle.signal(approveSignal, await signedBy(handle, 'alice'));
      const result = (await handle.result()) as PipelineResult;
      expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('rolled-back');
      expect(result.status.stage).toBe('rolled-back');
      expect(result.status.canary?.outcome).toBe('promoted');
      expect(result.status.kpiGuard).toMatchObject({ version: '2', restoreTo: '1', outcome: 'rolled-back' });
      expect(result.status.kpiGuard?.reason).toMatch(/window 1 failed: champion error-rate 0\.3/);
      expect(await router.getRoute(model)).toMatchObject({ stable: '1', canaryWeight: 0 });
      expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe('1');
      const bad = await registry.getVersion(model, '2');
      expect(bad.tags[VersionTags.outcome]).toBe('rolled-back');
      expect(bad.tags[VersionTags.outcomeReason]).toMatch(/kpiGuard window 1 failed/);
      const card = JSON.parse(
        (await registry.downloadArtifact(bad.runId!, 'model_card/model_card.json')).toString('utf8'),
      ) as { outcome?: string };
      expect(card.outcome).toMatch(/^rolled-back after promotion: kpiGuard window 1 failed/);
      const rolledBack: unknown[] = [];
      for await (const e of audit.entries())
        if (e.model === model && e.type === AuditEventType.modelRolledBack) rolledBack.push(e);
      expect(rolledBack).toEqual([
        expect.objectContaining({
          modelVersion: '2',
          details: expect.objectContaining({ after: 'promotion' }),
        }),
      ]);
      expect(await audit.verify()).toMatchObject({ ok: true });
    } finally {
      kpi.errorRatesAsStable.delete('2');
    }
  });
  it('rolls the new champion back at once on a kpiBreach signal during the guard', async () => {
    const model = uniqueModel('lg-guardpush');
    router.serve(model, '7');
    const handle = await start(model, { canary: true, kpiGuard: true });
    await untilAwaitingApproval(handle);
    await handle.signal(approveSignal, await signedBy(handle, 'alice'));
    // Time skips only while the test sleeps on the server's clock: step it until the guard watches.
    for (let i = 0; i < 200 && (await handle.query(statusQuery)).stage !== 'kpi-guard'; i++)
      await env.sleep('20s');
    expect((await handle.query(statusQuery)).stage).toBe('kpi-guard');
    const breach = {
      metric: 'error_rate' as const,
      value: 0.4,
      threshold: 0.05,
      window: '60s',
      model,
      version: '1',
    };
    await handle.signal(kpiBreachSignal, { ...breach, version: '9' });
    await handle.signal(kpiBreachSignal, breach);
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('rolled-back');
    expect(result.status.kpiGuard?.windows).toEqual([]);
    expect(result.status.kpiGuard?.reason).toMatch(
      /KPI breach pushed by the gateway during kpiGuard: error_rate 0.4/,
    );
    expect(result.status.decisions.some((d) => d.decision === 'breach-ignored' && /v9/.test(d.reason))).toBe(
      true,
    );
    expect(await router.getRoute(model)).toMatchObject({ stable: '7', canaryWeight: 0 });
    expect((await registry.getVersion(model, '1')).tags[VersionTags.outcome]).toBe('rolled-back');
  });
});
