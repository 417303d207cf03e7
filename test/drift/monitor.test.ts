/**
 * driftMonitor and the per-model lock on a real Temporal dev server (the project's pinned CLI), with
 * the real workflow bundle and the real drift activities; the gateway's own JSONL writer produces the
 * inference log, the committed `good` fixture model scores it. The worker registers only the drift
 * activities plus a never-answering stand-in for the pipeline's first audit call, so a started
 * retrainingPipeline takes the model's lease and stays running, holding the lock.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriftActivities } from '../../activities/drift';
import { applySchedules, SchedulesFileSchema } from '../../src/cli/schedules';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { MODEL_LOCKED_FAILURE, lockIdOf } from '../../src/core/policy/drift-lock';
import { calibrateOnHoldout } from '../../src/core/stats/cbpe';
import { buildReferenceProfile } from '../../src/core/stats/drift-profile';
import { CBPE_HOLDOUT_ROWS } from '../../src/drift/cbpe-experiment';
import { featureKinds, toColumns } from '../../src/drift/columns';
import { loadModelDir, scoreRecords } from '../../src/drift/score';
import { windowSeed } from '../../src/drift/seeds';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import { startTemporalDevServer, type RunningServer, type TemporalEndpoint } from '../../src/stack/launcher';
import { generateFraudDataset } from '../../src/workload/generator';
import type { DriftMonitorInput, DriftMonitorResult } from '../../workflows/drift-monitor';

const run = promisify(execFile);
const TASK_QUEUE = 'drift-test';
const WINDOW_FROM = '2026-11-20T10:00:00.000Z';
const WINDOW_TO = '2026-11-20T11:00:00.000Z';

let server: RunningServer<TemporalEndpoint>;
let client: Client;
let worker: Worker;
let workerDone: Promise<void>;
let dir: string;
let profileUri: string;

async function writeWindow(model: string, dataDrift: number, seed: number): Promise<void> {
  const m = await loadModelDir(path.join(__dirname, '..', 'fixtures', 'models', 'good'));
  const rows = generateFraudDataset({ rows: 2_000, seed, batches: 1, dataDrift });
  const scores = await scoreRecords(m, FRAUD_FEATURE_SPEC, rows as never);
  const log = new JsonlInferenceLog(path.join(dir, 'inference'));
  const start = Date.parse(WINDOW_FROM);
  rows.forEach((r, i) => {
    const { is_fraud: _label, transaction_id, batch_id: _batch, ...features } = r;
    log.append({
      time: new Date(start + Math.floor((i * 3_600_000) / rows.length)).toISOString(),
      requestId: transaction_id,
      model,
      version: '1',
      route: 'stable',
      features,
      prediction: scores[i]!,
      ood: false,
    });
  });
  await log.close();
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'drift-monitor-'));
  server = await startTemporalDevServer({ stateDir: path.join(dir, 'temporal') });
  const connection = await Connection.connect({ address: server.endpoint.address });
  client = new Client({ connection });
  // The champion's reference profile: its training-like draw, its scores, its holdout calibration.
  const m = await loadModelDir(path.join(__dirname, '..', 'fixtures', 'models', 'good'));
  const ref = generateFraudDataset({ rows: CBPE_HOLDOUT_ROWS, seed: windowSeed(11, 0), batches: 1 });
  const refScores = await scoreRecords(m, FRAUD_FEATURE_SPEC, ref as never);
  const profile = buildReferenceProfile(
    toColumns(ref as never, featureKinds(FRAUD_FEATURE_SPEC), Array.from(refScores)),
  );
  const cal = calibrateOnHoldout(
    refScores,
    ref.map((r) => r.is_fraud),
  );
  profile.calibration = { map: cal.map, check: cal.check };
  profileUri = path.join(dir, 'profile.json');
  writeFileSync(profileUri, JSON.stringify(profile));
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: server.endpoint.address }),
    taskQueue: TASK_QUEUE,
    workflowsPath: path.join(__dirname, '..', '..', 'workflows', 'index.ts'),
    activities: {
      ...createDriftActivities({
        inferenceLogDir: path.join(dir, 'inference'),
        reportDir: path.join(dir, 'reports'),
      }),
      // Test double for the rest of the pipeline (MLflow, trainer): its first activity never
      // answers, so a run that took the lease stays running and holds it.
      recordAudit: () => new Promise<never>(() => undefined),
    },
    // The stand-in never answers: at shutdown the worker stops waiting for it after this grace.
    shutdownForceTime: '5s',
  });
  workerDone = worker.run();
}, 300_000);

afterAll(async () => {
  worker?.shutdown();
  // Bounded: a worker still draining the never-answering stand-in must not hold the run's teardown.
  await Promise.race([workerDone?.catch(() => undefined), new Promise((r) => setTimeout(r, 30_000))]);
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function pipelinesOf(model: string): Promise<{ id: string; status: string }[]> {
  const out: { id: string; status: string }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = 'retrainingPipeline'` })) {
    if (w.workflowId.startsWith(`retrain-${model}`)) out.push({ id: w.workflowId, status: w.status.name });
  }
  return out;
}

function monitor(model: string, id: string): Promise<DriftMonitorResult> {
  const input: DriftMonitorInput = {
    model,
    profileUri,
    from: WINDOW_FROM,
    to: WINDOW_TO,
    retrain: { dataset: { uri: 'file:///data/fraud/latest.csv' }, featureSpec: FRAUD_FEATURE_SPEC },
  };
  return client.workflow.execute('driftMonitor', { taskQueue: TASK_QUEUE, workflowId: id, args: [input] });
}

describe('driftMonitor', () => {
  it('a drift-free window is no drift, with a trusted CBPE estimate, and starts nothing', async () => {
    await writeWindow('calm', 0, windowSeed(12, 1));
    const r = await monitor('calm', 'drift-calm-1');
    expect(r.status).toBe('no-drift');
    expect(r.rows).toBe(2_000);
    expect(r.decision.start).toBe(false);
    expect(r.retraining).toBeUndefined();
    const report = JSON.parse(
      await import('node:fs/promises').then((f) => f.readFile(r.reportJson, 'utf8')),
    ) as {
      cbpe: { metric: string; trusted: boolean; reasons: string[] }[];
    };
    console.log(`CBPE: ${JSON.stringify(report.cbpe)}`);
    expect(report.cbpe.map((c) => c.trusted)).toEqual([true, true, true]);
    const html = await import('node:fs/promises').then((f) => f.readFile(r.reportHtml, 'utf8'));
    expect(html).toContain('<svg');
    expect(html).not.toContain('<script');
    expect(await pipelinesOf('calm')).toEqual([]);
  });

  it('injected data drift starts exactly one retraining; a second monitor run starts none', async () => {
    await writeWindow('drifty', 0.3, windowSeed(12, 2));
    const first = await monitor('drifty', 'drift-drifty-1');
    expect(first.status).toBe('drift');
    expect(first.decision.trigger?.kind).toBe('drift');
    expect(first.retraining?.started).toBe(true);
    const second = await monitor('drifty', 'drift-drifty-2');
    expect(second.status).toBe('drift');
    expect(second.retraining?.started ?? false).toBe(false);
    const runs = await pipelinesOf('drifty');
    console.log(
      `drift monitor: first run started ${first.retraining?.workflowId}; second: ${second.decision.reason} / ${second.retraining?.reason ?? ''}`,
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe('RUNNING');
  });
});

describe('the per-model lock', () => {
  it('a schedule made with the temporal binary starts the pipeline; its timestamped runs cannot run side by side', async () => {
    const model = 'scheduled';
    const cli = server.endpoint.cli;
    const address = ['--address', server.endpoint.address];
    const input = JSON.stringify({
      model,
      dataset: { uri: 'file:///data/x.csv' },
      featureSpec: FRAUD_FEATURE_SPEC,
      trigger: { kind: 'schedule', scheduleId: `retrain-${model}` },
    });
    await run(cli, [
      'schedule',
      'create',
      ...address,
      '--schedule-id',
      `retrain-${model}`,
      '--interval',
      '24h',
      '--overlap-policy',
      'AllowAll',
      '--workflow-id',
      `retrain-${model}`,
      '--task-queue',
      TASK_QUEUE,
      '--type',
      'retrainingPipeline',
      '--input',
      input,
    ]);
    await run(cli, [
      'schedule',
      'trigger',
      ...address,
      '--schedule-id',
      `retrain-${model}`,
      '--overlap-policy',
      'AllowAll',
    ]);
    await new Promise((r) => setTimeout(r, 1_500));
    await run(cli, [
      'schedule',
      'trigger',
      ...address,
      '--schedule-id',
      `retrain-${model}`,
      '--overlap-policy',
      'AllowAll',
    ]);
    let runs: { id: string; status: string }[] = [];
    for (let i = 0; i < 60; i++) {
      runs = await pipelinesOf(model);
      if (runs.length === 2 && runs.some((r) => r.status === 'FAILED')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`schedule runs: ${JSON.stringify(runs)}`);
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.status).sort()).toEqual(['FAILED', 'RUNNING']);
    const failed = runs.find((r) => r.status === 'FAILED')!;
    const err = await client.workflow
      .getHandle(failed.id)
      .result()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe(MODEL_LOCKED_FAILURE);
    await run(cli, ['schedule', 'delete', ...address, '--schedule-id', `retrain-${model}`]);
  });

  it('a CLI start is refused while a run holds the lock and granted once the holder is gone', async () => {
    const model = 'manual';
    const input = {
      model,
      dataset: { uri: 'file:///data/x.csv' },
      featureSpec: FRAUD_FEATURE_SPEC,
      trigger: { kind: 'manual', by: 'alice' },
    };
    const a = await client.workflow.start('retrainingPipeline', {
      taskQueue: TASK_QUEUE,
      workflowId: `retrain-${model}-a`,
      args: [input],
    });
    for (let i = 0; i < 60; i++) {
      const s = await client.workflow
        .getHandle(lockIdOf(model, TASK_QUEUE))
        .query<{ holder?: { workflowId: string } }>('lockState')
        .catch(() => undefined);
      if (s?.holder?.workflowId === a.workflowId) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const b = await client.workflow.start('retrainingPipeline', {
      taskQueue: TASK_QUEUE,
      workflowId: `retrain-${model}-b`,
      args: [input],
    });
    const refused = await b.result().catch((e: unknown) => e);
    expect(((refused as WorkflowFailedError).cause as { type?: string }).type).toBe(MODEL_LOCKED_FAILURE);
    await a.terminate('test: the holder goes away');
    const c = await client.workflow.start('retrainingPipeline', {
      taskQueue: TASK_QUEUE,
      workflowId: `retrain-${model}-c`,
      args: [input],
    });
    let holder: string | undefined;
    for (let i = 0; i < 60 && holder !== c.workflowId; i++) {
      const s = await client.workflow
        .getHandle(lockIdOf(model, TASK_QUEUE))
        .query<{ holder?: { workflowId: string } }>('lockState');
      holder = s.holder?.workflowId;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(holder).toBe(c.workflowId);
    await c.terminate('test done');
  });
});

describe('schedules from deploy/schedules.json', () => {
  it('are created once and updated in place when applied again (overlap SKIP)', async () => {
    const file = SchedulesFileSchema.parse(
      JSON.parse(
        await import('node:fs/promises').then((f) =>
          f.readFile(path.join(__dirname, '..', '..', 'deploy', 'schedules.json'), 'utf8'),
        ),
      ),
    );
    const first = await applySchedules(client, file.schedules, TASK_QUEUE);
    const second = await applySchedules(client, file.schedules, TASK_QUEUE);
    expect(first.map((r) => r.action)).toEqual(file.schedules.map(() => 'created'));
    expect(second.map((r) => r.action)).toEqual(file.schedules.map(() => 'updated'));
    for (const d of file.schedules) {
      const desc = await client.schedule.getHandle(d.id).describe();
      expect(desc.policies.overlap).toBe('SKIP');
      await client.schedule.getHandle(d.id).delete();
    }
  });
});
