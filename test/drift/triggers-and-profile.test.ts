/**
 * Pure pieces of the drift triggers and the registered reference profile: `ModelLocked` in the failure
 * taxonomy's non-retryable lists, the new-data decision, the engine's drift reference turned into the
 * monitor's profile (checked against the monitor's own binning of the same rows), and the MLflow
 * summary of a judged window. The engine runs for real (embedded DuckDB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { FailureType, NON_RETRYABLE_FAILURE_TYPES } from '../../src/core/contracts/failures';
import { judgeDrift } from '../../src/core/policy/drift';
import { MODEL_LOCKED_FAILURE } from '../../src/core/policy/drift-lock';
import { decideNewData, DEFAULT_MIN_NEW_ROWS } from '../../src/core/policy/new-data';
import { compareWindowToProfile, summariseWindow } from '../../src/core/stats/drift-profile';
import { profileDatasetWithExtras } from '../../src/data/profile';
import { featureKinds, toColumns } from '../../src/drift/columns';
import { summariseDrift, summaryMetrics } from '../../src/drift/mlflow-summary';
import { referenceProfileFromEngine, withEvaluation } from '../../src/drift/reference-profile';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';
import { OUTSIDE_RETRY } from '../../workflows/shared/activity-options';

const dir = mkdtempSync(path.join(os.tmpdir(), 'drift-triggers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ModelLocked in the failure taxonomy', () => {
  it('is a named type, non-retryable, and what the lock throws', () => {
    expect(FailureType.ModelLocked).toBe('ModelLocked');
    expect(MODEL_LOCKED_FAILURE).toBe(FailureType.ModelLocked);
    expect(NON_RETRYABLE_FAILURE_TYPES).toContain('ModelLocked');
    // Every activity proxy's retry policy lists it, so a refused lease is never retried.
    expect(OUTSIDE_RETRY.nonRetryableErrorTypes).toContain('ModelLocked');
  });
});

describe('decideNewData', () => {
  const champion = { version: '3', datasetSha256: 'a'.repeat(64) };
  const count = (newRows: number) => ({ rows: 1000 + newRows, shared: 1000, newRows, champion });
  const now = Date.parse('2026-12-01T12:00:00Z');

  it('starts at the threshold, not below it (default threshold named)', () => {
    expect(decideNewData(count(DEFAULT_MIN_NEW_ROWS - 1), { held: false }, now)).toMatchObject({
      start: false,
      blocked: 'threshold',
    });
    const d = decideNewData(count(DEFAULT_MIN_NEW_ROWS), { held: false }, now);
    expect(d.start).toBe(true);
    expect(d.reason).toContain("since v3's training snapshot");
  });

  it('starts nothing while the lock is held or within the cool-down of the last start', () => {
    const policy = { minNewRows: 10, cooldownMs: 3_600_000 };
    expect(decideNewData(count(50), { held: true }, now, policy).blocked).toBe('lock');
    expect(decideNewData(count(50), { held: false, lastGrantMs: now - 60_000 }, now, policy).blocked).toBe(
      'cooldown',
    );
    expect(decideNewData(count(50), { held: false, lastGrantMs: now - 3_600_000 }, now, policy).start).toBe(
      true,
    );
  });

  it('refuses a malformed policy, naming the field', () => {
    expect(() => decideNewData(count(5), { held: false }, now, { minNewRows: 0 })).toThrow(/minNewRows/);
  });
});

describe('the reference profile from the engine', () => {
  it('bins the training rows exactly as the monitor bins them', async () => {
    const rows = generateFraudDataset({ rows: 3_000, seed: 5, batches: 1 });
    const file = path.join(dir, 'train.csv');
    await writeCsv(file, rows);
    const { profile, drift } = await profileDatasetWithExtras(file, FRAUD_FEATURE_SPEC, { sha256: 'x' });
    const ref = referenceProfileFromEngine(drift, profile, { sha256: 'x' });
    expect(ref.rows).toBe(3_000);
    expect(ref.numeric.map((n) => n.name)).toEqual(featureKinds(FRAUD_FEATURE_SPEC).numeric);
    // The same rows as a window: every bin and category count equals the reference's.
    const window = summariseWindow(
      ref,
      toColumns(rows as unknown as Record<string, unknown>[], featureKinds(FRAUD_FEATURE_SPEC)),
    );
    for (const n of ref.numeric) {
      expect(window.numeric[n.name]!.counts, n.name).toEqual(n.counts);
      expect(window.numeric[n.name]!.nulls, n.name).toBe(n.nulls);
    }
    for (const c of ref.categorical) {
      expect(window.categorical[c.name]!.counts, c.name).toEqual(c.counts);
      expect(window.categorical[c.name]!.other, c.name).toBe(c.other);
    }
    const verdict = judgeDrift(compareWindowToProfile(ref, window), window.rows);
    expect(verdict.status).toBe('no-drift');
  });

  it('keeps a bounded, repeatable sample of each numeric feature (the reservoir), missing cells left out', async () => {
    const rows = generateFraudDataset({ rows: 3_000, seed: 6, batches: 1, missingRate: 0.1 });
    const file = path.join(dir, 'train-sample.csv');
    await writeCsv(file, rows);
    const profileOf = async (driftSample: number) => {
      const { profile, drift } = await profileDatasetWithExtras(file, FRAUD_FEATURE_SPEC, {
        sha256: 'y',
        driftSample,
      });
      return referenceProfileFromEngine(drift, profile);
    };
    const a = await profileOf(500);
    const b = await profileOf(500);
    for (const n of a.numeric) {
      expect(n.reservoir.length, n.name).toBeGreaterThan(0);
      expect(n.reservoir.length, n.name).toBeLessThanOrEqual(500);
      expect(n.reservoir.length, n.name).toBeLessThanOrEqual(n.rows - n.nulls);
      for (const v of n.reservoir) {
        expect(v, n.name).toBeGreaterThanOrEqual(n.min);
        expect(v, n.name).toBeLessThanOrEqual(n.max);
      }
    }
    // The same snapshot gives the same sample; without asking, none is taken.
    expect(b.numeric.map((n) => n.reservoir)).toEqual(a.numeric.map((n) => n.reservoir));
    expect((await profileOf(0)).numeric.every((n) => n.reservoir.length === 0)).toBe(true);
    // A feature with missing cells has fewer sampled values than rows sampled.
    const device = a.numeric.find((n) => n.nulls > 0);
    expect(device, 'a numeric feature with missing cells').toBeDefined();
    expect(device!.reservoir.length).toBeLessThan(500);
  });

  it('takes the prediction reference and the calibration from the evaluation rows', async () => {
    const rows = generateFraudDataset({ rows: 1_500, seed: 6, batches: 1 });
    const file = path.join(dir, 'small.csv');
    await writeCsv(file, rows);
    const { profile, drift } = await profileDatasetWithExtras(file, FRAUD_FEATURE_SPEC, { sha256: 'y' });
    const ref = referenceProfileFromEngine(drift, profile);
    const csv = ['index,label,group,champion_score,challenger_score']
      .concat(rows.map((r, i) => `${i},${r.is_fraud},,,${r.is_fraud ? 0.7 : 0.05}`))
      .join('\n');
    const full = withEvaluation(ref, csv);
    expect(full.prediction?.rows).toBe(1_500);
    expect(full.calibration?.check.rows).toBeGreaterThan(0);
    expect(() => withEvaluation(ref, 'index,label,challenger_score\n0,2,0.1\n')).toThrow(/label/);
  });
});

describe('the drift summary logged to MLflow', () => {
  it('has the share drifted, the max statistic, prediction drift, CBPE and realized metrics', () => {
    const features = [
      { feature: 'a', kind: 'numeric', statistic: 40, pValue: 1e-9, distance: 0.3 },
      { feature: 'b', kind: 'numeric', statistic: 2, pValue: 0.8, distance: 0.01 },
      { feature: 'prediction', kind: 'prediction', statistic: 90, pValue: 1e-12, distance: 0.5 },
    ].map((f) => ({
      ...f,
      rows: 500,
      test: 'chi-square' as const,
      distanceName: 'psi' as const,
      lInfinity: 0,
      referenceShares: [],
      windowShares: [],
      labels: [],
      kind: f.kind as 'numeric' | 'prediction',
    }));
    const verdict = judgeDrift(features, 500);
    const s = summariseDrift(
      verdict,
      features,
      [{ metric: 'precision', threshold: 0.2, rows: 500, value: 0.4, trusted: true, reasons: [] }],
      { precision: { value: 0.35, lower: 0.3, upper: 0.41 } },
    );
    expect(s).toMatchObject({ shareDrifted: 0.5, maxStatistic: 40, predictionDistance: 0.5, alarm: true });
    const keys = Object.fromEntries(summaryMetrics(s).map((m) => [m.key, m.value]));
    expect(keys).toMatchObject({
      drift_share_drifted_features: 0.5,
      drift_max_statistic: 40,
      drift_prediction_psi: 0.5,
      cbpe_precision: 0.4,
      cbpe_precision_trusted: 1,
      realized_precision: 0.35,
      drift_alarm: 1,
    });
  });
});
