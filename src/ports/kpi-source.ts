/**
 * The KPI-source port: cumulative counters of every served version of a model (requests, server
 * errors, OOD inputs, latency and prediction-score histograms), for canary analysis and the
 * post-promotion KPI guard. Implementations: the gateway's own /metrics (embedded default) and
 * Prometheus. Measuring lives here; the window arithmetic and the judging are pure (src/core).
 *
 * A source may also answer the business KPI's labelled outcomes ({@link LabelledOutcomeSource}):
 * the predictions each version made in a window joined to the delayed labels that have arrived.
 * Neither the gateway's counters nor Prometheus hold per-request labels, so the embedded
 * implementation sits beside them (src/kpi/delayed-labels.ts, over the inference log and the
 * drift monitor's label source) and `withDelayedLabels` attaches it to either.
 */
import type { VersionOutcomes } from '../core/contracts/business-kpi';
import type { KpiSnapshot } from '../core/contracts/kpi';

export interface OutcomeRequest {
  model: string;
  versions: readonly string[];
  /** The window of predictions, [from, to). */
  from: Date;
  to: Date;
  /** Serving threshold: a score at or above it is a flagged decision. */
  threshold: number;
}

export interface LabelledOutcomeSource {
  readonly kind: string;
  /** Each requested version's labelled decisions (a version that served nothing has zeros). */
  outcomes(req: OutcomeRequest): Promise<Record<string, VersionOutcomes>>;
}

export interface KpiSource {
  readonly kind: string;
  snapshot(model: string): Promise<KpiSnapshot>;
  /** Labelled outcomes for the business KPI, when this source can join delayed labels. */
  outcomes?: LabelledOutcomeSource['outcomes'];
}
