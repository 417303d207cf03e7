/**
 * canaryRollout under failure on a real Temporal dev server and a real gateway serving real MLflow
 * versions: a kpiBreach pushed at each traffic step rolls back from that step; a gateway that
 * becomes unreachable mid-step gives `error` analyses up to the limit, then a rollback that lands
 * once the gateway answers again; a worker process killed mid-step is replaced by a new process
 * and the rollout resumes at the weight it had, without redoing a step.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  abortSignal,
  canaryStatusQuery,
  kpiBreachSignal,
  type CanaryInput,
  type CanaryPolicyInput,
  type CanaryResult,
} from '../../src/core/contracts/canary';
import { canaryWorkflowId } from '../../src/core/contracts/gateway';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import { registerModelFiles } from '../gateway/fixtures';
import {
  createLocalEnv,
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  type RunningWorker,
} from '../helpers/env';
import { fixtureFiles, startRolloutGateway, until, type RolloutGateway } from './helpers/rollout';

const ROOT = path.resolve(__dirname, '..', '..');
/** How long a worker process may take to bundle the workflows and poll. */
const WORKER_PROCESS_START_MS = 120_000;

let env: TestWorkflowEnvironment;
let rg: RolloutGateway;
let worker: RunningWorker | undefined;
let proxiedWorker: RunningWorker | undefined;
let proxy: Proxy;
let taskQueue: string;
const model = uniqueModel('canary-f');
const mlflow = mlflowClient();
let stable: string;
const children: ChildProcess[] = [];

/** A TCP proxy in front of the gateway that can be cut (every connection dropped) and restored. */
interface Proxy {
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

async function startProxy(target: number): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const stop = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      if (!server.listening) return r();
      server.close(() => r());
    });
  return {
    url: `http://127.0.0.1:${port}`,
    cut: stop,
    restore: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    close: stop,
  };
}

beforeAll(async () => {
  env = await createLocalEnv();
  stable = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
  rg = await startRolloutGateway({ mlflow, model, stable: { version: stable } });
  const config = testWorkerConfig(tempDir('canary-f'));
  taskQueue = config.taskQueue;
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: {
      router: new GatewayTrafficRouter(rg.gw.url, () => rg.adminKey.key),
      kpi: new GatewayMetricsKpiSource(`${rg.gw.url}/metrics`),
    },
  });
  proxy = await startProxy(Number(new URL(rg.gw.url).port));
  const proxied = testWorkerConfig(tempDir('canary-proxied'));
  proxiedWorker = await runWorker({
    connection: env.nativeConnection,
    config: { ...proxied, taskQueue: `${taskQueue}-proxied` },
    ports: {
      router: new GatewayTrafficRouter(proxy.url, () => rg.adminKey.key),
      kpi: new GatewayMetricsKpiSource(`${proxy.url}/metrics`),
    },
  });
}, 240_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await worker?.stop();
  await proxiedWorker?.stop();
  await proxy?.close();
  await rg?.gw.close();
  await env?.teardown();
});

async function start(version: string, policy: CanaryPolicyInput, queue = taskQueue) {
  const input: CanaryInput = { model, version, policy };
  return env.client.workflow.start('canaryRollout', {
    taskQueue: queue,
    workflowId: canaryWorkflowId(model, version),
    args: [input],
  });
}

/** A worker as its own OS process (`workers/main.ts`, the `npm run worker` entry point). */
async function workerProcess(queue: string, logName: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'workers', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      MLFLOW_TRACKING_URI: mlflow.trackingUri,
      MLOPS_STATE_DIR: tempDir(logName),
      MLOPS_TASK_QUEUE: queue,
      MLOPS_GATEWAY_URL: rg.gw.url,
      MLOPS_GATEWAY_ADMIN_KEY: rg.adminKey.key,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker process did not start: ${out.slice(-2000)}`)),
      WORKER_PROCESS_START_MS,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker polling task queue')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker process exited with ${code}: ${out.slice(-2000)}`));
    });
  });
  return child;
}

describe('canaryRollout failures', () => {
  it.each([25, 50, 100])(
    'a kpiBreach pushed at step %i (percent) rolls back from that step',
    async (step) => {
      const v = await rg.register('good');
      const stop = rg.load();
      const handle = await start(v, { steps: [25, 50, 100], bakeTime: '4s', minRequests: 20 });
      await until(async () => {
        const s = await handle.query(canaryStatusQuery);
        if (s.stage === 'rolled-back' || s.stage === 'promoted')
          throw new Error(`ended before ${step}%: ${JSON.stringify(s.decisions)}`);
        return s.step === step && s.weight === step ? true : undefined;
      }, 120_000);
      await handle.signal(kpiBreachSignal, {
        metric: 'error_rate',
        value: 0.3,
        threshold: 0.05,
        window: '2s',
      });
      const result = (await handle.result()) as CanaryResult;
      await stop();
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toMatch(/KPI breach pushed by the gateway: error_rate 0.3 > 0.05/);
      expect(result.status.step).toBe(step);
      expect(result.status.analyses.every((a) => a.step < step)).toBe(true);
      expect(await rg.route()).toMatchObject({ stable, canaryWeight: 0 });
      expect((await rg.route()).canary).toBeUndefined();
    },
  );

  it('a manual abort mid-bake rolls back at once with the operator reason', async () => {
    const v = await rg.register('good');
    const stop = rg.load();
    const handle = await start(v, { steps: [25, 100], bakeTime: '10m', minRequests: 20 });
    await until(async () => ((await handle.query(canaryStatusQuery)).weight === 25 ? true : undefined));
    const sent = Date.now();
    await handle.signal(abortSignal, { reason: 'on-call: checkout errors upstream' });
    const result = (await handle.result()) as CanaryResult;
    await stop();
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toBe('aborted: on-call: checkout errors upstream');
    expect(result.status.analyses).toHaveLength(0);
    expect(await rg.route()).toMatchObject({ stable, canaryWeight: 0 });
  });

  it('gateway unreachable mid-step: error analyses up to the limit, then a rollback that lands once it answers', async () => {
    const v = await rg.register('good');
    const handle = await start(
      v,
      { steps: [50, 100], bakeTime: '2s', minRequests: 20, consecutiveErrorLimit: 3 },
      `${taskQueue}-proxied`,
    );
    await until(async () => ((await handle.query(canaryStatusQuery)).weight === 50 ? true : undefined));
    await proxy.cut();
    const rollingBack = await until(async () => {
      const s = await handle.query(canaryStatusQuery);
      return s.stage === 'rolling-back' ? s : undefined;
    }, 120_000);
    expect(rollingBack.analyses.map((a) => a.phase)).toEqual(['error', 'error', 'error']);
    // The rollback retries while the gateway is away; the route still has the canary.
    expect((await rg.route()).canary).toBe(v);
    await proxy.restore();
    const result = (await handle.result()) as CanaryResult;
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/3 consecutive analyses could not measure/);
    expect(await rg.route()).toMatchObject({ stable, canaryWeight: 0 });
    expect((await rg.route()).canary).toBeUndefined();
  });

  it('a worker process killed mid-step is replaced and the rollout resumes at the weight it had', async () => {
    const v = await rg.register('good');
    const queue = `${taskQueue}-proc`;
    const first = await workerProcess(queue, 'worker-proc-1');
    const stop = rg.load(240_000);
    const handle = await start(v, { steps: [25, 50, 100], bakeTime: '8s', minRequests: 20 }, queue);
    await until(
      async () => ((await handle.query(canaryStatusQuery)).weight === 50 ? true : undefined),
      120_000,
    );
    first.kill('SIGKILL');
    await new Promise<void>((r) => (first.exitCode !== null ? r() : first.once('exit', () => r())));
    // While no worker runs, the router keeps the weight the rollout had set.
    expect(await rg.route()).toMatchObject({ canary: v, canaryWeight: 0.5 });
    await workerProcess(queue, 'worker-proc-2');
    const result = (await handle.result()) as CanaryResult;
    await stop();
    expect(result.outcome, JSON.stringify(result.status.decisions)).toBe('promoted');
    expect(result.status.analyses.map((a) => a.step)).toEqual([25, 50, 100]);
    // Each step's weight was set once: the new worker did not start over.
    let weightsSet = 0;
    const history = await handle.fetchHistory();
    for (const e of history.events ?? []) {
      if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'setCanaryWeight') weightsSet++;
    }
    expect(weightsSet).toBe(3);
    expect(await rg.route()).toMatchObject({ stable: v, canaryWeight: 0 });
    stable = v;
  });
});
