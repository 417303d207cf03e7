/**
 * Integration tests of the MLflow client against the run's real MLflow server (`inject('mlflowTrackingUri')`),
 * plus a tiny local HTTP server on 127.0.0.1 for what a healthy MLflow never does (auth headers, 401, 5xx,
 * malformed answers, hangs). Names carry a random suffix so the shared server can be reused across runs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  MlflowAlreadyExistsError,
  MlflowClient,
  MlflowError,
  MlflowInvalidRequestError,
  MlflowNotFoundError,
  MlflowProtocolError,
  MlflowServerError,
  MlflowUnauthorizedError,
  MlflowUnreachableError,
  mlflowAuthFromEnv,
  parseRunsUri,
  type Run,
} from '../../src/mlflow';

const trackingUri = inject('mlflowTrackingUri');
const suffix = randomUUID().slice(0, 8);
const client = new MlflowClient({ trackingUri });

/** Awaits `promise`, expects it to reject with an instance of `cls`, and returns the error. */
async function rejection<E extends Error>(
  promise: Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(`expected a ${cls.name}, but the call succeeded`);
}

describe('experiments', () => {
  it('getOrCreateExperiment is idempotent and race-safe', async () => {
    const name = `client-test-exp-${suffix}`;
    expect(await client.getExperimentByName(name)).toBeUndefined();
    const first = await client.getOrCreateExperiment(name);
    const second = await client.getOrCreateExperiment(name);
    expect(second).toBe(first);
    const exp = await client.getExperimentByName(name);
    expect(exp?.experimentId).toBe(first);
    expect(exp?.name).toBe(name);
    expect(exp?.lifecycleStage).toBe('active');

    const racedName = `client-test-exp-race-${suffix}`;
    const ids = await Promise.all(Array.from({ length: 6 }, () => client.getOrCreateExperiment(racedName)));
    expect(new Set(ids).size).toBe(1);
  });

  it('createExperiment keeps tags and refuses a taken name', async () => {
    const name = `client-test-exp-tags-${suffix}`;
    const id = await client.createExperiment(name, { tags: { team: 'risk' } });
    const exp = await client.getExperimentByName(name);
    expect(exp).toMatchObject({ experimentId: id, tags: { team: 'risk' } });
    const err = await rejection(client.createExperiment(name), MlflowAlreadyExistsError);
    expect(err.errorCode).toBe('RESOURCE_ALREADY_EXISTS');
    expect(err.retryable).toBe(false);
  });
});

describe('runs', () => {
  let experimentId: string;
  beforeAll(async () => {
    experimentId = await client.getOrCreateExperiment(`client-test-runs-${suffix}`);
  });

  it('round-trips metrics, params, tags and status', async () => {
    const startTime = Date.now() - 1000;
    const run = await client.createRun({
      experimentId,
      runName: `run-${suffix}`,
      tags: { suite: suffix, kind: 'roundtrip' },
      startTime,
    });
    expect(run.info).toMatchObject({ experimentId, runName: `run-${suffix}`, status: 'RUNNING', startTime });
    expect(run.info.artifactUri).toMatch(/^mlflow-artifacts:/);
    const runId = run.info.runId;

    await client.logMetric({ runId, key: 'auc', value: 0.5, step: 0, timestamp: 1000 });
    await client.logMetric({ runId, key: 'auc', value: 0.75, step: 3, timestamp: 2000 });
    await client.logMetric({ runId, key: 'nan_metric', value: NaN });
    await client.logParam(runId, 'lr', '0.01');
    await client.logBatch({
      runId,
      metrics: [
        { key: 'loss', value: 0.25, step: 1, timestamp: 3000 },
        { key: 'inf_metric', value: Infinity },
      ],
      params: { depth: '6', estimators: '200' },
      tags: { batch: 'yes' },
    });
    await client.setTag(runId, 'stage', 'trained');

    const got = await client.getRun(runId);
    expect(got.data.metrics['auc']).toBe(0.75);
    expect(got.data.metrics['loss']).toBe(0.25);
    expect(got.data.metrics['nan_metric']).toBeNaN();
    // MLflow stores +Infinity as the largest double.
    expect(got.data.metrics['inf_metric']).toBeGreaterThan(1e300);
    expect(got.data.latestMetrics.find((m) => m.key === 'auc')).toMatchObject({ step: 3, timestamp: 2000 });
    expect(got.data.params).toEqual({ lr: '0.01', depth: '6', estimators: '200' });
    expect(got.data.tags).toMatchObject({ suite: suffix, kind: 'roundtrip', batch: 'yes', stage: 'trained' });

    const info = await client.updateRun({ runId, status: 'FINISHED' });
    expect(info.status).toBe('FINISHED');
    expect(info.endTime).toBeGreaterThanOrEqual(startTime);
    expect((await client.getRun(runId)).info.status).toBe('FINISHED');
  });

  it('splits a large logBatch into requests within MLflow limits', async () => {
    const run = await client.createRun({ experimentId });
    const params = Object.fromEntries(Array.from({ length: 230 }, (_, i) => [`p${i}`, String(i)]));
    const tags = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`t${i}`, String(i)]));
    const metrics = Array.from({ length: 1200 }, (_, i) => ({
      key: `m${i % 7}`,
      value: i,
      step: i,
      timestamp: i,
    }));
    await client.logBatch({ runId: run.info.runId, params, tags, metrics });
    const got = await client.getRun(run.info.runId);
    expect(Object.keys(got.data.params)).toHaveLength(230);
    expect(got.data.params['p229']).toBe('229');
    expect(got.data.tags['t149']).toBe('149');
    // latest value per key is the one with the highest step: the last i with i % 7 == k.
    expect(got.data.metrics['m0']).toBe(1197);
    expect(got.data.metrics['m6']).toBe(1196);
  });

  it('searchRuns filters by tag and pages', async () => {
    const tag = `search-${suffix}`;
    const runs: Run[] = [];
    for (let i = 0; i < 3; i++)
      runs.push(await client.createRun({ experimentId, tags: { group: tag, i: String(i) } }));
    await client.createRun({ experimentId, tags: { group: `other-${suffix}` } });

    const one = await client.searchRuns({
      experimentIds: [experimentId],
      filter: `tags.i = '1' and tags.group = '${tag}'`,
    });
    expect(one.runs.map((r) => r.info.runId)).toEqual([runs[1]?.info.runId]);
    expect(one.nextPageToken).toBeUndefined();

    const page1 = await client.searchRuns({
      experimentIds: [experimentId],
      filter: `tags.group = '${tag}'`,
      maxResults: 2,
      orderBy: ['tags.i ASC'],
    });
    expect(page1.runs).toHaveLength(2);
    expect(page1.nextPageToken).toBeTypeOf('string');
    const page2 = await client.searchRuns({
      experimentIds: [experimentId],
      filter: `tags.group = '${tag}'`,
      maxResults: 2,
      orderBy: ['tags.i ASC'],
      pageToken: page1.nextPageToken,
    });
    const all = [...page1.runs, ...page2.runs].map((r) => r.info.runId).sort();
    expect(all).toEqual(runs.map((r) => r.info.runId).sort());
  });
});

describe('artifacts', () => {
  let runId: string;
  const text = `hello ${suffix}\nsecond line ü\n`;
  const binary = Buffer.concat([Buffer.from([0, 255, 0x0a, 0x0d, 0x80]), randomBytes(64 * 1024)]);

  beforeAll(async () => {
    const experimentId = await client.getOrCreateExperiment(`client-test-artifacts-${suffix}`);
    runId = (await client.createRun({ experimentId })).info.runId;
  });

  it('uploads text and binary files, lists them (one level and recursively) and downloads the same bytes', async () => {
    await client.uploadArtifact(runId, 'notes.txt', text);
    await client.uploadArtifact(runId, 'nested/deep/weights.bin', binary);
    await client.uploadArtifact(runId, 'nested/other file.json', '{"a":1}');

    const top = await client.listArtifacts(runId);
    expect(top).toEqual([
      { path: 'nested', isDir: true, fileSize: undefined },
      { path: 'notes.txt', isDir: false, fileSize: Buffer.byteLength(text) },
    ]);
    const nested = await client.listArtifacts(runId, 'nested');
    expect(nested.map((f) => [f.path, f.isDir])).toEqual([
      ['nested/deep', true],
      ['nested/other file.json', false],
    ]);

    const all = await client.listArtifactsRecursive(runId);
    expect(all.map((f) => [f.path, f.fileSize])).toEqual([
      ['nested/deep/weights.bin', binary.length],
      ['nested/other file.json', 7],
      ['notes.txt', Buffer.byteLength(text)],
    ]);
    expect((await client.listArtifactsRecursive(runId, 'nested/deep')).map((f) => f.path)).toEqual([
      'nested/deep/weights.bin',
    ]);

    expect((await client.downloadArtifact(runId, 'notes.txt')).toString('utf8')).toBe(text);
    expect((await client.downloadArtifact(runId, 'nested/deep/weights.bin')).equals(binary)).toBe(true);
    expect((await client.downloadArtifact(runId, 'nested/other file.json')).toString()).toBe('{"a":1}');

    // A fresh client (no cached artifact root) reads the same bytes.
    const fresh = new MlflowClient({ trackingUri });
    expect((await fresh.downloadArtifact(runId, 'nested/deep/weights.bin')).equals(binary)).toBe(true);
  });

  it('rejects unsafe paths locally and maps a missing file to not-found', async () => {
    for (const bad of ['../escape.txt', 'a/../../b', '/abs.txt', 'a//b', 'a/./b']) {
      await rejection(client.uploadArtifact(runId, bad, 'x'), MlflowInvalidRequestError);
      await rejection(client.downloadArtifact(runId, bad), MlflowInvalidRequestError);
    }
    const err = await rejection(client.downloadArtifact(runId, 'missing/file.txt'), MlflowNotFoundError);
    expect(err.status).toBe(404);
    expect(err.endpoint).toContain('missing/file.txt');
  });
});

describe('model registry', () => {
  const modelName = `client-test-model-${suffix}`;
  let experimentId: string;
  let runA: string;
  let runB: string;
  const onnxBytes = randomBytes(2048);

  beforeAll(async () => {
    experimentId = await client.getOrCreateExperiment(`client-test-registry-${suffix}`);
    runA = (await client.createRun({ experimentId })).info.runId;
    runB = (await client.createRun({ experimentId })).info.runId;
    await client.uploadArtifact(runA, 'model/model.onnx', onnxBytes);
    await client.uploadArtifact(runA, 'model/meta/schema.json', '{}');
    await client.uploadArtifact(runB, 'model/model.onnx', randomBytes(16));
  });

  it('ensureRegisteredModel is idempotent and race-safe; createRegisteredModel twice is already-exists', async () => {
    const a = await client.ensureRegisteredModel(modelName);
    const b = await client.ensureRegisteredModel(modelName);
    expect(a.name).toBe(modelName);
    expect(b.name).toBe(modelName);

    const racedName = `${modelName}-race`;
    const raced = await Promise.all(Array.from({ length: 6 }, () => client.ensureRegisteredModel(racedName)));
    expect(raced.every((m) => m.name === racedName)).toBe(true);

    const err = await rejection(client.createRegisteredModel(modelName), MlflowAlreadyExistsError);
    expect(err.errorCode).toBe('RESOURCE_ALREADY_EXISTS');
    expect(err.message).toContain(modelName);

    const described = await client.createRegisteredModel(`${modelName}-described`, {
      tags: { owner: 'risk' },
      description: 'fraud model',
    });
    expect(described).toMatchObject({ tags: { owner: 'risk' }, description: 'fraud model', aliases: [] });
    await client.setRegisteredModelTag(modelName, 'domain', 'payments');
    expect((await client.getRegisteredModel(modelName)).tags).toEqual({ domain: 'payments' });
  });

  it('creates versions from runs:/ sources, resolving them to the run artifact location', async () => {
    await client.ensureRegisteredModel(modelName);
    const v1 = await client.createModelVersion({
      name: modelName,
      source: `runs:/${runA}/model`,
      tags: { stage: 'candidate' },
      description: 'first',
    });
    expect(v1).toMatchObject({
      name: modelName,
      runId: runA,
      status: 'READY',
      tags: { stage: 'candidate' },
      description: 'first',
      aliases: [],
    });
    expect(v1.version).toMatch(/^\d+$/);
    expect(v1.source).toBe(`mlflow-artifacts:/${experimentId}/${runA}/artifacts/model`);

    const got = await client.getModelVersion(modelName, v1.version);
    expect(got).toEqual(v1);

    // The registered files are readable through the version's download URI.
    const downloadUri = await client.getModelVersionDownloadUri(modelName, v1.version);
    expect(downloadUri).toBe(v1.source);
    const files = await client.listArtifactsRecursiveAtUri(downloadUri);
    expect(files.map((f) => f.path)).toEqual(['meta/schema.json', 'model.onnx']);
    expect((await client.downloadArtifactAtUri(downloadUri, 'model.onnx')).equals(onnxBytes)).toBe(true);

    const v2 = await client.createModelVersion({
      name: modelName,
      source: `runs:/${runB}/model`,
      runId: runB,
    });
    expect(Number(v2.version)).toBe(Number(v1.version) + 1);

    const byRun = await client.searchModelVersions({ filter: `run_id = '${runA}'` });
    expect(byRun.modelVersions.map((v) => [v.name, v.version])).toEqual([[modelName, v1.version]]);
    const byName = await client.searchModelVersions({ filter: `name = '${modelName}'`, maxResults: 1 });
    expect(byName.modelVersions).toHaveLength(1);
    expect(byName.nextPageToken).toBeTypeOf('string');

    await rejection(
      client.createModelVersion({ name: modelName, source: `runs:/${runA}/model`, runId: runB }),
      MlflowInvalidRequestError,
    );
    await rejection(
      client.createModelVersion({ name: modelName, source: `runs:/${runA}/no-such-model` }),
      MlflowNotFoundError,
    );
  });

  it('resolves runs:/ to an MLflow 3 logged model when the run has no artifacts at that path', async () => {
    // What `mlflow.<flavor>.log_model(name="onnx-model")` does in MLflow 3: a logged model owned by the run.
    const res = await fetch(`${trackingUri}/api/2.0/mlflow/logged-models`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ experiment_id: experimentId, name: 'onnx-model', source_run_id: runB }),
    });
    expect(res.status).toBe(200);
    const modelId = ((await res.json()) as { model: { info: { model_id: string } } }).model.info.model_id;

    await client.ensureRegisteredModel(modelName);
    const v = await client.createModelVersion({ name: modelName, source: `runs:/${runB}/onnx-model` });
    expect(v.source).toBe(`models:/${modelId}`);
    expect(v.runId).toBe(runB);
    // MLflow 3.17.2 does not echo model_id in model-version JSON; the link shows on the logged model instead,
    // and the version's files resolve to the logged model's artifact location.
    const logged = await fetch(`${trackingUri}/api/2.0/mlflow/logged-models/${modelId}`);
    const tags = ((await logged.json()) as { model: { info: { tags?: { key: string; value: string }[] } } })
      .model.info.tags;
    const link = tags?.find((t) => t.key === 'mlflow.modelVersions')?.value ?? '[]';
    expect(JSON.parse(link)).toContainEqual({ name: modelName, version: Number(v.version) });
    expect(await client.getModelVersionDownloadUri(modelName, v.version)).toBe(
      `mlflow-artifacts:/${experimentId}/models/${modelId}/artifacts`,
    );
  });

  it('sets and deletes version tags', async () => {
    const v = await client.createModelVersion({ name: modelName, source: `runs:/${runA}/model` });
    await client.setModelVersionTag(modelName, v.version, 'validated', 'true');
    await client.setModelVersionTag(modelName, v.version, 'reason', 'gate passed');
    expect((await client.getModelVersion(modelName, v.version)).tags).toEqual({
      validated: 'true',
      reason: 'gate passed',
    });
    await client.deleteModelVersionTag(modelName, v.version, 'validated');
    expect((await client.getModelVersion(modelName, v.version)).tags).toEqual({ reason: 'gate passed' });
  });

  it('sets, reads, moves and deletes aliases', async () => {
    const name = `${modelName}-alias`;
    await client.ensureRegisteredModel(name);
    const v1 = await client.createModelVersion({ name, source: `runs:/${runA}/model` });
    const v2 = await client.createModelVersion({ name, source: `runs:/${runB}/model` });

    expect(await client.findModelVersionByAlias(name, 'champion')).toBeUndefined();
    await client.setAlias(name, 'champion', v1.version);
    const champ = await client.getModelVersionByAlias(name, 'champion');
    expect(champ.version).toBe(v1.version);
    expect(champ.aliases).toEqual(['champion']);
    expect((await client.getRegisteredModel(name)).aliases).toEqual([
      { alias: 'champion', version: v1.version },
    ]);

    await client.setAlias(name, 'champion', v2.version);
    await client.setAlias(name, 'previous-champion', v1.version);
    expect((await client.getModelVersionByAlias(name, 'champion')).version).toBe(v2.version);
    expect((await client.findModelVersionByAlias(name, 'previous-champion'))?.version).toBe(v1.version);
    expect((await client.getModelVersion(name, v1.version)).aliases).toEqual(['previous-champion']);

    await client.deleteAlias(name, 'champion');
    const err = await rejection(client.getModelVersionByAlias(name, 'champion'), MlflowNotFoundError);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('champion');
    expect(await client.findModelVersionByAlias(name, 'champion')).toBeUndefined();
    await client.deleteAlias(name, 'champion'); // deleting an unset alias is fine
    expect(await client.findModelVersionByAlias(`${name}-missing`, 'champion')).toBeUndefined();
  });
});

describe('error mapping against the real server', () => {
  it('maps an unknown run and an unknown model to not-found', async () => {
    const run = await rejection(client.getRun('0123456789abcdef0123456789abcdef'), MlflowNotFoundError);
    expect(run).toMatchObject({ status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST', retryable: false });
    expect(run.endpoint).toBe('GET /api/2.0/mlflow/runs/get');
    expect(run.message).toContain('GET /api/2.0/mlflow/runs/get');
    expect(run.message).toContain('0123456789abcdef0123456789abcdef');

    const model = await rejection(client.getRegisteredModel(`no-such-model-${suffix}`), MlflowNotFoundError);
    expect(model.status).toBe(404);
    await rejection(client.getModelVersion(`no-such-model-${suffix}`, '1'), MlflowNotFoundError);
  });

  it('maps bad requests to invalid-request', async () => {
    const experimentId = await client.getOrCreateExperiment(`client-test-errors-${suffix}`);
    const run = await client.createRun({ experimentId });
    await client.logParam(run.info.runId, 'lr', '0.1');
    const changed = await rejection(client.logParam(run.info.runId, 'lr', '0.2'), MlflowInvalidRequestError);
    expect(changed).toMatchObject({ status: 400, errorCode: 'INVALID_PARAMETER_VALUE', retryable: false });
    expect(changed.message).toContain('POST /api/2.0/mlflow/runs/log-parameter');

    await rejection(
      client.searchRuns({ experimentIds: [experimentId], filter: 'tags.x === 1' }),
      MlflowInvalidRequestError,
    );
    await rejection(client.getModelVersion('any', 'not-a-number'), MlflowInvalidRequestError);
  });

  it('maps a closed port to unreachable (retryable)', async () => {
    const port = await closedPort();
    const dead = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}` });
    const err = await rejection(dead.getRun('abc'), MlflowUnreachableError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.endpoint).toBe('GET /api/2.0/mlflow/runs/get');
  });
});

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('transport against a local stub server', () => {
  interface Reply {
    status: number;
    body: string;
    contentType?: string;
    hang?: boolean;
  }
  let server: http.Server;
  let base: string;
  let reply: Reply = { status: 200, body: '{}' };
  const seen: { method?: string; url?: string; authorization?: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      req.resume();
      if (reply.hang === true) return; // never answers
      res.writeHead(reply.status, { 'Content-Type': reply.contentType ?? 'application/json' });
      res.end(reply.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const registeredModelBody = JSON.stringify({ registered_model: { name: 'm' } });

  it('sends basic and bearer Authorization headers', async () => {
    reply = { status: 200, body: registeredModelBody };
    await new MlflowClient({
      trackingUri: base,
      auth: { kind: 'basic', username: 'alice', password: 's3cr:et' },
    }).getRegisteredModel('m');
    expect(seen.at(-1)?.authorization).toBe(`Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`);
    expect(seen.at(-1)?.url).toBe('/api/2.0/mlflow/registered-models/get?name=m');

    await new MlflowClient({
      trackingUri: base,
      auth: { kind: 'bearer', token: 'tok-123' },
    }).getRegisteredModel('m');
    expect(seen.at(-1)?.authorization).toBe('Bearer tok-123');

    await new MlflowClient({ trackingUri: base }).getRegisteredModel('m');
    expect(seen.at(-1)?.authorization).toBeUndefined();
  });

  it('moves credentials from the tracking URI into the header and out of trackingUri', async () => {
    reply = { status: 200, body: registeredModelBody };
    const withCreds = base.replace('http://', 'http://bob:pa%40ss@');
    const c = new MlflowClient({ trackingUri: `${withCreds}/` });
    expect(c.trackingUri).toBe(base);
    await c.getRegisteredModel('m');
    expect(seen.at(-1)?.authorization).toBe(`Basic ${Buffer.from('bob:pa@ss').toString('base64')}`);
  });

  it('maps 401 and 403 to unauthorized without leaking credentials', async () => {
    const c = new MlflowClient({
      trackingUri: base,
      auth: { kind: 'basic', username: 'alice', password: 'hunter2' },
    });
    reply = { status: 401, body: 'You are not authenticated.', contentType: 'text/plain' };
    const err = await rejection(c.getRegisteredModel('m'), MlflowUnauthorizedError);
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(err.message).toContain('You are not authenticated.');
    expect(err.message).toContain('/api/2.0/mlflow/registered-models/get');
    for (const secret of ['hunter2', Buffer.from('alice:hunter2').toString('base64')]) {
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err)).not.toContain(secret);
    }

    reply = {
      status: 403,
      body: JSON.stringify({ error_code: 'PERMISSION_DENIED', message: 'no READ on m' }),
    };
    const denied = await rejection(c.getRegisteredModel('m'), MlflowUnauthorizedError);
    expect(denied).toMatchObject({ status: 403, errorCode: 'PERMISSION_DENIED', retryable: false });
  });

  it('maps 5xx and 429 to retryable server errors', async () => {
    const c = new MlflowClient({ trackingUri: base });
    reply = { status: 503, body: 'upstream down', contentType: 'text/plain' };
    expect(await rejection(c.getRegisteredModel('m'), MlflowServerError)).toMatchObject({
      status: 503,
      retryable: true,
    });
    reply = { status: 500, body: JSON.stringify({ error_code: 'INTERNAL_ERROR', message: 'boom' }) };
    const internal = await rejection(c.getRegisteredModel('m'), MlflowServerError);
    expect(internal).toMatchObject({ errorCode: 'INTERNAL_ERROR', retryable: true });
    expect(internal.message).toContain('boom');
    reply = {
      status: 429,
      body: JSON.stringify({ error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }),
    };
    expect(await rejection(c.getRegisteredModel('m'), MlflowServerError)).toMatchObject({ retryable: true });
  });

  it('maps malformed answers to protocol errors naming the endpoint and the field path', async () => {
    const c = new MlflowClient({ trackingUri: base });
    reply = {
      status: 200,
      body: JSON.stringify({
        run: {
          info: { run_id: 'r', experiment_id: '1', status: 'EXPLODED', lifecycle_stage: 'active' },
          data: {},
        },
      }),
    };
    const shape = await rejection(c.getRun('r'), MlflowProtocolError);
    expect(shape.retryable).toBe(false);
    expect(shape.message).toContain('GET /api/2.0/mlflow/runs/get');
    expect(shape.message).toContain('run.info.status');

    reply = { status: 200, body: '<html>hi</html>', contentType: 'text/html' };
    expect((await rejection(c.getRun('r'), MlflowProtocolError)).message).toContain('not JSON');

    // A 404 that is not an MLflow error body means a wrong server or base path, not a missing resource.
    reply = { status: 404, body: '<html>Not Found</html>', contentType: 'text/html' };
    await rejection(c.findModelVersionByAlias('m', 'champion'), MlflowProtocolError);
  });

  it('maps a request timeout to unreachable (retryable)', async () => {
    reply = { status: 200, body: '{}', hang: true };
    const c = new MlflowClient({ trackingUri: base, timeoutMs: 300 });
    const started = Date.now();
    const err = await rejection(c.getRegisteredModel('m'), MlflowUnreachableError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('300 ms');
  });
});

describe('configuration helpers', () => {
  it('mlflowAuthFromEnv reads basic credentials before a token, like MLflow', () => {
    expect(mlflowAuthFromEnv({})).toBeUndefined();
    expect(mlflowAuthFromEnv({ MLFLOW_TRACKING_TOKEN: 't' })).toEqual({ kind: 'bearer', token: 't' });
    expect(
      mlflowAuthFromEnv({
        MLFLOW_TRACKING_USERNAME: 'u',
        MLFLOW_TRACKING_PASSWORD: 'p',
        MLFLOW_TRACKING_TOKEN: 't',
      }),
    ).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(() => mlflowAuthFromEnv({ MLFLOW_TRACKING_USERNAME: 'u' })).toThrow(MlflowError);
  });

  it('parseRunsUri splits runs:/ URIs', () => {
    expect(parseRunsUri('runs:/abc/model')).toEqual({ runId: 'abc', artifactPath: 'model' });
    expect(parseRunsUri('runs:/abc/a/b/')).toEqual({ runId: 'abc', artifactPath: 'a/b' });
    expect(parseRunsUri('runs:/abc')).toEqual({ runId: 'abc', artifactPath: '' });
    expect(parseRunsUri('models:/m/1')).toBeUndefined();
    expect(parseRunsUri('runs://host/abc/model')).toBeUndefined();
  });

  it('rejects a tracking URI that is not http(s) without echoing it', () => {
    expect(() => new MlflowClient({ trackingUri: 'ftp://u:secret@host' })).toThrow(/http\(s\)/);
    let message = '';
    try {
      new MlflowClient({ trackingUri: 'not a url secret' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('trackingUri is not an absolute URL');
  });
});
