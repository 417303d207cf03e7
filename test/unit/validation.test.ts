import { describe, expect, it } from 'vitest';
import {
  FeatureSpecSchema,
  signedLog1p,
  type BatchProfile,
  type DatasetProfile,
  type FeatureSpec,
} from '../../src/core/contracts/feature-spec';
import { CheckSchema, type CheckPhase } from '../../src/core/contracts/checks';
import {
  MAX_REPORTED_Z,
  cohenH,
  failedCheckMessages,
  failedReport,
  judgeDataset,
  median,
  robustBatchZ,
} from '../../src/core/policy/validation';

const SPEC: FeatureSpec = FeatureSpecSchema.parse({
  name: 'toy',
  version: '1',
  label: { column: 'y', positiveValue: 1 },
  batchColumn: 'batch',
  features: [{ name: 'x', kind: 'numeric', min: 0 }],
  quality: { minRows: 1, labelRate: { min: 0, max: 1 } },
});

/** A profile of equal batches with the given positive counts and numeric means (signed-log scale). */
function profile(
  batches: Array<{ rows: number; positives: number; mean?: number; sd?: number }>,
): DatasetProfile {
  const rows = batches.reduce((s, b) => s + b.rows, 0);
  const positives = batches.reduce((s, b) => s + b.positives, 0);
  const batchProfiles: BatchProfile[] = batches.map((b, i) => ({
    batch: `b${i}`,
    rows: b.rows,
    positives: b.positives,
    negatives: b.rows - b.positives,
    repeatedVectors: 0,
    conflictingLabels: 0,
    outOfRange: 0,
    numeric: [{ column: 'x', count: b.rows, mean: b.mean ?? 1, m2: (b.sd ?? 1) ** 2 * (b.rows - 1) }],
    categorical: [],
  }));
  return {
    specName: 'toy',
    specVersion: '1',
    sha256: '0'.repeat(64),
    bytes: 1,
    header: ['x', 'y', 'batch'],
    rows,
    raggedRows: 0,
    missingColumns: [],
    unexpectedColumns: [],
    duplicateRows: 0,
    duplicateIds: null,
    columns: [
      {
        name: 'x',
        kind: 'numeric',
        missing: 0,
        typeErrors: 0,
        count: rows,
        min: 0,
        max: 10,
        mean: 1,
        std: 1,
        belowMin: 0,
        aboveMax: 0,
      },
    ],
    label: { column: 'y', positive: positives, negative: rows - positives, missing: 0, invalid: 0 },
    repeatedVectors: 0,
    conflictingLabels: 0,
    batchColumn: 'batch',
    batches: batchProfiles,
    untrackedBatchRows: 0,
  };
}

const failing = (p: DatasetProfile, check: string) =>
  judgeDataset(p, SPEC).checks.filter((c) => c.check === check && !c.passed);

describe('statistics of the poisoning screen', () => {
  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("Cohen's h is antisymmetric and grows with the gap", () => {
    expect(cohenH(0.3, 0.1)).toBeCloseTo(-cohenH(0.1, 0.3), 12);
    expect(cohenH(0.5, 0.5)).toBe(0);
    expect(cohenH(0.5, 0.1)).toBeGreaterThan(cohenH(0.2, 0.1));
  });

  it('robustBatchZ measures distance from the median in standard errors', () => {
    const { center, z } = robustBatchZ([0.1, 0.1, 0.1, 0.4], [100, 100, 100, 100], 0.3);
    expect(center).toBe(0.1);
    expect(z.slice(0, 3)).toEqual([0, 0, 0]);
    const se = 0.3 * Math.sqrt(1 / 100 + Math.PI / (2 * 400));
    expect(z[3]).toBeCloseTo(0.3 / se, 9);
  });

  it('caps infinite z so the report stays JSON', () => {
    const { z } = robustBatchZ([0, 0, 1], [10, 10, 10], 0);
    expect(z[2]).toBe(MAX_REPORTED_Z);
    expect(JSON.parse(JSON.stringify(z))).toEqual(z);
  });
});

describe('judgeDataset poisoning screen', () => {
  it('flags a batch whose label rate is far outside binomial noise, naming the batch', () => {
    const p = profile([
      { rows: 1000, positives: 30 },
      { rows: 1000, positives: 33 },
      { rows: 1000, positives: 28 },
      { rows: 1000, positives: 31 },
      { rows: 1000, positives: 210 },
    ]);
    const failed = failing(p, 'poisoning.label-rate');
    expect(failed.map((c) => c.batch)).toEqual(['b4']);
    expect(failed[0]?.message).toMatch(
      /^batch "b4": label rate 21\.00% vs 3\.10% \(median of batches\) \(z = \d+\.\d\d/,
    );
    expect(failed[0]?.column).toBe('y');
  });

  it('ignores a significant but tiny difference (effect below minEffectSize)', () => {
    // A million rows per batch make 3.0% vs 3.6% hugely significant, but the effect (h ~ 0.03) is negligible.
    const p = profile([
      { rows: 1_000_000, positives: 30_000 },
      { rows: 1_000_000, positives: 30_100 },
      { rows: 1_000_000, positives: 29_900 },
      { rows: 1_000_000, positives: 36_000 },
    ]);
    const check = judgeDataset(p, SPEC).checks.find(
      (c) => c.check === 'poisoning.label-rate' && c.batch === 'b3',
    );
    expect(Math.abs(check?.observed as number)).toBeGreaterThan(SPEC.poisoning.maxLabelRateZ);
    expect(check?.passed).toBe(true);
  });

  it('flags a batch whose feature mean moved, without swamping the clean batches', () => {
    const clean = { rows: 500, positives: 15, mean: signedLog1p(10), sd: 1 };
    const p = profile([clean, clean, clean, clean, { ...clean, mean: signedLog1p(40) }]);
    const failed = failing(p, 'poisoning.feature-shift');
    expect(failed.map((c) => c.batch)).toEqual(['b4']);
    expect(failed[0]?.column).toBe('x');
    expect(failed[0]?.message).toMatch(
      /batch "b4": column "x" log-scale mean ~40(\.00)? vs ~10(\.00)? \(median of batches\)/,
    );
  });

  it('judges only batches with enough rows, and compares only enough of them', () => {
    const p = profile([
      { rows: 1000, positives: 30 },
      { rows: 1000, positives: 30 },
      { rows: 10, positives: 9 },
    ]);
    const report = judgeDataset(p, SPEC);
    expect(report.checks.filter((c) => c.check === 'poisoning.label-rate')).toHaveLength(0);
    expect(report.checks.find((c) => c.check === 'poisoning.batches')?.message).toMatch(
      /3 batch\(es\) in column "batch", 2 with at least 50 rows judged; fewer than 3/,
    );
  });

  it('fails when batches were left unscreened', () => {
    const p = { ...profile([{ rows: 100, positives: 3 }]), untrackedBatchRows: 7 };
    const [failed] = failing(p, 'poisoning.batches');
    expect(failed?.message).toMatch(/column "batch": 7 rows belong to batches beyond the 1 profiled ones/);
  });

  it('lists failed checks as one line each', () => {
    const p = {
      ...profile([{ rows: 100, positives: 3 }]),
      missingColumns: ['x'],
    };
    expect(failedCheckMessages(judgeDataset(p, SPEC))).toEqual([
      'schema.missing-column: column "x" is missing from the header (required by feature spec toy@1)',
    ]);
  });
});

describe('validation checks in the shared check shape', () => {
  const clean = () =>
    profile([
      { rows: 1000, positives: 30 },
      { rows: 1000, positives: 33 },
      { rows: 1000, positives: 28 },
    ]);

  it('every check keeps check/message and carries name/detail/phase/severity alongside', () => {
    const report = judgeDataset({ ...clean(), missingColumns: ['x'] }, SPEC);
    expect(report.checks.length).toBeGreaterThan(5);
    for (const c of report.checks) {
      expect(CheckSchema.safeParse(c).success).toBe(true);
      expect(c.name).toBe(c.check);
      expect(c.detail).toBe(c.message);
      expect(c.severity).toBe('failed');
      expect(c.phase).toBe(c.passed ? 'successful' : 'failed');
    }
  });

  it.each<[string, Partial<DatasetProfile>, boolean, CheckPhase]>([
    ['a clean dataset', {}, true, 'successful'],
    ['a missing column', { missingColumns: ['x'] }, false, 'failed'],
    ['unscreened batch rows', { untrackedBatchRows: 7 }, false, 'failed'],
  ])('%s -> ok %s, phase %s', (_label, patch, ok, phase) => {
    const report = judgeDataset({ ...clean(), ...patch }, SPEC);
    expect(report.ok).toBe(ok);
    expect(report.phase).toBe(phase);
  });

  it.each([
    ['unreadable data is an error: it could not be judged', undefined, 'error'],
    ['a hash mismatch the caller marks failed', 'failed', 'failed'],
  ] as const)('failedReport: %s', (_label, phase, expected) => {
    const report = failedReport(
      'readable',
      'EACCES',
      'a readable file',
      'dataset snapshot is unreadable',
      phase,
    );
    expect(report).toMatchObject({ ok: false, phase: expected });
    expect(report.checks).toEqual([
      {
        check: 'readable',
        name: 'readable',
        passed: false,
        phase: expected,
        severity: 'failed',
        observed: 'EACCES',
        threshold: 'a readable file',
        message: 'dataset snapshot is unreadable',
        detail: 'dataset snapshot is unreadable',
      },
    ]);
    expect(failedCheckMessages(report)).toEqual(['readable: dataset snapshot is unreadable']);
  });
});
