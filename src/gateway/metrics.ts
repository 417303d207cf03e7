/**
 * Prometheus metrics of the gateway (prom-client), per model version: requests by status and route,
 * latency histogram, prediction distribution, OOD requests and the windowed OOD rate, shadow
 * comparisons, PII redactions, auth failures, rate-limit refusals, model loads.
 *
 * The per-request series (requests, latency, scores, OOD) are {@link HotCounter}s and
 * {@link HotHistogram}s: a label set is resolved once into a child holding plain numbers, so a request
 * adds to a field and a bucket (prom-client's own children hash and validate their labels on every
 * call). They join a prom-client registry as ordinary metrics (`get()` in its format), so the text
 * exposition and the cluster's AggregatorRegistry sum them like any other.
 */
import client from 'prom-client';
import type { PiiClass } from './pii';

type Labels = Record<string, string | number>;
interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}
interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** A counter child: one number. */
export interface HotCounterChild {
  inc(): void;
}

/** A histogram child: cumulative-at-export bucket counts, sum and count. */
export interface HotHistogramChild {
  observe(value: number): void;
}

abstract class HotMetric<C> {
  protected readonly children = new Map<string, { labels: Labels; child: C }>();
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: client.Registry,
  ) {
    // The registry only needs name, help, type and get() (see prom-client's Registry.getMetricsAsString).
    registry.registerMetric(this as unknown as client.Metric);
  }

  protected abstract make(): C;

  /** The child of one label set (values in `labelNames` order), created on first use. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      entry = { labels, child: this.make() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  reset(): void {
    this.children.clear();
  }
}

export class HotCounter extends HotMetric<HotCounterChild & { value: number }> {
  readonly type = 'counter';

  protected make() {
    const c = {
      value: 0,
      inc() {
        c.value++;
      },
    };
    return c;
  }

  async get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) values.push({ labels, value: child.value });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

export class HotHistogram extends HotMetric<
  HotHistogramChild & { counts: Float64Array; sum: number; count: number }
> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly buckets: readonly number[],
    registry: client.Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  protected make() {
    const bounds = this.buckets;
    const c = {
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      observe(v: number) {
        c.sum += v;
        c.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (v <= (bounds[i] as number)) {
            (c.counts[i] as number)++;
            return;
          }
        }
      },
    };
    return c;
  }

  async get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, child } of this.children.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += child.counts[i] as number;
        values.push({ labels: { ...labels, le }, value: acc, metricName: bucket });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: child.count, metricName: bucket });
      values.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}

/** Latency buckets in seconds: fine below 5 ms where the gateway's own overhead lives. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
/** Rows per batched inference call (powers of two up to the largest batch allowed). */
export const BATCH_ROWS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/** Prediction score buckets: tenths of the probability range. */
export const SCORE_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly requests = new HotCounter(
    'gateway_requests_total',
    'Predict requests by model, version, route and HTTP status',
    ['model', 'version', 'route', 'status'],
    this.registry,
  );
  private readonly latency = new HotHistogram(
    'gateway_request_duration_seconds',
    'Predict request latency inside the gateway by model version',
    ['model', 'version'],
    LATENCY_BUCKETS_S,
    this.registry,
  );
  private readonly scores = new HotHistogram(
    'gateway_prediction_score',
    'Distribution of predicted positive-class probabilities by model version',
    ['model', 'version'],
    SCORE_BUCKETS,
    this.registry,
  );
  private readonly batchRows = new HotHistogram(
    'gateway_inference_batch_rows',
    'Rows per onnxruntime call by model version (predictions asked for in one event-loop turn share a call)',
    ['model', 'version'],
    BATCH_ROWS_BUCKETS,
    this.registry,
  );
  private readonly ood = new HotCounter(
    'gateway_ood_requests_total',
    'Requests judged out of distribution by model version and action',
    ['model', 'version', 'action'],
    this.registry,
  );
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
      const byRoute = new Map<string, Map<number, HotCounterChild>>();
      c = {
        latency: this.latency.labels(model, version),
        scores: this.scores.labels(model, version),
        oodFlag: this.ood.labels(model, version, 'flag'),
        oodBlock: this.ood.labels(model, version, 'block'),
        request: (route: string, status: number) => {
          let statuses = byRoute.get(route);
          if (!statuses) byRoute.set(route, (statuses = new Map()));
          let counter = statuses.get(status);
          if (!counter) {
            counter = this.requests.labels(model, version, route, String(status));
            statuses.set(status, counter);
          }
          counter.inc();
        },
      };
      this.children.set(key, c);
    }
    return c;
  }

  /** The batch-size histogram child of one model version. */
  batchRowsOf(model: string, version: string): HotHistogramChild {
    return this.batchRows.labels(model, version);
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
  latency: HotHistogramChild;
  scores: HotHistogramChild;
  oodFlag: HotCounterChild;
  oodBlock: HotCounterChild;
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
