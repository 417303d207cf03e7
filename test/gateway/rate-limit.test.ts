/**
 * Rate limits under concurrent load over real HTTP: a principal is never admitted more than
 * `burst + rate * elapsed` requests, for one in-memory replica, for a two-worker cluster whose
 * primary holds the buckets, and for two replicas sharing one real Redis. Refusals are 429 with
 * Retry-After. The cluster test also checks that an admin route change reaches every worker.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGatewayProcess, type GatewayProcess } from '../../src/gateway/app';
import { parseGatewayConfig } from '../../src/gateway/config';
import { startGateway, type RunningGateway } from '../../src/gateway';
import { RedisRateLimiter } from '../../src/gateway/rate-limit';
import { MlflowClient } from '../../src/mlflow';
import { freePort } from '../../src/stack/process';
import { fraudFeatures, registerModelFiles, trainedModelFiles } from './fixtures';
import { bearer, get, newKey, post, put } from './helpers';

const RATE = 20;
const BURST = 30;
/** Requests fired per test: ten times the burst, so the limit is what stops them. */
const FIRED = 300;
/** Concurrent requests in flight. */
const CONCURRENCY = 50;

const alice = newKey('alice', ['predict']);
const root = newKey('root', ['admin']);

async function flood(urls: string[], body: unknown, headers: Record<string, string>) {
  const statuses: number[] = [];
  const retryAfter: Array<string | null> = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < FIRED) {
      const i = next++;
      const r = await post(urls[i % urls.length] as string, body, headers);
      statuses.push(r.status);
      if (r.status === 429) retryAfter.push(r.headers.get('retry-after'));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  const admitted = statuses.filter((s) => s === 200).length;
  return { statuses, admitted, elapsedS, retryAfter, bound: Math.floor(BURST + RATE * elapsedS) };
}

/** One request on a connection of its own (no keep-alive), so the cluster hands it to the next worker. */
function postFreshConnection(url: string, body: unknown): Promise<{ version?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...bearer(alice.key) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(JSON.parse(text) as { version?: string }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('gateway rate limits under concurrency', () => {
  let model: string;
  let v1: string;
  let v2: string;
  const features = fraudFeatures(20, 5)[0];
  const base = () => ({
    port: 0,
    mlflowTrackingUri: inject('mlflowTrackingUri'),
    apiKeys: [alice.entry],
    adminKeys: [root.entry],
    accessLog: 'off',
  });

  beforeAll(async () => {
    const mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    model = `gw-rl-${Math.random().toString(36).slice(2, 8)}`;
    v1 = (await registerModelFiles(mlflow, model, await trainedModelFiles(mlflow, inject('pythonBin'), 31)))
      .version;
    v2 = (await registerModelFiles(mlflow, model, await trainedModelFiles(mlflow, inject('pythonBin'), 32)))
      .version;
    await mlflow.setAlias(model, 'champion', v1);
  });

  describe('one replica, in memory', () => {
    let gw: GatewayProcess;
    beforeAll(async () => {
      gw = await startGatewayProcess(
        parseGatewayConfig({
          ...base(),
          workers: 1,
          models: [{ name: model }],
          rateLimit: { ratePerSecond: RATE, burst: BURST },
        }),
      );
    });
    afterAll(async () => gw?.close());

    it('admits at most burst + rate x elapsed and answers 429 with Retry-After', async () => {
      const r = await flood([`${gw.url}/v1/models/${model}/predict`], { features }, bearer(alice.key));
      expect(r.admitted).toBeGreaterThanOrEqual(BURST);
      expect(r.admitted).toBeLessThanOrEqual(r.bound);
      expect(r.statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
      expect(r.retryAfter.length).toBe(FIRED - r.admitted);
      for (const v of r.retryAfter) expect(Number(v)).toBeGreaterThanOrEqual(1);
    });
  });

  describe('two replicas sharing Redis', () => {
    let a: GatewayProcess;
    let b: GatewayProcess;
    const prefix = `test:${Math.random().toString(36).slice(2, 8)}:`;
    beforeAll(async () => {
      const cfg = parseGatewayConfig({
        ...base(),
        workers: 1,
        models: [{ name: model }],
        rateLimit: {
          backend: 'redis',
          redisUrl: inject('redisUrl'),
          ratePerSecond: RATE,
          burst: BURST,
          prefix,
        },
      });
      a = await startGatewayProcess(cfg);
      b = await startGatewayProcess(cfg);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    it('admits at most burst + rate x elapsed across both replicas together', async () => {
      const r = await flood(
        [`${a.url}/v1/models/${model}/predict`, `${b.url}/v1/models/${model}/predict`],
        { features },
        bearer(alice.key),
      );
      expect(r.admitted).toBeGreaterThanOrEqual(BURST);
      expect(r.admitted).toBeLessThanOrEqual(r.bound);
      expect(r.statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    });

    it('shares route changes: an update applied on one replica reaches the other', async () => {
      await new Promise((r) => setTimeout(r, 1600)); // let the shared bucket refill a little
      const changed = await put(`${a.url}/admin/v1/models/${model}/route`, { stable: v2 }, bearer(root.key));
      expect(changed.status, JSON.stringify(changed.json)).toBe(200);
      const deadline = Date.now() + 10_000;
      let seen: unknown;
      while (seen !== v2 && Date.now() < deadline) {
        seen = (await get(`${b.url}/admin/v1/models/${model}/route`, bearer(root.key))).json.stable;
        if (seen !== v2) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toBe(v2);
      const r = await post(`${b.url}/v1/models/${model}/predict`, { features }, bearer(alice.key));
      expect(r.json.version).toBe(v2);
      // A replica started later comes up at the shared state.
      const c = await startGatewayProcess(
        parseGatewayConfig({
          ...base(),
          workers: 1,
          models: [{ name: model }],
          rateLimit: {
            backend: 'redis',
            redisUrl: inject('redisUrl'),
            ratePerSecond: RATE,
            burst: BURST,
            prefix,
          },
        }),
      );
      try {
        expect((await get(`${c.url}/admin/v1/models/${model}/route`, bearer(root.key))).json.stable).toBe(v2);
      } finally {
        await c.close();
      }
      const invalid = await put(
        `${a.url}/admin/v1/models/${model}/route`,
        { shadow: true },
        bearer(root.key),
      );
      expect(invalid.status).toBe(400);
    });

    it('takes tokens atomically in Redis under a thousand concurrent takes', async () => {
      const limiter = new RedisRateLimiter(inject('redisUrl'), 1, 100, `${prefix}atomic:`);
      const started = performance.now();
      const decisions = await Promise.all(Array.from({ length: 1000 }, () => limiter.take('k')));
      const elapsedS = (performance.now() - started) / 1000;
      await limiter.close();
      const admitted = decisions.filter((d) => d.allowed).length;
      expect(admitted).toBeGreaterThanOrEqual(100);
      expect(admitted).toBeLessThanOrEqual(Math.floor(100 + elapsedS));
      expect(decisions.find((d) => !d.allowed)?.retryAfterS).toBeGreaterThan(0);
    });
  });

  it('fails closed with 503 when Redis is unreachable, and keeps running', async () => {
    const port = await freePort();
    const gw = await startGatewayProcess(
      parseGatewayConfig({
        ...base(),
        workers: 1,
        models: [{ name: model }],
        rateLimit: {
          backend: 'redis',
          redisUrl: `redis://127.0.0.1:${port}`,
          ratePerSecond: RATE,
          burst: BURST,
        },
      }),
    );
    try {
      const r = await post(`${gw.url}/v1/models/${model}/predict`, { features }, bearer(alice.key));
      expect(r.status).toBe(503);
      expect(r.json.error?.message).toMatch(/rate limiter unavailable/);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  describe('a two-worker cluster, buckets held by the primary', () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGateway({
        ...base(),
        workers: 2,
        models: [{ name: model }],
        rateLimit: { ratePerSecond: RATE, burst: BURST },
      });
    });
    afterAll(async () => gw?.close());

    it('admits at most burst + rate x elapsed over both workers', async () => {
      expect(gw.workers).toBe(2);
      const r = await flood([`${gw.url}/v1/models/${model}/predict`], { features }, bearer(alice.key));
      expect(r.admitted).toBeGreaterThanOrEqual(BURST);
      expect(r.admitted).toBeLessThanOrEqual(r.bound);
    });

    it('applies an admin route change on every worker', async () => {
      const changed = await put(`${gw.url}/admin/v1/models/${model}/route`, { stable: v2 }, bearer(root.key));
      expect(changed.status, JSON.stringify(changed.json)).toBe(200);
      expect(changed.json.stable).toBe(v2);
      await new Promise((r) => setTimeout(r, 1600)); // let the bucket refill a little
      // Fresh connections are spread over the workers round-robin: every one answers from v2.
      const versions = new Set<unknown>();
      for (let i = 0; i < 10; i++)
        versions.add(
          (await postFreshConnection(`${gw.url}/v1/models/${model}/predict`, { features })).version,
        );
      expect(versions).toEqual(new Set([v2]));
    });

    it('validates route updates on the primary, naming the field', async () => {
      const r = await put(
        `${gw.url}/admin/v1/models/${model}/route`,
        { canaryWeight: 0.5 },
        bearer(root.key),
      );
      expect(r.status).toBe(400);
      expect(r.json.error?.message).toMatch(/canaryWeight: must be 0 without a canary/);
    });
  });
});
