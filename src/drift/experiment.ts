/**
 * The false-alarm experiment on the reference workload, shared by test/drift and bench:drift: a
 * reference profile from one large drift-free draw, then independent windows (seeds from
 * {@link windowSeed}) without drift and with the generator's injected data drift, each judged
 * against the profile by the dataset-level alarm.
 */
import { FRAUD_FEATURE_SPEC } from '../core/contracts/fraud';
import { judgeDrift, type DriftPolicyInput } from '../core/policy/drift';
import {
  buildReferenceProfile,
  compareWindowToProfile,
  summariseWindow,
  type ReferenceProfile,
} from '../core/stats/drift-profile';
import { generateFraudDataset } from '../workload/generator';
import { featureKinds, toColumns } from './columns';
import { windowSeed } from './seeds';

/** Drift-free windows of the experiment (the 200). */
export const EXPERIMENT_WINDOWS = 200;
/** Rows per window: an hour of a mid-sized model's traffic. */
export const EXPERIMENT_WINDOW_ROWS = 2_000;
/** Rows of the reference draw the profile is built from. */
export const EXPERIMENT_REFERENCE_ROWS = 100_000;
/** Strength of the injected data drift (the generator's 0..1 scale; the demo's drifted month). */
export const EXPERIMENT_DATA_DRIFT = 0.3;
/** Base seed of the experiment (windows derive theirs by hashing). */
export const EXPERIMENT_SEED = 20_261_201;

export interface ExperimentOptions {
  windows?: number;
  windowRows?: number;
  referenceRows?: number;
  dataDrift?: number;
  seed?: number;
  policy?: DriftPolicyInput;
}

export interface ExperimentResult {
  windows: number;
  windowRows: number;
  alpha: number;
  falseAlarms: number;
  falseAlarmRate: number;
  detections: number;
  detectionRate: number;
  /** How often each feature was the one flagged on drift-free windows. */
  falseAlarmFeatures: Record<string, number>;
  elapsedMs: number;
}

const kinds = featureKinds(FRAUD_FEATURE_SPEC);

export function referenceProfileFor(rows: number, seed: number): ReferenceProfile {
  const data = generateFraudDataset({ rows, seed: windowSeed(seed, 1_000_000), batches: 1 });
  return buildReferenceProfile(toColumns(data as unknown as Record<string, unknown>[], kinds));
}

function windowAlarm(
  profile: ReferenceProfile,
  seed: number,
  rows: number,
  dataDrift: number,
  policy: DriftPolicyInput,
) {
  const data = generateFraudDataset({ rows, seed, batches: 1, dataDrift });
  const summary = summariseWindow(profile, toColumns(data as unknown as Record<string, unknown>[], kinds));
  return judgeDrift(compareWindowToProfile(profile, summary), summary.rows, policy);
}

export function runFalseAlarmExperiment(options: ExperimentOptions = {}): ExperimentResult {
  const started = Date.now();
  const windows = options.windows ?? EXPERIMENT_WINDOWS;
  const rows = options.windowRows ?? EXPERIMENT_WINDOW_ROWS;
  const seed = options.seed ?? EXPERIMENT_SEED;
  const policy = options.policy ?? {};
  const profile = referenceProfileFor(options.referenceRows ?? EXPERIMENT_REFERENCE_ROWS, seed);
  let falseAlarms = 0;
  let detections = 0;
  const features: Record<string, number> = {};
  for (let w = 0; w < windows; w++) {
    const clean = windowAlarm(profile, windowSeed(seed, w), rows, 0, policy);
    if (clean.status === 'drift') {
      falseAlarms++;
      for (const f of clean.drifted) features[f] = (features[f] ?? 0) + 1;
    }
    const drifted = windowAlarm(
      profile,
      windowSeed(seed, windows + w),
      rows,
      options.dataDrift ?? EXPERIMENT_DATA_DRIFT,
      policy,
    );
    if (drifted.status === 'drift') detections++;
  }
  return {
    windows,
    windowRows: rows,
    alpha: policy.alpha ?? 0.05,
    falseAlarms,
    falseAlarmRate: falseAlarms / windows,
    detections,
    detectionRate: detections / windows,
    falseAlarmFeatures: features,
    elapsedMs: Date.now() - started,
  };
}
