/**
 * Least-privilege registry access on a real MLflow running its basic-auth app (`mlflow server
 * --app-name basic-auth`, default permission NO_PERMISSIONS), with the identities and grants that
 * src/stack/mlflow-auth.ts provisions through MLflow's auth REST API: the trainer (EDIT on its
 * model's training experiment only), the pipeline (EDIT there, MANAGE on the registered model) and
 * the gateway (READ on both). Every client sends its own credentials, read by reference from the
 * file secret store.
 *
 * Shown here: no credential or a wrong password is 401; the real reference trainer logs its run
 * with the trainer's credential, which is refused (403) when it creates a model version, moves or
 * deletes an alias, or writes outside its experiment; the gateway's credential reads the champion
 * and its files and is refused (403) on every write (run, metric, tag, artifact, version, alias,
 * delete); the pipeline's registers versions and moves aliases. Then retrainingPipeline itself runs
 * on a real Temporal dev server against this MLflow, the worker as `pipeline` and its training job
 * as `trainer`, and no password, key or credential header appears in the run's history, the audit
 * log, the model card, the job and server logs, or any error message.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { Aliases, MODEL_ARTIFACT_PATH, experimentName } from '../../src/core/contracts/registry';
import type { ModelPolicyInput } from '../../src/core/contracts/model-policy';
import {
  TERMINAL_STAGES,
  rejectSignal,
  retrainWorkflowId,
  statusQuery,
  type PipelineResult,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import { LocalProcessRunner, referenceTrainerImages } from '../../src/jobs';
import { MlflowClient, type MlflowAuth } from '../../src/mlflow';
import { MlflowUnauthorizedError } from '../../src/mlflow/errors';
import { MlflowModelRegistry } from '../../src/registry';
import { createFileSecretStore } from '../../src/secrets/local';
import { loadWorkerConfig } from '../../src/config';
import type { RunningServer, MlflowEndpoint } from '../../src/stack/launcher';
import {
  MLFLOW_ADMIN_SECRET,
  PASSWORD_KEY,
  USERNAME_KEY,
  identitySecret,
  mlflowAuthFromSecret,
  startAuthMlflowServer,
  type MlflowIdentity,
  type ProvisionedIdentities,
} from '../../src/stack/mlflow-auth';
import { TRAINER_SCRIPT, VENV_PYTHON } from '../../src/stack/paths';
import {
  createLocalEnv,
  runWorker,
  tempDir,
  uniqueModel,
  writeDataset,
  type RunningWorker,
} from '../helpers/env';

/** The trainer is the real reference trainer: give it time on a loaded machine. */
const TRAINER_TIMEOUT_MS = 240_000;
/** Snapshot, validation, training, registration, signing, evaluation and the card, on a loaded machine. */
const PIPELINE_TIMEOUT_MS = 480_000;

const model = uniqueModel('auth');
/** A model the pipeline runs end to end (provisioned like `model`). */
const pipelineModel = uniqueModel('auth-wf');
let stateDir: string;
let server: RunningServer<MlflowEndpoint> | undefined;
let identities: ProvisionedIdentities;
let uri: string;
const auth = {} as Record<MlflowIdentity, MlflowAuth>;
const client = {} as Record<MlflowIdentity, MlflowClient>;
let runId: string;
let otherExperimentId: string;
let trainerOutput = '';
/** Every secret value this file handles, and every error message it saw: the scan's needles and haystacks. */
const secretValues: string[] = [];
const errorMessages: string[] = [];

/** Folders this file made (server state, secrets, datasets, the worker's state): removed at the end. */
const scratchDirs: string[] = [];
function scratch(prefix: string): string {
  const dir = tempDir(prefix);
  scratchDirs.push(dir);
  return dir;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

function basicHeader(a: MlflowAuth): string {
  if (a.kind !== 'basic') throw new Error('basic credentials expected');
  return `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
}

/** A REST call the typed client does not offer (deletes), with the given identity's credential. */
async function raw(
  who: MlflowAuth | undefined,
  method: string,
  apiPath: string,
  body?: unknown,
): Promise<number> {
  const res = await fetch(`${uri}${apiPath}`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      ...(who ? { Authorization: basicHeader(who) } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  errorMessages.push(await res.text());
  return res.status;
}

/** The HTTP status of a refused client call (the test fails if the call succeeds). */
async function refusal(call: () => Promise<unknown>): Promise<number | undefined> {
  try {
    await call();
  } catch (err) {
    expect(err).toBeInstanceOf(MlflowUnauthorizedError);
    errorMessages.push((err as Error).message);
    return (err as MlflowUnauthorizedError).status;
  }
  throw new Error('the call was allowed');
}

function runTrainer(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(VENV_PYTHON, [TRAINER_SCRIPT], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), TRAINER_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Every regular file below `dir` (logs, job folders, configs). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() ? [p] : [];
  });
}

beforeAll(async () => {
  stateDir = scratch('mlflow-auth');
  const store = createFileSecretStore(path.join(stateDir, 'secrets'));
  const started = await startAuthMlflowServer({
    stateDir: path.join(stateDir, 'mlflow'),
    store,
    models: [model, pipelineModel],
  });
  server = started.server;
  identities = started.identities;
  uri = server.endpoint.trackingUri;
  for (const key of ['password', 'flask-secret-key']) {
    secretValues.push((await store.get({ secret: MLFLOW_ADMIN_SECRET, key }))!);
  }
  for (const id of ['trainer', 'pipeline', 'gateway'] as const) {
    const a = await mlflowAuthFromSecret(store, identities.secrets[id]);
    if (a?.kind !== 'basic') throw new Error(`no basic credentials for ${id}`);
    auth[id] = a;
    client[id] = new MlflowClient({ trackingUri: uri, auth: a });
    secretValues.push(a.password);
  }
  // The pipeline's part of training (activities/training.ts): a run in the model's training experiment.
  const experimentId = identities.experiments[model]!;
  expect(await client.pipeline.getOrCreateExperiment(experimentName(model))).toBe(experimentId);
  runId = (await client.pipeline.createRun({ experimentId, runName: 'train-auth' })).info.runId;
  // An experiment the trainer was not granted (the pipeline created it, so it manages it).
  otherExperimentId = await client.pipeline.createExperiment(`mlops/${uniqueModel('other')}`);

  // The trainer's part, with the trainer's own credential.
  const data = scratch('mlflow-auth-data');
  const train = await writeDataset(data, 'train.csv', { rows: 3000, seed: 41 });
  const exit = await runTrainer({
    MLFLOW_TRACKING_URI: uri,
    MLFLOW_TRACKING_USERNAME: auth.trainer.kind === 'basic' ? auth.trainer.username : '',
    MLFLOW_TRACKING_PASSWORD: auth.trainer.kind === 'basic' ? auth.trainer.password : '',
    MLFLOW_RUN_ID: runId,
    MLOPS_DATASET_PATH: train,
    MLOPS_DATASET_SHA256: sha256(train),
    MLOPS_FEATURE_SPEC: JSON.stringify(FRAUD_FEATURE_SPEC),
    MLOPS_ARTIFACT_PATH: MODEL_ARTIFACT_PATH,
    MLOPS_SEED: '3',
    MLOPS_HYPERPARAMS: JSON.stringify({ n_estimators: 40 }),
  });
  trainerOutput = exit.output;
  expect(exit.code, exit.output).toBe(0);

  // The pipeline registers the trained run as version 1, the champion.
  await client.pipeline.ensureRegisteredModel(model);
  const v1 = await client.pipeline.createModelVersion({
    name: model,
    source: `runs:/${runId}/${MODEL_ARTIFACT_PATH}`,
    runId,
  });
  await client.pipeline.setAlias(model, Aliases.champion, v1.version);
}, 600_000);

afterAll(async () => {
  await server?.stop();
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

describe('MLflow basic auth: who may do what', () => {
  it('refuses a request without credentials, a wrong password and an unknown user with 401', async () => {
    expect(await raw(undefined, 'GET', `/api/2.0/mlflow/registered-models/get?name=${model}`)).toBe(401);
    const wrong = { kind: 'basic', username: 'pipeline', password: 'not-the-password' } as const;
    expect(
      await refusal(() => new MlflowClient({ trackingUri: uri, auth: wrong }).getRegisteredModel(model)),
    ).toBe(401);
    const stranger = { kind: 'basic', username: 'mallory', password: 'guess' } as const;
    expect(
      await refusal(() => new MlflowClient({ trackingUri: uri, auth: stranger }).setAlias(model, 'x', '1')),
    ).toBe(401);
    // The credential never makes it into an error message.
    expect(errorMessages.join('\n')).not.toContain('not-the-password');
  });

  it('lets the trainer log its own run: params, metrics and the ONNX model are there', async () => {
    const run = await client.pipeline.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.metrics.val_roc_auc).toBeGreaterThan(0.7);
    const files = await client.gateway.listArtifactsRecursive(runId, MODEL_ARTIFACT_PATH);
    expect(files.map((f) => f.path)).toContain(`${MODEL_ARTIFACT_PATH}/model.onnx`);
  });

  it('refuses the trainer (403) a model version, an alias move and anything outside its experiment', async () => {
    const t = client.trainer;
    const source = `runs:/${runId}/${MODEL_ARTIFACT_PATH}`;
    expect(await refusal(() => t.createModelVersion({ name: model, source, runId }))).toBe(403);
    expect(await refusal(() => t.setAlias(model, Aliases.champion, '1'))).toBe(403);
    expect(await refusal(() => t.setAlias(model, Aliases.challenger, '1'))).toBe(403);
    expect(await refusal(() => t.deleteAlias(model, Aliases.champion))).toBe(403);
    expect(await refusal(() => t.setModelVersionTag(model, '1', 'mlops.approved', 'true'))).toBe(403);
    expect(await refusal(() => t.getRegisteredModel(model))).toBe(403);
    expect(await refusal(() => t.createRun({ experimentId: otherExperimentId, runName: 'sneak' }))).toBe(403);
    expect(
      await raw(auth.trainer, 'DELETE', '/api/2.0/mlflow/model-versions/delete', {
        name: model,
        version: '1',
      }),
    ).toBe(403);
    // Nothing moved.
    const champion = await client.gateway.getModelVersionByAlias(model, Aliases.champion);
    expect(champion.version).toBe('1');
  });

  it('lets the gateway read the champion and its files, and refuses it (403) every write', async () => {
    const g = client.gateway;
    const champion = await g.getModelVersionByAlias(model, Aliases.champion);
    expect(champion.runId).toBe(runId);
    expect((await g.downloadArtifact(runId, `${MODEL_ARTIFACT_PATH}/model.onnx`)).length).toBeGreaterThan(
      1000,
    );

    const experimentId = identities.experiments[model]!;
    const source = `runs:/${runId}/${MODEL_ARTIFACT_PATH}`;
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['create run', () => g.createRun({ experimentId, runName: 'gw' })],
      ['log metric', () => g.logMetric({ runId, key: 'injected', value: 1 })],
      ['log param', () => g.logParam(runId, 'injected', '1')],
      ['set run tag', () => g.setTag(runId, 'injected', '1')],
      ['end run', () => g.updateRun({ runId, status: 'FAILED' })],
      [
        'upload artifact',
        () => g.uploadArtifact(runId, `${MODEL_ARTIFACT_PATH}/model.onnx`, Buffer.from('x')),
      ],
      ['create model version', () => g.createModelVersion({ name: model, source, runId })],
      ['set alias', () => g.setAlias(model, Aliases.champion, '1')],
      ['delete alias', () => g.deleteAlias(model, Aliases.champion)],
      ['set version tag', () => g.setModelVersionTag(model, '1', 'injected', '1')],
      ['set model tag', () => g.setRegisteredModelTag(model, 'injected', '1')],
    ];
    const statuses: Record<string, number | undefined> = {};
    for (const [what, call] of writes) statuses[what] = await refusal(call);
    const deletes: Array<[string, string, string, unknown]> = [
      ['delete version', 'DELETE', '/api/2.0/mlflow/model-versions/delete', { name: model, version: '1' }],
      ['delete model', 'DELETE', '/api/2.0/mlflow/registered-models/delete', { name: model }],
      ['delete run', 'POST', '/api/2.0/mlflow/runs/delete', { run_id: runId }],
      ['delete experiment', 'POST', '/api/2.0/mlflow/experiments/delete', { experiment_id: experimentId }],
    ];
    for (const [what, method, p, body] of deletes) statuses[what] = await raw(auth.gateway, method, p, body);
    expect(statuses).toEqual(Object.fromEntries([...writes, ...deletes].map(([what]) => [what, 403])));

    // Everything is as it was.
    const after = await g.getModelVersionByAlias(model, Aliases.champion);
    expect(after.version).toBe('1');
    expect(after.tags).toEqual(champion.tags);
    const run = await client.pipeline.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.metrics.injected).toBeUndefined();
  });

  it('lets the pipeline register versions and move aliases', async () => {
    const p = client.pipeline;
    const v2 = await p.createModelVersion({
      name: model,
      source: `runs:/${runId}/${MODEL_ARTIFACT_PATH}`,
      runId,
    });
    await p.setAlias(model, Aliases.challenger, v2.version);
    await p.setAlias(model, Aliases.previousChampion, '1');
    await p.setAlias(model, Aliases.champion, v2.version);
    await p.deleteAlias(model, Aliases.challenger);
    await p.setModelVersionTag(model, v2.version, 'mlops.promoted', 'true');
    expect((await client.gateway.getModelVersionByAlias(model, Aliases.champion)).version).toBe(v2.version);
    expect((await client.gateway.getModelVersionByAlias(model, Aliases.previousChampion)).version).toBe('1');
    expect(await client.gateway.findModelVersionByAlias(model, Aliases.challenger)).toBeUndefined();
  });

  it('gives a new top-level experiment or model to its creator only: it reaches nothing granted to others', async () => {
    // MLflow without workspaces lets any authenticated user create a new experiment or registered
    // model; the creator manages that one alone. The granted model stays out of reach.
    const own = uniqueModel('gw-own');
    await client.gateway.createRegisteredModel(own);
    expect(await refusal(() => client.trainer.setAlias(own, 'x', '1'))).toBe(403);
    expect(await refusal(() => client.gateway.setAlias(model, Aliases.champion, '1'))).toBe(403);
  });
});

describe('retrainingPipeline on the basic-auth MLflow, one identity per component', () => {
  let env: TestWorkflowEnvironment;
  let worker: RunningWorker | undefined;
  let result: PipelineResult;
  let workerStateDir: string;
  let auditLogPath: string;

  beforeAll(async () => {
    env = await createLocalEnv();
    workerStateDir = scratch('mlflow-auth-worker');
    const config = {
      ...loadWorkerConfig({
        MLFLOW_TRACKING_URI: uri,
        MLOPS_STATE_DIR: workerStateDir,
        MLOPS_TASK_QUEUE: `test-${path.basename(workerStateDir)}`,
      }),
      policyDir: path.join(workerStateDir, 'policies'),
    };
    auditLogPath = config.auditLogPath;
    mkdirSync(config.policyDir, { recursive: true });
    // The training job gets the trainer's credential by reference (the runner's credentials secret),
    // never the worker's own.
    const trainerCredentials: Record<string, string | undefined> = {
      [USERNAME_KEY]: auth.trainer.kind === 'basic' ? auth.trainer.username : undefined,
      [PASSWORD_KEY]: auth.trainer.kind === 'basic' ? auth.trainer.password : undefined,
    };
    const jobs = new LocalProcessRunner({
      root: config.jobsDir,
      images: referenceTrainerImages(),
      secrets: (ref) =>
        ref.secret === config.jobCredentialsSecret ? trainerCredentials[ref.key] : undefined,
    });
    worker = await runWorker({
      connection: env.nativeConnection,
      config,
      ports: { registry: new MlflowModelRegistry(client.pipeline), jobs },
    });
    const data = scratch('mlflow-auth-wf-data');
    const [train, holdout] = await Promise.all([
      writeDataset(data, 'train.csv', { rows: 3000, seed: 43 }),
      writeDataset(data, 'holdout.csv', { rows: 2000, seed: 97 }),
    ]);
    const policy: ModelPolicyInput = {
      gate: {
        minHoldoutSize: 200,
        minPositives: 20,
        absoluteMinimums: { pr_auc: 0.15, roc_auc: 0.75 },
        guardrails: { maxFairnessGap: 0.3, fairnessMinGroupCount: 5 },
      },
      approval: { approvers: [{ id: 'bob', roles: ['risk-officer'] }] },
    };
    writeFileSync(path.join(config.policyDir, `${pipelineModel}.json`), JSON.stringify(policy));
    const input: RetrainingInput = {
      model: pipelineModel,
      dataset: { uri: train },
      holdout: { uri: holdout },
      trigger: { kind: 'manual', by: 'dana' },
      initiator: 'dana',
      featureSpec: FRAUD_FEATURE_SPEC,
    };
    const handle = await env.client.workflow.start('retrainingPipeline', {
      taskQueue: config.taskQueue,
      workflowId: retrainWorkflowId(pipelineModel),
      args: [input],
    });
    // The card is written before approval; bob's rejection ends the run there (or the gate already did).
    const deadline = Date.now() + PIPELINE_TIMEOUT_MS;
    for (;;) {
      const s = await handle.query(statusQuery).catch(() => undefined);
      if (s?.stage === 'awaiting-approval') {
        await handle.signal(rejectSignal, { approver: 'bob', reason: 'registry access test' });
        break;
      }
      if (s && TERMINAL_STAGES.includes(s.stage)) break;
      if ((await handle.describe()).status.name !== 'RUNNING') break;
      if (Date.now() > deadline) throw new Error(`no approval request in time: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    result = await handle.result();
  }, 720_000);

  afterAll(async () => {
    await worker?.stop();
    await env?.teardown();
  });

  it('registers the candidate as the pipeline, trained by a job that logged as the trainer', async () => {
    expect(['rejected', 'not-promoted']).toContain(result.outcome);
    const challenger = await client.gateway.getModelVersionByAlias(pipelineModel, Aliases.challenger);
    expect(challenger.version).toBe('1');
    const run = await client.gateway.getRun(challenger.runId!);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.metrics.val_roc_auc).toBeGreaterThan(0.7);
  });

  it('leaks no password, key or credential header into histories, logs, model cards, the audit log or errors', async () => {
    const needles = [
      ...secretValues,
      ...Object.values(auth).map((a) => basicHeader(a).slice('Basic '.length)),
    ];
    expect(needles.length).toBe(2 + 3 + 3);
    expect(needles.every((n) => n.length >= 16)).toBe(true);
    const haystacks: Array<[string, string]> = [
      ['errors', errorMessages.join('\n')],
      ['trainer output', trainerOutput],
      [
        `history ${retrainWorkflowId(pipelineModel)}`,
        JSON.stringify(await env.client.workflow.getHandle(retrainWorkflowId(pipelineModel)).fetchHistory()),
      ],
      ['result', JSON.stringify(result)],
      ['audit log', readFileSync(auditLogPath, 'utf8')],
    ];
    // The worker's state (job specs, job logs, snapshots' metadata) and the server's (mlflow.log, the auth config).
    for (const dir of [workerStateDir, path.join(stateDir, 'mlflow')]) {
      for (const f of filesUnder(dir)) {
        if (statSync(f).size > 5_000_000 || /\.(sqlite|onnx|csv|parquet)$/.test(f)) continue;
        haystacks.push([f, readFileSync(f, 'utf8')]);
      }
    }
    for (const [m, r] of [
      [model, runId],
      [
        pipelineModel,
        (await client.gateway.getModelVersionByAlias(pipelineModel, Aliases.challenger)).runId!,
      ],
    ] as const) {
      const run = await client.gateway.getRun(r);
      haystacks.push([`run ${m}`, JSON.stringify(run)]);
      for (const f of await client.gateway.listArtifactsRecursive(r, '')) {
        if (f.isDir || f.path.endsWith('.onnx') || (f.fileSize ?? 0) > 5_000_000) continue;
        haystacks.push([
          `artifact ${m}/${f.path}`,
          (await client.gateway.downloadArtifact(r, f.path)).toString('utf8'),
        ]);
      }
    }
    expect(haystacks.some(([where]) => where.endsWith('mlflow.log'))).toBe(true);
    expect(haystacks.some(([where]) => where.endsWith('output.log'))).toBe(true);
    expect(haystacks.some(([where]) => where.includes('model_card'))).toBe(true);
    const leaksIn = (hay: Array<[string, string]>) =>
      hay.flatMap(([where, text]) =>
        needles
          .filter((n) => text.includes(n) || text.includes(Buffer.from(n).toString('base64')))
          .map(() => where),
      );
    expect(leaksIn(haystacks)).toEqual([]);
    // Control: the scan does find the values where they are meant to be, the secret store's files.
    const storeFiles = filesUnder(path.join(stateDir, 'secrets'));
    const found = leaksIn(storeFiles.map((f): [string, string] => [f, readFileSync(f, 'utf8')]));
    expect(new Set(found).size).toBe(2 + 3);
  });
});

// The identity secrets are where the provisioning says they are (what a Kubernetes Secret would be made from).
it('stores each identity under its own secret, keyed by the variables MLflow clients read', () => {
  for (const id of ['trainer', 'pipeline', 'gateway'] as const)
    expect(identities.secrets[id]).toBe(identitySecret(id));
});
