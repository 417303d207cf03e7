/**
 * The KPI-source port: cumulative counters of every served version of a model (requests, server
 * errors, OOD inputs, latency and prediction-score histograms), for canary analysis and the
 * post-promotion KPI guard. Implementations: the gateway's own /metrics (embedded default) and
 * Prometheus. Measuring lives here; the window arithmetic and the judging are pure (src/core).
 */
import type { KpiSnapshot } from '../core/contracts/kpi';

export interface KpiSource {
  readonly kind: string;
  snapshot(model: string): Promise<KpiSnapshot>;
}
