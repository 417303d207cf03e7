/**
 * The gateway over real HTTP, serving real models from the reference trainer out of a real MLflow:
 * verified loading (a tampered artifact refused), authentication (API keys and every bad-JWT case),
 * validation and body limits (each bad input refused with a message naming it, none reaching the
 * model), slow-loris, PII never in the logs, metrics, health and readiness, Server-Timing.
 */
import * as jose from 'jose';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGatewayProcess, type GatewayProcess } from '../../src/gateway/app';
import { parseGatewayConfig } from '../../src/gateway/config';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import {
  loadVerifiedModel,
  MANIFEST_SHA256_TAG,
  ModelIntegrityError,
  MODEL_FOLDER,
} from '../../src/gateway/models';
import { MlflowClient } from '../../src/mlflow';
import { MlflowModelRegistry } from '../../src/registry';
import { buildManifest, manifestArtifactPath } from '../../src/security/digests';
import { fraudFeatures, registerModelFiles, trainedModelFiles, type ModelFile } from './fixtures';
import { bearer, get, metricValue, newKey, post, put, raw } from './helpers';

const alice = newKey('alice', ['predict']);
const ops = newKey('ops', ['predict', 'admin']);
const root = newKey('root', ['admin']);
type Key = Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'mlops-gateway';

describe('inference gateway: serving, security, observability', () => {
  let mlflow: MlflowClient;
  let dir: string;
  let model: string;
  let files: ModelFile[];
  let v1: string;
  let v2: string;
  let tampered: string;
  let gw: GatewayProcess;
  let predictUrl: string;
  let accessLogFile: string;
  let inferenceDir: string;
  let signingKey: Key;
  let otherKey: Key;
  let publicJwk: jose.JWK;
  const features = fraudFeatures(50, 77);
  const f0 = features[0] as Record<string, number | string | null>;

  beforeAll(async () => {
    mlflow = new MlflowClient({ trackingUri: inject('mlflowTrackingUri') });
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-gw-serving-'));
    model = `gw-${Math.random().toString(36).slice(2, 8)}`;
    files = await trainedModelFiles(mlflow, inject('pythonBin'), 31);
    const files2 = await trainedModelFiles(mlflow, inject('pythonBin'), 32);
    v1 = (await registerModelFiles(mlflow, model, files)).version;
    v2 = (await registerModelFiles(mlflow, model, files2)).version;
    const t = await registerModelFiles(mlflow, model, files);
    tampered = t.version;
    const onnx = files.find((f) => f.path === `${MODEL_FOLDER}/model.onnx`) as ModelFile;
    const evil = Buffer.from(onnx.content);
    evil[evil.length - 1] = (evil[evil.length - 1] as number) ^ 0xff;
    await mlflow.uploadArtifact(t.runId, `${MODEL_FOLDER}/model.onnx`, evil);
    await mlflow.setAlias(model, 'champion', v1);

    const pair = await jose.generateKeyPair('ES256', { extractable: true });
    signingKey = pair.privateKey;
    otherKey = (await jose.generateKeyPair('ES256')).privateKey;
    publicJwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };

    accessLogFile = path.join(dir, 'access.log');
    inferenceDir = path.join(dir, 'inference');
    const config = parseGatewayConfig({
      port: 0,
      workers: 1,
      mlflowTrackingUri: inject('mlflowTrackingUri'),
      models: [{ name: model, ood: 'flag' }],
      apiKeys: [alice.entry, ops.entry],
      adminKeys: [root.entry],
      jwt: { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [publicJwk as Record<string, unknown>] } },
      rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
      headersTimeoutMs: 1000,
      requestTimeoutMs: 2000,
      maxBodyBytes: 4096,
      accessLog: accessLogFile,
      inferenceLogDir: inferenceDir,
    });
    gw = await startGatewayProcess(config);
    predictUrl = `${gw.url}/v1/models/${model}/predict`;
  });

  afterAll(async () => {
    await gw?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sign = (claims: jose.JWTPayload, opts: { key?: Key; alg?: string; kid?: string } = {}) =>
    new jose.SignJWT({ roles: ['predict'], ...claims })
      .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? 'k1' })
      .sign(opts.key ?? signingKey);
  const jwt = (claims: jose.JWTPayload = {}) =>
    sign({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-1', exp: Math.floor(Date.now() / 1000) + 600, ...claims });
  const metrics = async () => (await get(`${gw.url}/metrics`)).text;
  const predictions = async () =>
    metricValue(await metrics(), 'gateway_prediction_score_count', { model, version: v1 }) ?? 0;

  it('serves a prediction from the verified champion with Server-Timing for every stage', async () => {
    const r = await post(predictUrl, { features: f0 }, bearer(alice.key));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.version).toBe(v1);
    expect(r.json.route).toBe('stable');
    expect(r.json.score).toBeGreaterThanOrEqual(0);
    expect(r.json.score).toBeLessThanOrEqual(1);
    const timing = r.headers.get('server-timing') ?? '';
    for (const stage of ['auth', 'limit', 'validate', 'redact', 'infer', 'log']) {
      expect(timing).toMatch(new RegExp(`${stage};dur=\\d+\\.\\d+`));
    }
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const again = await post(
      predictUrl,
      { features: f0 },
      { 'x-api-key': alice.key, 'x-request-id': 'req-42' },
    );
    expect(again.json.score).toBe(r.json.score);
    expect(again.json.requestId).toBe('req-42');
  });

  it('answers health and readiness', async () => {
    expect((await get(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await get(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json.models).toEqual([model]);
  });

  it('refuses a tampered artifact and keeps serving the verified version', async () => {
    const registry = new MlflowModelRegistry(mlflow);
    await expect(loadVerifiedModel(registry, model, { version: tampered })).rejects.toThrow(
      ModelIntegrityError,
    );
    await expect(loadVerifiedModel(registry, model, { version: tampered })).rejects.toThrow(
      /model\.onnx: sha256 [0-9a-f]{64} does not match manifest/,
    );
    const r = await put(
      `${gw.url}/admin/v1/models/${model}/route`,
      { canary: tampered, canaryWeight: 0.5 },
      bearer(root.key),
    );
    expect(r.status).toBe(422);
    expect(r.json.error?.code).toBe('integrity');
    expect(r.json.error?.message).toMatch(/failed its digest check/);
    const state = await get(`${gw.url}/admin/v1/models/${model}/route`, bearer(root.key));
    expect(state.json.canary).toBeUndefined();
    expect(
      metricValue(await metrics(), 'gateway_model_loads_total', {
        model,
        version: tampered,
        result: 'integrity',
      }),
    ).toBe(1);
    expect((await post(predictUrl, { features: f0 }, bearer(alice.key))).json.version).toBe(v1);
    await new Promise((res) => setTimeout(res, 1500));
    expect(readFileSync(accessLogFile, 'utf8')).toMatch(/"decision":"integrity_refused"/);
  });

  it('refuses every other kind of tampering at load, over real HTTP, and serves none of them', async () => {
    const onnx = files.find((f) => f.path === `${MODEL_FOLDER}/model.onnx`) as ModelFile;
    const evil = Buffer.from(onnx.content);
    evil[0] = (evil[0] as number) ^ 0x01;
    const evilFiles = files.map((f) => (f === onnx ? { path: f.path, content: evil } : f));
    // A manifest rewritten to match the swapped model: its own digest no longer matches the pinned one.
    const swapped = await registerModelFiles(mlflow, model, files);
    await mlflow.uploadArtifact(swapped.runId, onnx.path, evil);
    await mlflow.uploadArtifact(
      swapped.runId,
      manifestArtifactPath(MODEL_FOLDER),
      buildManifest(MODEL_FOLDER, evilFiles).json,
    );
    // A file smuggled in beside the verified ones.
    const extra = await registerModelFiles(mlflow, model, files);
    await mlflow.uploadArtifact(extra.runId, `${MODEL_FOLDER}/payload.pkl`, Buffer.from('cos\nsystem\n'));
    // A file the pinned manifest lists is not there.
    const partial = await registerModelFiles(
      mlflow,
      model,
      files.filter((f) => f !== onnx),
    );
    const full = buildManifest(MODEL_FOLDER, files);
    await mlflow.uploadArtifact(partial.runId, manifestArtifactPath(MODEL_FOLDER), full.json);
    const missing = await mlflow.createModelVersion({
      name: model,
      source: `runs:/${partial.runId}/${MODEL_FOLDER}`,
      runId: partial.runId,
      tags: { [MANIFEST_SHA256_TAG]: full.sha256 },
    });
    // A version registered without its pinned manifest digest.
    const unpinned = await mlflow.createModelVersion({
      name: model,
      source: `runs:/${extra.runId}/${MODEL_FOLDER}`,
      runId: extra.runId,
    });
    await new Promise((res) => setTimeout(res, 500));
    const cases: Array<[string, string, RegExp]> = [
      ['rewritten manifest', swapped.version, /manifest digest [0-9a-f]{64} does not match the pinned/],
      ['extra file', extra.version, /payload\.pkl: not in the manifest/],
      ['missing file', missing.version, /model\.onnx: missing/],
      ['no pinned digest', unpinned.version, /no mlops\.manifest_sha256 tag/],
    ];
    const registry = new MlflowModelRegistry(mlflow);
    for (const [what, version, message] of cases) {
      await expect(loadVerifiedModel(registry, model, { version }), what).rejects.toThrow(
        ModelIntegrityError,
      );
      const r = await put(
        `${gw.url}/admin/v1/models/${model}/route`,
        { canary: version, canaryWeight: 1 },
        bearer(root.key),
      );
      expect(r.status, what).toBe(422);
      expect(r.json.error?.code, what).toBe('integrity');
      expect(r.json.error?.message, what).toMatch(message);
      const m = await metrics();
      expect(metricValue(m, 'gateway_model_loads_total', { model, version, result: 'integrity' }), what).toBe(
        1,
      );
    }
    const state = await get(`${gw.url}/admin/v1/models/${model}/route`, bearer(root.key));
    expect(state.json.canary).toBeUndefined();
    const after = await post(predictUrl, { features: f0 }, bearer(alice.key));
    expect(after.status).toBe(200);
    expect(after.json.version).toBe(v1);
  });

  it('refuses every bad credential with 401 and a message naming the problem', async () => {
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${jose.base64url.encode(
      JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now + 600, roles: ['predict'] }),
    )}.`;
    const hsWithPublicKey = await new jose.SignJWT({ roles: ['predict'] })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('x')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['no credentials', {}, /missing credentials/],
      ['unknown API key', { 'x-api-key': 'mk_nope' }, /invalid API key/],
      ['Basic scheme', { authorization: 'Basic YWxpY2U6cHc=' }, /must be "Bearer <token>"/],
      ['alg none', bearer(unsigned), /algorithm is not allowed|malformed/],
      ['HS256 with the public key as secret', bearer(hsWithPublicKey), /algorithm is not allowed/],
      ['expired', bearer(await jwt({ exp: now - 60 })), /token expired/],
      ['wrong audience', bearer(await jwt({ aud: 'someone-else' })), /audience/],
      ['wrong issuer', bearer(await jwt({ iss: 'https://evil.test' })), /issuer/],
      ['future nbf', bearer(await jwt({ nbf: now + 600 })), /not yet valid/],
      [
        'wrong signature',
        bearer(await sign({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now + 600 }, { key: otherKey })),
        /signature is invalid/,
      ],
      [
        'unknown key id',
        bearer(await sign({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: now + 600 }, { kid: 'k9' })),
        /unknown key/,
      ],
      ['no exp', bearer(await sign({ iss: ISSUER, aud: AUDIENCE, sub: 'x' })), /exp/],
      ['garbage token', bearer('aaa.bbb.ccc'), /malformed/],
    ];
    const before = await predictions();
    for (const [what, headers, message] of cases) {
      const r = await post(predictUrl, { features: f0 }, headers);
      expect(r.status, what).toBe(401);
      expect(r.json.error?.message, what).toMatch(message);
      expect(r.headers.get('www-authenticate'), what).toBe('Bearer');
    }
    const noRole = await post(predictUrl, { features: f0 }, bearer(await jwt({ roles: ['reader'] })));
    expect(noRole.status).toBe(403);
    expect(await predictions()).toBe(before);
    const ok = await post(predictUrl, { features: f0 }, bearer(await jwt()));
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    // A subject that is an email address is a principal, but never written to the log as such.
    const emailSub = await post(
      predictUrl,
      { features: f0 },
      bearer(await jwt({ sub: 'sam.smith@corp.example' })),
    );
    expect(emailSub.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1500));
    const log = readFileSync(accessLogFile, 'utf8');
    expect(log).toContain('"principal":"jwt:[REDACTED:email]"');
    expect(log).not.toContain('sam.smith@corp.example');
  });

  it('refuses bad input with the right status and a message naming the problem; none reaches the model', async () => {
    const auth = bearer(alice.key);
    const before = await predictions();
    const { amount: _drop, ...missingAmount } = f0;
    const cases: Array<[string, unknown, Record<string, string>, number, RegExp]> = [
      [
        'wrong content type',
        JSON.stringify({ features: f0 }),
        { 'content-type': 'text/plain' },
        415,
        /application\/json/,
      ],
      ['malformed JSON', '{"features": {', {}, 400, /not valid JSON/],
      [
        'NaN literal',
        JSON.stringify({ features: f0 }).replace(/"amount":[^,]+/, '"amount":NaN'),
        {},
        400,
        /not valid JSON/,
      ],
      [
        'Infinity via overflow',
        JSON.stringify({ features: f0 }).replace(/"amount":[^,]+/, '"amount":1e400'),
        {},
        400,
        /features\.amount/,
      ],
      ['missing field', { features: missingAmount }, {}, 400, /features\.amount: Required/],
      [
        'wrong type',
        { features: { ...f0, hour_of_day: '13' } },
        {},
        400,
        /features\.hour_of_day: must be a finite number/,
      ],
      ['unknown field', { features: { ...f0, shoe_size: 44 } }, {}, 400, /shoe_size/],
      ['unknown top-level field', { features: f0, debug: true }, {}, 400, /debug/],
      ['features not an object', { features: [1, 2] }, {}, 400, /features/],
      ['deep nesting', `${'['.repeat(2000)}${']'.repeat(2000)}`, {}, 400, /nesting deeper than/],
      ['oversized body', { features: f0, key: 'x'.repeat(5000) }, {}, 413, /exceeds 4096 bytes/],
    ];
    for (const [what, body, headers, status, message] of cases) {
      const r = await post(predictUrl, body, { ...auth, ...headers });
      expect(r.status, `${what}: ${JSON.stringify(r.json)}`).toBe(status);
      expect(r.json.error?.message, what).toMatch(message);
    }
    const getPredict = await get(predictUrl, auth);
    expect(getPredict.status).toBe(405);
    const unknownModel = await post(`${gw.url}/v1/models/nope/predict`, { features: f0 }, auth);
    expect(unknownModel.status).toBe(404);
    expect(unknownModel.json.error?.message).toMatch(/unknown model "nope"/);
    const malformedEscape = await post(`${gw.url}/v1/models/%E0%A4%A/predict`, { features: f0 }, auth);
    expect(malformedEscape.status).toBe(404);

    // Chunked oversized body (no content-length) and a body shorter than its content-length.
    const chunked = await raw(gw.port, [
      `POST /v1/models/${model}/predict HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice.key}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`,
      `1388\r\n${'a'.repeat(5000)}\r\n`,
    ]);
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
    const truncated = await raw(
      gw.port,
      [
        `POST /v1/models/${model}/predict HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice.key}\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n`,
        '{"features": {"amount": 1',
      ],
      { end: true },
    );
    expect(truncated === '' || /^HTTP\/1\.1 400/.test(truncated), truncated).toBe(true);
    expect(await predictions()).toBe(before);
    expect((await post(predictUrl, { features: f0 }, auth)).status).toBe(200);
  });

  it('cuts slow-loris connections and keeps serving others', async () => {
    const started = Date.now();
    const slow = raw(
      gw.port,
      [`POST /v1/models/${model}/predict HTTP/1.1\r\nhost: x\r\n`, { waitMs: 4000 }, 'x-late: 1\r\n'],
      {
        timeoutMs: 8000,
      },
    );
    const meanwhile = await post(predictUrl, { features: f0 }, bearer(alice.key));
    expect(meanwhile.status).toBe(200);
    const answer = await slow;
    expect(Date.now() - started).toBeLessThan(4000);
    expect(answer === '' || /^HTTP\/1\.1 408/.test(answer), answer).toBe(true);
    expect((await get(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('flags out-of-distribution input, redacts PII before logging, and writes the inference log', async () => {
    const email = 'jane.doe@example.com';
    const card = '4111 1111 1111 1111';
    const r = await post(
      predictUrl,
      { features: { ...f0, merchant_category: email, amount: 5e6 } },
      bearer(alice.key),
    );
    expect(r.status).toBe(200);
    expect(r.json.ood).toBe(true);
    const refused = await post(predictUrl, { features: { ...f0, [card]: 1 } }, bearer(alice.key));
    expect(refused.status).toBe(400);
    await new Promise((res) => setTimeout(res, 1500));
    const log = readFileSync(accessLogFile, 'utf8');
    expect(log).toContain('"principal":"alice"');
    expect(log).toContain('"ood":true');
    expect(log).not.toContain(email);
    expect(log).not.toContain(card);
    expect(log).toContain('[REDACTED:card]');
    const reader = new JsonlInferenceLog(inferenceDir);
    const records = [];
    for await (const rec of reader.read(model, new Date(Date.now() - 3_600_000), new Date(Date.now() + 1000)))
      records.push(rec);
    await reader.close();
    expect(records.length).toBeGreaterThan(3);
    const flagged = records.find((x) => x.ood);
    expect(flagged?.features.merchant_category).toBe('[REDACTED:email]');
    expect(JSON.stringify(records)).not.toContain(email);
    expect(flagged?.version).toBe(v1);
    const m = await metrics();
    expect(
      metricValue(m, 'gateway_ood_requests_total', { model, version: v1, action: 'flag' }),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'gateway_pii_redactions_total', { class: 'email' })).toBeGreaterThanOrEqual(1);
  });

  it('exposes per-version Prometheus metrics', async () => {
    const m = await metrics();
    expect(
      metricValue(m, 'gateway_requests_total', { model, version: v1, status: '200', route: 'stable' }),
    ).toBeGreaterThan(3);
    expect(metricValue(m, 'gateway_request_duration_seconds_count', { model, version: v1 })).toBeGreaterThan(
      3,
    );
    expect(
      metricValue(m, 'gateway_prediction_score_bucket', { model, version: v1, le: '+Inf' }),
    ).toBeGreaterThan(3);
    expect(metricValue(m, 'gateway_model_info', { model, version: v1, route: 'stable' })).toBe(1);
    expect(metricValue(m, 'gateway_refusals_total', { reason: 'auth' })).toBeGreaterThan(10);
    expect(m).toMatch(/gateway_ood_rate\{model="[^"]+",version="\d+"\} [0-9.]+/);
  });

  it('keeps the admin API apart: predict keys and JWTs are refused, bad updates name the field', async () => {
    const url = `${gw.url}/admin/v1/models/${model}/route`;
    expect((await get(url)).status).toBe(401);
    expect((await get(url, bearer(alice.key))).status).toBe(401);
    expect((await get(url, bearer(ops.key))).status).toBe(401);
    expect((await get(url, bearer(await jwt({ roles: ['admin'] })))).status).toBe(401);
    const bad = await put(url, { canaryWeight: 2 }, bearer(root.key));
    expect(bad.status).toBe(400);
    expect(bad.json.error?.message).toMatch(/canaryWeight/);
    const noCanary = await put(url, { canaryWeight: 0.5 }, bearer(root.key));
    expect(noCanary.status).toBe(400);
    expect(noCanary.json.error?.message).toMatch(/canaryWeight: must be 0 without a canary/);
    const unknown = await put(url, { weights: 1 }, bearer(root.key));
    expect(unknown.status).toBe(400);
    expect(unknown.json.error?.message).toMatch(/weights/);
    const list = await get(`${gw.url}/admin/v1/models`, bearer(root.key));
    expect(list.json.models).toEqual([expect.objectContaining({ model, stable: v1 })]);
  });

  it('serves the staging version to admin principals only', async () => {
    const url = `${gw.url}/admin/v1/models/${model}/route`;
    expect((await put(url, { staging: v2 }, bearer(root.key))).json.staging).toBe(v2);
    const asAlice = await post(
      predictUrl,
      { features: f0 },
      { ...bearer(alice.key), 'x-mlops-route': 'staging' },
    );
    expect(asAlice.status).toBe(403);
    expect(asAlice.json.error?.message).toMatch(/admin principals only/);
    const asOps = await post(
      predictUrl,
      { features: f0 },
      { ...bearer(ops.key), 'x-mlops-route': 'staging' },
    );
    expect(asOps.status).toBe(200);
    expect(asOps.json).toMatchObject({ version: v2, route: 'staging' });
    expect((await post(predictUrl, { features: f0 }, bearer(ops.key))).json.version).toBe(v1);
    expect((await put(url, { staging: null }, bearer(root.key))).json.staging).toBeUndefined();
  });

  it('honours canary weights within statistical tolerance, sticky by request key', async () => {
    const url = `${gw.url}/admin/v1/models/${model}/route`;
    const weight = 0.3;
    expect(
      (await put(url, { canary: v2, canaryWeight: weight, sticky: false }, bearer(root.key))).status,
    ).toBe(200);
    const n = 400;
    let canary = 0;
    for (let i = 0; i < n; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, () => post(predictUrl, { features: f0 }, bearer(alice.key))),
      );
      for (const r of batch) if (r.json.version === v2) canary++;
    }
    const sd = Math.sqrt((weight * (1 - weight)) / n);
    expect(Math.abs(canary / n - weight)).toBeLessThan(4 * sd);

    await put(url, { sticky: true }, bearer(root.key));
    const keys = Array.from({ length: 200 }, (_, i) => `customer-${i}`);
    const first = new Map<string, unknown>();
    for (const key of keys)
      first.set(key, (await post(predictUrl, { features: f0, key }, bearer(alice.key))).json.version);
    for (const key of keys.slice(0, 50)) {
      expect((await post(predictUrl, { features: f0, key }, bearer(alice.key))).json.version).toBe(
        first.get(key),
      );
    }
    const share = [...first.values()].filter((v) => v === v2).length / keys.length;
    expect(Math.abs(share - weight)).toBeLessThan(4 * Math.sqrt((weight * (1 - weight)) / keys.length));
  });

  it('mirrors to the candidate in shadow mode, answers from stable, and compares', async () => {
    const url = `${gw.url}/admin/v1/models/${model}/route`;
    expect((await put(url, { canary: v2, canaryWeight: 0, shadow: true }, bearer(root.key))).status).toBe(
      200,
    );
    const before =
      metricValue(await metrics(), 'gateway_shadow_comparisons_total', { model, candidate: v2 }) ?? 0;
    for (const f of features.slice(0, 20)) {
      const r = await post(predictUrl, { features: f }, bearer(alice.key));
      expect(r.json).toMatchObject({ version: v1, route: 'stable' });
    }
    await new Promise((res) => setTimeout(res, 200));
    const m = await metrics();
    expect((metricValue(m, 'gateway_shadow_comparisons_total', { model, candidate: v2 }) ?? 0) - before).toBe(
      20,
    );
    expect(metricValue(m, 'gateway_shadow_abs_diff_count', { model, candidate: v2 })).toBeGreaterThanOrEqual(
      20,
    );
    await put(url, { canary: null }, bearer(root.key));
  });

  it('hot-swaps the stable version under load without a failed request', async () => {
    const url = `${gw.url}/admin/v1/models/${model}/route`;
    let stop = false;
    const statuses = new Map<number, number>();
    const versions = new Set<unknown>();
    const loop = async () => {
      let i = 0;
      while (!stop) {
        const r = await post(predictUrl, { features: features[i++ % features.length] }, bearer(alice.key));
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        versions.add(r.json.version);
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await new Promise((r) => setTimeout(r, 300));
    for (const v of [v2, v1, v2, v1]) {
      const r = await put(url, { stable: v }, bearer(root.key));
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      await new Promise((res) => setTimeout(res, 300));
    }
    stop = true;
    await Promise.all(loops);
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)).toBeGreaterThan(50);
    expect(versions).toEqual(new Set([v1, v2]));
  });

  it('answers concurrent requests from shared inference calls, each with the score it gets alone', async () => {
    const batch = features.slice(0, 48);
    const alone: unknown[] = [];
    for (const f of batch) {
      const r = await post(predictUrl, { features: f }, bearer(alice.key));
      expect(r.status).toBe(200);
      alone.push([r.json.version, r.json.score]);
    }
    const version = (alone[0] as [string])[0];
    // Opens the client's connections first, so that the measured round's requests go out at once.
    await Promise.all(batch.map((f) => post(predictUrl, { features: f }, bearer(alice.key))));
    const rowsBefore = await metrics();
    const count = (text: string) =>
      metricValue(text, 'gateway_inference_batch_rows_count', { model, version }) ?? 0;
    const single = (text: string) =>
      metricValue(text, 'gateway_inference_batch_rows_bucket', { model, version, le: '1' }) ?? 0;
    const together = await Promise.all(
      batch.map((f) => post(predictUrl, { features: f }, bearer(alice.key))),
    );
    expect(together.map((r) => r.status)).toEqual(batch.map(() => 200));
    expect(together.map((r) => [r.json.version, r.json.score])).toEqual(alone);
    const rowsAfter = await metrics();
    // Fewer calls than requests: some call carried more than one row.
    const calls = count(rowsAfter) - count(rowsBefore);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(batch.length);
    expect(calls - (single(rowsAfter) - single(rowsBefore))).toBeGreaterThan(0);
  });

  it('drains on close: readiness goes 503 and in-flight requests finish', async () => {
    const config = parseGatewayConfig({
      port: 0,
      workers: 1,
      mlflowTrackingUri: inject('mlflowTrackingUri'),
      models: [{ name: model, stable: { version: v1 } }],
      apiKeys: [alice.entry],
      accessLog: 'off',
    });
    const second = await startGatewayProcess(config);
    const url = `${second.url}/v1/models/${model}/predict`;
    const inflight = Array.from({ length: 10 }, () => post(url, { features: f0 }, bearer(alice.key)));
    await new Promise((r) => setTimeout(r, 5));
    const closing = second.close();
    const results = await Promise.allSettled(inflight);
    await closing;
    for (const r of results) if (r.status === 'fulfilled') expect(r.value.status).toBe(200);
    await expect(fetch(`${second.url}/healthz`)).rejects.toThrow();
  });
});
