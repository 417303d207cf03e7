/**
 * The KPI-source port on a Prometheus that scrapes the gateway (a cluster's Prometheus, or the one
 * the tests start: src/stack/prometheus.ts). One instant query over the HTTP API
 * (`GET /api/v1/query`) returns the gateway's cumulative series of one model, summed over scrape
 * targets (gateway replicas) by version, status and bucket, and becomes the same snapshot the
 * gateway's own /metrics gives; the window arithmetic and the judging stay pure
 * (src/core/contracts/kpi.ts, src/core/policy/canary-analysis.ts). Error rate, p99 latency, OOD rate
 * and the prediction-score distribution of canary and stable are all read from these series.
 */
import { z } from 'zod';
import type { KpiSnapshot } from '../core/contracts/kpi';
import { formatZodError } from '../core/contracts/errors';
import { MODEL_NAME_PATTERN } from '../core/contracts/primitives';
import type { KpiSource } from '../ports/kpi-source';
import type { Sample } from './exposition';
import { snapshotFromSamples } from './gateway-metrics';

/** How long one query may take before the source counts as unreachable. */
export const PROMETHEUS_QUERY_TIMEOUT_MS = 5_000;

/** The gateway's series a snapshot needs (counters and cumulative histogram buckets). */
export const KPI_SERIES = [
  'gateway_requests_total',
  'gateway_ood_requests_total',
  'gateway_request_duration_seconds_bucket',
  'gateway_prediction_score_bucket',
] as const;

/** The instant query of one model's KPI series, summed over gateway replicas. */
export function kpiQuery(model: string): string {
  if (!MODEL_NAME_PATTERN.test(model)) throw new Error(`model name ${JSON.stringify(model)} is invalid`);
  return `sum by (__name__, model, version, status, le) ({__name__=~"${KPI_SERIES.join('|')}", model="${model}"})`;
}

const QueryAnswerSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    resultType: z.literal('vector'),
    result: z.array(
      z.object({
        metric: z.record(z.string(), z.string()),
        value: z.tuple([z.number(), z.string()]),
      }),
    ),
  }),
});

export class PrometheusKpiSource implements KpiSource {
  readonly kind = 'prometheus';
  private readonly base: string;

  constructor(baseUrl: string) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async snapshot(model: string): Promise<KpiSnapshot> {
    const at = new Date();
    const url = new URL(`${this.base}/api/v1/query`);
    url.searchParams.set('query', kpiQuery(model));
    url.searchParams.set('time', (at.getTime() / 1000).toFixed(3));
    const res = await fetch(url, { signal: AbortSignal.timeout(PROMETHEUS_QUERY_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${this.base}/api/v1/query: HTTP ${res.status} ${text.slice(0, 300)}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`GET ${this.base}/api/v1/query: answer is not JSON`);
    }
    const parsed = QueryAnswerSchema.safeParse(json);
    if (!parsed.success)
      throw new Error(`GET ${this.base}/api/v1/query: unexpected answer: ${formatZodError(parsed.error)}`);
    const samples: Sample[] = parsed.data.data.result.map((r) => {
      const { __name__: name = '', ...labels } = r.metric;
      const raw = r.value[1];
      return { name, labels, value: raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw) };
    });
    return snapshotFromSamples(samples, model, at.toISOString());
  }
}
