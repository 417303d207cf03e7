/**
 * Global setup of the `gateway` test layer: one real Redis (Debian's redis-server, provisioned by
 * src/stack/redis.ts) on a free 127.0.0.1 port for the shared rate-limit tests, stopped at the end.
 * MLflow and Temporal come from the run's shared stack (test/setup/global-stack.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRedis } from '../../../src/stack/redis';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-test-redis-'));
  const redis = await startRedis({ stateDir });
  console.log(`[gateway tests] redis ${redis.url}`);
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
}
