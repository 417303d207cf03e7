/**
 * retrainingPipeline's release stages on a real Temporal dev server, real MLflow and a real
 * inference gateway: staging (staging route, schema, latency SLO, serving parity with the
 * evaluation's per-example scores), the canary child, promotion and kpiGuard. Training is the
 * scripted job runner (it logs a committed ONNX fixture as the trainer would: the real trainer is
 * covered by retraining.test.ts); everything else is the real activities. The champion starts as
 * the `weak` fixture, so the `good` one passes the gate.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities';
import { createSecurityActivities } from '../../activities/security';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { Aliases, VersionTags } from '../../src/core/contracts/registry';
import {
  approveSignal,
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import { StagingCheck } from '../../src/core/contracts/staging';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import { MlflowModelRegistry } from '../../src/registry';
import { modelTrustFromEnv } from '../../src/security/model-trust';
import { GatewayTrafficRouter } from '../../src/traffic/gateway-router';
import { ScriptedJobRunner } from '../fakes/job-runner';
import { registerModelFiles } from '../gateway/fixtures';
import {
  awaitApproval,
  createLocalEnv,
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
  type RunningWorker,
} from '../helpers/env';
import { fixtureFiles, startRolloutGateway, until, type RolloutGateway } from './helpers/rollout';
import { registerApprovers, signedApprove, type TestApprovers } from '../helpers/approvers';

const POLICY = path.resolve(__dirname, '..', '..', 'deploy', 'policies', 'fraud.json');
/** What the skew injection adds to every tenth evaluated score: far above the 1e-6 tolerance. */
const INJECTED_SKEW = 0.01;

let env: TestWorkflowEnvironment;
let rg: RolloutGateway;
let worker: RunningWorker | undefined;
let approvers: TestApprovers;
let taskQueue: string;
let train: string;
let holdout: string;
const model = uniqueModel('release');
const mlflow = mlflowClient();
const registry = new MlflowModelRegistry(mlflow);
let firstChampion: string;
/** Challenger versions whose recorded evaluation scores get skewed after the evaluation (test only). */
let skewNextEvaluation = false;

/**
 * Stands in for training/serving skew: rewrites the evaluation's per-example artifact so that the
 * scores it recorded are not what the served model answers (as a different preprocessing would).
 */
async function skewEvaluatedScores(modelName: string, version: string): Promise<void> {
  const mv = await registry.getVersion(modelName, version);
  const file = 'evaluation/per_example.csv';
  const csv = (await registry.downloadArtifact(mv.runId!, file)).toString('utf8');
  const [header, ...lines] = csv.trim().split('\n');
  const cols = header!.split(',');
  const at = cols.indexOf('challenger_score');
  const skewed = lines.map((line, i) => {
    if (i % 10 !== 0) return line;
    const cells = line.split(',');
    cells[at] = String(Math.min(1, Number(cells[at]) + INJECTED_SKEW));
    return cells.join(',');
  });
  await registry.uploadArtifact(mv.runId!, file, `${[header, ...skewed].join('\n')}\n`);
}

beforeAll(async () => {
  env = await createLocalEnv();
  const data = tempDir('release-data');
  [train, holdout] = await Promise.all([
    writeDataset(data, 'train.csv', { rows: 3000, seed: 21 }),
    // Large enough for the fairness report to judge every region (at least 30 positives each).
    writeDataset(data, 'holdout.csv', { rows: 8000, seed: 77 }),
  ]);
  const stateDir = tempDir('release');
  // The worker's signing trust (a key created in its file secret store); the seeded champion is
  // signed with it, as the pipeline signs every version it registers.
  const trust = modelTrustFromEnv({}, stateDir);
  firstChampion = (await registerModelFiles(mlflow, model, fixtureFiles('weak'))).version;
  const signed = await createSecurityActivities({ registry, trust }).signModelVersion({
    model,
    version: firstChampion,
  });
  if (!signed.ok) throw new Error(`seed champion not signed: ${JSON.stringify(signed)}`);
  await registry.setAlias(model, Aliases.champion, firstChampion);
  rg = await startRolloutGateway({ mlflow, model, stable: { version: firstChampion } });
  const policyDir = tempDir('release-policies');
  // The shipped fraud policy, except the fairness regression guardrail: the `weak` fixture flags
  // nobody at the decision threshold, so its equal-opportunity gap is 0 and any real model regresses.
  const policy = JSON.parse(readFileSync(POLICY, 'utf8')) as { gate: { guardrails: Record<string, number> } };
  policy.gate.guardrails.maxFairnessRegression = 1;
  writeFileSync(path.join(policyDir, `${model}.json`), JSON.stringify(policy));
  // The shipped policy requires signed approvals: its approvers' keys, registered where the worker looks.
  approvers = registerApprovers(policyDir);
  const config = testWorkerConfig(stateDir, {}, { policyDir });
  taskQueue = config.taskQueue;
  worker = await runWorker({
    connection: env.nativeConnection,
    config,
    ports: {
      trust,
      jobs: new ScriptedJobRunner(registry),
      router: new GatewayTrafficRouter(rg.gw.url, () => rg.adminKey.key),
      kpi: new GatewayMetricsKpiSource(`${rg.gw.url}/metrics`),
    },
    jobPollIntervalMs: 50,
    wrapActivities: (acts) =>
      ({
        ...acts,
        evaluateCandidate: async (input) => {
          const out = await acts.evaluateCandidate(input);
          if (skewNextEvaluation) {
            skewNextEvaluation = false;
            await skewEvaluatedScores(input.model, input.challengerVersion);
          }
          return out;
        },
      }) as Activities,
  });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await rg?.gw.close();
  await env?.teardown();
});

async function release(extra: Partial<RetrainingInput>) {
  const input: RetrainingInput = {
    model,
    dataset: { uri: train },
    holdout: { uri: holdout },
    trigger: { kind: 'manual', by: 'dave' },
    featureSpec: FRAUD_FEATURE_SPEC,
    training: { image: 'fixture/good' },
    staging: { sampleRows: 100 },
    ...extra,
  };
  const handle = await env.client.workflow.start('retrainingPipeline', {
    taskQueue,
    workflowId: retrainWorkflowId(model),
    args: [input],
  });
  const status = await awaitApproval(model, () => handle.query(statusQuery)).catch(async (err: unknown) => {
    await handle.terminate('test: never reached approval').catch(() => undefined);
    throw err;
  });
  const version = status.candidate!.version;
  await handle.signal(
    approveSignal,
    signedApprove(approvers, {
      workflowId: handle.workflowId,
      approver: 'bob',
      version,
      comment: 'release test',
    }),
  );
  return { handle, version };
}

const CANARY = { steps: [50, 100], bakeTime: '3s', minRequests: 20 };

describe('retrainingPipeline release stages (dev server, gateway, MLflow)', () => {
  it('staging parity failure: ends rejected-staging, no customer traffic moved, aliases untouched', async () => {
    skewNextEvaluation = true;
    const { handle, version } = await release({ canary: CANARY });
    const result = (await handle.result()) as PipelineResult;
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-3))).toBe('rejected-staging');
    const staging = result.status.staging;
    expect(staging?.verdict?.failed).toEqual([StagingCheck.parity]);
    expect(staging?.measurement?.valid).toBe(staging?.measurement?.probes);
    expect(staging?.measurement?.mismatches).toBeGreaterThan(0);
    expect(staging?.measurement?.maxAbsDiff).toBeGreaterThan(INJECTED_SKEW / 2);
    expect(result.status.canary).toBeUndefined();
    const route = await rg.route();
    expect(route).toMatchObject({ stable: firstChampion, canaryWeight: 0 });
    expect(route.canary).toBeUndefined();
    expect(route.staging).toBeUndefined();
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe(firstChampion);
    expect((await registry.getVersion(model, version)).tags[VersionTags.outcome]).toBe('rejected-staging');
  });

  it('kpiGuard: a failing champion after promotion is rolled back in traffic and registry', async () => {
    const stop = rg.load(240_000);
    const { handle, version } = await release({
      canary: CANARY,
      kpiGuard: { window: '60s', interval: '4s', minRequests: 20 },
    });
    await until(async () => {
      const s = await handle.query(statusQuery);
      if (s.stage === 'completed' || s.stage === 'rolled-back' || s.stage.startsWith('rejected'))
        throw new Error(`ended before the guard: ${JSON.stringify(s.decisions)}`);
      return s.stage === 'kpi-guard' ? true : undefined;
    }, 180_000);
    // Promoted: the new version is stable and champion before the guard judges it.
    expect((await rg.route()).stable).toBe(version);
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe(version);
    expect(await rg.setRoute({ fault: { version, abortPercent: 100 } })).toBe(200);
    const result = (await handle.result()) as PipelineResult;
    await stop();
    expect(await rg.setRoute({ fault: null })).toBe(200);
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('rolled-back');
    expect(result.status.staging?.verdict?.phase).toBe('successful');
    expect(result.status.canary?.outcome).toBe('promoted');
    expect(result.status.kpiGuard).toMatchObject({ outcome: 'rolled-back', restoreTo: firstChampion });
    expect((await rg.route()).stable).toBe(firstChampion);
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe(firstChampion);
    expect((await registry.getVersion(model, version)).tags[VersionTags.outcome]).toBe('rolled-back');
  });

  it('promotes a better model through staging and the canary: champion, previous-champion and traffic move', async () => {
    const stop = rg.load(240_000);
    const { handle, version } = await release({ canary: CANARY });
    const result = (await handle.result()) as PipelineResult;
    await stop();
    expect(result.outcome, JSON.stringify(result.status.decisions.slice(-4))).toBe('promoted');
    expect(result.status.staging?.measurement).toMatchObject({ probes: 105, valid: 105, mismatches: 0 });
    expect(result.status.staging?.measurement?.maxAbsDiff).toBeLessThanOrEqual(1e-6);
    expect(result.status.canary?.outcome).toBe('promoted');
    expect(await rg.route()).toMatchObject({ stable: version, canaryWeight: 0 });
    expect((await registry.findVersionByAlias(model, Aliases.champion))?.version).toBe(version);
    expect((await registry.findVersionByAlias(model, Aliases.previousChampion))?.version).toBe(firstChampion);
  });
});
