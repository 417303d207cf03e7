/**
 * Every core: a node:cluster primary forks one serving worker per core; the workers share the listening
 * port (the primary distributes connections round-robin). The primary serves no requests; it holds what
 * must be one per replica:
 * - the memory rate-limit buckets (workers lease tokens from them in small batches over IPC; with Redis
 *   they go to Redis),
 * - the KPI window (workers ship deltas), its breach judgement and push,
 * - the metrics view (prom-client's AggregatorRegistry sums the workers' registries),
 * - the authoritative route state: an admin update is prepared (loaded and verified) on every worker
 *   and committed on all of them only if all succeeded; a restarted worker is brought to the state.
 */
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import { type GatewayConfig, type RouteState, type RouteUpdate } from '../core/contracts/gateway';
import { createAccessLog, createKpiMonitor, startGatewayProcess, type ClusterLink } from './app';
import type { KpiDelta, KpiWindow } from './kpi';
import { LeasingRateLimiter, MemoryRateLimiter } from './rate-limit';
import { RedisRouteSync, sameRoute } from './route-sync';
import { mergeRouteState, RouteError, type Prepared } from './router';

/** How often workers ship KPI deltas to the primary. */
export const KPI_SHIP_INTERVAL_MS = 250;
/** Environment variable carrying the parsed configuration to forked workers. */
export const WORKER_CONFIG_ENV = 'MLOPS_GATEWAY_WORKER_CONFIG';
/** Environment variable telling a forked worker how many siblings it has (for lease sizes). */
export const WORKER_COUNT_ENV = 'MLOPS_GATEWAY_WORKER_COUNT';
/** Longest the primary waits for a worker's answer to a prepare/commit. */
export const CLUSTER_RPC_TIMEOUT_MS = 120_000;

type Rpc =
  | { op: 'lease'; key: string; want: number }
  | { op: 'kpi'; deltas: KpiDelta[] }
  | { op: 'metrics' }
  | { op: 'route.get'; model: string }
  | { op: 'route.update'; model: string; update: RouteUpdate }
  | { op: 'ready'; states: RouteState[] };

type Command =
  | { op: 'prepare'; model: string; next: RouteState }
  | { op: 'commit'; model: string }
  | { op: 'abandon'; model: string }
  | { op: 'apply'; state: RouteState };

interface Envelope<T> {
  mlops: 'rpc' | 'res' | 'cmd' | 'ack';
  id: number;
  body?: T;
  result?: unknown;
  error?: { name: string; message: string; status?: number };
}

function rebuildError(e: { name: string; message: string; status?: number }): Error {
  const err = e.status !== undefined ? new RouteError(e.message, e.status) : new Error(e.message);
  Object.defineProperty(err, 'name', { value: e.name });
  return err;
}

const errorOf = (err: unknown) => {
  const e = err as Error & { status?: number };
  return { name: e.name, message: e.message, status: e instanceof RouteError ? e.status : undefined };
};

// ---------------------------------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------------------------------

function workerLink(config: GatewayConfig, workers: number): ClusterLink {
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  process.on('message', (m: Envelope<unknown>) => {
    if (m?.mlops !== 'res') return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(rebuildError(m.error));
    else p.resolve(m.result);
  });
  const call = <T>(body: Rpc): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      process.send?.({ mlops: 'rpc', id, body } satisfies Envelope<Rpc>);
    });
  return {
    limiter: new LeasingRateLimiter(
      (key, want) => call<{ granted: number; retryAfterS: number }>({ op: 'lease', key, want }),
      config.rateLimit.burst,
      workers,
    ),
    metricsText: () => call<string>({ op: 'metrics' }),
    routes: {
      get: (model) => call<RouteState | undefined>({ op: 'route.get', model }),
      update: (model, update) => call<RouteState>({ op: 'route.update', model, update }),
    },
    shipKpi(window: KpiWindow) {
      const timer = setInterval(() => {
        const deltas = window.drain();
        if (deltas.length > 0) void call({ op: 'kpi', deltas });
      }, KPI_SHIP_INTERVAL_MS);
      timer.unref();
      return () => {
        clearInterval(timer);
        const deltas = window.drain();
        if (deltas.length > 0) void call({ op: 'kpi', deltas });
      };
    },
  };
}

/** Body of a forked worker: start a gateway process wired to the primary. */
export async function runClusterWorker(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] as string) as GatewayConfig;
  const link = workerLink(config, Number(process.env[WORKER_COUNT_ENV] ?? 1));
  const gw = await startGatewayProcess(config, { link });
  // Answer the primary's metric requests from this worker's registry.
  new client.AggregatorRegistry();
  client.AggregatorRegistry.setRegistries([gw.registry]);
  const prepared = new Map<string, Prepared>();
  process.on('message', (m: Envelope<Command>) => {
    if (m?.mlops !== 'cmd' || !m.body) return;
    const cmd = m.body;
    const reply = (result: unknown, error?: unknown) =>
      process.send?.({ mlops: 'ack', id: m.id, result, error: error ? errorOf(error) : undefined });
    void (async () => {
      try {
        if (cmd.op === 'prepare') {
          prepared.set(cmd.model, await gw.table.prepare(cmd.model, cmd.next));
          reply(true);
        } else if (cmd.op === 'commit') {
          const p = prepared.get(cmd.model);
          prepared.delete(cmd.model);
          reply(p ? gw.table.commit(p) : undefined);
        } else if (cmd.op === 'abandon') {
          const p = prepared.get(cmd.model);
          prepared.delete(cmd.model);
          if (p) await gw.table.abandon(p);
          reply(true);
        } else {
          reply(await gw.table.apply(cmd.state.model, cmd.state));
        }
      } catch (err) {
        reply(undefined, err);
      }
    })();
  });
  const states = (await Promise.all(gw.table.modelNames().map((n) => gw.table.getRoute(n)))).filter(
    (s): s is RouteState => s !== undefined,
  );
  process.send?.({ mlops: 'rpc', id: 0, body: { op: 'ready', states } } satisfies Envelope<Rpc>);
  const stop = () => void gw.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => {});
  process.on('disconnect', stop);
}

// ---------------------------------------------------------------------------------------------------
// Primary side
// ---------------------------------------------------------------------------------------------------

export interface ClusterPrimary {
  url: string;
  workers: number;
  close(): Promise<void>;
}

export async function startClusterPrimary(
  config: GatewayConfig,
  workerCount: number,
  exec: { file: string; execArgv?: string[] },
): Promise<ClusterPrimary> {
  const log = createAccessLog(config.accessLog);
  const registry = new client.Registry();
  const kpi = createKpiMonitor(config, registry, log);
  const aggregator = new client.AggregatorRegistry();
  const limiter = new MemoryRateLimiter(config.rateLimit.ratePerSecond, config.rateLimit.burst);
  const states = new Map<string, RouteState>();
  let stopping = false;
  let nextCmd = 1;
  const acks = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let readyCount = 0;
  let onAllReady: () => void = () => {};
  let onFailure: (e: Error) => void = () => {};
  const allReady = new Promise<void>((resolve, reject) => {
    onAllReady = resolve;
    onFailure = reject;
  });

  const command = (w: Worker, body: Command): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextCmd++;
      const timer = setTimeout(() => {
        acks.delete(id);
        reject(new Error(`worker ${w.id} did not answer ${body.op} in time`));
      }, CLUSTER_RPC_TIMEOUT_MS);
      acks.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      w.send({ mlops: 'cmd', id, body } satisfies Envelope<Command>);
    });
  const live = (): Worker[] =>
    Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());

  let updating: Promise<unknown> = Promise.resolve();
  let sync: RedisRouteSync | undefined;
  /** Prepares a state on every worker and commits it on all of them, or abandons it on all. */
  function applyState(model: string, next: RouteState, publish: boolean): Promise<RouteState> {
    const run = updating.then(async () => {
      const workers = live();
      const results = await Promise.allSettled(
        workers.map((w) => command(w, { op: 'prepare', model, next })),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await Promise.allSettled(workers.map((w) => command(w, { op: 'abandon', model })));
        throw failed.reason;
      }
      const committed = await Promise.all(workers.map((w) => command(w, { op: 'commit', model })));
      const state = (committed[0] as RouteState | undefined) ?? next;
      states.set(model, state);
      log?.info({ decision: 'route_updated', model, state });
      if (publish) await sync?.publish(state);
      return state;
    });
    updating = run.catch(() => undefined);
    return run;
  }

  async function updateRoute(model: string, update: RouteUpdate): Promise<RouteState> {
    const current = states.get(model);
    if (!current) throw new RouteError(`model ${model} is not served here`, 404);
    return applyState(model, mergeRouteState(current, update), true);
  }

  async function handleRpc(w: Worker, body: Rpc): Promise<unknown> {
    switch (body.op) {
      case 'lease':
        return limiter.takeMany(body.key, body.want);
      case 'kpi':
        for (const d of body.deltas) kpi.window.ingest(d);
        return true;
      case 'metrics':
        return (await aggregator.clusterMetrics()) + (await registry.metrics());
      case 'route.get':
        return states.get(body.model);
      case 'route.update':
        return updateRoute(body.model, body.update);
      case 'ready':
        for (const s of body.states) {
          const known = states.get(s.model);
          if (!known) states.set(s.model, s);
          else if (JSON.stringify(known) !== JSON.stringify(s))
            await command(w, { op: 'apply', state: known });
        }
        if (++readyCount === workerCount) onAllReady();
        return true;
    }
  }

  cluster.setupPrimary({ exec: exec.file, execArgv: exec.execArgv ?? process.execArgv, silent: false });
  const env = { [WORKER_CONFIG_ENV]: JSON.stringify(config), [WORKER_COUNT_ENV]: String(workerCount) };
  const fork = (): Worker => {
    const w = cluster.fork(env);
    w.on('message', (m: Envelope<Rpc>) => {
      if (m?.mlops === 'ack') {
        const a = acks.get(m.id);
        if (!a) return;
        acks.delete(m.id);
        if (m.error) a.reject(rebuildError(m.error));
        else a.resolve(m.result);
        return;
      }
      if (m?.mlops !== 'rpc' || !m.body) return;
      handleRpc(w, m.body).then(
        (result) => m.id !== 0 && w.isConnected() && w.send({ mlops: 'res', id: m.id, result }),
        (err) => m.id !== 0 && w.isConnected() && w.send({ mlops: 'res', id: m.id, error: errorOf(err) }),
      );
    });
    w.on('exit', (code) => {
      if (stopping) return;
      if (readyCount < workerCount)
        onFailure(new Error(`gateway worker exited with code ${code} while starting`));
      else {
        log?.error({ decision: 'worker_restarted', code });
        fork();
      }
    });
    return w;
  };
  for (let i = 0; i < workerCount; i++) fork();
  const listening = new Promise<number>((resolve) =>
    cluster.once('listening', (_w, address) => resolve(address.port)),
  );
  await allReady;
  const port = await listening;
  if (config.rateLimit.backend === 'redis') {
    // Replicas share route changes through the same Redis as their rate limits.
    sync = new RedisRouteSync(
      config.rateLimit.redisUrl as string,
      config.rateLimit.prefix,
      async (state) => {
        if (!sameRoute(states.get(state.model), state)) await applyState(state.model, state, false);
      },
      (model, err) => log?.error({ decision: 'route_sync_failed', model, reason: err.message }),
    );
    await sync.start([...states.keys()]);
  }
  return {
    url: `http://${config.host}:${port}`,
    workers: workerCount,
    async close() {
      stopping = true;
      const exits = live().map(
        (w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))),
      );
      for (const w of live()) w.process.kill('SIGTERM');
      await Promise.all(exits);
      await sync?.close();
      await kpi.close();
      if (log) await new Promise<void>((r) => log.flush(() => r()));
    },
  };
}
