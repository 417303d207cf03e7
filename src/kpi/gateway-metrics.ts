/**
 * The KPI-source port on the gateway's own `/metrics` (the embedded default; in a cluster the same
 * series come from Prometheus, src/kpi/prometheus.ts). A snapshot is the cumulative counters of each
 * version of one model; the window arithmetic is pure (src/core/contracts/kpi.ts).
 */
import type { CumulativeHistogram, KpiSnapshot, VersionCounters } from '../core/contracts/kpi';
import type { KpiSource } from '../ports/kpi-source';
import { parseExposition, type Sample } from './exposition';

/** How long one scrape may take before the source counts as unreachable. */
export const SCRAPE_TIMEOUT_MS = 5_000;

function histogram(samples: Sample[], name: string, model: string, version: string): CumulativeHistogram {
  const buckets = samples
    .filter((s) => s.name === `${name}_bucket` && s.labels.model === model && s.labels.version === version)
    .map((s) => ({
      le: s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le),
      count: s.value,
    }))
    .sort((a, b) => a.le - b.le);
  return {
    bounds: buckets.map((b) => (Number.isFinite(b.le) ? b.le : null)),
    counts: buckets.map((b) => b.count),
  };
}

/** Builds a snapshot of `model` from exposition samples (shared with the Prometheus source's tests). */
export function snapshotFromSamples(samples: Sample[], model: string, at: string): KpiSnapshot {
  const versions: Record<string, VersionCounters> = {};
  const of = (v: string): VersionCounters =>
    (versions[v] ??= {
      requests: 0,
      errors: 0,
      oodRequests: 0,
      latencySeconds: { bounds: [], counts: [] },
      predictionScore: { bounds: [], counts: [] },
    });
  for (const s of samples) {
    const v = s.labels.version;
    if (s.labels.model !== model || !v || v === 'none') continue;
    if (s.name === 'gateway_requests_total') {
      of(v).requests += s.value;
      if (Number(s.labels.status) >= 500) of(v).errors += s.value;
    } else if (s.name === 'gateway_ood_requests_total') {
      of(v).oodRequests += s.value;
    }
  }
  for (const v of Object.keys(versions)) {
    versions[v]!.latencySeconds = histogram(samples, 'gateway_request_duration_seconds', model, v);
    versions[v]!.predictionScore = histogram(samples, 'gateway_prediction_score', model, v);
  }
  return { at, model, versions };
}

export class GatewayMetricsKpiSource implements KpiSource {
  readonly kind = 'gateway-metrics';

  constructor(private readonly metricsUrl: string) {}

  async snapshot(model: string): Promise<KpiSnapshot> {
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`GET ${this.metricsUrl}: HTTP ${res.status}`);
    return snapshotFromSamples(parseExposition(await res.text()), model, new Date().toISOString());
  }
}
