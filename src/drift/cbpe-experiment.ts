/**
 * The CBPE experiment on the reference workload, shared by test/drift and bench:drift: the champion
 * (an ONNX model folder) is calibrated on a labelled holdout, then its estimate of precision, recall
 * and accuracy at the policy threshold is compared with the realized value's 95% Wilson interval on
 * independent drift-free windows, and its trust flag is read on concept-drift windows whose delayed
 * labels have landed.
 */
import { FRAUD_FEATURE_SPEC } from '../core/contracts/fraud';
import {
  applyIsotonic,
  calibrateOnHoldout,
  checkCalibration,
  CBPE_METRICS,
  estimatePerformance,
  realizedConfusion,
  realizedInterval,
  type CbpeMetric,
} from '../core/stats/cbpe';
import { generateFraudDataset } from '../workload/generator';
import { loadModelDir, scoreRecords } from './score';
import { windowSeed } from './seeds';

/** Rows of the champion's holdout the calibration map is fitted on. */
export const CBPE_HOLDOUT_ROWS = 40_000;
/** The fraud policy's review-queue threshold (deploy/policies/fraud.json). */
export const CBPE_THRESHOLD = 0.2;
/** Concept-drift strength of the untrusted-estimate windows. */
export const CBPE_CONCEPT_DRIFT = 1;

export interface CbpeExperimentResult {
  windows: number;
  windowRows: number;
  holdout: { rawEce: number; rawZ: number; checkEce: number; checkZ: number; trusted: boolean };
  coverage: Record<CbpeMetric, number>;
  driftFreeTrusted: number;
  conceptDriftUntrusted: number;
}

export async function runCbpeExperiment(
  modelDir: string,
  windows = 200,
  windowRows = 2_000,
  seed = 20_261_202,
): Promise<CbpeExperimentResult> {
  const model = await loadModelDir(modelDir);
  const holdoutRows = generateFraudDataset({
    rows: CBPE_HOLDOUT_ROWS,
    seed: windowSeed(seed, 9_999_999),
    batches: 1,
  });
  const holdoutScores = await scoreRecords(model, FRAUD_FEATURE_SPEC, holdoutRows as never);
  const cal = calibrateOnHoldout(
    holdoutScores,
    holdoutRows.map((r) => r.is_fraud),
  );
  const covered: Record<CbpeMetric, number> = { precision: 0, recall: 0, accuracy: 0 };
  let trusted = 0;
  let untrusted = 0;
  // Score every window in one session: drift-free windows first, then concept-drift ones.
  const all = [];
  for (let w = 0; w < windows; w++)
    all.push(...generateFraudDataset({ rows: windowRows, seed: windowSeed(seed, w), batches: 1 }));
  for (let w = 0; w < windows; w++)
    all.push(
      ...generateFraudDataset({
        rows: windowRows,
        seed: windowSeed(seed, windows + w),
        batches: 1,
        conceptDrift: CBPE_CONCEPT_DRIFT,
      }),
    );
  const scores = applyIsotonic(cal.map, await scoreRecords(model, FRAUD_FEATURE_SPEC, all as never));
  for (let w = 0; w < 2 * windows; w++) {
    const s = scores.subarray(w * windowRows, (w + 1) * windowRows);
    const y = all.slice(w * windowRows, (w + 1) * windowRows).map((r) => r.is_fraud);
    const labelled = checkCalibration(s, y);
    const realized = realizedConfusion(s, y, CBPE_THRESHOLD);
    if (w < windows) {
      // Drift-free windows: the estimate is made before labels, so only the holdout check applies.
      for (const metric of CBPE_METRICS) {
        const est = estimatePerformance(s, CBPE_THRESHOLD, metric, { holdout: cal.check });
        const ci = realizedInterval(realized, metric);
        if (est.value >= ci.lower && est.value <= ci.upper) covered[metric]++;
        if (metric === 'precision' && est.trusted) trusted++;
      }
    } else {
      const realizedIntervals = Object.fromEntries(
        CBPE_METRICS.map((m) => [m, realizedInterval(realized, m)]),
      );
      const est = estimatePerformance(s, CBPE_THRESHOLD, 'precision', {
        holdout: cal.check,
        labelled,
        realized: realizedIntervals,
      });
      if (!est.trusted) untrusted++;
    }
  }
  return {
    windows,
    windowRows,
    holdout: {
      rawEce: cal.raw.ece,
      rawZ: cal.raw.z,
      checkEce: cal.check.ece,
      checkZ: cal.check.z,
      trusted: cal.check.calibrated,
    },
    coverage: {
      precision: covered.precision / windows,
      recall: covered.recall / windows,
      accuracy: covered.accuracy / windows,
    },
    driftFreeTrusted: trusted / windows,
    conceptDriftUntrusted: untrusted / windows,
  };
}
