/**
 * One drift measurement (what the `measureDrift` activity runs): read a window of the inference log,
 * summarise it against the champion's reference profile (O(rows log bins) once, then O(bins)), judge
 * it, estimate performance by CBPE (trusted only when the profile's holdout calibration check passed
 * and, where delayed labels have landed, the labels agree), join the labels for the realized metric,
 * and write the JSON and HTML report.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriftPolicyInput, DriftVerdict, KpiObservation } from '../core/policy/drift';
import {
  applyIsotonic,
  CBPE_METRICS,
  checkCalibration,
  estimatePerformance,
  realizedConfusion,
  realizedInterval,
  type CbpeEstimate,
} from '../core/stats/cbpe';
import { ReferenceProfileSchema, summariseWindow, type ReferenceProfile } from '../core/stats/drift-profile';
import { toColumns } from './columns';
import type { ModelRegistry } from '../ports/model-registry';
import type { InferenceLogSource, LabelSource } from './inference-source';
import { logDriftRun, summariseDrift } from './mlflow-summary';
import { loadProfileByAlias } from './reference-profile';
import { renderDriftHtml, windowDrift, type DriftReport } from './report';

/** Decision threshold for CBPE when none is given (the fraud policy's review threshold). */
export const DEFAULT_CBPE_THRESHOLD = 0.2;
/** Labelled rows a window needs before its realized metric is reported. */
export const MIN_LABELLED_ROWS = 100;
/** The registry alias whose version a monitor watches when no profile file is named. */
export const MONITORED_ALIAS = 'champion';

export async function loadProfile(uri: string): Promise<ReferenceProfile> {
  const file = uri.startsWith('file:') ? fileURLToPath(uri) : uri;
  return ReferenceProfileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}

export interface MeasureRequest {
  model: string;
  /** A profile file (tests, backfills); without one the profile of `model@champion` is read from MLflow. */
  profileUri?: string;
  from: string;
  to: string;
  policy: DriftPolicyInput;
  threshold?: number;
  reportName: string;
}

export interface MeasureResult {
  verdict: DriftVerdict;
  kpi?: KpiObservation;
  cbpe: CbpeEstimate[];
  reportJson: string;
  reportHtml: string;
  /** The version watched (the champion's, when the profile came from MLflow). */
  version?: string;
  /** The MLflow run the summary was logged to, and its HTML report (`runs:/...`). */
  mlflowRunId?: string;
  reportUri?: string;
}

export async function measureDrift(
  req: MeasureRequest,
  deps: { log: InferenceLogSource; labels?: LabelSource; reportDir: string; registry?: ModelRegistry },
): Promise<MeasureResult> {
  let profile: ReferenceProfile;
  let version: string | undefined;
  if (req.profileUri) profile = await loadProfile(req.profileUri);
  else {
    if (!deps.registry)
      throw new Error('measureDrift: no profileUri and no registry to read the champion from');
    const loaded = await loadProfileByAlias(deps.registry, req.model, MONITORED_ALIAS);
    profile = loaded.profile;
    version = loaded.version.version;
  }
  const records: Record<string, unknown>[] = [];
  const predictions: number[] = [];
  const ids: string[] = [];
  for await (const r of deps.log.read(req.model, new Date(req.from), new Date(req.to))) {
    if (r.route === 'shadow') continue;
    records.push(r.features);
    predictions.push(r.prediction);
    ids.push(r.requestId);
  }
  const kinds = {
    numeric: profile.numeric.map((f) => f.name),
    categorical: profile.categorical.map((f) => f.name),
  };
  const data = toColumns(records, kinds, predictions);
  const summary = summariseWindow(profile, data);
  const { features, verdict } = windowDrift(profile, summary, req.policy);
  const threshold = req.threshold ?? DEFAULT_CBPE_THRESHOLD;

  const cbpe: CbpeEstimate[] = [];
  let realizedAll: Record<string, { value: number; lower: number; upper: number }> | undefined;
  let kpi: KpiObservation | undefined;
  const performance: DriftReport['performance'] = [];
  if (predictions.length > 0) {
    const scores = profile.calibration
      ? applyIsotonic(profile.calibration.map, predictions)
      : Float64Array.from(predictions);
    const labelled = deps.labels
      ? await deps.labels.labels(req.model, new Set(ids))
      : new Map<string, 0 | 1>();
    const ls: number[] = [];
    const lsScores: number[] = [];
    ids.forEach((id, i) => {
      const y = labelled.get(id);
      if (y !== undefined) {
        ls.push(y);
        lsScores.push(scores[i]!);
      }
    });
    const haveLabels = ls.length >= MIN_LABELLED_ROWS;
    const realizedC = haveLabels ? realizedConfusion(lsScores, ls, threshold) : undefined;
    const realized = realizedC
      ? Object.fromEntries(CBPE_METRICS.map((m) => [m, realizedInterval(realizedC, m)]))
      : undefined;
    realizedAll = realized;
    for (const metric of CBPE_METRICS) {
      const est = estimatePerformance(scores, threshold, metric, {
        ...(profile.calibration && { holdout: profile.calibration.check }),
        ...(haveLabels && { labelled: checkCalibration(lsScores, ls), realized }),
      });
      cbpe.push(est);
      const r = realized?.[metric];
      performance.push({
        from: req.from,
        to: req.to,
        metric,
        estimated: est.value,
        trusted: est.trusted,
        ...(r && { realized: r.value, lower: r.lower, upper: r.upper }),
      });
    }
    const policyKpi = req.policy.kpi?.metric;
    if (policyKpi) {
      const est = cbpe.find((c) => c.metric === policyKpi);
      const r = realized?.[policyKpi];
      kpi = {
        metric: policyKpi,
        ...(r && r.n > 0 && { realized: r }),
        ...(est && { estimated: { value: est.value, trusted: est.trusted } }),
      };
    }
  }
  const report: DriftReport = {
    model: req.model,
    ...(version && { version }),
    window: { from: req.from, to: req.to, rows: summary.rows },
    verdict,
    features,
    cbpe,
    performance,
  };
  const dir = path.join(deps.reportDir, req.model);
  await mkdir(dir, { recursive: true });
  const safe = req.reportName.replace(/[^A-Za-z0-9._-]/g, '_');
  const reportJson = path.join(dir, `${safe}.json`);
  const reportHtml = path.join(dir, `${safe}.html`);
  await writeFile(reportJson, JSON.stringify(report, null, 2));
  const html = renderDriftHtml(report);
  await writeFile(reportHtml, html);
  const out: MeasureResult = { verdict, ...(kpi && { kpi }), cbpe, reportJson, reportHtml };
  if (deps.registry && version) {
    const logged = await logDriftRun(deps.registry, {
      model: req.model,
      version,
      reportName: safe,
      from: req.from,
      to: req.to,
      summary: summariseDrift(verdict, features, cbpe, realizedAll),
      reportJson: JSON.stringify(report, null, 2),
      reportHtml: html,
    });
    Object.assign(out, { version, mlflowRunId: logged.runId, reportUri: logged.reportUri });
  }
  return out;
}
