/**
 * Fakes of the traffic-router and KPI-source ports for the workflow-logic layer (the real ones are
 * the gateway's admin API and /metrics, exercised by the workflows layer). The router keeps route
 * states in memory with the gateway's merge rules; the KPI source simulates traffic: every snapshot
 * adds `requestsPerSnapshot` requests split by the current canary weight, with a per-version error
 * rate (`errorRatesAsStable` overrides it while the version serves as stable, i.e. after promotion),
 * so a canary analysis or kpiGuard sees counters grow as it would on a live gateway.
 */
import { RouteStateSchema, type RouteState, type RouteUpdate } from '../../src/core/contracts/gateway';
import type { KpiSnapshot, VersionCounters } from '../../src/core/contracts/kpi';
import type { KpiSource } from '../../src/ports/kpi-source';
import type { TrafficRouter } from '../../src/ports/traffic-router';
import { mergeRouteState } from '../../src/gateway/router';

export class MemoryTrafficRouter implements TrafficRouter {
  readonly kind = 'memory';
  private readonly routes = new Map<string, RouteState>();

  serve(model: string, stable: string): void {
    this.routes.set(model, RouteStateSchema.parse({ model, stable }));
  }

  async getRoute(model: string): Promise<RouteState | undefined> {
    const r = this.routes.get(model);
    return r ? { ...r } : undefined;
  }

  async updateRoute(model: string, update: RouteUpdate): Promise<RouteState> {
    const current = this.routes.get(model);
    if (!current) throw new Error(`model ${model} is not served`);
    const next = mergeRouteState(current, update);
    this.routes.set(model, next);
    return { ...next };
  }
}

const BOUNDS = [0.001, 0.005, 0.01, 0.05, null];
const SCORE_BOUNDS = [0.1, 0.5, 0.9, null];

export class SimulatedKpiSource implements KpiSource {
  readonly kind = 'simulated';
  private readonly counters = new Map<string, VersionCounters>();
  /** Error rate per version (default 0). */
  readonly errorRates = new Map<string, number>();
  /** Error rate per version while it is the route's stable (a model that fails only once promoted). */
  readonly errorRatesAsStable = new Map<string, number>();

  constructor(
    private readonly router: MemoryTrafficRouter,
    private readonly requestsPerSnapshot = 400,
  ) {}

  async snapshot(model: string): Promise<KpiSnapshot> {
    const route = await this.router.getRoute(model);
    if (route) {
      const canaryShare = route.canary ? route.canaryWeight : 0;
      this.add(`${model}/${route.stable}`, Math.round(this.requestsPerSnapshot * (1 - canaryShare)), true);
      if (route.canary)
        this.add(`${model}/${route.canary}`, Math.round(this.requestsPerSnapshot * canaryShare), false);
    }
    const versions: Record<string, VersionCounters> = {};
    for (const [key, c] of this.counters) {
      const [m, v] = key.split('/');
      if (m === model && v) versions[v] = structuredClone(c);
    }
    return { at: new Date().toISOString(), model, versions };
  }

  private add(key: string, n: number, asStable: boolean): void {
    const c = this.counters.get(key) ?? {
      requests: 0,
      errors: 0,
      oodRequests: 0,
      latencySeconds: { bounds: BOUNDS, counts: BOUNDS.map(() => 0) },
      predictionScore: { bounds: SCORE_BOUNDS, counts: SCORE_BOUNDS.map(() => 0) },
    };
    const v = key.split('/')[1] ?? '';
    const rate = (asStable ? this.errorRatesAsStable.get(v) : undefined) ?? this.errorRates.get(v) ?? 0;
    const errors = Math.round(n * rate);
    c.requests += n;
    c.errors += errors;
    const ok = n - errors;
    // Latency around 3 ms; scores: 80% low, 15% middle, 5% high (cumulative buckets).
    c.latencySeconds.counts = c.latencySeconds.counts.map((v, i) => v + (i >= 1 ? ok : 0));
    const low = Math.round(ok * 0.8);
    const mid = Math.round(ok * 0.15);
    c.predictionScore.counts = c.predictionScore.counts.map(
      (v, i) => v + (i === 0 ? low : i === 1 ? low + mid : i === 2 ? ok - Math.round(ok * 0.05) + 0 : ok),
    );
    this.counters.set(key, c);
  }
}
