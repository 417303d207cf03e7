/**
 * Vitest global setup: one real MLflow server and one real Temporal dev server for the whole run,
 * provisioned (cached) and started by the project's own launcher, then stopped with everything
 * they forked. Layers that need no servers (`unit`) skip it. MLFLOW_TRACKING_URI, when set, points
 * the tests at an existing MLflow server instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startStack, type Stack } from '../../src/stack/launcher';
import { ensurePythonEnv, ensureTemporalCli, ensureTimeSkippingServer } from '../../src/stack/provision';

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowTrackingUri: string;
    temporalAddress: string;
    temporalCli: string;
    pythonBin: string;
    timeSkippingServer: string;
  }
}

const SERVER_LAYERS = new Set(['mlflow', 'workflows', 'e2e', 'gateway', 'k8s', 'security']);
/** Layers whose tests may run the time-skipping test server (a JVM program fetched with Maven). */
const TIME_SKIPPING_LAYERS = new Set(['workflows', 'e2e', 'logic']);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (project.vitest.projects.some((p) => TIME_SKIPPING_LAYERS.has(p.name))) {
    project.provide('timeSkippingServer', ensureTimeSkippingServer());
  }
  const wanted = project.vitest.projects.some((p) => SERVER_LAYERS.has(p.name));
  if (!wanted) return async () => {};
  const temporalCli = ensureTemporalCli();
  const pythonBin = ensurePythonEnv();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-test-stack-'));
  const started = Date.now();
  const stack: Stack = await startStack({ stateDir });
  console.log(
    `[test stack] temporal ${stack.temporal.address}, mlflow ${stack.mlflow.trackingUri} (${Date.now() - started} ms)`,
  );
  project.provide('mlflowTrackingUri', stack.mlflow.trackingUri);
  project.provide('temporalAddress', stack.temporal.address);
  project.provide('temporalCli', temporalCli);
  project.provide('pythonBin', pythonBin);
  return async () => {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
}
