/**
 * The business KPI on delayed labels in canaryRollout, on a real Temporal dev server, a real
 * gateway writing its real inference log, and real MLflow versions. The worker's KPI source is the
 * gateway's /metrics with the delayed-label outcome source beside it (the inference log joined by
 * request id to a label folder, as the drift monitor reads them). Labels are the one thing the
 * test writes itself, standing in for chargebacks arriving: a labeller reads the log as the
 * gateway flushes it and drops label files for the requests it sees. A second worker reads its
 * counters from a real Prometheus scraping the gateway, with the same label source beside it.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusinessKpiPolicyInput } from '../../src/core/contracts/business-kpi';
import {
  kpiBreachSignal,
  type CanaryInput,
  type CanaryPolicyInput,
  type CanaryResult,
} from '../../src/core/contracts/canary';
import { canaryWorkflowId } from '../../src/core/contracts/gateway';
import { VersionTags } from '../../src/core/contracts/registry';
import { FileInferenceLogSource } from '../../src/drift/inference-source';
import { startGatewayProcess, type GatewayProcess } from '../../src/gateway/app';
import { parseGatewayConfig } from '../../src/gateway/config';
import { fileDelayedLabels, withDelayedLabels } from '../../src/kpi/delayed-labels';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import { PrometheusKpiSource } from '../../src/kpi/prometheus';
import type { InferenceRecord } from '../../src/ports/inference-log';
import { startPrometheus, type RunningPrometheus } from '../../src/stack/prometheus';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import { fraudFeatures, registerModelFiles } from '../gateway/fixtures';
import { bearer, newKey, post } from '../gateway/helpers';
import {
  createLocalEnv,
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  type RunningWorker,
} from '../helpers/env';
import { fixtureFiles, until } from './helpers/rollout';

/** The serving threshold the test's labels are written against (the policy default). */
const THRESHOLD = 0.2;
/** How often the labeller reads the inference log for new requests. */
const LABEL_POLL_MS = 250;
/** How long the slow label join of the breach test takes (a long rollout's log, simulated). */
const SLOW_JOIN_MS = 20_000;
/** Longest the labeller runs, whatever happens to the test. */
const LABELLER_MAX_MS = 120_000;

/** Fast steps for tests: a short bake; 40 labelled decisions per version are enough to judge. */
const FAST: CanaryPolicyInput = {
  steps: [50, 100],
  bakeTime: '4s',
  minRequests: 20,
  consecutiveErrorLimit: 2,
};
const BUSINESS: BusinessKpiPolicyInput = { minLabelled: 40 };

let env: TestWorkflowEnvironment;
let gw: GatewayProcess;
let worker: RunningWorker | undefined;
let promWorker: RunningWorker | undefined;
let prom: RunningPrometheus | undefined;
let taskQueue: string;
let promTaskQueue: string;
let slowWorker: RunningWorker | undefined;
let slowTaskQueue: string;
let inferenceLogDir: string;
let labelsDir: string;
const model = uniqueModel('bizkpi');
const predictKey = newKey('load', ['predict']);
const adminKey = newKey('rollout', ['admin']);
const mlflow = mlflowClient();
let stable: string;
const rows = fraudFeatures(64, 5);

/** Sends predictions with a few concurrent clients until stopped (bounded by count and time). */
function load(maxMs = 120_000): () => Promise<void> {
  let stop = false;
  const started = Date.now();
  const client = async (i: number) => {
    for (let n = 0; !stop && n < 20_000 && Date.now() - started < maxMs; n++) {
      await post(
        `${gw.url}/v1/models/${model}/predict`,
        { features: rows[(n + i) % rows.length] },
        bearer(predictKey.key),
      ).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const all = Promise.all([0, 1, 2, 3].map(client));
  return async () => {
    stop = true;
    await all;
  };
}

/** Labellers started so far: each names its files apart. */
let labellers = 0;

/**
 * Writes a label for each request the log shows, as `labelOf` says (undefined: no label yet), in
 * whole files renamed into place so the label source never reads half a line. Until stopped.
 */
function labeller(labelOf: (r: InferenceRecord) => 0 | 1 | undefined): () => Promise<void> {
  const log = new FileInferenceLogSource(inferenceLogDir);
  const folder = path.join(labelsDir, model);
  mkdirSync(folder, { recursive: true });
  const seen = new Set<string>();
  // Only requests answered from now on: earlier tests' requests keep the labels they were given.
  const from = new Date();
  const labellerNo = ++labellers;
  const started = Date.now();
  let stop = false;
  let batch = 0;
  const run = (async () => {
    while (!stop && Date.now() - started < LABELLER_MAX_MS) {
      const lines: string[] = [];
      for await (const r of log.read(model, from, new Date(Date.now() + 3_600_000))) {
        const key = `${r.requestId}/${r.version}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const label = labelOf(r);
        if (label !== undefined) lines.push(JSON.stringify({ requestId: r.requestId, label }));
      }
      if (lines.length > 0) {
        const file = path.join(folder, `chargebacks-${process.pid}-${labellerNo}-${batch++}.jsonl`);
        writeFileSync(`${file}.tmp`, `${lines.join('\n')}\n`);
        renameSync(`${file}.tmp`, file);
      }
      await new Promise((r) => setTimeout(r, LABEL_POLL_MS));
    }
  })();
  return async () => {
    stop = true;
    await run;
  };
}

beforeAll(async () => {
  env = await createLocalEnv();
  stable = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
  inferenceLogDir = tempDir('bizkpi-log');
  labelsDir = tempDir('bizkpi-labels');
  gw = await startGatewayProcess(
    parseGatewayConfig({
      port: 0,
      workers: 1,
      mlflowTrackingUri: mlflow.trackingUri,
      models: [{ name: model, stable: { version: stable } }],
      apiKeys: [predictKey.entry],
      adminKeys: [adminKey.entry],
      accessLog: 'off',
      inferenceLogDir,
      rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
    }),
  );
  const config = testWorkerConfig(tempDir('bizkpi-worker'));
  taskQueue = config.taskQueue;
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: {
      router: new GatewayTrafficRouter(gw.url, () => adminKey.key),
      kpi: withDelayedLabels(
        new GatewayMetricsKpiSource(`${gw.url}/metrics`),
        fileDelayedLabels({ inferenceLogDir, labelsDir }),
      ),
    },
  });
  prom = await startPrometheus({ stateDir: tempDir('bizkpi-prometheus'), targets: [new URL(gw.url).host] });
  const promConfig = testWorkerConfig(tempDir('bizkpi-prom-worker'));
  promTaskQueue = promConfig.taskQueue;
  promWorker = await runWorker({
    connection: env.nativeConnection,
    config: promConfig,
    ports: {
      router: new GatewayTrafficRouter(gw.url, () => adminKey.key),
      kpi: withDelayedLabels(
        new PrometheusKpiSource(prom.url),
        fileDelayedLabels({ inferenceLogDir, labelsDir }),
      ),
    },
  });
  // The same label source behind a delay: a join that takes SLOW_JOIN_MS (test double for a
  // long log; the join itself is the real one).
  const realLabels = fileDelayedLabels({ inferenceLogDir, labelsDir });
  const slowConfig = testWorkerConfig(tempDir('bizkpi-slow-worker'));
  slowTaskQueue = slowConfig.taskQueue;
  slowWorker = await runWorker({
    connection: env.nativeConnection,
    config: slowConfig,
    ports: {
      router: new GatewayTrafficRouter(gw.url, () => adminKey.key),
      kpi: withDelayedLabels(new GatewayMetricsKpiSource(`${gw.url}/metrics`), {
        kind: 'slow',
        outcomes: async (req) => {
          await new Promise((r) => setTimeout(r, SLOW_JOIN_MS));
          return realLabels.outcomes(req);
        },
      }),
    },
  });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await slowWorker?.stop();
  await promWorker?.stop();
  await prom?.stop();
  await gw?.close();
  await env?.teardown();
});

async function rollout(version: string, policy: CanaryPolicyInput, queue = taskQueue): Promise<CanaryResult> {
  const input: CanaryInput = { model, version, policy };
  return (await env.client.workflow.execute('canaryRollout', {
    taskQueue: queue,
    workflowId: canaryWorkflowId(model, version),
    args: [input],
  })) as CanaryResult;
}

async function route() {
  const r = await fetch(`${gw.url}/admin/v1/models/${model}/route`, { headers: bearer(adminKey.key) });
  return (await r.json()) as { stable: string; canary?: string; canaryWeight: number };
}

const flagged = (r: InferenceRecord) => r.prediction >= THRESHOLD;

describe('canaryRollout: business KPI on delayed labels', () => {
  it("rolls back a canary whose labelled decisions cost clearly more than stable's, naming the KPI", async () => {
    // The same model binary on both sides, so every serving KPI agrees; the labels say stable's
    // decisions were right and the canary's wrong (a model that looks healthy and loses money).
    const v = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
    const stopLabels = labeller((r) => {
      if (r.version === v) return flagged(r) ? 0 : 1;
      return flagged(r) ? 1 : 0;
    });
    const stopLoad = load();
    const result = await rollout(v, { ...FAST, businessKpi: BUSINESS });
    await stopLoad();
    await stopLabels();
    expect(result.outcome, JSON.stringify(result.status.analyses)).toBe('rolled-back');
    const first = result.status.analyses[0]!;
    expect(first.step).toBe(50);
    expect(first.phase).toBe('failed');
    const failing = first.checks.filter((c) => !c.passed);
    expect(
      failing.map((c) => c.name),
      JSON.stringify(failing),
    ).toEqual(['canary.business.cost.vs-stable']);
    expect(failing[0]!.observed as number).toBeGreaterThan(0.5);
    expect(result.reason).toMatch(/analysis failed at 50%.*cost per decision at threshold 0.2/);
    expect(result.reason).toMatch(/canary \d+ of \d+ predictions labelled/);
    // The joined counts come back with the analysis: label coverage of both versions.
    const o = first.outcomes;
    expect(o?.available).toBe(true);
    if (o?.available) {
      expect(o.canary.labelled).toBeGreaterThanOrEqual(40);
      expect(o.stable.labelled).toBeGreaterThanOrEqual(40);
      expect(o.canary.labelled).toBeLessThanOrEqual(o.canary.predictions);
      expect(o.canary.tp + o.canary.tn).toBe(0);
      expect(o.stable.fp + o.stable.fn).toBe(0);
    }
    expect(await route()).toMatchObject({ stable, canaryWeight: 0 });
    expect((await mlflow.getModelVersion(model, v)).tags[VersionTags.outcome]).toBe('rolled-back');
    // The patched path (outcome reads, the seeded bootstrap in the judge) replays deterministically.
    const history = await env.client.workflow.getHandle(canaryWorkflowId(model, v)).fetchHistory();
    await Worker.runReplayHistory(
      { workflowsPath: path.resolve(__dirname, '..', '..', 'workflows') },
      history,
    );
  });

  it('judges the same business KPI when the counters come from Prometheus', async () => {
    const v = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
    const stopLabels = labeller((r) => {
      if (r.version === v) return flagged(r) ? 0 : 1;
      return flagged(r) ? 1 : 0;
    });
    const stopLoad = load();
    // Bakes long enough for a few one-second scrapes.
    const result = await rollout(v, { ...FAST, bakeTime: '5s', businessKpi: BUSINESS }, promTaskQueue);
    await stopLoad();
    await stopLabels();
    expect(result.outcome, JSON.stringify(result.status.analyses)).toBe('rolled-back');
    const failing = result.status.analyses[0]!.checks.filter((c) => !c.passed).map((c) => c.name);
    expect(failing).toEqual(['canary.business.cost.vs-stable']);
    expect(await route()).toMatchObject({ stable, canaryWeight: 0 });
  });

  it('a kpiBreach pushed while the label join runs rolls back at once, cancelling the join', async () => {
    const v = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
    const input: CanaryInput = {
      model,
      version: v,
      policy: { ...FAST, bakeTime: '1s', businessKpi: BUSINESS },
    };
    const handle = await env.client.workflow.start('canaryRollout', {
      taskQueue: slowTaskQueue,
      workflowId: canaryWorkflowId(model, v),
      args: [input],
    });
    await until(async () => {
      const d = await handle.describe();
      return d.raw.pendingActivities?.some((a) => a.activityType?.name === 'measureLabelledOutcomes')
        ? true
        : undefined;
    }, 30_000);
    const pushed = Date.now();
    await handle.signal(kpiBreachSignal, {
      metric: 'error_rate',
      value: 0.4,
      threshold: 0.05,
      window: '60s',
    });
    const result = (await handle.result()) as CanaryResult;
    expect(Date.now() - pushed).toBeLessThan(SLOW_JOIN_MS / 2);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/KPI breach pushed by the gateway/);
    expect(result.status.analyses).toHaveLength(0);
    expect(await route()).toMatchObject({ stable, canaryWeight: 0 });
  });

  it('does not roll back on a handful of labels, even when every one of them is against the canary', async () => {
    const v = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
    let canaryLabels = 0;
    let stableLabels = 0;
    const stopLabels = labeller((r) => {
      if (r.version === v) return canaryLabels++ < 10 ? (flagged(r) ? 0 : 1) : undefined;
      return stableLabels++ < 10 ? (flagged(r) ? 1 : 0) : undefined;
    });
    const stopLoad = load();
    const result = await rollout(v, { ...FAST, businessKpi: BUSINESS });
    await stopLoad();
    await stopLabels();
    expect(
      result.outcome,
      JSON.stringify(result.status.analyses.map((a) => a.checks.filter((c) => !c.passed))),
    ).toBe('promoted');
    for (const a of result.status.analyses) {
      const c = a.checks.find((x) => x.name === 'canary.business.cost.vs-stable');
      expect(c?.phase).toBe('successful');
      expect(c?.detail).toMatch(/not judged: labelled decisions canary \d+, stable \d+; at least 40 each/);
      expect(a.outcomes?.available && a.outcomes.canary.labelled).toBeLessThanOrEqual(10);
    }
    expect(await route()).toMatchObject({ stable: v, canaryWeight: 0 });
    stable = v;
  });
});
