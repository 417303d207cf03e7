/**
 * KPI snapshots: cumulative counters of each served version as a KPI source reads them (the
 * gateway's /metrics, or Prometheus), and the pure arithmetic that turns two snapshots into the
 * measurements of the window between them. Taking snapshots in activities and sleeping between
 * them in the workflow keeps a bake window durable: a worker that dies mid-window resumes it.
 * Sandbox-safe.
 */
import type { VersionKpis } from './canary';

/** A cumulative histogram: `counts[i]` observations <= `bounds[i]`; the last bound is +Infinity (null in JSON). */
export interface CumulativeHistogram {
  bounds: Array<number | null>;
  counts: number[];
}

export interface VersionCounters {
  requests: number;
  /** Server-side failures (5xx) among `requests`. */
  errors: number;
  oodRequests: number;
  latencySeconds: CumulativeHistogram;
  predictionScore: CumulativeHistogram;
}

export interface KpiSnapshot {
  /** When the source was read (ISO). */
  at: string;
  model: string;
  versions: Record<string, VersionCounters>;
}

/** Thrown (as a measurement error) when counters went backwards: the source restarted mid-window. */
export class CounterResetError extends Error {
  override readonly name = 'CounterResetError';
}

const EMPTY: VersionCounters = {
  requests: 0,
  errors: 0,
  oodRequests: 0,
  latencySeconds: { bounds: [], counts: [] },
  predictionScore: { bounds: [], counts: [] },
};

function diff(after: number, before: number, what: string): number {
  const d = after - before;
  if (d < 0) throw new CounterResetError(`${what} went from ${before} to ${after}: the source restarted`);
  return d;
}

function histogramDiff(after: CumulativeHistogram, before: CumulativeHistogram, what: string): number[] {
  if (before.counts.length === 0) return [...after.counts];
  if (after.bounds.length !== before.bounds.length)
    throw new CounterResetError(`${what}: bucket layout changed`);
  return after.counts.map((c, i) => diff(c, before.counts[i] ?? 0, what));
}

/**
 * The `q` quantile of a cumulative histogram by linear interpolation inside the bucket (as
 * Prometheus' histogram_quantile); NaN without observations. The +Inf bucket answers its lower bound.
 */
export function histogramQuantile(
  bounds: ReadonlyArray<number | null>,
  cumulative: readonly number[],
  q: number,
): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  for (let i = 0; i < cumulative.length; i++) {
    if (cumulative[i]! >= rank) {
      const upper = bounds[i];
      const lower = i === 0 ? 0 : (bounds[i - 1] ?? 0);
      if (upper === null || upper === undefined) return lower;
      const below = i === 0 ? 0 : cumulative[i - 1]!;
      const inBucket = cumulative[i]! - below;
      return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
  }
  return Number.NaN;
}

/** The measurements of `version` between two snapshots (a version absent before counts from zero). */
export function windowKpis(before: KpiSnapshot, after: KpiSnapshot, version: string): VersionKpis {
  const b = before.versions[version] ?? EMPTY;
  const a = after.versions[version] ?? EMPTY;
  const latency = histogramDiff(a.latencySeconds, b.latencySeconds, `latency of v${version}`);
  const scores = histogramDiff(a.predictionScore, b.predictionScore, `scores of v${version}`);
  const perBin = scores.map((c, i) => c - (i === 0 ? 0 : scores[i - 1]!));
  return {
    requests: diff(a.requests, b.requests, `requests of v${version}`),
    errors: diff(a.errors, b.errors, `errors of v${version}`),
    oodRequests: diff(a.oodRequests, b.oodRequests, `OOD requests of v${version}`),
    p99Ms: histogramQuantile(a.latencySeconds.bounds, latency, 0.99) * 1000,
    predictionHistogram: perBin,
    latencyHistogram: { bounds: [...a.latencySeconds.bounds], counts: latency },
  };
}
