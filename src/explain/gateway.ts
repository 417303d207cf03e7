/**
 * `POST /v1/models/<model>/explain`: the prediction and its top attributions for one input, for principals with
 * the `explain` (or `admin`) role. The request is the predict body (`{features, key?}`) plus an optional
 * `top` (how many attributions to return); it goes through the gateway's own stages: authentication, the rate
 * limiter, body limits, the model's feature schema, PII redaction, then the version the route table picks.
 *
 * The explanation is KernelSHAP of the positive-class probability against the version's reference profile
 * (one reference row: each numeric feature at its profile mean, or the middle of its range; each categorical
 * feature at its first category), with every coalition enumerated; for a tree ensemble the coalition values come
 * from the tree structure. It must finish within {@link EXPLAIN_LATENCY_BUDGET_MS} or the answer is a 503 naming
 * the budget (a version's explainer is opened once, on its first explanation, outside the budget). Answered requests are logged like predictions: the inference log gets the redacted features and
 * the score, the access log a line with decision `explained`.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { GatewayConfig, ReferenceProfile } from '../core/contracts/gateway';
import type { Authenticator } from '../gateway/auth';
import type { LoadedModel } from '../gateway/models';
import { redactRecord, redactText } from '../gateway/pii';
import type { RateLimiter } from '../gateway/rate-limit';
import { RouteError, type RouteTable } from '../gateway/router';
import type { InferenceLog } from '../ports/inference-log';
import { jsonDepthExceeds, RequestValidationError } from '../gateway/validation';
import { kernelShap } from './kernel-shap';
import { ExplainableModel, type Row } from './model';
import { rowFromFeatures } from './rows';
import { HttpError } from '../gateway/http-error';
import { admitRate, authenticateRequest, requireJson, requireRole } from '../gateway/admission';
import { readBodyText } from '../gateway/http-body';

/** The endpoint's path; group 1 is the model name. */
export const EXPLAIN_PATH = /^\/v1\/models\/([^/]+)\/explain$/;
/** Longest an explanation may take, from the request's arrival: an interactive "why" for a reviewer. */
export const EXPLAIN_LATENCY_BUDGET_MS = 250;
/** Attributions returned when the request does not say. */
export const DEFAULT_TOP_ATTRIBUTIONS = 5;
/** Most attributions a request may ask for. */
export const MAX_TOP_ATTRIBUTIONS = 50;

const TopSchema = z.int().min(1).max(MAX_TOP_ATTRIBUTIONS).optional();

/** What the endpoint uses of the gateway (the server's own dependencies). */
export interface ExplainDeps {
  config: GatewayConfig;
  table: RouteTable;
  auth: Authenticator;
  limiter: RateLimiter;
  accessLog?: Logger;
  inferenceLog?: InferenceLog;
}

/** One reference row from a profile (see the module comment). */
export function referenceRow(model: LoadedModel): Row {
  const profile: ReferenceProfile = model.profile;
  const values: Record<string, number | string> = {};
  for (const n of profile.numeric) {
    values[n.name] =
      n.mean ?? (n.min !== undefined && n.max !== undefined ? (n.min + n.max) / 2 : (n.min ?? n.max ?? 0));
  }
  for (const c of profile.categorical) values[c.name] = c.categories[0] ?? '';
  return rowFromFeatures(model.schema, values);
}

const explainers = new WeakMap<LoadedModel, Promise<{ model: ExplainableModel; background: Row[] }>>();

function explainerOf(loaded: LoadedModel): Promise<{ model: ExplainableModel; background: Row[] }> {
  let e = explainers.get(loaded);
  if (!e) {
    e = ExplainableModel.fromSession(loaded.session, loaded.schema, loaded.onnx).then(async (model) => {
      const background = [referenceRow(loaded)];
      await model.treeMatches(background);
      return { model, background };
    });
    explainers.set(loaded, e);
  }
  return e;
}

function withBudget<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new HttpError(503, 'explain_budget_exceeded', `explanation did not finish within ${ms} ms`)),
      Math.max(0, ms),
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Handles one explain request (mounted by the gateway's route table). */
export async function handleExplain(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  model: string,
  deps: ExplainDeps,
): Promise<void> {
  const started = performance.now();
  const { config } = deps;
  const headerId = req.headers['x-request-id'];
  const requestId =
    typeof headerId === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(headerId) ? headerId : randomUUID();
  let status = 200;
  let body: string;
  let headers: Record<string, string> = {};
  let principalId: string | undefined;
  let version: string | undefined;
  let route: string = 'none';
  let top: string[] = [];
  try {
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' });
    const who = authenticateRequest(deps.auth, req);
    const principal = who instanceof Promise ? await who : who;
    principalId = config.redaction ? redactText(principal.id).text : principal.id;
    requireRole(principal, ['explain'], 'request explanations (role explain)', principalId);
    await admitRate(deps.limiter, principal.id);
    requireJson(req);
    const text = await readBodyText(req, config.maxBodyBytes);
    if (jsonDepthExceeds(text, config.maxJsonDepth))
      throw new HttpError(400, 'too_deep', `JSON nesting deeper than ${config.maxJsonDepth} levels`);
    let parsed: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
      parsed = v as Record<string, unknown>;
    } catch (err) {
      throw new HttpError(400, 'malformed_json', `body is not valid JSON: ${(err as Error).message}`);
    }
    const { top: topRaw, ...predictBody } = parsed;
    const topParsed = TopSchema.safeParse(topRaw);
    if (!topParsed.success)
      throw new HttpError(400, 'invalid_input', `top: must be an integer from 1 to ${MAX_TOP_ATTRIBUTIONS}`);
    const k = topParsed.data ?? DEFAULT_TOP_ATTRIBUTIONS;
    const key = typeof predictBody.key === 'string' ? predictBody.key : undefined;
    let picked;
    try {
      picked = deps.table.pick(model, key, false);
    } catch (err) {
      if (err instanceof RouteError) throw new HttpError(err.status, 'no_route', err.message);
      throw err;
    }
    route = picked.route;
    const served = picked.served;
    let features;
    try {
      features = served.validator.parse(predictBody).features;
    } catch (err) {
      if (err instanceof RequestValidationError) throw new HttpError(400, 'invalid_input', err.message);
      throw err;
    }
    const logFeatures = config.redaction ? redactRecord(features).record : features;
    const slot = served.slot.acquire();
    try {
      const loaded = slot.model;
      version = loaded.version;
      // Opening a version's explainer (once per version) is not the request's: the budget starts after it.
      const { model: m, background } = await explainerOf(loaded);
      const result = await withBudget(
        kernelShap(m, [rowFromFeatures(loaded.schema, features)], background),
        EXPLAIN_LATENCY_BUDGET_MS,
      );
      const values = result.values[0] as Float64Array;
      const score = result.predictions[0] as number;
      const order = result.features
        .map((f, j) => ({ feature: f, attribution: values[j] as number }))
        .sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution) || (a.feature < b.feature ? -1 : 1))
        .slice(0, k);
      top = order.map((o) => o.feature);
      body = JSON.stringify({
        model,
        version,
        route,
        score,
        expectedValue: result.expectedValue,
        method: `kernel-shap (${result.valueFunction} value function, ${result.coalitions[0] ?? 0} coalitions, reference-profile baseline)`,
        attributions: order,
        requestId,
      });
      deps.inferenceLog?.append({
        time: new Date().toISOString(),
        requestId,
        model,
        version,
        route: route as 'stable' | 'canary' | 'staging',
        features: logFeatures,
        prediction: score,
        ood: served.ood.check(features).ood,
      });
    } finally {
      slot.release();
    }
  } catch (err) {
    if (err instanceof HttpError) {
      status = err.status;
      headers = err.headers;
      body = JSON.stringify({ error: { code: err.code, message: err.message } });
    } else {
      status = 500;
      body = JSON.stringify({ error: { code: 'internal', message: 'explanation failed' } });
    }
  }
  const ms = performance.now() - started;
  deps.accessLog?.info({
    reqId: requestId,
    principal: principalId,
    model,
    version,
    route,
    status,
    ms: Math.round(ms * 1000) / 1000,
    decision: status === 200 ? 'explained' : 'explain_refused',
    top: status === 200 ? top : undefined,
  });
  if (!res.headersSent && !res.destroyed) {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'server-timing': `explain;dur=${ms.toFixed(3)}`,
      'x-request-id': requestId,
      ...headers,
    });
    res.end(body);
  }
}
