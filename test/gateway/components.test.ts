/**
 * Gateway components on their own: JWT verification against a JWKS served over real HTTP (key
 * rotation by kid), OOD z-scores from a reference profile, the inference log's hourly partitions read
 * back by window, the in-memory bucket's refill arithmetic on a controlled clock, and the compiled
 * request check agreeing with the zod schema it stands in for on every body tried, and the batching
 * setting read from the environment.
 */
import * as jose from 'jose';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BATCH, JwtConfigSchema, ReferenceProfileSchema } from '../../src/core/contracts/gateway';
import { loadGatewayConfig } from '../../src/gateway/config';
import { Authenticator } from '../../src/gateway/auth';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import { LineChunks } from '../../src/gateway/line-chunks';
import { OodDetector } from '../../src/gateway/ood';
import { MemoryRateLimiter } from '../../src/gateway/rate-limit';
import { stickyFraction } from '../../src/gateway/router';
import type { InferenceRecord } from '../../src/ports/inference-log';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import {
  jsonDepthExceeds,
  MAX_CATEGORY_LENGTH,
  MAX_REQUEST_KEY_LENGTH,
  PredictValidator,
  RequestValidationError,
  validatePredict,
} from '../../src/gateway/validation';
import { fraudFeatures } from './fixtures';

describe('JWT against a JWKS URL', () => {
  let server: http.Server;
  let url: string;
  const keys: jose.JWK[] = [];
  let requests = 0;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('verifies tokens by kid, caches verified ones, and refuses HS256 in the config', async () => {
    const a = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    keys.push({ ...(await jose.exportJWK(a.publicKey)), kid: 'a', alg: 'EdDSA' });
    const auth = new Authenticator(
      [],
      JwtConfigSchema.parse({ issuer: 'iss', audience: 'aud', jwksUrl: url }),
    );
    const token = await new jose.SignJWT({ roles: 'predict admin' })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'a' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject('svc')
      .setExpirationTime('5m')
      .sign(a.privateKey);
    const p = await auth.authenticate(token);
    expect(p).toMatchObject({ id: 'jwt:svc', via: 'jwt' });
    expect([...p.roles].sort()).toEqual(['admin', 'predict']);
    const fetched = requests;
    await auth.authenticate(token);
    expect(requests).toBe(fetched);
    const b = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const unknown = await new jose.SignJWT({ roles: ['predict'] })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'b' })
      .setIssuer('iss')
      .setAudience('aud')
      .setSubject('svc')
      .setExpirationTime('5m')
      .sign(b.privateKey);
    await expect(auth.authenticate(unknown)).rejects.toThrow(/unknown key/);
    expect(() =>
      JwtConfigSchema.parse({ issuer: 'i', audience: 'a', jwksUrl: url, algorithms: ['HS256'] }),
    ).toThrow(/HS256 is not allowed/);
    expect(() => JwtConfigSchema.parse({ issuer: 'i', audience: 'a' })).toThrow(
      /exactly one of jwksUrl or jwks/,
    );
  });
});

describe('OOD detector', () => {
  it('flags ranges, z-scores and unseen categories, naming each feature but no value of a category', () => {
    const profile = ReferenceProfileSchema.parse({
      numeric: [
        { name: 'amount', min: 0, max: 1000, mean: 50, std: 10 },
        { name: 'hour', min: 0, max: 23 },
      ],
      categorical: [{ name: 'region', categories: ['north', 'south'] }],
    });
    const d = new OodDetector(profile, 6);
    expect(d.check({ amount: 55, hour: 3, region: 'north' })).toEqual({ ood: false, reasons: [] });
    expect(d.check({ amount: 200, hour: 3, region: 'north' }).reasons).toEqual([
      'amount: z-score 15.0 beyond 6',
    ]);
    expect(d.check({ amount: -1, hour: 24, region: 'a@b.io' }).reasons).toEqual([
      'amount: -1 outside the training range [0, 1000]',
      'hour: 24 outside the training range [0, 23]',
      'region: unseen category',
    ]);
    expect(d.check({ amount: null, hour: null, region: null }).ood).toBe(false);
  });
});

describe('inference log partitions', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-inflog-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes hourly partitions and reads back exactly the window asked for', async () => {
    const log = new JsonlInferenceLog(dir);
    const base = Date.UTC(2026, 10, 30, 22, 30);
    const rec = (minutes: number, i: number): InferenceRecord => ({
      time: new Date(base + minutes * 60_000).toISOString(),
      requestId: `r${i}`,
      model: 'fraud',
      version: '3',
      route: 'stable',
      features: { amount: i },
      prediction: 0.1,
      ood: false,
    });
    [0, 20, 40, 95].forEach((m, i) => log.append(rec(m, i)));
    // A time with an offset (not toISOString's UTC form) goes to its UTC hour too: 23:10 UTC.
    log.append({ ...rec(0, 4), time: '2026-12-01T00:10:00.000+01:00' });
    await log.close();
    expect(readdirSync(path.join(dir, 'fraud')).sort()).toEqual(['date=2026-11-30', 'date=2026-12-01']);
    const read = async (from: number, to: number) => {
      const out: string[] = [];
      for await (const r of log.read('fraud', new Date(base + from * 60_000), new Date(base + to * 60_000)))
        out.push(r.requestId);
      return out;
    };
    expect(await read(0, 200)).toEqual(['r0', 'r1', 'r2', 'r4', 'r3']);
    expect(await read(10, 41)).toEqual(['r1', 'r2', 'r4']);
    expect(await read(90, 100)).toEqual(['r3']);
  });
});

describe('log line chunks', () => {
  it('keeps every line, in order and as UTF-8, across chunk boundaries and for lines larger than a chunk', () => {
    const out: Buffer[] = [];
    const chunks = new LineChunks((b) => out.push(Buffer.from(b)), 64);
    const lines = ['short', 'é and ü', 'x'.repeat(30), '€'.repeat(5), 'y'.repeat(100), 'last'];
    for (const l of lines) chunks.push(l, true);
    chunks.push('raw\n');
    expect(chunks.pending).toBeGreaterThan(0);
    chunks.flush();
    expect(chunks.pending).toBe(0);
    expect(out.length).toBeGreaterThan(2);
    for (const b of out) expect(b.length).toBeLessThanOrEqual(100 + 1); // only the oversized line exceeds a chunk
    expect(Buffer.concat(out).toString('utf8')).toBe(`${lines.join('\n')}\nraw\n`);
    const emitted = out.length;
    chunks.flush(); // nothing left: no empty chunk
    expect(out.length).toBe(emitted);
  });
});

describe('JSON depth check', () => {
  it('counts nesting outside strings, exactly at the limit, with many brackets or few', () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(jsonDepthExceeds(nested(4), 4)).toBe(false);
    expect(jsonDepthExceeds(nested(5), 4)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":[1,{"c":[2]}]}}', 4)).toBe(true);
    // Many brackets side by side, or inside strings (escaped quotes too), are no nesting.
    expect(jsonDepthExceeds(`[${Array(50).fill('[]').join(',')}]`, 4)).toBe(false);
    expect(jsonDepthExceeds(`{"s":"${'{['.repeat(50)}\\"{{{{{"}`, 2)).toBe(false);
    expect(jsonDepthExceeds(`{"s":"\\"", "t":${nested(3)}}`, 3)).toBe(true);
  });
});

describe('token bucket arithmetic', () => {
  it('refills at the rate up to the burst and says when the next token comes', () => {
    let now = 0;
    const b = new MemoryRateLimiter(2, 3, () => now);
    expect([1, 2, 3, 4].map(() => b.takeSync('p').allowed)).toEqual([true, true, true, false]);
    expect(b.takeSync('p').retryAfterS).toBeCloseTo(0.5, 5);
    now += 500;
    expect(b.takeSync('p').allowed).toBe(true);
    now += 10_000;
    expect(b.takeMany('p', 10)).toEqual({ granted: 3, retryAfterS: 0 });
    expect(b.takeSync('q').allowed).toBe(true);
  });

  it('spreads sticky keys evenly', () => {
    const n = 10_000;
    let below = 0;
    for (let i = 0; i < n; i++) if (stickyFraction(`user-${i}`) < 0.25) below++;
    expect(Math.abs(below / n - 0.25)).toBeLessThan(0.02);
  });
});

describe('compiled request check', () => {
  it('accepts exactly what the zod schema accepts, and refuses with its message', () => {
    const validator = new PredictValidator(FRAUD_FEATURE_SPEC);
    const numeric = FRAUD_FEATURE_SPEC.features.filter((f) => f.kind === 'numeric').map((f) => f.name);
    const categorical = FRAUD_FEATURE_SPEC.features.filter((f) => f.kind !== 'numeric').map((f) => f.name);
    const base = fraudFeatures(20, 5)[0] as Record<string, unknown>;
    const n0 = numeric[0] as string;
    const c0 = categorical[0] as string;
    const { [n0]: _dropped, ...withoutNumeric } = base;
    const bodies: unknown[] = [
      { features: base },
      { features: base, key: 'customer-1' },
      { features: { ...base, [n0]: null, [c0]: null } },
      { features: { ...base, [n0]: -0 } },
      { features: { ...base, [c0]: 'x'.repeat(MAX_CATEGORY_LENGTH) } },
      { features: base, key: 'k'.repeat(MAX_REQUEST_KEY_LENGTH) },
      { features: { ...base, [c0]: 'x'.repeat(MAX_CATEGORY_LENGTH + 1) } },
      { features: base, key: 'k'.repeat(MAX_REQUEST_KEY_LENGTH + 1) },
      { features: base, key: '' },
      { features: base, key: 7 },
      { features: base, key: undefined },
      { features: base, debug: true },
      { features: withoutNumeric },
      { features: { ...base, shoe_size: 44 } },
      { features: { ...base, [n0]: '13' } },
      { features: { ...base, [n0]: Number.NaN } },
      { features: { ...base, [n0]: Number.POSITIVE_INFINITY } },
      { features: { ...base, [n0]: Number.NEGATIVE_INFINITY } },
      { features: { ...base, [n0]: true } },
      { features: { ...base, [c0]: 3 } },
      { features: { ...base, [c0]: ['a'] } },
      { features: { ...base, [n0]: undefined } },
      { features: [1, 2] },
      { features: null },
      { features: 'x' },
      {},
      { key: 'k' },
      [],
      null,
      'features',
      42,
      JSON.parse(`{"features": ${JSON.stringify(base)}, "__proto__": {"x": 1}}`),
      JSON.parse(`{"features": {"__proto__": 1, ${JSON.stringify(base).slice(1)}}`),
    ];
    for (const [i, body] of bodies.entries()) {
      const zod = validator.schema.safeParse(body);
      let compiled: unknown;
      let refused: Error | undefined;
      try {
        compiled = validator.parse(body);
      } catch (err) {
        refused = err as Error;
      }
      expect(refused === undefined, `body ${i}: ${JSON.stringify(body)}`).toBe(zod.success);
      if (zod.success) expect(compiled, `body ${i}`).toEqual(zod.data);
      else {
        expect(refused, `body ${i}`).toBeInstanceOf(RequestValidationError);
        expect(() => validatePredict(validator.schema, body)).toThrow(refused?.message);
      }
    }
  });
});

describe('batching setting', () => {
  const env = { MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000', MLOPS_GATEWAY_MODELS: 'fraud' };
  it('defaults to batches of DEFAULT_MAX_BATCH, takes MLOPS_GATEWAY_MAX_BATCH, and refuses a bad one by name', () => {
    expect(loadGatewayConfig(env).maxBatch).toBe(DEFAULT_MAX_BATCH);
    expect(loadGatewayConfig({ ...env, MLOPS_GATEWAY_MAX_BATCH: '1' }).maxBatch).toBe(1);
    expect(() => loadGatewayConfig({ ...env, MLOPS_GATEWAY_MAX_BATCH: '0' })).toThrow(/maxBatch/);
    expect(() => loadGatewayConfig({ ...env, MLOPS_GATEWAY_MAX_BATCH: '2.5' })).toThrow(/maxBatch/);
    expect(() => loadGatewayConfig({ ...env, MLOPS_GATEWAY_MAX_BATCH: 'many' })).toThrow(
      /MLOPS_GATEWAY_MAX_BATCH: "many" is not a number/,
    );
  });
});
