/**
 * The demo's serving side: the inference gateway serving `fraud@champion` from the demo's MLflow,
 * the traffic router and KPI source the worker's canary activities use (bound once the gateway is
 * up), a bounded stream of customer traffic while a canary bakes, and one authenticated prediction
 * to show at the end. Keys are generated per run; only their hashes reach the gateway, and the
 * predict key is written to a 0600 file in the state folder, never printed.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { FRAUD_FEATURE_SPEC } from '../core/contracts/fraud';
import type { RouteState, RouteUpdate } from '../core/contracts/gateway';
import type { KpiSnapshot } from '../core/contracts/kpi';
import { hashApiKey, startGateway, type RunningGateway } from '../gateway';
import { GatewayMetricsKpiSource } from '../kpi/gateway-metrics';
import type { KpiSource } from '../ports/kpi-source';
import type { StagingAnswer, StagingPredictor, TrafficRouter } from '../ports/traffic-router';
import { GatewayTrafficRouter, RouterUnavailableError } from '../traffic/gateway-router';
import { generateFraudDataset } from '../workload/generator';

/** Concurrent demo clients while a canary bakes: enough requests per window at 10%. */
const DEMO_CLIENTS = 4;
/** Pause between one client's requests. */
const DEMO_CLIENT_PAUSE_MS = 10;
/** Upper bound on the demo's traffic, whatever happens. */
const DEMO_LOAD_MAX_MS = 15 * 60_000;

export class DemoServing {
  private gateway?: RunningGateway;
  private router?: GatewayTrafficRouter;
  private kpiSource?: GatewayMetricsKpiSource;
  private readonly predictKey = `mk_${randomBytes(24).toString('base64url')}`;
  private readonly adminKey = `mk_${randomBytes(24).toString('base64url')}`;
  private readonly rows = generateFraudDataset({ rows: 256, seed: 4242 }).map((r) => {
    const out: Record<string, number | string | null> = {};
    for (const f of FRAUD_FEATURE_SPEC.features) {
      out[f.name] = (r as unknown as Record<string, number | string | null>)[f.name] ?? null;
    }
    return out;
  });

  /** The worker's traffic router: the gateway's admin API (and staging route) once it is up. */
  readonly trafficRouter: TrafficRouter & StagingPredictor = {
    getRoute: (model: string) => this.requireRouter().getRoute(model),
    updateRoute: (model: string, update: RouteUpdate): Promise<RouteState> =>
      this.requireRouter().updateRoute(model, update),
    predictStaging: (
      model: string,
      features: Record<string, number | string | null>,
    ): Promise<StagingAnswer> => this.requireRouter().predictStaging(model, features),
  };

  /** The worker's KPI source: the gateway's /metrics once it is up. */
  readonly kpi: KpiSource = {
    kind: 'gateway-metrics',
    snapshot: (model: string): Promise<KpiSnapshot> => {
      if (!this.kpiSource) return Promise.reject(new Error('the demo gateway is not up yet'));
      return this.kpiSource.snapshot(model);
    },
  };

  private requireRouter(): GatewayTrafficRouter {
    if (!this.router) throw new RouterUnavailableError('the demo gateway is not up yet');
    return this.router;
  }

  get url(): string | undefined {
    return this.gateway?.url;
  }

  async start(opts: { trackingUri: string; temporalAddress: string; stateDir: string; model: string }) {
    const keyFile = path.join(opts.stateDir, 'demo-api-key');
    writeFileSync(keyFile, `${this.predictKey}\n`, { mode: 0o600 });
    this.gateway = await startGateway({
      port: 0,
      workers: 1,
      mlflowTrackingUri: opts.trackingUri,
      models: [{ name: opts.model, stable: { alias: 'champion' } }],
      apiKeys: [
        { principal: 'demo-client', sha256: hashApiKey(this.predictKey), roles: ['predict'] },
        // The rollout's key also predicts on the staging route (admin principals only).
        { principal: 'demo-rollout', sha256: hashApiKey(this.adminKey), roles: ['admin'] },
      ],
      adminKeys: [{ principal: 'demo-rollout', sha256: hashApiKey(this.adminKey), roles: ['admin'] }],
      accessLog: path.join(opts.stateDir, 'gateway-access.log'),
      inferenceLogDir: path.join(opts.stateDir, 'inference-log'),
      temporal: { address: opts.temporalAddress },
    });
    this.router = new GatewayTrafficRouter(this.gateway.url, () => this.adminKey);
    this.kpiSource = new GatewayMetricsKpiSource(`${this.gateway.url}/metrics`);
    return { url: this.gateway.url, keyFile };
  }

  private post(model: string, features: Record<string, unknown>): Promise<Response> {
    return fetch(`${this.gateway?.url}/v1/models/${model}/predict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.predictKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ features }),
    });
  }

  /** Customer traffic until stopped (bounded in time); returns a stop function that reports counts. */
  startTraffic(model: string): () => Promise<{ requests: number; errors: number }> {
    let stop = false;
    let requests = 0;
    let errors = 0;
    const started = Date.now();
    const client = async (i: number) => {
      for (let n = i; !stop && Date.now() - started < DEMO_LOAD_MAX_MS; n += DEMO_CLIENTS) {
        try {
          const res = await this.post(model, this.rows[n % this.rows.length]!);
          await res.arrayBuffer();
          requests++;
          if (res.status >= 500) errors++;
        } catch {
          errors++;
        }
        await new Promise((r) => setTimeout(r, DEMO_CLIENT_PAUSE_MS));
      }
    };
    const all = Promise.all(Array.from({ length: DEMO_CLIENTS }, (_, i) => client(i)));
    return async () => {
      stop = true;
      await all;
      return { requests, errors };
    };
  }

  /**
   * Rehearses a bad release: waits until `version` takes canary traffic, then injects an abort
   * fault on it through the admin API (every request it answers becomes a 503), as an operator
   * would with a service mesh's fault injection. Resolves once injected, or when `signal` aborts.
   */
  async injectFaultOnCanary(model: string, version: string, signal: AbortSignal): Promise<boolean> {
    const router = this.requireRouter();
    while (!signal.aborted) {
      const route = await router.getRoute(model).catch(() => undefined);
      if (route?.canary === version && route.canaryWeight > 0) {
        await router.updateRoute(model, { fault: { version, abortPercent: 100 } });
        return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** One authenticated prediction, as a client would make it. */
  async predictOnce(model: string): Promise<{ status: number; body: string; timing: string | null }> {
    const res = await this.post(model, this.rows[0]!);
    return { status: res.status, body: await res.text(), timing: res.headers.get('server-timing') };
  }

  async close(): Promise<void> {
    await this.gateway?.close();
  }
}
