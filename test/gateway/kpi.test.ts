/**
 * Live KPI breach detection: the sliding window and judge (pure), then the push over real HTTP and a
 * real Temporal dev server: OOD traffic above the limit signals `kpiBreach` to the version's
 * `canary-<model>-v<version>` workflow (a test-only workflow that records signals stands in for the
 * canary rollout), once per cooldown; a version with no such workflow is counted as `no-workflow` and
 * the gateway keeps serving. Blocked OOD requests are refused with 422 and still count.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { canaryWorkflowId, KpiLimitsSchema } from '../../src/core/contracts/gateway';
import { startGatewayProcess, type GatewayProcess } from '../../src/gateway/app';
import { parseGatewayConfig } from '../../src/gateway/config';
import { judgeKpis, KpiWindow } from '../../src/gateway/kpi';
import { MlflowClient } from '../../src/mlflow';
import { fraudFeatures, registerModelFiles, trainedModelFiles } from './fixtures';
import { bearer, get, metricValue, newKey, post, put } from './helpers';
import { breachesQuery } from './workflows/breach-recorder';

describe('KPI window and judge', () => {
  it('computes error rate, OOD rate and p99 over the window and drops old buckets', () => {
    let now = 1_000_000;
    const w = new KpiWindow(10_000, () => now);
    for (let i = 0; i < 98; i++) w.record('m', '1', 2, false, false);
    w.record('m', '1', 400, true, true);
    w.record('m', '1', 400, false, true);
    const [s] = w.snapshots();
    expect(s).toMatchObject({ model: 'm', version: '1', requests: 100, errorRate: 0.01, oodRate: 0.02 });
    expect(s?.p99Ms).toBeGreaterThanOrEqual(400);
    expect(s?.p99Ms).toBeLessThan(400 * 1.25 + 1);
    const limits = KpiLimitsSchema.parse({
      minRequests: 50,
      maxErrorRate: 0.005,
      maxOodRate: 0.5,
      maxP99Ms: 1000,
    });
    expect(judgeKpis(s!, limits).map((b) => b.metric)).toEqual(['error_rate']);
    expect(judgeKpis({ ...s!, requests: 10 }, limits)).toEqual([]);
    now += 11_000;
    expect(w.snapshots()).toEqual([]);
  });

  it('merges deltas shipped by workers', () => {
    const worker = new KpiWindow(60_000);
    for (let i = 0; i < 10; i++) worker.record('m', '2', 1, i < 3, false);
    const primary = new KpiWindow(60_000);
    for (const d of worker.drain()) primary.ingest(d);
    for (const d of worker.drain()) primary.ingest(d);
    expect(primary.snapshots()[0]).toMatchObject({ requests: 10, errorRate: 0.3 });
  });
});

describe('KPI breach push to the canary workflow (real Temporal)', () => {
  const alice = newKey('alice', ['predict']);
  const root = newKey('root', ['admin']);
  const taskQueue = `gateway-kpi-${Math.random().toString(36).slice(2, 8)}`;
  let model: string;
  let v1: string;
  let v2: string;
  let gw: GatewayProcess;
  let worker: Worker;
  let running: Promise<void>;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  const features = fraudFeatures(20, 9);
  const ood = { ...(features[0] as Record<string, number | string | null>), amount: 9e6 };

  beforeAll(async () => {
    const mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    model = `gw-kpi-${Math.random().toString(36).slice(2, 8)}`;
    v1 = (await registerModelFiles(mlflow, model, await trainedModelFiles(mlflow, inject('pythonBin'), 31)))
      .version;
    v2 = (await registerModelFiles(mlflow, model, await trainedModelFiles(mlflow, inject('pythonBin'), 32)))
      .version;
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await Worker.create({
      connection: nativeConnection,
      taskQueue,
      workflowsPath: path.resolve(__dirname, 'workflows', 'breach-recorder.ts'),
    });
    running = worker.run();
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    gw = await startGatewayProcess(
      parseGatewayConfig({
        port: 0,
        workers: 1,
        mlflowTrackingUri: inject('mlflowTrackingUri'),
        models: [{ name: model, stable: { version: v1 }, ood: 'block' }],
        apiKeys: [alice.entry],
        adminKeys: [root.entry],
        accessLog: 'off',
        rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
        kpi: {
          windowMs: 10_000,
          minRequests: 10,
          maxOodRate: 0.2,
          checkIntervalMs: 200,
          pushCooldownMs: 60_000,
        },
        temporal: { address: inject('temporalAddress') },
      }),
    );
  });

  afterAll(async () => {
    await gw?.close();
    if (worker) {
      worker.shutdown();
      await running;
    }
    await nativeConnection?.close();
    await connection?.close();
  });

  it('signals kpiBreach once per cooldown to canary-<model>-v<version>; tolerates a missing workflow', async () => {
    const handle = await client.workflow.start('breachRecorder', {
      taskQueue,
      workflowId: canaryWorkflowId(model, v1),
    });
    const url = `${gw.url}/v1/models/${model}/predict`;
    for (let i = 0; i < 15; i++) {
      const r = await post(url, { features: ood }, bearer(alice.key));
      expect(r.status).toBe(422);
      expect(r.json.error?.message).toMatch(/amount: 9000000 outside the training range/);
    }
    for (const f of features.slice(0, 5))
      expect((await post(url, { features: f }, bearer(alice.key))).status).toBe(200);

    const deadline = Date.now() + 20_000;
    let breaches = await handle.query(breachesQuery);
    while (breaches.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      breaches = await handle.query(breachesQuery);
    }
    expect(breaches).toHaveLength(1);
    expect(breaches[0]).toMatchObject({
      metric: 'ood_rate',
      threshold: 0.2,
      window: '10s',
      model,
      version: v1,
    });
    // Judged as soon as minRequests were in the window: between 15/20 and all OOD.
    expect(breaches[0]?.value).toBeGreaterThanOrEqual(0.75);
    expect(breaches[0]?.requests).toBeGreaterThanOrEqual(10);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await handle.query(breachesQuery)).toHaveLength(1); // cooldown: no second push

    // v2 has no canary workflow: the push finds none, the gateway keeps serving.
    expect(
      (await put(`${gw.url}/admin/v1/models/${model}/route`, { stable: v2 }, bearer(root.key))).status,
    ).toBe(200);
    for (let i = 0; i < 12; i++) await post(url, { features: ood }, bearer(alice.key));
    const until = Date.now() + 20_000;
    let noWorkflow = 0;
    while (noWorkflow === 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      const m = (await get(`${gw.url}/metrics`)).text;
      noWorkflow =
        metricValue(m, 'gateway_kpi_breach_pushes_total', { model, version: v2, result: 'no-workflow' }) ?? 0;
    }
    expect(noWorkflow).toBe(1);
    const m = (await get(`${gw.url}/metrics`)).text;
    expect(metricValue(m, 'gateway_kpi_breach_pushes_total', { model, version: v1, result: 'sent' })).toBe(1);
    expect((await post(url, { features: features[1] }, bearer(alice.key))).status).toBe(200);
    await handle.terminate('test done');
  });
});
