/**
 * The KPI-source port: measurements of a serving model version over a window, for canary analysis
 * and the post-promotion KPI guard. Implementations: the gateway's own metrics, Prometheus.
 * Measuring lives here; judging is a pure function in src/core.
 */

export interface KpiQuery {
  model: string;
  version: string;
  /** KPI name, e.g. `error_rate`, `latency_p99_ms`, `ood_rate`. */
  metric: string;
  /** Window end (ISO) and length in seconds. */
  end: string;
  windowSeconds: number;
}

export interface KpiSample {
  /** Observed value over the window (NaN when the window holds no data). */
  value: number;
  /** How many observations the value is computed from (requests, labelled examples). */
  count: number;
  /** Successes among `count` for rate metrics, for interval estimates. */
  successes?: number;
}

export interface KpiSource {
  readonly kind: string;
  measure(query: KpiQuery): Promise<KpiSample>;
}
