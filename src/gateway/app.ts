/**
 * Assembles a gateway process from its configuration. Two roles share this code:
 * - `standalone`: one process does everything (tests, the demo, a one-core pod).
 * - `worker`: one of the cluster's serving processes; what must be shared across processes (memory
 *   rate-limit buckets, the KPI window and its breach push, metrics aggregation, the authoritative route
 *   state) is delegated to the primary through {@link ClusterLink} (see cluster.ts).
 */
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type client from 'prom-client';
import { FRAUD_FEATURE_SPEC } from '../core/contracts/fraud';
import type { FeatureSpec } from '../core/contracts/feature-spec';
import type { GatewayConfig, KpiBreach, ModelRef, RouteUpdate } from '../core/contracts/gateway';
import type { ModelRegistry } from '../ports/model-registry';
import { createModelRegistry } from '../registry';
import { createVerifyOnlyTrust, parsePublicKeyBlocks, type ModelTrust } from '../security/model-trust';
import { Authenticator } from './auth';
import { enableBatching } from './batching';
import { isoNow } from './clock';
import { JsonlInferenceLog } from './inference-log';
import { LineChunks } from './line-chunks';
import { BreachPusher, KpiMonitor, KpiWindow } from './kpi';
import { createChatRoute, loadChatRouteConfig } from './llm';
import { GatewayMetrics, KpiMetrics } from './metrics';
import { loadVerifiedModel, ModelIntegrityError, type LoadedModel } from './models';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit';
import { RedisRouteSync, sameRoute } from './route-sync';
import { RouteTable } from './router';
import { createGatewayServer, type RouteControl } from './server';

/** Longest an access-log line waits before it is written (lines are written in chunks of LINE_CHUNK_BYTES). */
export const ACCESS_LOG_FLUSH_MS = 1000;
/** Feature specs used when a model's artifacts carry none. */
export const FALLBACK_SPECS: Readonly<Record<string, FeatureSpec>> = { fraud: FRAUD_FEATURE_SPEC };

/** What a worker asks of the cluster primary. */
export interface ClusterLink {
  limiter: RateLimiter;
  metricsText(): Promise<string>;
  routes: RouteControl;
  /** Ships the KPI window's deltas to the primary on an interval. */
  shipKpi(window: KpiWindow): () => void;
}

export interface GatewayProcess {
  url: string;
  port: number;
  table: RouteTable;
  server: http.Server;
  registry: client.Registry;
  /** Stops taking requests, waits for in-flight ones (up to the grace), then releases everything. */
  close(): Promise<void>;
}

/**
 * pino's destination for the access log: each line is copied into a chunk off the JS heap
 * ({@link LineChunks}) and a chunk is written once full (LINE_CHUNK_BYTES, line-chunks.ts) or after
 * {@link ACCESS_LOG_FLUSH_MS}, through a stream that keeps them in order. (sonic-boom, pino's own
 * buffered destination, measures the byte length of its whole pending buffer on every line, which cost
 * more than serialising the line in the gateway's profile.)
 *
 * Loss window: a crash loses the lines of at most the last {@link ACCESS_LOG_FLUSH_MS} (or one chunk);
 * the gateway's graceful shutdown flushes them (`logger.flush`).
 */
export class BatchedLogDestination {
  private readonly chunks = new LineChunks((bytes) => {
    this.written = new Promise((resolve) => this.out.write(bytes, () => resolve()));
  });
  /** Settles once everything handed to the stream so far is written. */
  private written: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WritableStream) {
    this.timer = setInterval(() => this.flush(), ACCESS_LOG_FLUSH_MS);
    this.timer.unref();
  }

  write(line: string): boolean {
    this.chunks.push(line);
    return true;
  }

  /** Hands the buffered lines to the stream; `cb` runs once they are written. */
  flush(cb?: (err?: Error | null) => void): void {
    this.chunks.flush();
    if (cb) void this.written.then(() => cb());
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export function createAccessLog(target: string): Logger | undefined {
  if (target === 'off') return undefined;
  let out: NodeJS.WritableStream;
  if (target === 'stdout') out = process.stdout;
  else {
    mkdirSync(path.dirname(target), { recursive: true });
    out = createWriteStream(target, { flags: 'a' });
  }
  return pino(
    // pino's isoTime, with the text shared per millisecond (see clock.ts).
    { base: { pid: process.pid }, timestamp: () => `,"time":"${isoNow()}"` },
    new BatchedLogDestination(out),
  );
}

export function createLimiter(config: GatewayConfig): RateLimiter {
  const rl = config.rateLimit;
  return rl.backend === 'redis'
    ? new RedisRateLimiter(rl.redisUrl as string, rl.ratePerSecond, rl.burst, rl.prefix)
    : new MemoryRateLimiter(rl.ratePerSecond, rl.burst);
}

/** The KPI monitor with its breach push (where it runs: standalone process or cluster primary). */
export function createKpiMonitor(config: GatewayConfig, registry: client.Registry, log?: Logger) {
  const kpiMetrics = new KpiMetrics(registry);
  const pusher = config.temporal ? new BreachPusher(config.temporal) : undefined;
  const window = new KpiWindow(config.kpi.windowMs);
  const monitor = new KpiMonitor(
    window,
    config.kpi,
    async (b: KpiBreach) => {
      const result = pusher ? await pusher.push(b) : 'no-workflow';
      kpiMetrics.kpiPushes.labels(b.model ?? '', b.version ?? '', b.metric, result).inc();
      log?.warn({ decision: 'kpi_breach', breach: b, push: result });
    },
    (s) => kpiMetrics.oodRate.labels(s.model, s.version).set(s.oodRate),
  );
  monitor.start();
  return {
    window,
    monitor,
    async close() {
      monitor.stop();
      await pusher?.close();
    },
  };
}

/** The verify-only model trust of the gateway's configuration (no signing key ever reaches it). */
export function gatewayModelTrust(config: GatewayConfig): ModelTrust | undefined {
  const sig = config.modelSignatures;
  if (!sig) return undefined;
  let text: string;
  try {
    text = readFileSync(sig.trustedKeysFile, 'utf8');
  } catch (err) {
    throw new Error(`modelSignatures.trustedKeysFile ${sig.trustedKeysFile}: ${(err as Error).message}`);
  }
  const keys = parsePublicKeyBlocks(text);
  if (keys.length === 0) {
    throw new Error(`modelSignatures.trustedKeysFile ${sig.trustedKeysFile} holds no PEM public key`);
  }
  return createVerifyOnlyTrust(keys, sig.mode);
}

export async function startGatewayProcess(
  config: GatewayConfig,
  opts: { link?: ClusterLink; log?: Logger; registry?: ModelRegistry } = {},
): Promise<GatewayProcess> {
  const log = opts.log ?? createAccessLog(config.accessLog);
  // MLflow credentials come from the environment (MLFLOW_TRACKING_USERNAME/PASSWORD or _TOKEN).
  const modelRegistry =
    opts.registry ?? createModelRegistry({ kind: 'mlflow', trackingUri: config.mlflowTrackingUri });
  const metrics = new GatewayMetrics();
  const trust = gatewayModelTrust(config);
  const loader = async (name: string, ref: ModelRef): Promise<LoadedModel> => {
    const label = 'version' in ref ? ref.version : ref.alias;
    try {
      const loaded = await loadVerifiedModel(modelRegistry, name, ref, {
        fallbackSpec: FALLBACK_SPECS[name],
        ...(trust ? { trust } : {}),
      });
      metrics.modelLoads.labels(name, loaded.version, 'ok').inc();
      const rows = metrics.batchRowsOf(name, loaded.version);
      loaded.batcher = await enableBatching(loaded, config.maxBatch, (n) => rows.observe(n));
      log?.info({
        decision: 'model_loaded',
        model: name,
        version: loaded.version,
        manifest: loaded.manifestSha256,
        // Off when maxBatch is 1, or when batched calls disagreed with single-row ones at load.
        batching: loaded.batcher !== undefined,
      });
      return loaded;
    } catch (err) {
      const integrity = err instanceof ModelIntegrityError;
      metrics.modelLoads.labels(name, label, integrity ? 'integrity' : 'error').inc();
      log?.error({
        decision: integrity ? 'integrity_refused' : 'load_failed',
        model: name,
        ref: label,
        reason: (err as Error).message,
      });
      throw err;
    }
  };
  const table = new RouteTable(loader, (model, state, versions) => {
    metrics.modelInfo.reset();
    for (const [v, served] of versions) {
      const route =
        v === state.stable ? 'stable' : v === state.canary ? (state.shadow ? 'shadow' : 'canary') : 'staging';
      metrics.modelInfo.labels(model, v, route, served.slot.model.manifestSha256).set(1);
    }
  });
  await table.init(config.models);

  let kpiParts: ReturnType<typeof createKpiMonitor> | undefined;
  let window: KpiWindow;
  let stopShipping = () => {};
  let limiter: RateLimiter;
  let metricsText: () => Promise<string>;
  let routes: RouteControl;
  let sync: RedisRouteSync | undefined;
  if (opts.link) {
    window = new KpiWindow(config.kpi.windowMs);
    stopShipping = opts.link.shipKpi(window);
    limiter = config.rateLimit.backend === 'redis' ? createLimiter(config) : opts.link.limiter;
    metricsText = () => opts.link!.metricsText();
    routes = opts.link.routes;
  } else {
    kpiParts = createKpiMonitor(config, metrics.registry, log);
    window = kpiParts.window;
    limiter = createLimiter(config);
    metricsText = () => metrics.registry.metrics();
    routes = { get: (m) => table.getRoute(m), update: (m, u: RouteUpdate) => table.updateRoute(m, u) };
    if (config.rateLimit.backend === 'redis') {
      // Replicas share route changes through the same Redis as their rate limits.
      sync = new RedisRouteSync(
        config.rateLimit.redisUrl as string,
        config.rateLimit.prefix,
        async (state) => {
          if (!sameRoute(await table.getRoute(state.model), state)) await table.apply(state.model, state);
        },
        (model, err) => log?.error({ decision: 'route_sync_failed', model, reason: err.message }),
      );
      await sync.start(table.modelNames());
      const shared = sync;
      routes = {
        get: (m) => table.getRoute(m),
        update: async (m, u: RouteUpdate) => {
          const state = await table.updateRoute(m, u);
          await shared.publish(state);
          return state;
        },
      };
    }
  }
  const inferenceLog = config.inferenceLogDir ? new JsonlInferenceLog(config.inferenceLogDir) : undefined;
  // The guarded chat route, when MLOPS_GATEWAY_LLM_CONFIG names its configuration (src/gateway/llm).
  const chatConfig = loadChatRouteConfig();
  const chat = chatConfig ? await createChatRoute(chatConfig) : undefined;
  const gw = createGatewayServer({
    config,
    table,
    auth: new Authenticator(config.apiKeys, config.jwt),
    adminAuth: new Authenticator(config.adminKeys),
    limiter,
    metrics,
    kpi: window,
    accessLog: log,
    inferenceLog,
    metricsText,
    routes,
    chat,
  });
  await new Promise<void>((resolve, reject) => {
    gw.server.once('error', reject);
    gw.server.listen(config.port, config.host, () => resolve());
  });
  const { port } = gw.server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host}:${port}`,
    port,
    table,
    server: gw.server,
    registry: metrics.registry,
    close() {
      closing ??= (async () => {
        gw.setDraining(true);
        const closed = new Promise<void>((r) => gw.server.close(() => r()));
        gw.server.closeIdleConnections();
        const deadline = Date.now() + config.shutdownGraceMs;
        while (gw.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        gw.server.closeAllConnections();
        await closed;
        gw.flushLogs();
        stopShipping();
        await kpiParts?.close();
        await inferenceLog?.close();
        await limiter.close();
        await sync?.close();
        await table.close();
        await chat?.close();
        if (log) await new Promise<void>((r) => log.flush(() => r()));
      })();
      return closing;
    },
  };
}
