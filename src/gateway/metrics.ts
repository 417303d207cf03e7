/**
 * Prometheus metrics of the gateway (prom-client), per model version: requests by status and route,
 * latency histogram, prediction distribution, OOD requests and the windowed OOD rate, shadow
 * comparisons, PII redactions, auth failures, rate-limit refusals, model loads. Label children are
 * cached so the hot path does no label lookups.
 */
import client from 'prom-client';
import type { PiiClass } from './pii';

/** Latency buckets in seconds: fine below 5 ms where the gateway's own overhead lives. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
/** Prediction score buckets: tenths of the probability range. */
export const SCORE_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly requests = new client.Counter({
    name: 'gateway_requests_total',
    help: 'Predict requests by model, version, route and HTTP status',
    labelNames: ['model', 'version', 'route', 'status'] as const,
    registers: [this.registry],
  });
  private readonly latency = new client.Histogram({
    name: 'gateway_request_duration_seconds',
    help: 'Predict request latency inside the gateway by model version',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly scores = new client.Histogram({
    name: 'gateway_prediction_score',
    help: 'Distribution of predicted positive-class probabilities by model version',
    labelNames: ['model', 'version'] as const,
    buckets: SCORE_BUCKETS,
    registers: [this.registry],
  });
  private readonly ood = new client.Counter({
    name: 'gateway_ood_requests_total',
    help: 'Requests judged out of distribution by model version and action',
    labelNames: ['model', 'version', 'action'] as const,
    registers: [this.registry],
  });
  readonly shadow = new client.Counter({
    name: 'gateway_shadow_comparisons_total',
    help: 'Shadow predictions compared with stable, by whether their decisions (at 0.5) agreed',
    labelNames: ['model', 'stable', 'candidate', 'agree'] as const,
    registers: [this.registry],
  });
  readonly shadowDiff = new client.Histogram({
    name: 'gateway_shadow_abs_diff',
    help: 'Absolute difference between shadow and stable scores',
    labelNames: ['model', 'candidate'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.2, 0.5],
    registers: [this.registry],
  });
  private readonly redactions = new client.Counter({
    name: 'gateway_pii_redactions_total',
    help: 'PII values redacted before logging, by class',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly refusals = new client.Counter({
    name: 'gateway_refusals_total',
    help: 'Requests refused before inference, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly modelLoads = new client.Counter({
    name: 'gateway_model_loads_total',
    help: 'Model version loads by result (ok, integrity, error)',
    labelNames: ['model', 'version', 'result'] as const,
    registers: [this.registry],
  });
  readonly modelInfo = new client.Gauge({
    name: 'gateway_model_info',
    help: 'Served model versions (1) by route and manifest digest',
    labelNames: ['model', 'version', 'route', 'manifest_sha256'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });
  private readonly children = new Map<string, VersionMetrics>();

  /** The cached label children of one model version. */
  forVersion(model: string, version: string): VersionMetrics {
    const key = `${model}\u0000${version}`;
    let c = this.children.get(key);
    if (!c) {
      const statuses = new Map<string, client.Counter.Internal>();
      c = {
        latency: this.latency.labels(model, version),
        scores: this.scores.labels(model, version),
        oodFlag: this.ood.labels(model, version, 'flag'),
        oodBlock: this.ood.labels(model, version, 'block'),
        request: (route: string, status: number) => {
          const k = `${route}:${status}`;
          let counter = statuses.get(k);
          if (!counter) {
            counter = this.requests.labels(model, version, route, String(status));
            statuses.set(k, counter);
          }
          counter.inc();
        },
      };
      this.children.set(key, c);
    }
    return c;
  }

  /** A request refused before a version was chosen. */
  unrouted(model: string, status: number): void {
    this.requests.labels(model, 'none', 'none', String(status)).inc();
  }

  redacted(found: PiiClass[]): void {
    for (const cls of found) this.redactions.labels(cls).inc();
  }
}

export interface VersionMetrics {
  latency: client.Histogram.Internal<'model' | 'version'>;
  scores: client.Histogram.Internal<'model' | 'version'>;
  oodFlag: client.Counter.Internal;
  oodBlock: client.Counter.Internal;
  request(route: string, status: number): void;
}

/** Metrics of the KPI monitor: registered where the monitor runs (the cluster primary, or the single process). */
export class KpiMetrics {
  readonly oodRate: client.Gauge<'model' | 'version'>;
  readonly kpiPushes: client.Counter<'model' | 'version' | 'metric' | 'result'>;

  constructor(readonly registry: client.Registry) {
    this.oodRate = new client.Gauge({
      name: 'gateway_ood_rate',
      help: 'Share of OOD requests of a model version over the KPI window',
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    });
    this.kpiPushes = new client.Counter({
      name: 'gateway_kpi_breach_pushes_total',
      help: 'kpiBreach signals pushed, by metric and result (sent, no-workflow, error)',
      labelNames: ['model', 'version', 'metric', 'result'] as const,
      registers: [registry],
    });
  }
}
