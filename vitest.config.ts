import { defineConfig } from 'vitest/config';

// One project per layer so each can be iterated on alone (npm run test:unit, test:mlflow, ...).
// The integration layers share one real MLflow server and one real Temporal dev server, started once
// by test/setup/global-stack.ts and torn down at the end of the run.
export default defineConfig({
  test: {
    globalSetup: ['test/setup/global-stack.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.tools/test-results.json' },
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        // Drift statistics against scipy, false-alarm rates, profiles and the drift monitor.
        test: {
          name: 'drift',
          include: ['test/drift/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // The real workflow bundle on the time-skipping server with the ports' fakes: seconds per branch.
        test: {
          name: 'logic',
          include: ['test/logic/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'mlflow',
          include: ['test/mlflow/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'workflows',
          include: ['test/workflows/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'gateway',
          include: ['test/gateway/**/*.test.ts'],
          globalSetup: ['test/gateway/setup/redis.ts'],
          testTimeout: 240_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // The guarded chat route over real HTTP, with a test double for the LLM upstream; the first run
        // trains the guard classifiers into the cache (about a minute), later runs load them.
        test: {
          name: 'guardrails',
          include: ['test/guardrails/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'k8s',
          include: ['test/k8s/**/*.test.ts'],
          globalSetup: ['test/k8s/setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // Attributions and the fairness report against the reference tools (shap, fairlearn, scikit-learn).
        test: {
          name: 'explain',
          include: ['test/explain/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // Supply-chain security: signing interop with model_signing, tamper cases at every hop (real
        // MLflow and Temporal), the unsafe-format scanner against modelscan.
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        // The data plane against the stack's real S3 server (s3proxy) and an MLflow with its artifacts there.
        test: {
          name: 's3',
          include: ['test/s3/**/*.test.ts'],
          globalSetup: ['test/s3/setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
