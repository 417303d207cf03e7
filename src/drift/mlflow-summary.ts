/**
 * A monitor run's drift summary in MLflow: one run per monitor execution in the experiment
 * {@link driftExperimentName}, tagged with the model and the version it watched (and the version
 * tagged back with its latest drift run), carrying the summary metrics and the JSON and HTML report
 * as artifacts. The report link that goes with a retraining trigger is this run's HTML artifact.
 *
 * Idempotent: the run is found again by its report name (the monitor's workflow and run id), so a
 * retried activity logs into the same run. Node-only.
 */
import type { DriftVerdict } from '../core/policy/drift';
import type { CbpeEstimate } from '../core/stats/cbpe';
import type { FeatureDrift } from '../core/stats/drift-profile';
import { RunTags } from '../core/contracts/registry';
import type { ModelRegistry } from '../ports/model-registry';

/** Experiment of a model's drift monitor runs. */
export const driftExperimentName = (model: string): string => `mlops/${model}/drift`;
/** Artifact folder of the report inside the monitor's run. */
export const DRIFT_REPORT_DIR = 'drift_report';
/** Tags of a drift monitor run (and the version tag pointing at the latest one). */
export const DriftRunTags = {
  model: 'mlops.model',
  modelVersion: RunTags.modelVersion,
  windowFrom: 'mlops.drift_window_from',
  windowTo: 'mlops.drift_window_to',
  status: 'mlops.drift_status',
  /** On the version: the run id of the latest drift monitor run that watched it. */
  latestRun: 'mlops.drift_latest_run',
} as const;

export interface DriftSummary {
  status: DriftVerdict['status'];
  rows: number;
  /** Drifted features over the features judged (the prediction excluded). */
  shareDrifted: number;
  driftedFeatures: number;
  features: number;
  /** Largest test statistic and largest distance over the features. */
  maxStatistic: number;
  maxDistance: number;
  predictionDistance?: number;
  predictionPValue?: number;
  alarm: boolean;
  cbpe: Array<{ metric: string; estimated: number; trusted: boolean }>;
  realized: Array<{ metric: string; value: number; lower: number; upper: number }>;
}

/** The summary of a judged window (pure). */
export function summariseDrift(
  verdict: DriftVerdict,
  features: readonly FeatureDrift[],
  cbpe: readonly CbpeEstimate[],
  realized: Record<string, { value: number; lower: number; upper: number }> | undefined,
): DriftSummary {
  const judged = verdict.features.filter((f) => f.kind !== 'prediction');
  const drifted = judged.filter((f) => f.drifted).length;
  const inputs = features.filter((f) => f.kind !== 'prediction');
  const finiteMax = (xs: number[]): number => xs.filter(Number.isFinite).reduce((m, x) => Math.max(m, x), 0);
  const prediction = features.find((f) => f.kind === 'prediction');
  return {
    status: verdict.status,
    rows: verdict.rows,
    shareDrifted: judged.length > 0 ? drifted / judged.length : 0,
    driftedFeatures: drifted,
    features: judged.length,
    maxStatistic: finiteMax(inputs.map((f) => f.statistic)),
    maxDistance: finiteMax(inputs.map((f) => f.distance)),
    ...(prediction && { predictionDistance: prediction.distance, predictionPValue: prediction.pValue }),
    alarm: verdict.status === 'drift',
    cbpe: cbpe.map((c) => ({ metric: c.metric, estimated: c.value, trusted: c.trusted })),
    realized: Object.entries(realized ?? {}).map(([metric, r]) => ({ metric, ...r })),
  };
}

/** The summary as MLflow metrics (finite values only). */
export function summaryMetrics(s: DriftSummary): Array<{ key: string; value: number }> {
  const out: Array<{ key: string; value: number }> = [
    { key: 'drift_window_rows', value: s.rows },
    { key: 'drift_share_drifted_features', value: s.shareDrifted },
    { key: 'drift_drifted_features', value: s.driftedFeatures },
    { key: 'drift_max_statistic', value: s.maxStatistic },
    { key: 'drift_max_distance', value: s.maxDistance },
    { key: 'drift_alarm', value: s.alarm ? 1 : 0 },
  ];
  if (s.predictionDistance !== undefined)
    out.push({ key: 'drift_prediction_psi', value: s.predictionDistance });
  if (s.predictionPValue !== undefined)
    out.push({ key: 'drift_prediction_p_value', value: s.predictionPValue });
  for (const c of s.cbpe) {
    out.push({ key: `cbpe_${c.metric}`, value: c.estimated });
    out.push({ key: `cbpe_${c.metric}_trusted`, value: c.trusted ? 1 : 0 });
  }
  for (const r of s.realized) {
    out.push({ key: `realized_${r.metric}`, value: r.value });
    out.push({ key: `realized_${r.metric}_lower`, value: r.lower });
    out.push({ key: `realized_${r.metric}_upper`, value: r.upper });
  }
  return out.filter((m) => Number.isFinite(m.value));
}

export interface LoggedDriftRun {
  runId: string;
  /** `runs:/<run>/drift_report/report.html`: the link a retraining trigger carries. */
  reportUri: string;
}

/** Logs one monitor run's summary and report to MLflow (idempotent by `reportName`). */
export async function logDriftRun(
  registry: ModelRegistry,
  input: {
    model: string;
    version: string;
    reportName: string;
    from: string;
    to: string;
    summary: DriftSummary;
    reportJson: string;
    reportHtml: string;
  },
): Promise<LoggedDriftRun> {
  const experimentId = await registry.ensureExperiment(driftExperimentName(input.model));
  // The job-name tag is how a retried activity finds the run it created (as for training runs).
  const run =
    (await registry.findRunByJobName(experimentId, input.reportName)) ??
    (await registry.createRun({
      experimentId,
      runName: input.reportName,
      tags: {
        [RunTags.jobName]: input.reportName,
        [DriftRunTags.model]: input.model,
        [DriftRunTags.modelVersion]: input.version,
        [DriftRunTags.windowFrom]: input.from,
        [DriftRunTags.windowTo]: input.to,
        [DriftRunTags.status]: input.summary.status,
      },
    }));
  await registry.logMetrics(run.runId, summaryMetrics(input.summary));
  await registry.uploadArtifact(run.runId, `${DRIFT_REPORT_DIR}/report.json`, input.reportJson);
  await registry.uploadArtifact(run.runId, `${DRIFT_REPORT_DIR}/report.html`, input.reportHtml);
  if (run.status === 'RUNNING') await registry.endRun(run.runId, 'FINISHED');
  await registry.setVersionTag(input.model, input.version, DriftRunTags.latestRun, run.runId);
  return { runId: run.runId, reportUri: `runs:/${run.runId}/${DRIFT_REPORT_DIR}/report.html` };
}
