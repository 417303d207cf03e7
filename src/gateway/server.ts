/**
 * The gateway's HTTP server (node:http: chosen over fastify by measurement, see
 * test/bench/gateway-framework.ts). One request runs these stages, each timed into `Server-Timing`:
 *
 *   auth -> limit -> validate (content type, size, depth, JSON, feature schema, OOD) -> redact -> infer -> log
 *
 * and only then is the answer written (`log` hands the redacted lines to the log writers, which
 * serialise them once per event-loop turn, after the answers). Every refusal is a JSON `{error: {code, message}}` whose message
 * names the problem; none reaches the model and none is logged with PII (messages are redacted too).
 *
 * Endpoints: `POST /v1/models/<model>/predict`, `GET /healthz`, `GET /readyz`, `GET /metrics`, and the
 * admin API (admin keys only): `GET /admin/v1/models`, `GET|PUT /admin/v1/models/<model>/route`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Logger } from 'pino';
import { formatZodError } from '../core/contracts/errors';
import {
  RouteUpdateSchema,
  type GatewayConfig,
  type RouteState,
  type RouteUpdate,
} from '../core/contracts/gateway';
import type { InferenceLog } from '../ports/inference-log';
import { EXPLAIN_PATH, handleExplain } from '../explain/gateway';
import { Authenticator, AuthError, type Principal } from './auth';
import { isoNow } from './clock';
import type { KpiWindow } from './kpi';
import type { ChatRoute } from './llm/route';
import type { GatewayMetrics, VersionMetrics } from './metrics';
import { ModelIntegrityError, ModelLoadError, predict } from './models';
import { redactRecord, redactText, vocabulariesOf, type Vocabularies } from './pii';
import type { RateLimiter } from './rate-limit';
import { RouteError, type RouteTable, type ServedVersion } from './router';
import { jsonDepthExceeds, RequestValidationError } from './validation';
import { HttpError } from './http-error';
import {
  admitRate,
  authenticateRequest,
  isJson,
  requireJson,
  requireRole,
  type AdmissionRefusal,
} from './admission';
import { readBodyText } from './http-body';

/** Header asking for the staging route (admin principals only). */
export const STAGING_HEADER = 'x-mlops-route';
/** Upper bound of the interval at which request and header timeouts are checked. */
export const CONNECTION_CHECK_MAX_MS = 1000;
/** Decision threshold used to compare shadow and stable predictions. */
export const SHADOW_DECISION_THRESHOLD = 0.5;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const PREDICT_PATH = /^\/v1\/models\/([^/]+)\/predict$/;
const ADMIN_ROUTE_PATH = /^\/admin\/v1\/models\/([^/]+)\/route$/;

/**
 * One endpoint of the gateway: `path` is an exact path or a pattern; `handle` gets the match (for an
 * exact path, the path alone) and answers; a returned promise that rejects becomes a 500.
 */
export interface GatewayRoute {
  path: string | RegExp;
  handle: (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    match: RegExpExecArray | string[],
  ) => Promise<void> | void;
}

export interface RouteControl {
  get(model: string): Promise<RouteState | undefined>;
  update(model: string, update: RouteUpdate): Promise<RouteState>;
}

export interface GatewayDeps {
  config: GatewayConfig;
  table: RouteTable;
  auth: Authenticator;
  adminAuth: Authenticator;
  limiter: RateLimiter;
  metrics: GatewayMetrics;
  kpi: KpiWindow;
  accessLog?: Logger;
  inferenceLog?: InferenceLog;
  metricsText: () => Promise<string>;
  routes: RouteControl;
  /** The guarded chat route (src/gateway/llm), when configured. */
  chat?: ChatRoute;
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string | number>,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

const errorBody = (code: string, message: string): string => JSON.stringify({ error: { code, message } });

/** Stages of a predict request, in order, as named in `Server-Timing`. */
export const STAGES = ['auth', 'limit', 'validate', 'redact', 'infer', 'log'] as const;

/** Milliseconds with three decimals (what `toFixed(3)` gives, without its cost on the hot path). */
export function formatMs(ms: number): string {
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** Stage timer for Server-Timing: one clock read per stage into a preallocated array (one slot per stage). */
class Timing {
  readonly start = performance.now();
  private last = this.start;
  private marks = 0;
  private readonly durations: number[] = [0, 0, 0, 0, 0, 0];
  /** Records the end of the next stage of {@link STAGES}. */
  mark(): void {
    const now = performance.now();
    this.durations[this.marks++] = now - this.last;
    this.last = now;
  }
  header(): string {
    let out = '';
    for (let i = 0; i < this.marks; i++) {
      out += `${i === 0 ? '' : ', '}${STAGES[i]};dur=${formatMs(this.durations[i] as number)}`;
    }
    return out;
  }
  elapsedMs(): number {
    return performance.now() - this.start;
  }
}

/** One answered predict request's log lines, as handed to the writers (already redacted). */
interface PendingLog {
  time: string;
  requestId: string;
  model: string;
  version: string | undefined;
  route: string;
  served: ServedVersion | undefined;
  principal: Principal | undefined;
  status: number;
  ms: number;
  decision: string;
  ood: boolean;
  /** The refusal's body, whose message the access log carries (redacted) as `reason`. */
  errorBody: string | undefined;
  features: Record<string, number | string | null> | undefined;
  score: number | undefined;
}

export function createGatewayServer(deps: GatewayDeps): {
  server: http.Server;
  inFlight: () => number;
  setDraining: (v: boolean) => void;
  isDraining: () => boolean;
  /** Writes the log lines of answered requests still waiting for their turn (graceful shutdown). */
  flushLogs: () => void;
} {
  const { config, table, metrics, kpi } = deps;
  let inFlight = 0;
  let draining = false;

  /** Per served version: its metrics children, looked up once rather than by label strings per request. */
  const versionMetrics = new WeakMap<ServedVersion, VersionMetrics>();
  const metricsOf = (model: string, v: ServedVersion): VersionMetrics => {
    let vm = versionMetrics.get(v);
    if (!vm) versionMetrics.set(v, (vm = metrics.forVersion(model, v.slot.model.version)));
    return vm;
  };
  /**
   * Access-log children per served version, principal and route (pino child loggers): the fields that
   * are the same for each of their requests (principal, model, version, route) are serialised once, as
   * the child's bindings, and a request's line adds only its own (request id, status, latency, decision,
   * OOD, reason). Held weakly by version and principal, so retired versions and expired JWT principals
   * take theirs with them.
   */
  const accessChildren = new WeakMap<ServedVersion, WeakMap<Principal, Map<string, Logger>>>();
  const accessLogOf = (log: Logger, model: string, v: ServedVersion, p: Principal, route: string): Logger => {
    let byPrincipal = accessChildren.get(v);
    if (!byPrincipal) accessChildren.set(v, (byPrincipal = new WeakMap()));
    let byRoute = byPrincipal.get(p);
    if (!byRoute) byPrincipal.set(p, (byRoute = new Map()));
    let child = byRoute.get(route);
    if (!child) {
      child = log.child({ principal: loggedId(p), model, version: v.slot.model.version, route });
      byRoute.set(route, child);
    }
    return child;
  };
  const refused = (reason: AdmissionRefusal): void => metrics.refusals.labels(reason).inc();

  /**
   * Log lines of answered predict requests, written once per turn of the event loop (writeLogs) rather
   * than one by one between requests: the serialising code and its data stay hot in the cache for the
   * whole batch, and the answer leaves before its lines are serialised. Features are redacted before
   * they get here; a crash loses at most one turn's lines more than the writers' own buffers hold.
   */
  let pendingLogs: PendingLog[] = [];
  let logsScheduled = false;
  function writeLogs(): void {
    const batch = pendingLogs;
    pendingLogs = [];
    logsScheduled = false;
    const access = deps.accessLog;
    const inference = deps.inferenceLog;
    for (const p of batch) {
      if (inference && p.score !== undefined && p.version !== undefined && p.features) {
        inference.append({
          time: p.time,
          requestId: p.requestId,
          model: p.model,
          version: p.version,
          route: p.route as 'stable' | 'canary' | 'staging',
          features: p.features,
          prediction: p.score,
          ood: p.ood,
        });
      }
      if (!access) continue;
      const reason =
        p.errorBody !== undefined && config.redaction
          ? redactText((JSON.parse(p.errorBody) as { error: { message: string } }).error.message).text
          : undefined;
      if (p.served !== undefined && p.principal !== undefined) {
        accessLogOf(access, p.model, p.served, p.principal, p.route).info({
          reqId: p.requestId,
          status: p.status,
          ms: p.ms,
          decision: p.decision,
          ood: p.ood,
          reason,
        });
      } else {
        access.info({
          reqId: p.requestId,
          principal: p.principal && loggedId(p.principal),
          model: p.model,
          version: p.version,
          route: p.route,
          status: p.status,
          ms: p.ms,
          decision: p.decision,
          ood: p.ood,
          reason,
        });
      }
    }
  }
  /** Per served version, its spec's categorical vocabularies (values the redactor need not scan). */
  const vocabularies = new WeakMap<ServedVersion, Vocabularies>();
  const vocabularyOf = (v: ServedVersion): Vocabularies => {
    let vocab = vocabularies.get(v);
    if (!vocab) vocabularies.set(v, (vocab = vocabulariesOf(v.slot.model.spec)));
    return vocab;
  };
  /** Principal ids as logged (redacted once per principal: a JWT subject may be an email). */
  const loggedIds = new WeakMap<Principal, string>();
  const loggedId = (p: Principal): string => {
    let id = loggedIds.get(p);
    if (id === undefined) loggedIds.set(p, (id = config.redaction ? redactText(p.id).text : p.id));
    return id;
  };

  async function handlePredict(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    model: string,
  ): Promise<void> {
    const t = new Timing();
    const headerId = req.headers['x-request-id'];
    const requestId = typeof headerId === 'string' && REQUEST_ID.test(headerId) ? headerId : randomUUID();
    let principal: Principal | undefined;
    let served: ServedVersion | undefined;
    let route = 'none';
    let decision = 'ok';
    let ood = false;
    let status = 200;
    let body: string;
    let extraHeaders: Record<string, string> | undefined;
    let logFeatures: Record<string, number | string | null> | undefined;
    let score: number | undefined;
    let shadow: ServedVersion | undefined;
    let features: Record<string, number | string | null> | undefined;
    try {
      if (req.method !== 'POST')
        throw new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' });
      const who = authenticateRequest(deps.auth, req, refused);
      principal = who instanceof Promise ? await who : who;
      requireRole(principal, ['predict'], 'predict');
      t.mark(); // auth
      const rl = admitRate(deps.limiter, principal.id, refused);
      if (rl instanceof Promise) await rl;
      t.mark(); // limit
      requireJson(req);
      const text = await readBodyText(req, config.maxBodyBytes);
      if (jsonDepthExceeds(text, config.maxJsonDepth)) {
        throw new HttpError(400, 'too_deep', `JSON nesting deeper than ${config.maxJsonDepth} levels`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new HttpError(400, 'malformed_json', `body is not valid JSON: ${(err as Error).message}`);
      }
      const key =
        parsed && typeof parsed === 'object' && typeof (parsed as { key?: unknown }).key === 'string'
          ? (parsed as { key: string }).key
          : undefined;
      const staging = req.headers[STAGING_HEADER] === 'staging';
      if (staging && !principal.roles.has('admin')) {
        throw new HttpError(403, 'forbidden', 'the staging route serves admin principals only');
      }
      let picked;
      try {
        picked = table.pick(model, key, staging);
      } catch (err) {
        if (err instanceof RouteError) throw new HttpError(err.status, 'no_route', err.message);
        throw err;
      }
      served = picked.served;
      shadow = picked.shadow;
      route = picked.route;
      try {
        features = served.validator.parse(parsed).features;
      } catch (err) {
        if (err instanceof RequestValidationError) throw new HttpError(400, 'invalid_input', err.message);
        throw err;
      }
      const verdict = served.ood.check(features);
      ood = verdict.ood;
      if (ood && served.oodPolicy !== 'off') {
        const vm = metricsOf(model, served);
        if (served.oodPolicy === 'block') {
          vm.oodBlock.inc();
          throw new HttpError(
            422,
            'out_of_distribution',
            `input is out of distribution: ${verdict.reasons.join('; ')}`,
          );
        }
        vm.oodFlag.inc();
      }
      t.mark(); // validate
      if (config.redaction) {
        const r = redactRecord(features, vocabularyOf(served));
        if (r.found.length > 0) metrics.redacted(r.found);
        logFeatures = r.record;
      } else logFeatures = features;
      t.mark(); // redact
      const faultPercent = route === 'staging' ? 0 : table.faultPercent(model, served.slot.model.version);
      if (faultPercent > 0 && Math.random() * 100 < faultPercent) {
        throw new HttpError(503, 'injected_fault', 'fault injected through the admin API for this version');
      }
      const slot = served.slot.acquire();
      try {
        score = await predict(slot.model, features);
      } finally {
        slot.release();
      }
      t.mark(); // infer
      // Written by hand (JSON.stringify of a fresh object costs more): model names, versions, routes
      // and request ids are all plain [A-Za-z0-9._-] words; a non-finite score is JSON's null.
      body = `{"model":"${model}","version":"${served.slot.model.version}","route":"${route}","score":${Number.isFinite(score) ? score : null},"ood":${ood},"requestId":"${requestId}"}`;
    } catch (err) {
      if (err instanceof HttpError) {
        status = err.status;
        decision = err.code;
        extraHeaders = err.headers;
        body = errorBody(err.code, err.message);
      } else {
        status = 500;
        decision = 'error';
        body = errorBody('internal', 'prediction failed');
      }
    }
    const version = served?.slot.model.version;
    const latencyMs = t.elapsedMs();
    if (deps.accessLog || deps.inferenceLog) {
      // Handed to the log writers, which serialise after the answer (see writeLogs); PII is already out.
      pendingLogs.push({
        time: isoNow(),
        requestId,
        model,
        version,
        route,
        served,
        principal,
        status,
        ms: Math.round(latencyMs * 1000) / 1000,
        decision,
        ood,
        errorBody: status >= 400 ? body : undefined,
        features: logFeatures,
        score,
      });
      if (!logsScheduled) {
        logsScheduled = true;
        setImmediate(writeLogs);
      }
    }
    t.mark(); // log
    if (served !== undefined && version !== undefined) {
      const vm = metricsOf(model, served);
      vm.request(route, status);
      vm.latency.observe(latencyMs / 1000);
      if (score !== undefined) vm.scores.observe(score);
      if (route !== 'staging') kpi.record(model, version, latencyMs, status >= 500, ood);
    } else metrics.unrouted(model, status);
    if (!res.headersSent && !res.destroyed) {
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        // A success body is ASCII (names, versions and ids are [A-Za-z0-9._-] words, the score a number).
        'content-length': status === 200 ? body.length : Buffer.byteLength(body),
        'server-timing': t.header(),
        'x-request-id': requestId,
      };
      if (extraHeaders) Object.assign(headers, extraHeaders);
      res.writeHead(status, headers);
      res.end(body);
    }
    if (shadow && features && score !== undefined) {
      const f = features;
      const stableScore = score;
      const stableVersion = version as string;
      const shadowServed = shadow;
      const candidate = shadow.slot.acquire();
      setImmediate(() => {
        const shadowStarted = performance.now();
        // The candidate's mirrored answers count as its own (route `shadow`), so a canary analysis
        // of the shadow phase judges their errors and scores like live ones. Their latency is that
        // of background work behind the live answer, so it stays out of the latency histogram.
        const record = (error: boolean, scored?: number) => {
          const ms = performance.now() - shadowStarted;
          const cvm = metricsOf(model, shadowServed);
          cvm.request('shadow', error ? 500 : 200);
          if (scored !== undefined) cvm.scores.observe(scored);
          kpi.record(model, candidate.model.version, ms, error, ood);
        };
        predict(candidate.model, f)
          .then((s) => {
            record(false, s);
            const v = candidate.model.version;
            metrics.shadow
              .labels(
                model,
                stableVersion,
                v,
                String(s >= SHADOW_DECISION_THRESHOLD === stableScore >= SHADOW_DECISION_THRESHOLD),
              )
              .inc();
            metrics.shadowDiff.labels(model, v).observe(Math.abs(s - stableScore));
            if (deps.inferenceLog && logFeatures) {
              deps.inferenceLog.append({
                time: new Date().toISOString(),
                requestId,
                model,
                version: v,
                route: 'shadow',
                features: logFeatures,
                prediction: s,
                ood,
              });
            }
          })
          .catch(() => {
            record(true);
            metrics.refusals.labels('shadow_error').inc();
          })
          .finally(() => candidate.release());
      });
    }
  }

  async function handleAdmin(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
  ): Promise<void> {
    let principal: Principal;
    try {
      principal = await deps.adminAuth.authenticate(Authenticator.credential(req.headers));
    } catch (err) {
      if (err instanceof AuthError) {
        metrics.refusals.labels('admin_auth').inc();
        return send(res, 401, errorBody('unauthenticated', err.message), { 'www-authenticate': 'Bearer' });
      }
      throw err;
    }
    if (!principal.roles.has('admin'))
      return send(res, 403, errorBody('forbidden', 'admin role required'), {});
    if (path === '/admin/v1/models' && req.method === 'GET') {
      const states = await Promise.all(table.modelNames().map((m) => deps.routes.get(m)));
      return send(res, 200, JSON.stringify({ models: states }), {});
    }
    const m = ADMIN_ROUTE_PATH.exec(path);
    if (!m) return send(res, 404, errorBody('not_found', `no admin endpoint ${path}`), {});
    const model = m[1] as string; // model names are [a-z0-9-]: no decoding, so no malformed-escape errors
    if (req.method === 'GET') {
      const state = await deps.routes.get(model);
      if (!state) return send(res, 404, errorBody('not_found', `model ${model} is not served here`), {});
      return send(res, 200, JSON.stringify(state), {});
    }
    if (req.method !== 'PUT')
      return send(res, 405, errorBody('method_not_allowed', 'use GET or PUT'), { allow: 'GET, PUT' });
    if (!isJson(req))
      return send(res, 415, errorBody('unsupported_media_type', 'content-type must be application/json'), {});
    let update: RouteUpdate;
    try {
      const text = await readBodyText(req, config.maxBodyBytes);
      if (jsonDepthExceeds(text, config.maxJsonDepth))
        throw new HttpError(400, 'too_deep', 'JSON nested too deep');
      const r = RouteUpdateSchema.safeParse(JSON.parse(text));
      if (!r.success) throw new HttpError(400, 'invalid_input', formatZodError(r.error).replace(/\n/g, '; '));
      update = r.data;
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, errorBody(err.code, err.message), {});
      return send(
        res,
        400,
        errorBody('malformed_json', `body is not valid JSON: ${(err as Error).message}`),
        {},
      );
    }
    try {
      const state = await deps.routes.update(model, update);
      deps.accessLog?.info({ admin: principal.id, model, update, decision: 'route_updated' });
      return send(res, 200, JSON.stringify(state), {});
    } catch (err) {
      const e = err as Error;
      if (err instanceof RouteError) return send(res, err.status, errorBody('invalid_route', e.message), {});
      if (err instanceof ModelIntegrityError || e.name === 'ModelIntegrityError') {
        deps.accessLog?.error({
          admin: principal.id,
          model,
          update,
          decision: 'integrity_refused',
          reason: e.message,
        });
        return send(res, 422, errorBody('integrity', e.message), {});
      }
      if (err instanceof ModelLoadError || e.name === 'ModelLoadError') {
        return send(res, 502, errorBody('load_failed', e.message), {});
      }
      return send(res, 500, errorBody('internal', e.message), {});
    }
  }

  /**
   * The gateway's endpoints, matched in order against the path (without the query): an exact path or a
   * pattern whose groups reach the handler. A new endpoint is one more entry here. Paths under
   * `/admin/` that no entry takes go to the admin API (its own authentication).
   */
  const routes: GatewayRoute[] = [
    { path: PREDICT_PATH, handle: (req, res, m) => handlePredict(req, res, m[1] as string) },
    { path: EXPLAIN_PATH, handle: (req, res, m) => handleExplain(req, res, m[1] as string, deps) },
    { path: '/healthz', handle: (_req, res) => send(res, 200, '{"status":"ok"}', {}) },
    {
      path: '/readyz',
      handle: (_req, res) =>
        draining
          ? send(res, 503, '{"status":"draining"}', {})
          : send(res, 200, JSON.stringify({ status: 'ready', models: table.modelNames() }), {}),
    },
    {
      path: '/metrics',
      handle: (_req, res) =>
        deps.metricsText().then((text) => {
          res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
          res.end(text);
        }),
    },
    {
      path: '/v1/chat/completions',
      handle: (req, res) =>
        deps.chat
          ? deps.chat.handle(req, res, deps)
          : send(res, 404, errorBody('not_found', 'no chat route is configured'), {}),
    },
  ];

  const server = http.createServer(
    {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: config.headersTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // How often Node checks the two timeouts above: often enough that a slow-loris client is cut soon after.
      connectionsCheckingInterval: Math.min(CONNECTION_CHECK_MAX_MS, Math.ceil(config.headersTimeoutMs / 2)),
    },
    (req, res) => {
      inFlight++;
      res.on('close', () => inFlight--);
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      let work: Promise<void> | void = undefined;
      let matched = false;
      for (const r of routes) {
        const m = typeof r.path === 'string' ? (r.path === path ? [path] : null) : r.path.exec(path);
        if (m) {
          matched = true;
          work = r.handle(req, res, m);
          break;
        }
      }
      if (!matched) {
        if (path.startsWith('/admin/')) work = handleAdmin(req, res, path);
        else send(res, 404, errorBody('not_found', `no endpoint ${path}`), {});
      }
      work?.catch(() => send(res, 500, errorBody('internal', 'internal error'), {}));
    },
  );
  server.on('clientError', (err, socket) => {
    if (!socket.writable) return socket.destroy();
    const code = (err as { code?: string }).code;
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = errorBody(
      status === 408 ? 'timeout' : 'bad_request',
      status === 408 ? 'request not received in time' : `malformed request: ${code ?? err.message}`,
    );
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return {
    server,
    inFlight: () => inFlight,
    setDraining: (v) => (draining = v),
    isDraining: () => draining,
    flushLogs: writeLogs,
  };
}
