/**
 * The inference gateway: the secure front door models are served behind. Node-only.
 *
 * `startGateway(options)` starts one (`workers: 1`, the default here) or several serving processes, on a
 * free port of 127.0.0.1 unless `port`/`host` say otherwise, and resolves once every configured model is
 * loaded, verified and listening (set `accessLog` to a file path or `off` to keep stdout quiet):
 *
 *   const gw = await startGateway({ mlflowTrackingUri, models: [{ name: 'fraud' }],
 *                                   apiKeys: [{ principal: 'demo', sha256: hashApiKey(key), roles: ['predict'] }] });
 *   await fetch(`${gw.url}/v1/models/fraud/predict`, { method: 'POST', headers: { authorization: `Bearer ${key}`,
 *     'content-type': 'application/json' }, body: JSON.stringify({ features }) });
 *   await gw.close();
 */
import os from 'node:os';
import path from 'node:path';
import type { GatewayConfigInput } from '../core/contracts/gateway';
import { startGatewayProcess } from './app';
import { startClusterPrimary } from './cluster';
import { parseGatewayConfig } from './config';

export { hashApiKey } from './auth';
export { loadGatewayConfig, parseGatewayConfig } from './config';
export type { GatewayConfigInput } from '../core/contracts/gateway';

export interface RunningGateway {
  url: string;
  /** Serving processes (1: this process). */
  workers: number;
  close(): Promise<void>;
}

/** Serving processes for `workers: 0`: one per core the process may use. */
export const coreCount = (): number => Math.max(1, os.availableParallelism());

export async function startGateway(options: GatewayConfigInput): Promise<RunningGateway> {
  // From code the defaults are one process on a free port; the entry point passes its own (8080, every core).
  const config = parseGatewayConfig({ workers: 1, port: 0, ...options });
  const workers = config.workers === 0 ? coreCount() : config.workers;
  if (workers === 1) {
    const gw = await startGatewayProcess(config);
    return { url: gw.url, workers: 1, close: () => gw.close() };
  }
  // Workers run the same kind of file as this one: the TypeScript sources through tsx (tests, `npm run
  // gateway`), or the compiled JavaScript of a built image.
  const ext = path.extname(__filename);
  const hasTsx = process.execArgv.some((a) => a.includes('tsx'));
  const primary = await startClusterPrimary(config, workers, {
    file: path.join(__dirname, `worker-main${ext}`),
    execArgv: ext === '.ts' && !hasTsx ? ['--import', 'tsx', ...process.execArgv] : process.execArgv,
  });
  return { url: primary.url, workers, close: () => primary.close() };
}
