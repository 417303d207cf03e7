/**
 * The business KPI's measurement: the predictions each version made in a window (the gateway's
 * inference log), joined by request id to the delayed labels that have arrived (chargebacks), as
 * confusion counts at the serving threshold. It reuses the drift monitor's read side (the log
 * source and the label source of src/drift/inference-source.ts), so both consumers read one log
 * and one label store the same way.
 *
 * Counted: customer traffic (`stable` and `canary` routes) and mirrored `shadow` predictions (what
 * the canary would have decided); `staging` probes are not decisions and are left out.
 */
import { EMPTY_OUTCOMES, type VersionOutcomes } from '../core/contracts/business-kpi';
import {
  FileInferenceLogSource,
  FileLabelSource,
  type InferenceLogSource,
  type LabelSource,
} from '../drift/inference-source';
import type { KpiSource, LabelledOutcomeSource, OutcomeRequest } from '../ports/kpi-source';

/** Routes whose predictions are decisions of their version. */
const DECISION_ROUTES: ReadonlySet<string> = new Set(['stable', 'canary', 'shadow']);

export class DelayedLabelOutcomeSource implements LabelledOutcomeSource {
  readonly kind = 'inference-log+labels';

  constructor(
    private readonly log: InferenceLogSource,
    private readonly labels: LabelSource,
  ) {}

  async outcomes(req: OutcomeRequest): Promise<Record<string, VersionOutcomes>> {
    const wanted = new Set(req.versions);
    // Per version: request id -> flagged. A mirrored request appears once per version it reached.
    const decisions = new Map<string, Map<string, boolean>>();
    for (const v of wanted) decisions.set(v, new Map());
    for await (const r of this.log.read(req.model, req.from, req.to)) {
      if (!wanted.has(r.version) || !DECISION_ROUTES.has(r.route)) continue;
      decisions.get(r.version)!.set(r.requestId, r.prediction >= req.threshold);
    }
    const ids = new Set<string>();
    for (const d of decisions.values()) for (const id of d.keys()) ids.add(id);
    const labels = ids.size > 0 ? await this.labels.labels(req.model, ids) : new Map<string, 0 | 1>();
    const out: Record<string, VersionOutcomes> = {};
    for (const [version, d] of decisions) {
      const o = { ...EMPTY_OUTCOMES, predictions: d.size };
      for (const [id, flagged] of d) {
        const y = labels.get(id);
        if (y === undefined) continue;
        o.labelled++;
        if (flagged && y === 1) o.tp++;
        else if (flagged) o.fp++;
        else if (y === 1) o.fn++;
        else o.tn++;
      }
      out[version] = o;
    }
    return out;
  }
}

/** The delayed-label outcomes over the gateway's JSONL inference log and a label folder. */
export function fileDelayedLabels(dirs: {
  inferenceLogDir: string;
  labelsDir: string;
}): DelayedLabelOutcomeSource {
  return new DelayedLabelOutcomeSource(
    new FileInferenceLogSource(dirs.inferenceLogDir),
    new FileLabelSource(dirs.labelsDir),
  );
}

/** `kpi` (gateway metrics or Prometheus) with the labelled outcomes of `labels` beside it. */
export function withDelayedLabels(kpi: KpiSource, labels: LabelledOutcomeSource): KpiSource {
  return {
    kind: `${kpi.kind}+${labels.kind}`,
    snapshot: (model) => kpi.snapshot(model),
    outcomes: (req) => labels.outcomes(req),
  };
}
