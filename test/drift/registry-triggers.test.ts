/**
 * The drift triggers against real servers: a Temporal dev server (the project's pinned CLI) and a real
 * MLflow, both started here, with the real workflow bundle, the real drift and registry activities
 * and the data plane's engine.
 *
 * - Registration (`registerModelVersion` with the worker's profiler) writes the version's reference
 *   profile, profiled from its training snapshot, as an MLflow artifact; `driftMonitor` reads the
 *   champion's profile from MLflow by alias, logs its summary to an MLflow run linked to the version,
 *   and the retraining it starts carries that run's report link.
 * - `newDataCheck` starts nothing below its threshold, exactly one retraining above it, and none
 *   while that one runs (by schedule-like start and by signal).
 *
 * As in monitor.test.ts the worker registers a never-answering stand-in for the pipeline's first
 * audit call, so a started retrainingPipeline takes the model's lease and stays running.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriftActivities } from '../../activities/drift';
import { createRegistryActivities } from '../../activities/registry';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { Aliases, experimentName, RunTags } from '../../src/core/contracts/registry';
import {
  statusQuery,
  type PipelineStatus,
  type RegisteredVersion,
} from '../../src/core/contracts/retraining';
import { newDataCheckIdOf, newLabelsSignal } from '../../src/core/policy/new-data';
import { driftExperimentName, DriftRunTags } from '../../src/drift/mlflow-summary';
import {
  createReferenceProfiler,
  loadProfileByAlias,
  REFERENCE_PROFILE_ARTIFACT,
  REFERENCE_PROFILE_TAG,
} from '../../src/drift/reference-profile';
import { loadModelDir, scoreRecords } from '../../src/drift/score';
import { windowSeed } from '../../src/drift/seeds';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import { MlflowClient } from '../../src/mlflow';
import { MlflowModelRegistry } from '../../src/registry';
import {
  startMlflowServer,
  startTemporalDevServer,
  type MlflowEndpoint,
  type RunningServer,
  type TemporalEndpoint,
} from '../../src/stack/launcher';
import { generateFraudDataset, writeCsv, type FraudRow } from '../../src/workload/generator';
import type {
  DriftMonitorInput,
  DriftMonitorResult,
  NewDataCheckInput,
  NewDataCheckResult,
} from '../../workflows/drift-monitor';

const TASK_QUEUE = 'drift-registry-test';
const WINDOW_FROM = '2026-11-20T10:00:00.000Z';
const FIXTURE_MODEL = path.join(__dirname, '..', 'fixtures', 'models', 'good');
/** Rows of each champion's training snapshot. */
const TRAINING_ROWS = 3_000;
/** The check's threshold in these tests. */
const MIN_NEW_ROWS = 500;

let temporal: RunningServer<TemporalEndpoint>;
let mlflow: RunningServer<MlflowEndpoint>;
let registry: MlflowModelRegistry;
let client: Client;
let worker: Worker;
let workerDone: Promise<void>;
let dir: string;
let snapshotDir: string;
let dataDir: string;
const training = new Map<string, FraudRow[]>();

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A champion for `model`: training snapshot in the store, registered through the registry activity, evaluated, aliased. */
async function registerChampion(model: string, seed: number): Promise<string> {
  const rows = generateFraudDataset({ rows: TRAINING_ROWS, seed, batches: 1 });
  training.set(model, rows);
  const tmp = path.join(dir, `${model}-train.csv`);
  await writeCsv(tmp, rows);
  const sha = sha256(tmp);
  writeFileSync(path.join(snapshotDir, `${sha}.csv`), readFileSync(tmp));
  const experimentId = await registry.ensureExperiment(experimentName(model));
  const run = await registry.createRun({
    experimentId,
    runName: `train-${model}`,
    tags: { [RunTags.jobName]: `train-${model}` },
  });
  for (const f of ['model.onnx', 'input_schema.json', 'feature_spec.json'])
    await registry.uploadArtifact(run.runId, `model/${f}`, readFileSync(path.join(FIXTURE_MODEL, f)));
  const activities = createRegistryActivities({
    registry,
    profiler: createReferenceProfiler({ snapshotDir }),
  });
  const env = new MockActivityEnvironment({
    workflowExecution: { workflowId: `retrain-${model}`, runId: `run-${model}` },
  });
  const registered: RegisteredVersion = await env.run(activities.registerModelVersion, {
    model,
    runId: run.runId,
    datasetSha256: sha,
    trigger: { kind: 'manual' as const },
    featureSpec: 'fraud@1',
  });
  // Its evaluation on a holdout, as evaluateCandidate writes it (scores of the fixture model).
  const holdout = generateFraudDataset({ rows: 4_000, seed: seed + 1, batches: 1 });
  const m = await loadModelDir(FIXTURE_MODEL);
  const scores = await scoreRecords(m, FRAUD_FEATURE_SPEC, holdout as never);
  const csv = ['index,label,group,champion_score,challenger_score']
    .concat(holdout.map((r, i) => `${i},${r.is_fraud},${r.region},,${scores[i]}`))
    .join('\n');
  await registry.uploadArtifact(run.runId, 'evaluation/per_example.csv', csv);
  await registry.setAlias(model, Aliases.champion, registered.version);
  return registered.version;
}

async function writeWindow(
  model: string,
  dataDrift: number,
  seed: number,
  from = WINDOW_FROM,
): Promise<void> {
  const m = await loadModelDir(FIXTURE_MODEL);
  const rows = generateFraudDataset({ rows: 2_000, seed, batches: 1, dataDrift });
  const scores = await scoreRecords(m, FRAUD_FEATURE_SPEC, rows as never);
  const log = new JsonlInferenceLog(path.join(dir, 'inference'));
  const start = Date.parse(from);
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
  dir = mkdtempSync(path.join(os.tmpdir(), 'drift-registry-'));
  snapshotDir = path.join(dir, 'snapshots');
  dataDir = path.join(dir, 'data');
  mkdirSync(snapshotDir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  [temporal, mlflow] = await Promise.all([
    startTemporalDevServer({ stateDir: path.join(dir, 'temporal') }),
    startMlflowServer({ stateDir: path.join(dir, 'mlflow') }),
  ]);
  registry = new MlflowModelRegistry(new MlflowClient({ trackingUri: mlflow.endpoint.trackingUri }));
  client = new Client({ connection: await Connection.connect({ address: temporal.endpoint.address }) });
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporal.endpoint.address }),
    taskQueue: TASK_QUEUE,
    workflowsPath: path.join(__dirname, '..', '..', 'workflows', 'index.ts'),
    activities: {
      ...createDriftActivities({
        inferenceLogDir: path.join(dir, 'inference'),
        reportDir: path.join(dir, 'reports'),
        registry,
        snapshotDir,
        datasetRoots: [dataDir],
      }),
      // Test double for the rest of the pipeline (trainer and the stages after it): its first
      // activity never answers, so a run that took the lease stays running and holds it.
      recordAudit: () => new Promise<never>(() => undefined),
    },
    shutdownForceTime: '5s',
  });
  workerDone = worker.run();
}, 300_000);

afterAll(async () => {
  worker?.shutdown();
  await Promise.race([workerDone?.catch(() => undefined), new Promise((r) => setTimeout(r, 30_000))]);
  await Promise.all([temporal?.stop(), mlflow?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function pipelinesOf(model: string): Promise<{ id: string; status: string }[]> {
  const out: { id: string; status: string }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = 'retrainingPipeline'` })) {
    if (w.workflowId.startsWith(`retrain-${model}`)) out.push({ id: w.workflowId, status: w.status.name });
  }
  return out;
}

async function statusOf(workflowId: string): Promise<PipelineStatus> {
  for (let i = 0; ; i++) {
    try {
      return await client.workflow.getHandle(workflowId).query(statusQuery);
    } catch (err) {
      if (i > 40) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

describe('the reference profile in MLflow and the monitor reading it', () => {
  it('registration stores the profile; the monitor reads it by alias, logs its summary and links its report', async () => {
    const model = 'drift-reg';
    const version = await registerChampion(model, windowSeed(21, 0));
    const mv = await registry.getVersion(model, version);
    expect(mv.tags[REFERENCE_PROFILE_TAG]).toBe(`runs:/${mv.runId}/${REFERENCE_PROFILE_ARTIFACT}`);
    const { profile } = await loadProfileByAlias(registry, model, Aliases.champion);
    expect(profile.rows).toBe(TRAINING_ROWS);
    expect(profile.source.sha256).toBe(mv.tags['mlops.dataset_sha256']);
    expect(profile.prediction?.rows).toBe(4_000);
    // The calibration check itself (trusted or not on 4000 rows) is the CBPE tests' subject.
    expect(profile.calibration?.check.rows).toBe(2_000);
    console.log(`champion calibration on its holdout: ${JSON.stringify(profile.calibration?.check)}`);

    // A drift-free hour first: no alarm against the registered profile, nothing started, still logged.
    const calmFrom = '2026-11-20T09:00:00.000Z';
    await writeWindow(model, 0, windowSeed(21, 2), calmFrom);
    const calm: DriftMonitorResult = await client.workflow.execute('driftMonitor', {
      taskQueue: TASK_QUEUE,
      workflowId: `drift-${model}-0`,
      args: [
        {
          model,
          from: calmFrom,
          to: WINDOW_FROM,
          retrain: { dataset: { uri: 'file:///data/fraud/latest.csv' }, featureSpec: FRAUD_FEATURE_SPEC },
        } satisfies DriftMonitorInput,
      ],
    });
    console.log(`calm window: ${calm.status} ${calm.decision.reason}`);
    expect(calm.status).toBe('no-drift');
    expect(calm.retraining).toBeUndefined();
    expect((await registry.getRun(calm.mlflowRunId!)).metrics.drift_alarm).toBe(0);

    await writeWindow(model, 0.3, windowSeed(21, 1));
    const input: DriftMonitorInput = {
      model,
      from: WINDOW_FROM,
      to: '2026-11-20T11:00:00.000Z',
      retrain: { dataset: { uri: 'file:///data/fraud/latest.csv' }, featureSpec: FRAUD_FEATURE_SPEC },
    };
    const first: DriftMonitorResult = await client.workflow.execute('driftMonitor', {
      taskQueue: TASK_QUEUE,
      workflowId: `drift-${model}-1`,
      args: [input],
    });
    expect(first.status).toBe('drift');
    expect(first.version).toBe(version);
    expect(first.retraining?.started).toBe(true);
    expect(first.reportUri).toBe(`runs:/${first.mlflowRunId}/drift_report/report.html`);

    // The summary run in MLflow, linked to the version both ways.
    const run = await registry.getRun(first.mlflowRunId!);
    console.log(`drift summary run ${run.runId}: ${JSON.stringify(run.metrics)}`);
    expect(run.tags[DriftRunTags.model]).toBe(model);
    expect(run.tags[DriftRunTags.modelVersion]).toBe(version);
    expect(run.experimentId).toBe(await registry.ensureExperiment(driftExperimentName(model)));
    expect(run.metrics.drift_share_drifted_features).toBeGreaterThan(0);
    expect(run.metrics.drift_alarm).toBe(1);
    expect(run.metrics.drift_max_statistic).toBeGreaterThan(0);
    expect(run.metrics).toHaveProperty('drift_prediction_psi');
    expect(run.metrics).toHaveProperty('cbpe_precision');
    expect((await registry.getVersion(model, version)).tags[DriftRunTags.latestRun]).toBe(run.runId);
    const html = (await registry.downloadArtifact(run.runId, 'drift_report/report.html')).toString();
    expect(html).toContain('<svg');

    // The retraining it started carries the report link.
    const status = await statusOf(first.retraining!.workflowId);
    expect(status.trigger).toMatchObject({ kind: 'drift', report: first.reportUri });

    const second: DriftMonitorResult = await client.workflow.execute('driftMonitor', {
      taskQueue: TASK_QUEUE,
      workflowId: `drift-${model}-2`,
      args: [input],
    });
    expect(second.retraining?.started ?? false).toBe(false);
    expect(second.mlflowRunId).not.toBe(first.mlflowRunId);
    expect(await pipelinesOf(model)).toHaveLength(1);
    await client.workflow.getHandle(first.retraining!.workflowId).terminate('test done');
  });

  it('a monitor without a profile file fails at once, naming the missing champion', async () => {
    const err = await client.workflow
      .execute('driftMonitor', {
        taskQueue: TASK_QUEUE,
        workflowId: 'drift-nobody-1',
        args: [{ model: 'nobody', from: WINDOW_FROM, to: '2026-11-20T11:00:00.000Z' }],
      })
      .catch((e: unknown) => e as Error);
    expect(String((err as { cause?: { cause?: Error } }).cause?.cause?.message)).toMatch(
      /nobody has no version aliased champion/,
    );
  });

  it('a malformed monitor policy fails at once, naming the field', async () => {
    const err = await client.workflow
      .execute('driftMonitor', {
        taskQueue: TASK_QUEUE,
        workflowId: 'drift-bad-policy-1',
        args: [{ model: 'drift-reg', policy: { alpha: 2 } } as DriftMonitorInput],
      })
      .catch((e: unknown) => e as Error);
    const cause = (err as { cause?: { type?: string; message?: string } }).cause;
    expect(cause?.type).toBe('InvalidInput');
    expect(cause?.message).toContain('policy.alpha');
  });
});

describe('the new labelled data trigger', () => {
  it('below the threshold starts nothing, above it exactly one, and none while that one runs', async () => {
    const model = 'new-data';
    const version = await registerChampion(model, windowSeed(22, 0));
    const base = training.get(model)!;
    const fresh = generateFraudDataset({ rows: 2 * MIN_NEW_ROWS, seed: windowSeed(22, 1), batches: 1 });
    const small = path.join(dataDir, 'small.csv');
    const big = path.join(dataDir, 'big.csv');
    await writeCsv(small, [...base, ...fresh.slice(0, 100)]);
    await writeCsv(big, [...base, ...fresh.slice(0, MIN_NEW_ROWS + 300)]);
    const check = (file: string, id: string): Promise<NewDataCheckResult> => {
      const input: NewDataCheckInput = {
        model,
        dataset: { uri: `file://${file}` },
        featureSpec: FRAUD_FEATURE_SPEC,
        policy: { minNewRows: MIN_NEW_ROWS },
      };
      return client.workflow.execute('newDataCheck', {
        taskQueue: TASK_QUEUE,
        workflowId: id,
        args: [input],
      });
    };

    const below = await check(small, 'new-data-check-1');
    console.log(`below: ${below.checks[0]?.decision.reason}`);
    expect(below.checks[0]?.count).toMatchObject({ rows: TRAINING_ROWS + 100, newRows: 100 });
    expect(below.checks[0]?.count.champion?.version).toBe(version);
    expect(below.retraining).toBeUndefined();
    expect(await pipelinesOf(model)).toEqual([]);

    const above = await check(big, 'new-data-check-2');
    console.log(`above: ${above.checks[0]?.decision.reason}`);
    expect(above.checks[0]?.count.newRows).toBe(MIN_NEW_ROWS + 300);
    expect(above.retraining?.started).toBe(true);
    const status = await statusOf(above.retraining!.workflowId);
    expect(status.trigger.kind).toBe('new-data');

    const again = await check(big, 'new-data-check-3');
    console.log(`while it runs: ${again.checks[0]?.decision.reason}`);
    expect(again.checks[0]?.decision).toMatchObject({ start: false, blocked: 'lock' });
    expect(again.retraining).toMatchObject({ started: false, workflowId: above.retraining!.workflowId });

    // The signal path: a landed batch signals (with start) the model's check.
    const h = await client.workflow.signalWithStart('newDataCheck', {
      taskQueue: TASK_QUEUE,
      workflowId: newDataCheckIdOf(model),
      args: [
        {
          model,
          dataset: { uri: `file://${big}` },
          featureSpec: FRAUD_FEATURE_SPEC,
          policy: { minNewRows: MIN_NEW_ROWS },
        } satisfies NewDataCheckInput,
      ],
      signal: newLabelsSignal,
      signalArgs: [{ batch: '2026-12-01' }],
    });
    const signalled = (await h.result()) as NewDataCheckResult;
    expect(signalled.checks[0]?.decision.blocked).toBe('lock');

    const runs = await pipelinesOf(model);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe('RUNNING');
    await client.workflow.getHandle(runs[0]!.id).terminate('test done');
  });

  it('a malformed check input fails at once, naming the field', async () => {
    const err = await client.workflow
      .execute('newDataCheck', {
        taskQueue: TASK_QUEUE,
        workflowId: 'new-data-check-bad',
        args: [{ model: 'new-data', dataset: { uri: 'file:///x.csv' }, policy: { minNewRows: 0 } }],
      })
      .catch((e: unknown) => e as Error);
    const cause = (err as { cause?: { type?: string; message?: string } }).cause;
    expect(cause?.type).toBe('InvalidInput');
    expect(cause?.message).toContain('policy.minNewRows');
  });
});
