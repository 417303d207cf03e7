/**
 * Smoke test of the time-skipping test server that the stack fetches from Maven Central: timers of
 * 72 hours and a week complete in seconds of wall-clock time while workflow time really advances,
 * both when the test awaits a result (automatic skipping) and through `env.sleep` (manual skipping).
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalExpires, sleepAWeek } from '../fixtures/workflows/timers';
import { createTimeSkippingEnv } from '../helpers/env';

const HOUR_MS = 3_600_000;
/** "A few seconds": a skipped 72h or 7-day timer must finish well within this much real time. */
const WALL_BUDGET_MS = 10_000;
/** How often to poll a workflow's status while waiting for it without unlocking time skipping. */
const POLL_MS = 50;

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `time-skipping-${randomUUID()}`;

beforeAll(async () => {
  const started = performance.now();
  env = await createTimeSkippingEnv();
  console.log(`[time-skipping] test server started in ${Math.round(performance.now() - started)} ms`);
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: path.resolve(__dirname, '..', 'fixtures', 'workflows', 'timers.ts'),
  });
  running = worker.run();
});

afterAll(async () => {
  if (worker) {
    worker.shutdown();
    await running;
  }
  await env?.teardown();
});

/** The server-side duration of a closed workflow: from its start to its close, in server time. */
async function serverDurationMs(handle: WorkflowHandle): Promise<number> {
  const d = await handle.describe();
  expect(d.closeTime, `workflow ${handle.workflowId} has not closed`).toBeDefined();
  return d.closeTime!.getTime() - d.startTime.getTime();
}

/** Waits in real time (no time skipping) until the workflow leaves RUNNING; returns its status. */
async function waitUntilClosed(handle: WorkflowHandle, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = (await handle.describe()).status.name;
    if (status !== 'RUNNING' || performance.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

describe('time-skipping test server', () => {
  it('is a time-skipping environment', () => {
    expect(env.supportsTimeSkipping).toBe(true);
  });

  it('expires a 72h approval wait in seconds of wall-clock time', async () => {
    const wallStart = performance.now();
    const serverStart = await env.currentTimeMs();
    const handle = await env.client.workflow.start(approvalExpires, {
      taskQueue,
      workflowId: `approval-${randomUUID()}`,
    });
    expect(await handle.result()).toBe('expired');
    const wallMs = performance.now() - wallStart;

    expect(wallMs).toBeLessThan(WALL_BUDGET_MS);
    const observed = await serverDurationMs(handle);
    expect(observed).toBeGreaterThanOrEqual(72 * HOUR_MS);
    expect(observed).toBeLessThan(73 * HOUR_MS);
    expect((await env.currentTimeMs()) - serverStart).toBeGreaterThanOrEqual(72 * HOUR_MS);
    console.log(`[time-skipping] 72h approval expired after ${Math.round(wallMs)} ms of wall-clock time`);
  });

  it('sleeps a week of workflow time in seconds of wall-clock time', async () => {
    const wallStart = performance.now();
    const elapsed = await env.client.workflow.execute(sleepAWeek, {
      taskQueue,
      workflowId: `sleep-${randomUUID()}`,
    });
    const wallMs = performance.now() - wallStart;

    expect(wallMs).toBeLessThan(WALL_BUDGET_MS);
    expect(elapsed).toBeGreaterThanOrEqual(7 * 24 * HOUR_MS);
    expect(elapsed).toBeLessThan(7 * 24 * HOUR_MS + HOUR_MS);
    console.log(`[time-skipping] 7-day sleep took ${Math.round(wallMs)} ms of wall-clock time`);
  });

  it('skips time on env.sleep: still waiting at 71h, expired just after 72h', async () => {
    const wallStart = performance.now();
    const handle = await env.client.workflow.start(approvalExpires, {
      taskQueue,
      workflowId: `approval-manual-${randomUUID()}`,
    });
    // Let the first workflow task run so the 72h timer exists before time moves.
    await waitForTimer(handle);
    const serverStart = await env.currentTimeMs();

    await env.sleep('71h');
    expect((await env.currentTimeMs()) - serverStart).toBeGreaterThanOrEqual(71 * HOUR_MS);
    expect((await handle.describe()).status.name).toBe('RUNNING');

    await env.sleep('2h');
    // Polling describe does not unlock time skipping: only the manual sleep can have fired the timer.
    expect(await waitUntilClosed(handle, WALL_BUDGET_MS)).toBe('COMPLETED');
    expect(await handle.result()).toBe('expired');
    const observed = await serverDurationMs(handle);
    expect(observed).toBeGreaterThanOrEqual(72 * HOUR_MS);
    expect(observed).toBeLessThan(73 * HOUR_MS);
    expect(performance.now() - wallStart).toBeLessThan(WALL_BUDGET_MS);
  });
});

/** Waits in real time until the workflow's history holds its started timer. */
async function waitForTimer(handle: WorkflowHandle): Promise<void> {
  const deadline = performance.now() + WALL_BUDGET_MS;
  while (performance.now() < deadline) {
    const history = await handle.fetchHistory();
    if (history.events?.some((e) => e.timerStartedEventAttributes)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`workflow ${handle.workflowId} started no timer within ${WALL_BUDGET_MS} ms`);
}
