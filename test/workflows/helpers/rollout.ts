/**
 * Shared pieces of the rollout tests on the real dev server: a real inference gateway serving the
 * committed ONNX fixtures registered in the real MLflow, a bounded load generator, route reads
 * through the admin API, and polling with a deadline. The rollout key is both the admin API's key
 * and an API key with role `admin` (the staging route serves admin principals only).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startGatewayProcess, type GatewayProcess } from '../../../src/gateway/app';
import { parseGatewayConfig } from '../../../src/gateway/config';
import type { MlflowClient } from '../../../src/mlflow';
import { fraudFeatures, registerModelFiles } from '../../gateway/fixtures';
import { bearer, newKey, post } from '../../gateway/helpers';

const FIXTURES = path.resolve(__dirname, '..', '..', 'fixtures', 'models');

/** The committed fixture model `name` (good, weak, broken, ...) as registry files. */
export const fixtureFiles = (name: string) =>
  ['model.onnx', 'input_schema.json', 'feature_spec.json'].map((f) => ({
    path: `model/${f}`,
    content: readFileSync(path.join(FIXTURES, name, f)),
  }));

/** Most requests one load client sends, whatever the time bound. */
const LOAD_MAX_REQUESTS_PER_CLIENT = 20_000;
/** Concurrent load clients. */
const LOAD_CLIENTS = 4;
/** Pause between one client's requests. */
const LOAD_PAUSE_MS = 5;

export interface RolloutGateway {
  gw: GatewayProcess;
  predictKey: ReturnType<typeof newKey>;
  adminKey: ReturnType<typeof newKey>;
  /** Predictions from a few clients until stopped (bounded by count and `maxMs`). */
  load(maxMs?: number): () => Promise<void>;
  route(): Promise<{ stable: string; canary?: string; canaryWeight: number; staging?: string }>;
  setRoute(update: Record<string, unknown>): Promise<number>;
  register(fixture: string): Promise<string>;
}

export async function startRolloutGateway(opts: {
  mlflow: MlflowClient;
  model: string;
  stable: { version: string } | { alias: string };
}): Promise<RolloutGateway> {
  const { mlflow, model } = opts;
  const predictKey = newKey('load', ['predict']);
  const adminKey = newKey('rollout', ['admin']);
  const rows = fraudFeatures(64, 5);
  const gw = await startGatewayProcess(
    parseGatewayConfig({
      port: 0,
      workers: 1,
      mlflowTrackingUri: mlflow.trackingUri,
      models: [{ name: model, stable: opts.stable }],
      apiKeys: [predictKey.entry, adminKey.entry],
      adminKeys: [adminKey.entry],
      accessLog: 'off',
      rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
    }),
  );
  const admin = `${gw.url}/admin/v1/models/${model}/route`;
  return {
    gw,
    predictKey,
    adminKey,
    load(maxMs = 120_000) {
      let stop = false;
      const started = Date.now();
      const client = async (i: number) => {
        for (let n = 0; !stop && n < LOAD_MAX_REQUESTS_PER_CLIENT && Date.now() - started < maxMs; n++) {
          await post(
            `${gw.url}/v1/models/${model}/predict`,
            { features: rows[(n + i) % rows.length] },
            bearer(predictKey.key),
          ).catch(() => undefined);
          await new Promise((r) => setTimeout(r, LOAD_PAUSE_MS));
        }
      };
      const all = Promise.all(Array.from({ length: LOAD_CLIENTS }, (_, i) => client(i)));
      return async () => {
        stop = true;
        await all;
      };
    },
    async route() {
      const r = await fetch(admin, { headers: bearer(adminKey.key) });
      return (await r.json()) as { stable: string; canary?: string; canaryWeight: number; staging?: string };
    },
    async setRoute(update) {
      const r = await fetch(admin, {
        method: 'PUT',
        headers: { ...bearer(adminKey.key), 'content-type': 'application/json' },
        body: JSON.stringify(update),
      });
      await r.arrayBuffer();
      return r.status;
    },
    async register(fixture) {
      return (await registerModelFiles(mlflow, model, fixtureFiles(fixture))).version;
    },
  };
}

/** Polls `probe` every 200 ms until it gives a value; throws after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}
