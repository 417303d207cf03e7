/**
 * The Prometheus KPI source against a real Prometheus (Debian's package, or the Go build:
 * src/stack/prometheus.ts) scraping a real gateway every second: its snapshot equals the gateway's
 * own /metrics once a scrape has passed, and canaryRollout on a worker whose KPI source is that
 * Prometheus rolls a failing release back on its error rate and promotes a healthy one.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanaryInput, CanaryPolicyInput, CanaryResult } from '../../src/core/contracts/canary';
import { canaryWorkflowId } from '../../src/core/contracts/gateway';
import { windowKpis } from '../../src/core/contracts/kpi';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import { PrometheusKpiSource } from '../../src/kpi/prometheus';
import { startPrometheus, type RunningPrometheus } from '../../src/stack/prometheus';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import {
  createLocalEnv,
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  type RunningWorker,
} from '../helpers/env';
import { registerModelFiles } from '../gateway/fixtures';
import { fixtureFiles, startRolloutGateway, until, type RolloutGateway } from './helpers/rollout';

/** Steps long enough for a few one-second scrapes inside each bake. */
const FAST: CanaryPolicyInput = {
  steps: [50, 100],
  bakeTime: '5s',
  minRequests: 20,
  consecutiveErrorLimit: 2,
};

let env: TestWorkflowEnvironment;
let rg: RolloutGateway;
let prom: RunningPrometheus;
let worker: RunningWorker | undefined;
let taskQueue: string;
const model = uniqueModel('prom');
const mlflow = mlflowClient();
let stable: string;

beforeAll(async () => {
  env = await createLocalEnv();
  stable = (await registerModelFiles(mlflow, model, fixtureFiles('good'))).version;
  rg = await startRolloutGateway({ mlflow, model, stable: { version: stable } });
  prom = await startPrometheus({
    stateDir: tempDir('prometheus'),
    targets: [new URL(rg.gw.url).host],
  });
  const config = testWorkerConfig(tempDir('prom-worker'));
  taskQueue = config.taskQueue;
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: {
      router: new GatewayTrafficRouter(rg.gw.url, () => rg.adminKey.key),
      kpi: new PrometheusKpiSource(prom.url),
    },
  });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await prom?.stop();
  await rg?.gw.close();
  await env?.teardown();
});

async function rollout(version: string, policy: CanaryPolicyInput): Promise<CanaryResult> {
  const input: CanaryInput = { model, version, policy };
  return (await env.client.workflow.execute('canaryRollout', {
    taskQueue,
    workflowId: canaryWorkflowId(model, version),
    args: [input],
  })) as CanaryResult;
}

describe('Prometheus KPI source', () => {
  it('reads the same counters from Prometheus as the gateway serves, once a scrape has passed', async () => {
    const stop = rg.load();
    await new Promise((r) => setTimeout(r, 2_000));
    await stop();
    const direct = await new GatewayMetricsKpiSource(`${rg.gw.url}/metrics`).snapshot(model);
    const fromProm = new PrometheusKpiSource(prom.url);
    const seen = await until(async () => {
      const s = await fromProm.snapshot(model);
      return s.versions[stable]?.requests === direct.versions[stable]?.requests ? s : undefined;
    }, 20_000);
    expect(direct.versions[stable]?.requests).toBeGreaterThan(50);
    expect(seen.versions[stable]).toEqual(direct.versions[stable]);
    // The window arithmetic gives the same KPIs from either source.
    const zero = { ...seen, versions: {} };
    expect(windowKpis(zero, seen, stable)).toEqual(windowKpis(zero, direct, stable));
  });

  it('rolls a failing canary back on the error rate Prometheus scraped', async () => {
    const v = await rg.register('broken');
    const stop = rg.load();
    const result = await rollout(v, FAST);
    await stop();
    expect(result.outcome).toBe('rolled-back');
    const first = result.status.analyses[0];
    expect(first?.phase, JSON.stringify(first)).toBe('failed');
    expect(first?.checks.find((c) => c.name === 'canary.error-rate.absolute')?.phase).toBe('failed');
    expect(await rg.route()).toMatchObject({ stable, canaryWeight: 0 });
  });

  it('promotes a healthy canary judged on Prometheus KPIs (error rate, p99, OOD, scores)', async () => {
    const v = await rg.register('good');
    const stop = rg.load();
    const result = await rollout(v, FAST);
    await stop();
    expect(
      result.outcome,
      JSON.stringify(result.status.analyses.map((a) => a.checks.filter((c) => !c.passed))),
    ).toBe('promoted');
    const names = result.status.analyses[0]?.checks.map((c) => c.name) ?? [];
    expect(names).toEqual(expect.arrayContaining(['canary.error-rate.absolute']));
    expect(names.some((n) => n.includes('p99'))).toBe(true);
    expect(names.some((n) => n.includes('ood'))).toBe(true);
    expect(names.some((n) => n.includes('psi') || n.includes('prediction'))).toBe(true);
    expect(await rg.route()).toMatchObject({ stable: v, canaryWeight: 0 });
  });
});
