/**
 * Typed client for the MLflow tracking and model-registry REST API (`/api/2.0/mlflow/...`) and the server's
 * artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`). Verified against MLflow server 3.17.2.
 *
 * Rules:
 * - Node-only (uses `Buffer` and `fetch`); never load it in workflow code.
 * - Every response is validated with the zod schemas in `./schemas`; a mismatch is an `MlflowProtocolError`
 *   naming the endpoint and the offending path. Every failure is an `MlflowError` subclass from `./errors`,
 *   with `retryable` telling the caller whether repeating the call may help. The client itself never retries:
 *   retry policy belongs to the caller (Temporal activity retries).
 * - Credentials go only into the `Authorization` header. Credentials embedded in the tracking URI
 *   (`https://user:pass@host`) are moved there and stripped from {@link MlflowClient.trackingUri}; no error
 *   message or property ever holds them.
 * - Every request has a timeout (`AbortSignal.timeout`); a timeout is an `MlflowUnreachableError`.
 * - `getOrCreate*` / `ensure*` are race-safe: "already exists" from a concurrent creator is answered by
 *   re-reading, so two workers may call them at once.
 * - Artifacts move through the tracking server's artifact proxy (server started with artifact serving, the
 *   default), so the client needs no object-store credentials. A run whose `artifact_uri` is not
 *   `mlflow-artifacts:` cannot be read or written through this client.
 * - Artifact paths are relative, `/`-separated, and may not contain empty, `.` or `..` segments.
 */
import { formatIssuePath } from '../core/contracts/errors';
import {
  MlflowAlreadyExistsError,
  type MlflowError,
  MlflowInvalidRequestError,
  MlflowNotFoundError,
  MlflowProtocolError,
  mlflowErrorFromNetwork,
  mlflowErrorFromResponse,
} from './errors';
import type { z } from 'zod';
import {
  createExperimentResponseSchema,
  downloadUriResponseSchema,
  emptyResponseSchema,
  getExperimentResponseSchema,
  listArtifactsResponseSchema,
  loggedModelSearchResponseSchema,
  modelVersionResponseSchema,
  proxyListResponseSchema,
  registeredModelResponseSchema,
  runResponseSchema,
  searchModelVersionsResponseSchema,
  searchRunsResponseSchema,
  updateRunResponseSchema,
  type Experiment,
  type FileInfo,
  type ModelVersion,
  type RegisteredModel,
  type Run,
  type RunInfo,
  type RunStatus,
} from './schemas';

/** Metadata calls are small; 30 s is far above a healthy server's latency yet lets a stuck call fail and retry. */
export const DEFAULT_MLFLOW_TIMEOUT_MS = 30_000;
/** Artifact transfers carry model files (hundreds of MB at worst); give them ten minutes. */
export const DEFAULT_MLFLOW_ARTIFACT_TIMEOUT_MS = 600_000;
/** MLflow's log-batch limit on metrics per request. */
export const MLFLOW_BATCH_MAX_METRICS = 1000;
/** MLflow's log-batch limit on params per request. */
export const MLFLOW_BATCH_MAX_PARAMS = 100;
/** MLflow's log-batch limit on tags per request. */
export const MLFLOW_BATCH_MAX_TAGS = 100;
/** MLflow's log-batch limit on metrics + params + tags per request. */
export const MLFLOW_BATCH_MAX_ENTITIES = 1000;
/** A run's artifact root never changes; remember this many so artifact calls skip the `runs/get` lookup. */
export const ARTIFACT_ROOT_CACHE_SIZE = 1000;
/** Guards paginated loops against a server that keeps returning a page token. */
export const MAX_PAGES = 10_000;
/** Run statuses after which a run does not change; `updateRun` sets `endTime` for them when not given. */
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set(['FINISHED', 'FAILED', 'KILLED']);

const API_PREFIX = '/api/2.0/mlflow';
const ARTIFACT_PROXY_PREFIX = '/api/2.0/mlflow-artifacts/artifacts';

/** Credentials for an MLflow server: basic auth (`--app-name basic-auth`) or a bearer token. */
export type MlflowAuth =
  { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

export interface MlflowClientOptions {
  /** Base URL of the tracking server, e.g. `http://127.0.0.1:5000` (a path prefix is kept). */
  trackingUri: string;
  auth?: MlflowAuth;
  /** Per-request timeout for API calls; default {@link DEFAULT_MLFLOW_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Per-request timeout for artifact upload/download; default {@link DEFAULT_MLFLOW_ARTIFACT_TIMEOUT_MS}. */
  artifactTimeoutMs?: number;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
}

/**
 * Reads credentials the way the MLflow Python client does: `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`
 * give basic auth and take precedence (as in MLflow's own client), else `MLFLOW_TRACKING_TOKEN` gives a bearer
 * token, else `undefined`. Only one of username/password set is a configuration error.
 */
export function mlflowAuthFromEnv(env: NodeJS.ProcessEnv = process.env): MlflowAuth | undefined {
  const username = nonEmpty(env['MLFLOW_TRACKING_USERNAME']);
  const password = nonEmpty(env['MLFLOW_TRACKING_PASSWORD']);
  const token = nonEmpty(env['MLFLOW_TRACKING_TOKEN']);
  if (username !== undefined && password !== undefined) return { kind: 'basic', username, password };
  if ((username === undefined) !== (password === undefined)) {
    throw new MlflowInvalidRequestError(
      'MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD must be set together (only one is set)',
      { endpoint: 'environment' },
    );
  }
  if (token !== undefined) return { kind: 'bearer', token };
  return undefined;
}

/** Builds a client from `MLFLOW_TRACKING_URI` and the credential variables of {@link mlflowAuthFromEnv}. */
export function mlflowClientFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  opts: Omit<MlflowClientOptions, 'trackingUri' | 'auth'> = {},
): MlflowClient {
  const trackingUri = nonEmpty(env['MLFLOW_TRACKING_URI']);
  if (trackingUri === undefined) {
    throw new MlflowInvalidRequestError('MLFLOW_TRACKING_URI is not set', { endpoint: 'environment' });
  }
  const auth = mlflowAuthFromEnv(env);
  return new MlflowClient({ ...opts, trackingUri, ...(auth === undefined ? {} : { auth }) });
}

/** Splits `runs:/<runId>/<artifactPath>`; `undefined` when `uri` is not a runs URI. */
export function parseRunsUri(uri: string): { runId: string; artifactPath: string } | undefined {
  const m = /^runs:\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (m === null || m[1] === undefined) return undefined;
  return { runId: m[1], artifactPath: (m[2] ?? '').replace(/\/+$/, '') };
}

/** The path of an `mlflow-artifacts:` URI below the proxy root (`mlflow-artifacts:/1/abc/artifacts` -> `1/abc/artifacts`). */
export function artifactProxyPath(artifactUri: string): string | undefined {
  const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(artifactUri);
  if (m === null || m[1] === undefined) return undefined;
  return m[1].replace(/\/+$/, '');
}

/** The logged-model id of a `models:/<modelId>` URI (MLflow 3 ids start with `m-`); else `undefined`. */
function parseModelIdUri(uri: string): string | undefined {
  const m = /^models:\/(m-[0-9a-zA-Z]+)\/?$/.exec(uri);
  return m?.[1];
}

/** Input for a metric; `timestamp` defaults to now and `step` to 0. */
export type MetricInput = { key: string; value: number; timestamp?: number; step?: number };

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
type QueryValue = string | number | readonly string[] | undefined;

interface RequestSpec {
  method: HttpMethod;
  /** Path below the server base, starting with `/`, already URL-encoded. */
  path: string;
  /** Path used in error messages when it differs from `path` (never carries query strings). */
  label?: string;
  query?: Record<string, QueryValue>;
  json?: unknown;
  body?: Buffer;
  contentType?: string;
  timeoutMs?: number;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function toKeyValues(record: Record<string, string> | undefined): { key: string; value: string }[] {
  return Object.entries(record ?? {}).map(([key, value]) => ({ key, value }));
}

/** JSON has no NaN/Infinity; MLflow accepts (and writes) them as strings. */
function encodeMetricValue(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

function encodeMetric(m: MetricInput, now: number) {
  return { key: m.key, value: encodeMetricValue(m.value), timestamp: m.timestamp ?? now, step: m.step ?? 0 };
}

/** Validates a relative artifact path and returns its segments (`''` -> `[]`). */
function artifactSegments(path: string, endpoint: string): string[] {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return [];
  const segments = trimmed.split('/');
  const bad =
    path.startsWith('/') ||
    path.includes('\\') ||
    path.includes('\0') ||
    segments.some((s) => s === '' || s === '.' || s === '..');
  if (bad) {
    throw new MlflowInvalidRequestError(
      `${endpoint}: invalid artifact path ${JSON.stringify(path)} (must be relative, '/'-separated, ` +
        `without empty, '.' or '..' segments)`,
      { endpoint },
    );
  }
  return segments;
}

function encodeSegments(segments: readonly string[]): string {
  return segments.map((s) => encodeURIComponent(s)).join('/');
}

function parseTrackingUri(raw: string): { base: string; auth?: MlflowAuth } {
  const endpoint = 'MlflowClient options';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Do not echo the URI: it may carry credentials.
    throw new MlflowInvalidRequestError('trackingUri is not an absolute URL', { endpoint });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MlflowInvalidRequestError(`trackingUri must be http(s), got scheme ${url.protocol}`, {
      endpoint,
    });
  }
  let auth: MlflowAuth | undefined;
  if (url.username !== '' || url.password !== '') {
    auth = {
      kind: 'basic',
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    };
  }
  const base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  return auth === undefined ? { base } : { base, auth };
}

function authorizationHeader(auth: MlflowAuth): string {
  return auth.kind === 'basic'
    ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`
    : `Bearer ${auth.token}`;
}

export class MlflowClient {
  /** Base URL of the server, without credentials, query or trailing slash. */
  readonly trackingUri: string;
  private readonly authHeader: string | undefined;
  private readonly timeoutMs: number;
  private readonly artifactTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  /** runId -> artifact proxy path of its artifact root (insertion-ordered, evicted oldest first). */
  private readonly artifactRoots = new Map<string, string>();

  constructor(opts: MlflowClientOptions) {
    const parsed = parseTrackingUri(opts.trackingUri);
    this.trackingUri = parsed.base;
    const auth = opts.auth ?? parsed.auth;
    this.authHeader = auth === undefined ? undefined : authorizationHeader(auth);
    this.timeoutMs = positiveTimeout(opts.timeoutMs, DEFAULT_MLFLOW_TIMEOUT_MS, 'timeoutMs');
    this.artifactTimeoutMs = positiveTimeout(
      opts.artifactTimeoutMs,
      DEFAULT_MLFLOW_ARTIFACT_TIMEOUT_MS,
      'artifactTimeoutMs',
    );
    this.fetchImpl = opts.fetch ?? fetch;
  }

  // ---- experiments ------------------------------------------------------------------------------------

  /** The experiment with this name (active or deleted), or `undefined` when there is none. */
  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const res = await this.call(
        { method: 'GET', path: `${API_PREFIX}/experiments/get-by-name`, query: { experiment_name: name } },
        getExperimentResponseSchema,
      );
      return res.experiment;
    } catch (err) {
      if (err instanceof MlflowNotFoundError) return undefined;
      throw err;
    }
  }

  /** Creates an experiment and returns its id; `MlflowAlreadyExistsError` when the name is taken. */
  async createExperiment(
    name: string,
    opts: { artifactLocation?: string; tags?: Record<string, string> } = {},
  ): Promise<string> {
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/experiments/create`,
        json: { name, artifact_location: opts.artifactLocation, tags: toKeyValues(opts.tags) },
      },
      createExperimentResponseSchema,
    );
    return res.experiment_id;
  }

  /**
   * The id of the active experiment with this name, created when missing. Race-safe. A deleted experiment of
   * that name is an `MlflowInvalidRequestError` (MLflow keeps the name reserved until it is restored or purged).
   */
  async getOrCreateExperiment(name: string): Promise<string> {
    const existing = await this.getExperimentByName(name);
    if (existing !== undefined) return this.activeExperimentId(existing);
    try {
      return await this.createExperiment(name);
    } catch (err) {
      if (!(err instanceof MlflowAlreadyExistsError)) throw err;
      const raced = await this.getExperimentByName(name);
      if (raced === undefined) throw err;
      return this.activeExperimentId(raced);
    }
  }

  private activeExperimentId(exp: Experiment): string {
    if (exp.lifecycleStage === 'deleted') {
      throw new MlflowInvalidRequestError(
        `experiment ${JSON.stringify(exp.name)} (id ${exp.experimentId}) is deleted; restore or purge it first`,
        { endpoint: `GET ${API_PREFIX}/experiments/get-by-name` },
      );
    }
    return exp.experimentId;
  }

  // ---- runs -------------------------------------------------------------------------------------------

  /** Creates a run (status RUNNING); `startTime` defaults to now. */
  async createRun(p: {
    experimentId: string;
    runName?: string;
    tags?: Record<string, string>;
    startTime?: number;
  }): Promise<Run> {
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/runs/create`,
        json: {
          experiment_id: p.experimentId,
          run_name: p.runName,
          start_time: p.startTime ?? Date.now(),
          tags: toKeyValues(p.tags),
        },
      },
      runResponseSchema,
    );
    this.rememberArtifactRoot(res.run);
    return res.run;
  }

  async getRun(runId: string): Promise<Run> {
    const res = await this.call(
      { method: 'GET', path: `${API_PREFIX}/runs/get`, query: { run_id: runId } },
      runResponseSchema,
    );
    this.rememberArtifactRoot(res.run);
    return res.run;
  }

  /** Sets a run's status (and optionally name); `endTime` defaults to now for terminal statuses. */
  async updateRun(p: {
    runId: string;
    status: RunStatus;
    endTime?: number;
    runName?: string;
  }): Promise<RunInfo> {
    const endTime = p.endTime ?? (TERMINAL_RUN_STATUSES.has(p.status) ? Date.now() : undefined);
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/runs/update`,
        json: { run_id: p.runId, status: p.status, end_time: endTime, run_name: p.runName },
      },
      updateRunResponseSchema,
    );
    return res.run_info;
  }

  /** Logs one metric value; NaN and ±Infinity are sent the way MLflow expects. */
  async logMetric(p: {
    runId: string;
    key: string;
    value: number;
    step?: number;
    timestamp?: number;
  }): Promise<void> {
    await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/runs/log-metric`,
        json: { run_id: p.runId, ...encodeMetric(p, Date.now()) },
      },
      emptyResponseSchema,
    );
  }

  /** Logs a param; MLflow rejects changing an existing param's value (`MlflowInvalidRequestError`). */
  async logParam(runId: string, key: string, value: string): Promise<void> {
    await this.call(
      { method: 'POST', path: `${API_PREFIX}/runs/log-parameter`, json: { run_id: runId, key, value } },
      emptyResponseSchema,
    );
  }

  /**
   * Logs metrics, params and tags, split into as many requests as MLflow's batch limits require
   * ({@link MLFLOW_BATCH_MAX_METRICS} and friends). Not atomic across requests.
   */
  async logBatch(p: {
    runId: string;
    metrics?: readonly MetricInput[];
    params?: Record<string, string>;
    tags?: Record<string, string>;
  }): Promise<void> {
    const now = Date.now();
    let metrics = (p.metrics ?? []).map((m) => encodeMetric(m, now));
    let params = toKeyValues(p.params);
    let tags = toKeyValues(p.tags);
    while (metrics.length + params.length + tags.length > 0) {
      const paramChunk = params.slice(0, MLFLOW_BATCH_MAX_PARAMS);
      const tagChunk = tags.slice(
        0,
        Math.min(MLFLOW_BATCH_MAX_TAGS, MLFLOW_BATCH_MAX_ENTITIES - paramChunk.length),
      );
      const room = MLFLOW_BATCH_MAX_ENTITIES - paramChunk.length - tagChunk.length;
      const metricChunk = metrics.slice(0, Math.min(MLFLOW_BATCH_MAX_METRICS, room));
      params = params.slice(paramChunk.length);
      tags = tags.slice(tagChunk.length);
      metrics = metrics.slice(metricChunk.length);
      await this.call(
        {
          method: 'POST',
          path: `${API_PREFIX}/runs/log-batch`,
          json: { run_id: p.runId, metrics: metricChunk, params: paramChunk, tags: tagChunk },
        },
        emptyResponseSchema,
      );
    }
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.call(
      { method: 'POST', path: `${API_PREFIX}/runs/set-tag`, json: { run_id: runId, key, value } },
      emptyResponseSchema,
    );
  }

  /**
   * One page of runs matching `filter` (MLflow search syntax, e.g. `tags.model = 'fraud' and metrics.auc > 0.9`).
   * Pass `nextPageToken` back as `pageToken` for the next page.
   */
  async searchRuns(p: {
    experimentIds: string[];
    filter?: string;
    maxResults?: number;
    orderBy?: string[];
    pageToken?: string;
  }): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/runs/search`,
        json: {
          experiment_ids: p.experimentIds,
          filter: p.filter,
          max_results: p.maxResults,
          order_by: p.orderBy,
          page_token: p.pageToken,
        },
      },
      searchRunsResponseSchema,
    );
    for (const run of res.runs) this.rememberArtifactRoot(run);
    return withPageToken({ runs: res.runs }, res.next_page_token);
  }

  // ---- artifacts --------------------------------------------------------------------------------------

  /** One level of a run's artifacts under `path` (default the root); paths are relative to the artifact root. */
  async listArtifacts(runId: string, path = ''): Promise<FileInfo[]> {
    const endpointPath = `${API_PREFIX}/artifacts/list`;
    const segments = artifactSegments(path, `GET ${endpointPath}`);
    const files: FileInfo[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.call(
        {
          method: 'GET',
          path: endpointPath,
          query: {
            run_id: runId,
            path: segments.length > 0 ? segments.join('/') : undefined,
            page_token: pageToken,
          },
        },
        listArtifactsResponseSchema,
      );
      files.push(...res.files);
      if (
        res.next_page_token === undefined ||
        res.next_page_token === '' ||
        res.next_page_token === pageToken
      ) {
        return files;
      }
      pageToken = res.next_page_token;
    }
    return files;
  }

  /** Every file (no directories) under `path`, with paths relative to the run's artifact root, sorted. */
  async listArtifactsRecursive(runId: string, path = ''): Promise<FileInfo[]> {
    return walkArtifacts(path, (dir) => this.listArtifacts(runId, dir));
  }

  /** The bytes of one artifact file of a run. */
  async downloadArtifact(runId: string, path: string): Promise<Buffer> {
    const root = await this.artifactRoot(runId);
    return this.downloadFromProxy(root, path);
  }

  /** Writes one artifact file of a run (creating parent directories); overwrites an existing file. */
  async uploadArtifact(runId: string, path: string, body: Buffer | string): Promise<void> {
    const root = await this.artifactRoot(runId);
    const label = `PUT ${ARTIFACT_PROXY_PREFIX}/<run ${runId} artifacts>`;
    const segments = artifactSegments(path, label);
    if (segments.length === 0) {
      throw new MlflowInvalidRequestError(`${label}: artifact path must name a file`, { endpoint: label });
    }
    await this.send({
      method: 'PUT',
      path: `${ARTIFACT_PROXY_PREFIX}/${encodeSegments([...root.split('/'), ...segments])}`,
      label: `PUT ${ARTIFACT_PROXY_PREFIX}/${root}/${segments.join('/')}`,
      body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      contentType: 'application/octet-stream',
      timeoutMs: this.artifactTimeoutMs,
    });
  }

  /**
   * One level of the artifacts under an `mlflow-artifacts:` URI (e.g. a model version's download URI or a
   * logged model's `artifact_uri`); paths are relative to `artifactUri`.
   */
  async listArtifactsAtUri(artifactUri: string, path = ''): Promise<FileInfo[]> {
    const root = this.proxyRootOf(artifactUri, `GET ${ARTIFACT_PROXY_PREFIX}`);
    const label = `GET ${ARTIFACT_PROXY_PREFIX}`;
    const segments = artifactSegments(path, label);
    const res = await this.call(
      {
        method: 'GET',
        path: ARTIFACT_PROXY_PREFIX,
        query: { path: [...root.split('/'), ...segments].join('/') },
      },
      proxyListResponseSchema,
    );
    const prefix = segments.length > 0 ? `${segments.join('/')}/` : '';
    return res.files.map((f) => ({ ...f, path: `${prefix}${f.path}` }));
  }

  /** Every file under an `mlflow-artifacts:` URI, with paths relative to it, sorted. */
  async listArtifactsRecursiveAtUri(artifactUri: string, path = ''): Promise<FileInfo[]> {
    return walkArtifacts(path, (dir) => this.listArtifactsAtUri(artifactUri, dir));
  }

  /** The bytes of one file below an `mlflow-artifacts:` URI. */
  async downloadArtifactAtUri(artifactUri: string, path: string): Promise<Buffer> {
    return this.downloadFromProxy(this.proxyRootOf(artifactUri, `GET ${ARTIFACT_PROXY_PREFIX}`), path);
  }

  private async downloadFromProxy(root: string, path: string): Promise<Buffer> {
    const label = `GET ${ARTIFACT_PROXY_PREFIX}/${root}`;
    const segments = artifactSegments(path, label);
    if (segments.length === 0) {
      throw new MlflowInvalidRequestError(`${label}: artifact path must name a file`, { endpoint: label });
    }
    const res = await this.send({
      method: 'GET',
      path: `${ARTIFACT_PROXY_PREFIX}/${encodeSegments([...root.split('/'), ...segments])}`,
      label: `GET ${ARTIFACT_PROXY_PREFIX}/${root}/${segments.join('/')}`,
      timeoutMs: this.artifactTimeoutMs,
    });
    return res.bytes;
  }

  private proxyRootOf(artifactUri: string, endpoint: string): string {
    const root = artifactProxyPath(artifactUri);
    if (root === undefined) {
      throw new MlflowInvalidRequestError(
        `${endpoint}: artifact URI ${JSON.stringify(artifactUri)} is not served by the MLflow artifact proxy ` +
          `(expected mlflow-artifacts:/...; start the server with artifact serving)`,
        { endpoint },
      );
    }
    return root;
  }

  private async artifactRoot(runId: string): Promise<string> {
    const cached = this.artifactRoots.get(runId);
    if (cached !== undefined) return cached;
    const run = await this.getRun(runId);
    return this.proxyRootOf(run.info.artifactUri, `GET ${API_PREFIX}/runs/get`);
  }

  private rememberArtifactRoot(run: Run): void {
    const root = artifactProxyPath(run.info.artifactUri);
    if (root === undefined || this.artifactRoots.has(run.info.runId)) return;
    if (this.artifactRoots.size >= ARTIFACT_ROOT_CACHE_SIZE) {
      const oldest = this.artifactRoots.keys().next();
      if (oldest.done !== true) this.artifactRoots.delete(oldest.value);
    }
    this.artifactRoots.set(run.info.runId, root);
  }

  // ---- registered models ------------------------------------------------------------------------------

  /** Creates a registered model; `MlflowAlreadyExistsError` when the name is taken. */
  async createRegisteredModel(
    name: string,
    opts: { tags?: Record<string, string>; description?: string } = {},
  ): Promise<RegisteredModel> {
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/registered-models/create`,
        json: { name, tags: toKeyValues(opts.tags), description: opts.description },
      },
      registeredModelResponseSchema,
    );
    return res.registered_model;
  }

  /** The registered model; `MlflowNotFoundError` when missing. */
  async getRegisteredModel(name: string): Promise<RegisteredModel> {
    const res = await this.call(
      { method: 'GET', path: `${API_PREFIX}/registered-models/get`, query: { name } },
      registeredModelResponseSchema,
    );
    return res.registered_model;
  }

  /** The registered model, created when missing. Race-safe. */
  async ensureRegisteredModel(name: string): Promise<RegisteredModel> {
    try {
      return await this.getRegisteredModel(name);
    } catch (err) {
      if (!(err instanceof MlflowNotFoundError)) throw err;
    }
    try {
      return await this.createRegisteredModel(name);
    } catch (err) {
      if (!(err instanceof MlflowAlreadyExistsError)) throw err;
      return this.getRegisteredModel(name);
    }
  }

  async setRegisteredModelTag(name: string, key: string, value: string): Promise<void> {
    await this.call(
      { method: 'POST', path: `${API_PREFIX}/registered-models/set-tag`, json: { name, key, value } },
      emptyResponseSchema,
    );
  }

  // ---- model versions ---------------------------------------------------------------------------------

  /**
   * Registers a new version of model `name`.
   *
   * What MLflow 3.17.2 does with sources (verified against a real server):
   * - It accepts `runs:/<runId>/<path>` only together with a matching `run_id` (without one: HTTP 400
   *   "The run_id request parameter must identify the resource that contains the source"), and it does not
   *   check that anything exists at that path. Since MLflow 3, `log_model` stores a model as a *logged model*
   *   under `<experiment>/models/<modelId>/artifacts`, not in the run's artifacts, so a blindly stored
   *   `runs:/<runId>/model` can point at nothing; and `model-versions/get-download-uri` hands `runs:/` sources
   *   back unresolved.
   * - So this method resolves `runs:/<runId>/<path>` the way MLflow's Python `register_model` does, with the
   *   run id filled in (a different `runId` is an `MlflowInvalidRequestError`):
   *   1. files under `<path>` in the run's artifacts -> source `<run artifact_uri>/<path>`
   *      (e.g. `mlflow-artifacts:/1/<runId>/artifacts/model`);
   *   2. otherwise exactly one logged model named `<path>` whose source run is `<runId>` -> source
   *      `models:/<modelId>` with `model_id` set (several -> `MlflowInvalidRequestError`: pass `models:/<id>`);
   *   3. otherwise `MlflowNotFoundError`.
   * - `models:/<modelId>` gets its `model_id` filled in (the server requires it). Other sources
   *   (`mlflow-artifacts:/...`, `s3://...`) are passed through unchanged.
   */
  async createModelVersion(p: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    tags?: Record<string, string>;
    description?: string;
  }): Promise<ModelVersion> {
    const endpoint = `POST ${API_PREFIX}/model-versions/create`;
    let { source, runId, modelId } = p;
    const runsUri = parseRunsUri(source);
    if (runsUri !== undefined) {
      if (runId !== undefined && runId !== runsUri.runId) {
        throw new MlflowInvalidRequestError(
          `${endpoint}: runId ${runId} does not match the run ${runsUri.runId} of source ${source}`,
          { endpoint },
        );
      }
      runId = runsUri.runId;
      const resolved = await this.resolveRunsSource(runsUri.runId, runsUri.artifactPath, endpoint);
      source = resolved.source;
      modelId = resolved.modelId ?? modelId;
    } else {
      modelId = modelId ?? parseModelIdUri(source);
    }
    const res = await this.call(
      {
        method: 'POST',
        path: `${API_PREFIX}/model-versions/create`,
        json: {
          name: p.name,
          source,
          run_id: runId,
          model_id: modelId,
          tags: toKeyValues(p.tags),
          description: p.description,
        },
      },
      modelVersionResponseSchema,
    );
    return res.model_version;
  }

  private async resolveRunsSource(
    runId: string,
    artifactPath: string,
    endpoint: string,
  ): Promise<{ source: string; modelId?: string }> {
    const run = await this.getRun(runId);
    const files = await this.listArtifacts(runId, artifactPath);
    if (files.length > 0) {
      const root = run.info.artifactUri.replace(/\/+$/, '');
      return { source: artifactPath === '' ? root : `${root}/${artifactPath}` };
    }
    const models = await this.searchLoggedModelsOfRun(run.info.experimentId, runId);
    const named = models.filter((m) => m.name === artifactPath);
    if (named.length === 1 && named[0] !== undefined) {
      return { source: `models:/${named[0].modelId}`, modelId: named[0].modelId };
    }
    if (named.length > 1) {
      throw new MlflowInvalidRequestError(
        `${endpoint}: run ${runId} has ${named.length} logged models named ${JSON.stringify(artifactPath)}; ` +
          `register one explicitly with source models:/<modelId>`,
        { endpoint },
      );
    }
    throw new MlflowNotFoundError(
      `${endpoint}: run ${runId} has no artifacts at ${JSON.stringify(artifactPath)} and no logged model of ` +
        `that name`,
      { endpoint },
    );
  }

  private async searchLoggedModelsOfRun(
    experimentId: string,
    runId: string,
  ): Promise<{ modelId: string; name: string }[]> {
    const out: { modelId: string; name: string }[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await this.call(
        {
          method: 'POST',
          path: `${API_PREFIX}/logged-models/search`,
          json: {
            experiment_ids: [experimentId],
            // Run ids are hex, safe to quote; the name is compared here rather than escaped into the filter.
            filter: `source_run_id = '${runId.replace(/[^0-9a-zA-Z_-]/g, '')}'`,
            page_token: pageToken,
          },
        },
        loggedModelSearchResponseSchema,
      );
      for (const m of res.models) {
        if (m.sourceRunId === runId) out.push({ modelId: m.modelId, name: m.name });
      }
      if (
        res.next_page_token === undefined ||
        res.next_page_token === '' ||
        res.next_page_token === pageToken
      ) {
        return out;
      }
      pageToken = res.next_page_token;
    }
    return out;
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const res = await this.call(
      { method: 'GET', path: `${API_PREFIX}/model-versions/get`, query: { name, version } },
      modelVersionResponseSchema,
    );
    return res.model_version;
  }

  /**
   * Where a version's files live, as MLflow resolves it (`mlflow-artifacts:/...` for sources registered by
   * this client; readable with {@link listArtifactsRecursiveAtUri} / {@link downloadArtifactAtUri}).
   */
  async getModelVersionDownloadUri(name: string, version: string): Promise<string> {
    const res = await this.call(
      { method: 'GET', path: `${API_PREFIX}/model-versions/get-download-uri`, query: { name, version } },
      downloadUriResponseSchema,
    );
    return res.artifact_uri;
  }

  /** One page of model versions matching `filter` (e.g. `name = 'fraud'`, `run_id = '...'`). */
  async searchModelVersions(p: {
    filter?: string;
    maxResults?: number;
    orderBy?: string[];
    pageToken?: string;
  }): Promise<{ modelVersions: ModelVersion[]; nextPageToken?: string }> {
    const res = await this.call(
      {
        method: 'GET',
        path: `${API_PREFIX}/model-versions/search`,
        query: { filter: p.filter, max_results: p.maxResults, order_by: p.orderBy, page_token: p.pageToken },
      },
      searchModelVersionsResponseSchema,
    );
    return withPageToken({ modelVersions: res.model_versions }, res.next_page_token);
  }

  async setModelVersionTag(name: string, version: string, key: string, value: string): Promise<void> {
    await this.call(
      { method: 'POST', path: `${API_PREFIX}/model-versions/set-tag`, json: { name, version, key, value } },
      emptyResponseSchema,
    );
  }

  /** Removes a version tag; removing a tag that is not set succeeds (MLflow 3.17.2 behaviour). */
  async deleteModelVersionTag(name: string, version: string, key: string): Promise<void> {
    await this.call(
      { method: 'DELETE', path: `${API_PREFIX}/model-versions/delete-tag`, json: { name, version, key } },
      emptyResponseSchema,
    );
  }

  // ---- aliases ----------------------------------------------------------------------------------------

  /** Points `alias` at `version`, moving it if it pointed elsewhere. */
  async setAlias(name: string, alias: string, version: string): Promise<void> {
    await this.call(
      { method: 'POST', path: `${API_PREFIX}/registered-models/alias`, json: { name, alias, version } },
      emptyResponseSchema,
    );
  }

  /**
   * The version `alias` points at. `MlflowNotFoundError` when the alias is unset or the model is missing
   * (MLflow 3.17.2 answers an unset alias with HTTP 400 INVALID_PARAMETER_VALUE "Registered model alias ... not
   * found"; this method maps that to not-found).
   */
  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    try {
      const res = await this.call(
        { method: 'GET', path: `${API_PREFIX}/registered-models/alias`, query: { name, alias } },
        modelVersionResponseSchema,
      );
      return res.model_version;
    } catch (err) {
      if (err instanceof MlflowInvalidRequestError && /alias .* not found/i.test(err.message)) {
        const fields = { endpoint: err.endpoint, cause: err, ...statusAndCode(err) };
        throw new MlflowNotFoundError(err.message, fields);
      }
      throw err;
    }
  }

  /** Like {@link getModelVersionByAlias}, but `undefined` when the alias (or the model) does not exist. */
  async findModelVersionByAlias(name: string, alias: string): Promise<ModelVersion | undefined> {
    try {
      return await this.getModelVersionByAlias(name, alias);
    } catch (err) {
      if (err instanceof MlflowNotFoundError) return undefined;
      throw err;
    }
  }

  /** Removes an alias; removing an unset alias succeeds (MLflow 3.17.2), a missing model is not-found. */
  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.call(
      { method: 'DELETE', path: `${API_PREFIX}/registered-models/alias`, json: { name, alias } },
      emptyResponseSchema,
    );
  }

  // ---- transport --------------------------------------------------------------------------------------

  /** Sends a request and returns the body of a 2xx answer; throws the mapped `MlflowError` otherwise. */
  private async send(spec: RequestSpec): Promise<{ endpoint: string; status: number; bytes: Buffer }> {
    const endpoint = spec.label ?? `${spec.method} ${spec.path}`;
    const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
    const url = this.trackingUri + spec.path + queryString(spec.query);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.authHeader !== undefined) headers['Authorization'] = this.authHeader;
    let body: Buffer | string | undefined;
    if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.body !== undefined) {
      headers['Content-Type'] = spec.contentType ?? 'application/octet-stream';
      body = spec.body;
    }
    let status: number;
    let ok: boolean;
    let bytes: Buffer;
    try {
      const res = await this.fetchImpl(url, {
        method: spec.method,
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      ok = res.ok;
      // Reading the body is under the same timeout signal.
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw mlflowErrorFromNetwork(endpoint, err, timeoutMs);
    }
    if (!ok) throw mlflowErrorFromResponse(endpoint, status, bytes.toString('utf8'));
    return { endpoint, status, bytes };
  }

  /** Sends a request and validates the JSON answer with `schema`. */
  private async call<S extends z.ZodType>(spec: RequestSpec, schema: S): Promise<z.output<S>> {
    const { endpoint, status, bytes } = await this.send(spec);
    const text = bytes.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? {} : JSON.parse(text);
    } catch (err) {
      throw new MlflowProtocolError(`${endpoint}: response is not JSON (HTTP ${status})`, {
        endpoint,
        status,
        cause: err,
      });
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const issues = result.error.issues
        .slice(0, 5)
        .map((i) => `${formatIssuePath(i.path)}: ${i.message}`)
        .join('; ');
      throw new MlflowProtocolError(`${endpoint}: unexpected response shape: ${issues}`, {
        endpoint,
        status,
        cause: result.error,
      });
    }
    return result.data;
  }
}

/** Every file below `path`, depth first through `list` (one level per call), sorted by path. */
async function walkArtifacts(path: string, list: (dir: string) => Promise<FileInfo[]>): Promise<FileInfo[]> {
  const files: FileInfo[] = [];
  const pending = [path];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of await list(dir)) {
      if (entry.isDir) pending.push(entry.path);
      else files.push(entry);
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function positiveTimeout(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new MlflowInvalidRequestError(`${field} must be a positive number of milliseconds, got ${value}`, {
      endpoint: 'MlflowClient options',
    });
  }
  return value;
}

function queryString(query: Record<string, QueryValue> | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (typeof value === 'string' || typeof value === 'number') params.append(key, String(value));
    else for (const v of value) params.append(key, v);
  }
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

function withPageToken<T extends object>(page: T, token: string | undefined): T & { nextPageToken?: string } {
  return token === undefined || token === '' ? page : { ...page, nextPageToken: token };
}

function statusAndCode(err: MlflowError): { status?: number; errorCode?: string } {
  const out: { status?: number; errorCode?: string } = {};
  if (err.status !== undefined) out.status = err.status;
  if (err.errorCode !== undefined) out.errorCode = err.errorCode;
  return out;
}
