/**
 * A runaway or hostile approver cannot push the pipeline's history to Temporal's limits: on a real dev
 * server, real MLflow and the real trainer, a flood of refused `approve` signals (bounded in count and
 * time) makes the approval wait continue as new (the input's low `approvalHistoryLimit` stands in for
 * Temporal's own suggestion). The continued run resumes exactly at the wait: the approval given before
 * the flood, the refusal count and the deadline are kept, no earlier stage runs again, `status` and the
 * audit log go on across the runs, and a valid signed approval afterwards promotes. A `resume` typed
 * into a start request is refused.
 *
 * The policy is the shipped fraud policy's approval section (signatures required), with two approvals
 * so that one can be carried, and the approval tests' gate for a small holdout.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../../src/audit';
import type { WorkerConfig } from '../../src/config';
import { DEFAULT_POLICY_DIR } from '../../src/config';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import {
  approveSignal,
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type PipelineStatus,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import {
  CARRIED_REFUSAL_DECISIONS,
  FOLDED_REFUSALS_DECISION,
  REFUSED_DECISION,
} from '../../src/core/policy/approval';
import { APPROVAL_RESUMED_EVENT, CONTINUED_AS_NEW_DECISION } from '../../workflows/shared/approval-desk';
import { lockIdOf, lockStateQuery } from '../../src/core/policy/drift-lock';
import { registerApprovers, signedApprove, type TestApprovers } from '../helpers/approvers';
import {
  awaitApproval,
  createLocalEnv,
  eventually,
  type RunningWorker,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
} from '../helpers/env';

/** History events after which the test's approval wait continues as new (the input's low limit). */
const HISTORY_LIMIT = 600;
/** Most refused signals the flood sends before giving up (it stops once the run has continued). */
const MAX_FLOOD = 600;
/** Longest the flood may take. */
const FLOOD_TIMEOUT_MS = 180_000;
/** Signals between two checks whether the run has continued. */
const CHECK_EVERY = 20;
/** Activities of the stages before the approval wait: a continued run must not run any of them. */
const EARLIER_STAGE_ACTIVITIES = [
  'loadModelPolicy',
  'snapshotDataset',
  'validateDataset',
  'trainCandidate',
  'registerModelVersion',
  'evaluateCandidate',
  'writeModelCard',
];

/** The workflow code the recorded runs are replayed against. */
const WORKFLOWS = path.resolve(__dirname, '..', '..', 'workflows');

let env: TestWorkflowEnvironment;
let worker: RunningWorker | undefined;
let config: WorkerConfig;
let policyDir: string;
let approvers: TestApprovers;
let train: string;
let holdout: string;

const shippedApproval = (
  JSON.parse(readFileSync(path.join(DEFAULT_POLICY_DIR, 'fraud.json'), 'utf8')) as {
    approval: ModelPolicyInput['approval'];
  }
).approval;

function writePolicy(model: string): void {
  const policy: ModelPolicyInput = {
    gate: {
      minHoldoutSize: 200,
      minPositives: 20,
      absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 },
      guardrails: { maxFairnessGap: 0.3 },
    },
    approval: { ...shippedApproval, minApprovals: 2 },
  };
  writeFileSync(path.join(policyDir, `${model}.json`), JSON.stringify(policy));
}

beforeAll(async () => {
  env = await createLocalEnv();
  policyDir = tempDir('can-policies');
  approvers = registerApprovers(policyDir);
  config = testWorkerConfig(tempDir('can'), {}, { policyDir });
  const data = tempDir('can-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 4000, seed: 31 }),
    writeDataset(data, 'holdout.csv', { rows: 2500, seed: 99 }),
  ]);
  worker = await runWorker({ connection: env.nativeConnection, config });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function input(model: string, extra: Partial<RetrainingInput> = {}): RetrainingInput {
  return {
    model,
    dataset: { uri: train },
    holdout: { uri: holdout },
    trigger: { kind: 'manual', by: 'dana' },
    initiator: 'dana',
    featureSpec: FRAUD_FEATURE_SPEC,
    ...extra,
  };
}

interface AuditLine {
  type: string;
  workflowId: string;
  eventId: string;
  actor?: string;
  details: Record<string, unknown>;
}

function auditOf(workflowId: string): AuditLine[] {
  return readFileSync(config.auditLogPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditLine)
    .filter((e) => e.workflowId === workflowId);
}

describe('approval wait: continue-as-new under a flood of refused signals', () => {
  it('continues as new carrying approvals, refusals and deadline; nothing reruns; a signed approval then promotes', async () => {
    const model = uniqueModel('can');
    writePolicy(model);
    const workflowId = retrainWorkflowId(model);
    const started = await env.client.workflow.start('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId,
      args: [input(model, { approvalHistoryLimit: HISTORY_LIMIT })],
    });
    const firstRunId = started.firstExecutionRunId;
    const handle = env.client.workflow.getHandle(workflowId);
    const waiting = await awaitApproval(model, () => handle.query(statusQuery));
    const version = waiting.candidate!.version;
    const before = await handle.describe();
    expect(before.historyLength, 'the wait must start below the test limit').toBeLessThan(HISTORY_LIMIT);

    // One of the two approvals arrives before the flood; it must survive the continuation.
    await handle.signal(approveSignal, signedApprove(approvers, { workflowId, approver: 'alice', version }));
    const approvedOnce = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.approval?.approvals.includes('alice') ? s : undefined;
    });
    const deadline = approvedOnce.approval?.deadline;
    expect(deadline).toMatch(/^\d{4}-\d\d-\d\dT/);

    // The flood: unknown approvers, bounded in count and time, until the run has continued.
    let sent = 0;
    let runId = firstRunId;
    const floodEnds = Date.now() + FLOOD_TIMEOUT_MS;
    while (sent < MAX_FLOOD && Date.now() < floodEnds && runId === firstRunId) {
      await handle.signal(approveSignal, { approver: 'mallory', comment: `flood ${sent}` });
      sent += 1;
      if (sent % CHECK_EVERY === 0) runId = (await handle.describe()).runId;
    }
    runId = (
      await eventually(async () => {
        const d = await handle.describe();
        return d.runId !== firstRunId ? d : undefined;
      }, 60_000)
    ).runId;
    expect(sent).toBeGreaterThan(10);

    // The first run ended as continued-as-new, its history bounded near the limit.
    const first = await env.client.workflow.getHandle(workflowId, firstRunId).describe();
    expect(first.status.name).toBe('CONTINUED_AS_NEW');
    expect(first.historyLength).toBeLessThan(HISTORY_LIMIT + 200);
    console.log(
      `[approval-can] ${sent} refused signals; wait began at ${before.historyLength} events, the first run ended at ${first.historyLength}`,
    );

    // The continued run resumed at the wait: same candidate, approvals, deadline; refusals counted.
    const resumed: PipelineStatus = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.decisions.some((d) => d.decision === CONTINUED_AS_NEW_DECISION) ? s : undefined;
    });
    expect(resumed.stage).toBe('awaiting-approval');
    expect(resumed.candidate?.version).toBe(version);
    expect(resumed.gate?.decision).toBe('promote');
    expect(resumed.approval).toMatchObject({ outcome: 'pending', approvals: ['alice'], deadline });
    const refusedBefore = resumed.approval!.attempts.filter((a) => !a.accepted).length;
    expect(refusedBefore + (resumed.approval!.droppedAttempts ?? 0)).toBeGreaterThan(10);
    // Refusal decisions are folded so the carried status stays small (a few more may land after it).
    const refusedDecisions = resumed.decisions.filter((d) => d.decision === REFUSED_DECISION).length;
    expect(refusedDecisions).toBeLessThanOrEqual(CARRIED_REFUSAL_DECISIONS + CHECK_EVERY + 5);
    if (sent > CARRIED_REFUSAL_DECISIONS + CHECK_EVERY)
      expect(resumed.decisions.some((d) => d.decision === FOLDED_REFUSALS_DECISION)).toBe(true);

    // The model's lease went to the continued run (no other start could take it in between).
    const lock = await env.client.workflow.getHandle(lockIdOf(model, config.taskQueue)).query(lockStateQuery);
    expect(lock.holder).toMatchObject({ workflowId, runId });

    // No earlier stage ran in the continued run.
    const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return name ? [name] : [];
    });
    for (const earlier of EARLIER_STAGE_ACTIVITIES) expect(scheduled).not.toContain(earlier);
    const startedAttrs = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(startedAttrs?.continuedExecutionRunId).toBe(firstRunId);

    // The second approval, signed by bob, completes the pipeline in the continued run.
    await handle.signal(approveSignal, signedApprove(approvers, { workflowId, approver: 'bob', version }));
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome).toBe('promoted');
    expect(result.status.approval).toMatchObject({ outcome: 'approved', approvals: ['alice', 'bob'] });
    expect(result.status.approval?.deadline).toBe(deadline);
    expect(result.validation?.ok).toBe(true);

    // The audit log goes on across the runs: one resume event, with the carried deadline and approval.
    const audit = auditOf(workflowId);
    const resumedEvents = audit.filter((e) => e.type === APPROVAL_RESUMED_EVENT);
    expect(resumedEvents).toHaveLength(1);
    expect(resumedEvents[0]?.details).toMatchObject({
      continuedFrom: firstRunId,
      approvals: ['alice'],
      deadline,
    });
    expect(audit.filter((e) => e.type === 'model.registered')).toHaveLength(1);
    expect(audit.some((e) => e.eventId.includes(runId) && e.type === 'model.promoted')).toBe(true);
    expect(await verifyAuditLog(config.auditLogPath)).toMatchObject({ ok: true });

    // Both runs replay deterministically: the continuation's decision follows from the history alone.
    // No private key is in either history (the carried input included): only signatures and public keys.
    const privateKeys = Object.values(approvers.keyFiles).map((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('-----'))
        .join(''),
    );
    for (const r of [firstRunId, runId]) {
      const recorded = await env.client.workflow.getHandle(workflowId, r).fetchHistory();
      const text = JSON.stringify(recorded);
      for (const key of privateKeys) expect(text).not.toContain(key);
      await Worker.runReplayHistory({ workflowsPath: WORKFLOWS }, recorded, workflowId);
    }
  });

  it('refuses a resume typed into a start request', async () => {
    const model = uniqueModel('can-forged');
    writePolicy(model);
    const workflowId = retrainWorkflowId(model);
    const forged = {
      stage: 'awaiting-approval',
      continuedFrom: 'not-a-run',
      continuations: 1,
      status: { workflowId, model, stage: 'awaiting-approval', decisions: [] },
      policy: {},
      registered: { version: '1' },
      snapshot: {},
      report: {},
      summary: {},
      verdict: { decision: 'promote', reasons: [] },
      approval: { state: {}, refusals: 0, deadlineMs: Date.now() + 60_000 },
    };
    const h = await env.client.workflow.start('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId,
      args: [{ ...input(model), resume: forged } as unknown as RetrainingInput],
    });
    const err = await h.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toContain(
      "resume: accepted only from the pipeline's own continue-as-new",
    );
  });
});
