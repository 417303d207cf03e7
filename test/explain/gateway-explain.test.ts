/**
 * `POST /v1/models/<model>/explain` on the gateway's real HTTP server (src/gateway/server.ts) with the real
 * authenticator, memory rate limiter, route table, access log and inference log, serving the committed fixture
 * model (test/fixtures/models/good). The model is opened from its files here rather than fetched from MLflow:
 * the registry's verification is not what these tests are about (test:gateway covers it).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { parseInputSchema } from '../../src/eval/score';
import { EXPLAIN_LATENCY_BUDGET_MS } from '../../src/explain/gateway';
import { Authenticator, hashApiKey } from '../../src/gateway/auth';
import { parseGatewayConfig } from '../../src/gateway/config';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import { KpiWindow } from '../../src/gateway/kpi';
import { GatewayMetrics } from '../../src/gateway/metrics';
import { profileFromSpec, type LoadedModel } from '../../src/gateway/models';
import { MemoryRateLimiter } from '../../src/gateway/rate-limit';
import { RouteTable } from '../../src/gateway/router';
import { createGatewayServer } from '../../src/gateway/server';

const FIXTURE = path.join(__dirname, '../fixtures/models/good');
const EXPLAIN_KEY = `k-${randomBytes(8).toString('hex')}`;
const PREDICT_KEY = `k-${randomBytes(8).toString('hex')}`;
const FEATURES = {
  amount: 912.5,
  merchant_category: 'electronics',
  hour_of_day: 3,
  customer_age_days: 12,
  txn_count_24h: 6,
  distance_from_home_km: 640,
  card_present: 0,
  device_risk_score: 0.91,
  region: 'south',
};

let dir: string;
let url: string;
let close: () => Promise<void>;
let inferenceLog: JsonlInferenceLog;
let accessLogPath: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'explain-gw-'));
  const config = parseGatewayConfig({
    mlflowTrackingUri: 'http://127.0.0.1:9',
    models: [{ name: 'fraud' }],
    apiKeys: [
      { principal: 'reviewer@example.com', sha256: hashApiKey(EXPLAIN_KEY), roles: ['explain'] },
      { principal: 'scorer', sha256: hashApiKey(PREDICT_KEY), roles: ['predict'] },
    ],
    host: '127.0.0.1',
    port: 0,
  });
  const onnx = readFileSync(path.join(FIXTURE, 'model.onnx'));
  const loader = async (): Promise<LoadedModel> => ({
    name: 'fraud',
    version: '1',
    manifestSha256: 'fixture',
    session: await ort.InferenceSession.create(onnx),
    onnx,
    schema: parseInputSchema(readFileSync(path.join(FIXTURE, 'input_schema.json'))),
    spec: FRAUD_FEATURE_SPEC,
    profile: profileFromSpec(FRAUD_FEATURE_SPEC),
  });
  const table = new RouteTable(loader);
  await table.init(config.models);
  accessLogPath = path.join(dir, 'access.log');
  inferenceLog = new JsonlInferenceLog(path.join(dir, 'inference'));
  const metrics = new GatewayMetrics();
  const gw = createGatewayServer({
    config,
    table,
    auth: new Authenticator(config.apiKeys, config.jwt),
    adminAuth: new Authenticator(config.adminKeys),
    limiter: new MemoryRateLimiter(1000, 1000),
    metrics,
    kpi: new KpiWindow(config.kpi.windowMs),
    accessLog: pino({ base: null }, pino.destination({ dest: accessLogPath, sync: true })),
    inferenceLog,
    metricsText: () => metrics.registry.metrics(),
    routes: { get: (m) => table.getRoute(m), update: (m, u) => table.updateRoute(m, u) },
  });
  await new Promise<void>((r) => gw.server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(gw.server.address() as AddressInfo).port}`;
  close = async () => {
    gw.server.closeAllConnections();
    await new Promise<void>((r) => gw.server.close(() => r()));
    await inferenceLog.close();
  };
});

afterAll(async () => {
  await close?.();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(pathName: string, body: unknown, key: string) {
  const res = await fetch(`${url}${pathName}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

describe('POST /v1/models/<model>/explain', () => {
  it('answers the prediction and its top attributions within the latency budget, the same score as predict', async () => {
    // predict needs the predict role; the explain role alone cannot predict
    const explained = await call('/v1/models/fraud/explain', { features: FEATURES, top: 3 }, EXPLAIN_KEY);
    expect(explained.status, JSON.stringify(explained.json)).toBe(200);
    const attributions = explained.json.attributions as Array<{ feature: string; attribution: number }>;
    expect(attributions).toHaveLength(3);
    const mags = attributions.map((a) => Math.abs(a.attribution));
    expect([...mags].sort((a, b) => b - a)).toEqual(mags);
    expect(explained.json.version).toBe('1');
    expect(explained.json.method).toMatch(/kernel-shap \(tree value function, 510 coalitions/);

    const all = await call('/v1/models/fraud/explain', { features: FEATURES, top: 9 }, EXPLAIN_KEY);
    const ms = Number(/explain;dur=([0-9.]+)/.exec(all.headers.get('server-timing') ?? '')?.[1]);
    expect(ms).toBeLessThan(EXPLAIN_LATENCY_BUDGET_MS);
    console.log(`[explain] gateway explanation (warm): ${ms} ms`);
    const sum = (all.json.attributions as Array<{ attribution: number }>).reduce(
      (a, b) => a + b.attribution,
      0,
    );
    expect(Math.abs(sum - ((all.json.score as number) - (all.json.expectedValue as number)))).toBeLessThan(
      1e-9,
    );
    const predictKeyScore = await call('/v1/models/fraud/predict', { features: FEATURES }, PREDICT_KEY);
    expect(predictKeyScore.status).toBe(200);
    expect(Math.abs((predictKeyScore.json.score as number) - (all.json.score as number))).toBeLessThan(1e-7);
  });

  it.each([
    {
      name: 'a principal without the explain role',
      key: PREDICT_KEY,
      body: { features: FEATURES },
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'no credential',
      key: 'wrong',
      body: { features: FEATURES },
      status: 401,
      code: 'unauthenticated',
    },
    {
      name: 'a bad feature, named',
      key: EXPLAIN_KEY,
      body: { features: { ...FEATURES, hour_of_day: 'noon' } },
      status: 400,
      code: 'invalid_input',
      message: /hour_of_day/,
    },
    {
      name: 'a bad top',
      key: EXPLAIN_KEY,
      body: { features: FEATURES, top: 0 },
      status: 400,
      code: 'invalid_input',
      message: /top/,
    },
  ])('refuses $name', async ({ key, body, status, code, message }) => {
    const r = await call('/v1/models/fraud/explain', body, key);
    expect(r.status).toBe(status);
    expect((r.json.error as { code: string }).code).toBe(code);
    if (message) expect((r.json.error as { message: string }).message).toMatch(message);
  });

  it('an unknown model is a 404', async () => {
    const r = await call('/v1/models/nope/explain', { features: FEATURES }, EXPLAIN_KEY);
    expect(r.status).toBe(404);
  });

  it('is logged like a prediction: inference log record and an access-log line with the redacted principal', async () => {
    const r = await call('/v1/models/fraud/explain', { features: FEATURES }, EXPLAIN_KEY);
    const requestId = r.json.requestId as string;
    await inferenceLog.flush();
    const records = [];
    for await (const rec of inferenceLog.read(
      'fraud',
      new Date(Date.now() - 3_600_000),
      new Date(Date.now() + 3_600_000),
    ))
      records.push(rec);
    const mine = records.find((x) => x.requestId === requestId);
    expect(mine?.prediction).toBe(r.json.score);
    expect(mine?.features.region).toBe('south');
    const lines = readFileSync(accessLogPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.reqId === requestId);
    expect(line?.decision).toBe('explained');
    expect(line?.principal).not.toContain('reviewer@example.com');
    expect(line?.top).toHaveLength(5);
  });
});
