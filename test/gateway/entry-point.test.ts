/**
 * The entry point as an operator runs it (`npm run gateway`, i.e. workers/gateway.ts): configured by
 * environment, two serving workers, metrics summed over both, graceful shutdown on SIGTERM with
 * in-flight requests finishing, and a bad setting refused at start with the variable named. And as
 * the image runs it: `node dist/workers/gateway.js` after `npm run build`, no TypeScript loader.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MlflowClient } from '../../src/mlflow';
import { freePort } from '../../src/stack/process';
import { fraudFeatures, registerModelFiles, trainedModelFiles } from './fixtures';
import { bearer, get, metricValue, newKey } from './helpers';

const ROOT = path.resolve(__dirname, '../..');
const ENTRY = path.join(ROOT, 'workers/gateway.ts');
/** What `npm run build` emits and the image runs (deploy/k8s/gateway/Dockerfile). */
const BUILT_ENTRY = path.join(ROOT, 'dist/workers/gateway.js');
const alice = newKey('alice', ['predict']);
const root = newKey('root', ['admin']);

function start(
  env: Record<string, string>,
  args: string[] = ['--import', 'tsx', ENTRY],
): {
  child: ChildProcess;
  output: () => string;
  listening: Promise<string>;
} {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /gateway listening on (\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1] as string);
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`gateway exited with ${code}: ${out}`));
    });
  });
  return { child, output: () => out, listening };
}

const exited = (child: ChildProcess): Promise<number | null> =>
  new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

/** One request on a connection of its own, so the cluster spreads them over its workers. */
function predictFresh(url: string, features: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...bearer(alice.key) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ features }));
  });
}

describe('gateway entry point (npm run gateway)', () => {
  let dir: string;
  let model: string;
  let env: Record<string, string>;
  const features = fraudFeatures(20, 3);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-gw-entry-'));
    const mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    model = `gw-entry-${Math.random().toString(36).slice(2, 8)}`;
    const { version } = await registerModelFiles(
      mlflow,
      model,
      await trainedModelFiles(mlflow, inject('pythonBin'), 31),
    );
    await mlflow.setAlias(model, 'champion', version);
    writeFileSync(path.join(dir, 'keys.json'), JSON.stringify([alice.entry]));
    writeFileSync(path.join(dir, 'admin.json'), JSON.stringify([root.entry]));
    env = {
      MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
      MLOPS_GATEWAY_MODELS: `${model}@champion`,
      MLOPS_GATEWAY_PORT: String(await freePort()),
      MLOPS_GATEWAY_WORKERS: '2',
      MLOPS_GATEWAY_API_KEYS_FILE: path.join(dir, 'keys.json'),
      MLOPS_GATEWAY_ADMIN_KEYS_FILE: path.join(dir, 'admin.json'),
      MLOPS_GATEWAY_ACCESS_LOG: path.join(dir, 'access.log'),
      MLOPS_GATEWAY_RATE: '1000',
      MLOPS_GATEWAY_BURST: '1000',
    };
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves from two workers, sums their metrics, and drains on SIGTERM', async () => {
    const gw = start(env);
    const url = await gw.listening;
    expect(gw.output()).toMatch(/\(2 workers\)/);
    expect(url).toBe(`http://127.0.0.1:${env.MLOPS_GATEWAY_PORT}`);
    const predict = `${url}/v1/models/${model}/predict`;
    const statuses = await Promise.all(features.map((f) => predictFresh(predict, f)));
    expect(statuses).toEqual(features.map(() => 200));
    const metrics = (await get(`${url}/metrics`)).text;
    expect(metricValue(metrics, 'gateway_requests_total', { model, status: '200' })).toBe(features.length);
    const admin = await get(`${url}/admin/v1/models/${model}/route`, bearer(root.key));
    expect(admin.json).toMatchObject({ model, stable: expect.any(String) });

    const inflight = features.map((f) => predictFresh(predict, f));
    await new Promise((r) => setTimeout(r, 10));
    gw.child.kill('SIGTERM');
    const settled = await Promise.allSettled(inflight);
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value).toBe(200);
    expect(await exited(gw.child)).toBe(0);
    expect(gw.output()).toMatch(/SIGTERM, draining/);
  });

  it('runs from the built dist/ as the image does: two workers serve, SIGTERM drains', async () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
    const gw = start({ ...env, MLOPS_GATEWAY_PORT: String(await freePort()) }, [BUILT_ENTRY]);
    const url = await gw.listening;
    expect(gw.output()).toMatch(/\(2 workers\)/);
    const predict = `${url}/v1/models/${model}/predict`;
    const statuses = await Promise.all(features.map((f) => predictFresh(predict, f)));
    expect(statuses).toEqual(features.map(() => 200));
    const metrics = (await get(`${url}/metrics`)).text;
    expect(metricValue(metrics, 'gateway_requests_total', { model, status: '200' })).toBe(features.length);
    gw.child.kill('SIGTERM');
    expect(await exited(gw.child)).toBe(0);
  });

  it('refuses a bad setting at start, naming it', async () => {
    const bad = start({ ...env, MLOPS_GATEWAY_PORT: 'eighty' });
    await expect(bad.listening).rejects.toThrow(/MLOPS_GATEWAY_PORT: "eighty" is not a number/);
    expect(await exited(bad.child)).toBe(1);
    const { MLFLOW_TRACKING_URI: _unset, ...noMlflow } = env;
    const missing = start(noMlflow);
    await expect(missing.listening).rejects.toThrow(/mlflowTrackingUri/);
    const unknownModel = start({ ...env, MLOPS_GATEWAY_MODELS: 'no-such-model', MLOPS_GATEWAY_WORKERS: '1' });
    await expect(unknownModel.listening).rejects.toThrow(/model no-such-model alias champion/);
  });
});
