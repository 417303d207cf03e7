/**
 * `npm run bench:rollback`: time from a canary's first failing response to the gateway routing 0% to
 * it, with the gateway's push (`kpiBreach` from its live KPI monitor) against a Flagger-style
 * baseline (no push, one analysis per 60 s interval), in one run on a stack started here (Temporal
 * dev server and MLflow on free loopback ports).
 *
 * Each trial registers the `broken` fixture (it loads and verifies, and every prediction fails) as a
 * new canary of a model whose stable is the `good` fixture, and starts `canaryRollout` on it. The
 * breach begins at a known moment: when the rollout's first step gives the canary traffic, its first
 * answer is a 5xx. A bounded load generator records that moment; a poller reads
 * `GET /admin/v1/models/<m>/route` every POLL_MS from then on until `canaryWeight` is 0.
 *
 * Error answers carry no `version` (only successes do), so a 5xx is attributed to the canary by
 * elimination, and checked: after each trial the gateway's /metrics must show no 5xx for stable and
 * some for the canary, and no success may have come from the canary.
 *
 * The last line printed is one JSON object. Options: `--trials N` (push trials, default 10),
 * `--baseline-trials N` (default 2; each takes about a minute).
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { CanaryInput, CanaryPolicyInput, CanaryResult } from '../../src/core/contracts/canary';
import { canaryWorkflowId, type GatewayConfigInput } from '../../src/core/contracts/gateway';
import { loadWorkerConfig } from '../../src/config';
import { startGatewayProcess, type GatewayProcess } from '../../src/gateway/app';
import { parseGatewayConfig } from '../../src/gateway/config';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import { MlflowClient } from '../../src/mlflow';
import { startStack, type Stack } from '../../src/stack/launcher';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import { createWorker } from '../../workers/worker';
import { fraudFeatures, registerModelFiles, type ModelFile } from '../gateway/fixtures';
import { bearer, newKey } from '../gateway/helpers';

/** Push trials when `--trials` is not given. */
const DEFAULT_TRIALS = 10;
/** Baseline trials when `--baseline-trials` is not given: each waits a whole 60 s interval. */
const DEFAULT_BASELINE_TRIALS = 2;
/** How often the route is read back while waiting for 0%. */
const POLL_MS = 20;
/** Concurrent load clients: a steady few hundred requests a second on loopback. */
const LOAD_CLIENTS = 4;
/** Pause between one client's requests, so the load leaves CPU for the gateway and the worker. */
const LOAD_PAUSE_MS = 2;
/** Most requests one client sends in a trial. */
const LOAD_MAX_REQUESTS_PER_CLIENT = 100_000;
/** Longest a push trial may take, start to rollback (the push is expected within seconds). */
const PUSH_TRIAL_TIMEOUT_MS = 60_000;
/** Longest a baseline trial may take: one 60 s interval, the analysis, and margin. */
const BASELINE_TRIAL_TIMEOUT_MS = 150_000;
/** Target from the issue: p99 of the push path at most this. */
const TARGET_P99_MS = 2000;
/** Flagger's default analysis interval, as the baseline's bake time. */
const BASELINE_INTERVAL = '60s';
const BASELINE_INTERVAL_MS = 60_000;
/** Temporal worker log level: warnings and errors only. */
const WORKER_LOG_LEVEL = 'WARN';
/** The model name the bench registers its versions under. */
const MODEL = 'rollback-bench';

/** The push gateway's live KPI window: short, so a breach is judged within a fraction of a second. */
const KPI = {
  windowMs: 2000,
  minRequests: 20,
  maxErrorRate: 0.05,
  checkIntervalMs: 100,
  pushCooldownMs: 1000,
} satisfies GatewayConfigInput['kpi'];

/** Push trials: a long bake, so only the push can end the first step. */
const PUSH_POLICY: CanaryPolicyInput = { steps: [25, 100], bakeTime: '10m', minRequests: 20 };
/** Baseline trials: one analysis at the end of a 60 s interval decides. */
const BASELINE_POLICY: CanaryPolicyInput = { steps: [25, 100], bakeTime: BASELINE_INTERVAL, minRequests: 20 };

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'models');
const fixture = (name: string): ModelFile[] =>
  ['model.onnx', 'input_schema.json', 'feature_spec.json'].map((f) => ({
    path: `model/${f}`,
    content: readFileSync(path.join(FIXTURES, name, f)),
  }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile (with 10 trials, p99 is the largest). */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function positiveInt(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return n;
}

/** Sum of `gateway_requests_total` 5xx samples of one version. */
function serverErrors(metrics: string, version: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('gateway_requests_total{')) continue;
    if (!line.includes(`model="${MODEL}"`) || !line.includes(`version="${version}"`)) continue;
    if (!/status="5\d\d"/.test(line)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

interface Phase {
  label: string;
  gateway: GatewayProcess;
  client: Client;
  taskQueue: string;
  policy: CanaryPolicyInput;
  trialTimeoutMs: number;
  /** Expected reason of the rollback (checks the trial ended the way it was meant to). */
  reason: RegExp;
}

interface Trial {
  ms: number;
  version: string;
  canaryErrors: number;
  requests: number;
}

async function runTrial(
  phase: Phase,
  mlflow: MlflowClient,
  stable: string,
  keys: { predict: string; admin: string },
  rows: Array<Record<string, number | string | null>>,
): Promise<Trial> {
  const { gateway } = phase;
  const version = (await registerModelFiles(mlflow, MODEL, fixture('broken'))).version;
  const routeUrl = `${gateway.url}/admin/v1/models/${MODEL}/route`;
  const predictUrl = `${gateway.url}/v1/models/${MODEL}/predict`;
  const started = performance.now();
  const deadline = started + phase.trialTimeoutMs;
  let firstFailure: number | undefined;
  let rolledBack: number | undefined;
  let stop = false;
  let requests = 0;
  let canarySuccesses = 0;
  let onFirstFailure: () => void = () => {};
  const failed = new Promise<void>((r) => (onFirstFailure = r));

  const client = async (i: number) => {
    for (let n = 0; !stop && n < LOAD_MAX_REQUESTS_PER_CLIENT && performance.now() < deadline; n++) {
      try {
        const res = await fetch(predictUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...bearer(keys.predict) },
          body: JSON.stringify({ features: rows[(n * LOAD_CLIENTS + i) % rows.length] }),
          signal: AbortSignal.timeout(5_000),
        });
        const at = performance.now();
        const body = (await res.json()) as { version?: string };
        requests++;
        if (res.status >= 500 && firstFailure === undefined) {
          firstFailure = at;
          onFirstFailure();
        } else if (res.ok && body.version === version) canarySuccesses++;
      } catch {
        // a timed-out or refused request is not a 5xx answer; the next one follows
      }
      await sleep(LOAD_PAUSE_MS);
    }
  };
  const load = Promise.all(Array.from({ length: LOAD_CLIENTS }, (_, i) => client(i)));

  const input: CanaryInput = { model: MODEL, version, policy: phase.policy, initiator: 'bench' };
  const handle = await phase.client.workflow.start('canaryRollout', {
    taskQueue: phase.taskQueue,
    workflowId: canaryWorkflowId(MODEL, version),
    args: [input],
  });
  try {
    await Promise.race([failed, sleep(phase.trialTimeoutMs)]);
    if (firstFailure === undefined) throw new Error(`${phase.label}: the canary v${version} never failed`);
    while (performance.now() < deadline) {
      const res = await fetch(routeUrl, { headers: bearer(keys.admin), signal: AbortSignal.timeout(5_000) });
      const r = (await res.json()) as { canaryWeight?: number };
      if (res.ok && r.canaryWeight === 0) {
        rolledBack = performance.now();
        break;
      }
      await sleep(POLL_MS);
    }
    if (rolledBack === undefined)
      throw new Error(`${phase.label}: v${version} still had traffic at the deadline`);
  } finally {
    stop = true;
    await load;
  }
  const result = (await handle.result()) as CanaryResult;
  if (result.outcome !== 'rolled-back' || !phase.reason.test(result.reason ?? '')) {
    throw new Error(`${phase.label}: v${version} ended ${result.outcome}: ${result.reason ?? '-'}`);
  }
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  const stableErrors = serverErrors(metrics, stable);
  const canaryErrors = serverErrors(metrics, version);
  if (stableErrors !== 0 || canaryErrors === 0 || canarySuccesses !== 0) {
    throw new Error(
      `${phase.label}: failures not from the canary alone (stable 5xx ${stableErrors}, canary 5xx ${canaryErrors}, canary successes ${canarySuccesses})`,
    );
  }
  return { ms: rolledBack - firstFailure, version, canaryErrors, requests };
}

async function runPhase(
  opts: {
    label: string;
    push: boolean;
    trials: number;
    policy: CanaryPolicyInput;
    trialTimeoutMs: number;
    reason: RegExp;
  },
  stack: Stack,
  mlflow: MlflowClient,
  stable: string,
  stateDir: string,
): Promise<Trial[]> {
  const predict = newKey('bench-load', ['predict']);
  const admin = newKey('bench-rollout', ['admin']);
  const rows = fraudFeatures(64, 5);
  const taskQueue = `bench-rollback-${opts.push ? 'push' : 'baseline'}`;
  let gateway: GatewayProcess | undefined;
  let workerConnection: NativeConnection | undefined;
  let connection: Connection | undefined;
  let stopWorker: (() => Promise<void>) | undefined;
  try {
    gateway = await startGatewayProcess(
      parseGatewayConfig({
        host: '127.0.0.1',
        port: 0,
        workers: 1,
        mlflowTrackingUri: stack.mlflow.trackingUri,
        models: [{ name: MODEL, stable: { version: stable } }],
        apiKeys: [predict.entry],
        adminKeys: [admin.entry],
        accessLog: 'off',
        rateLimit: { ratePerSecond: 100_000, burst: 100_000 },
        kpi: KPI,
        ...(opts.push ? { temporal: { address: stack.temporal.address } } : {}),
      }),
    );
    const url = gateway.url;
    const config = loadWorkerConfig({
      MLFLOW_TRACKING_URI: stack.mlflow.trackingUri,
      MLOPS_STATE_DIR: path.join(stateDir, `worker-${opts.push ? 'push' : 'baseline'}`),
      MLOPS_TASK_QUEUE: taskQueue,
    });
    workerConnection = await NativeConnection.connect({ address: stack.temporal.address });
    const worker = await createWorker({
      connection: workerConnection,
      config,
      ports: {
        router: new GatewayTrafficRouter(url, () => admin.key),
        kpi: new GatewayMetricsKpiSource(`${url}/metrics`),
      },
    });
    const running = worker.run();
    stopWorker = async () => {
      worker.shutdown();
      await running;
    };
    connection = await Connection.connect({ address: stack.temporal.address });
    const phase: Phase = {
      label: opts.label,
      gateway,
      client: new Client({ connection }),
      taskQueue,
      policy: opts.policy,
      trialTimeoutMs: opts.trialTimeoutMs,
      reason: opts.reason,
    };
    const out: Trial[] = [];
    for (let i = 0; i < opts.trials; i++) {
      const t = await runTrial(phase, mlflow, stable, { predict: predict.key, admin: admin.key }, rows);
      console.log(
        `   ${opts.label} trial ${i + 1}/${opts.trials}: canary v${t.version}, first failing response -> 0% in ${round1(t.ms)} ms (${t.requests} requests, ${t.canaryErrors} canary 5xx)`,
      );
      out.push(t);
    }
    return out;
  } finally {
    await stopWorker?.();
    await connection?.close();
    await workerConnection?.close();
    await gateway?.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { trials: { type: 'string' }, 'baseline-trials': { type: 'string' } },
  });
  const trials = positiveInt('trials', values.trials, DEFAULT_TRIALS);
  const baselineTrials = positiveInt('baseline-trials', values['baseline-trials'], DEFAULT_BASELINE_TRIALS);
  // Worker state changes at INFO would drown the figures; warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger(WORKER_LOG_LEVEL) });
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-bench-rollback-'));
  console.log('== starting Temporal dev server and MLflow on loopback');
  const stack = await startStack({ stateDir });
  try {
    console.log(`   Temporal ${stack.temporal.address}   MLflow ${stack.mlflow.trackingUri}`);
    const mlflow = new MlflowClient({ trackingUri: stack.mlflow.trackingUri });
    const stable = (await registerModelFiles(mlflow, MODEL, fixture('good'))).version;
    console.log(
      `== push: ${trials} trials; gateway KPI window ${KPI.windowMs} ms, minRequests ${KPI.minRequests}, maxErrorRate ${KPI.maxErrorRate}, checkIntervalMs ${KPI.checkIntervalMs}, pushCooldownMs ${KPI.pushCooldownMs}; rollout steps ${JSON.stringify(PUSH_POLICY.steps)}, bakeTime ${PUSH_POLICY.bakeTime} (only the push can end the step); load ${LOAD_CLIENTS} clients, ${LOAD_PAUSE_MS} ms pause; route polled every ${POLL_MS} ms`,
    );
    const push = await runPhase(
      {
        label: 'push',
        push: true,
        trials,
        policy: PUSH_POLICY,
        trialTimeoutMs: PUSH_TRIAL_TIMEOUT_MS,
        reason: /KPI breach pushed by the gateway/,
      },
      stack,
      mlflow,
      stable,
      stateDir,
    );
    console.log(
      `== baseline (Flagger-style): ${baselineTrials} trials; no push (gateway without Temporal), one analysis per ${BASELINE_INTERVAL} interval (bakeTime ${BASELINE_INTERVAL}, steps ${JSON.stringify(BASELINE_POLICY.steps)}); expected delay: the ${BASELINE_INTERVAL_MS / 1000} s interval plus the analysis and rollback`,
    );
    const baseline = await runPhase(
      {
        label: 'baseline',
        push: false,
        trials: baselineTrials,
        policy: BASELINE_POLICY,
        trialTimeoutMs: BASELINE_TRIAL_TIMEOUT_MS,
        reason: /analysis failed/,
      },
      stack,
      mlflow,
      stable,
      stateDir,
    );
    const p = push.map((t) => t.ms).sort((a, b) => a - b);
    const b = baseline.map((t) => t.ms).sort((a, b) => a - b);
    const summary = {
      trials: p.length,
      p50_ms: round1(percentile(p, 50)),
      p99_ms: round1(percentile(p, 99)),
      min_ms: round1(p[0] as number),
      max_ms: round1(p[p.length - 1] as number),
      baseline_trials: b.length,
      baseline_p50_ms: round1(percentile(b, 50)),
      baseline_p99_ms: round1(percentile(b, 99)),
      baseline_interval_ms: BASELINE_INTERVAL_MS,
      ratio_p99: round1(percentile(b, 99) / percentile(p, 99)),
      target_p99_ms: TARGET_P99_MS,
      target_met: percentile(p, 99) <= TARGET_P99_MS,
      kpi: KPI,
      poll_ms: POLL_MS,
    };
    console.log(
      `== push p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms (target <= ${TARGET_P99_MS} ms: ${summary.target_met ? 'met' : 'NOT met'}); baseline p50 ${summary.baseline_p50_ms} ms, p99 ${summary.baseline_p99_ms} ms; baseline/push p99 ${summary.ratio_p99}x`,
    );
    console.log(JSON.stringify(summary));
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
