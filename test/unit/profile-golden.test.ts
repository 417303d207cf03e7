/**
 * Validation results stay what they were: the judge's reports and the profiles of a corpus of generated
 * datasets (clean, drifted, poisoned by cluster and by flipped labels, many missing values, too small,
 * duplicated rows, and a CSV with hand-made bad cells and ragged rows; CSV and Parquet each) are compared with
 * what the profiler gave before the engine's table was narrowed and its scans merged
 * (test/fixtures/data/profile-golden.json: each report's digest, numbers to 8 significant digits, and each
 * profile, compared to 1e-9 relative: the engine's parallel sums differ from run to run in the last bits).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { judgeDataset } from '../../src/core/policy/validation';
import { openEngine, sqlString } from '../../src/data/engine';
import { profileDataset } from '../../src/data/profile';
import { generateFraudDataset, writeCsv, type GenerateOptions } from '../../src/workload/generator';

const FIXTURE = path.resolve('test/fixtures/data/profile-golden.json');
const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-profile-golden-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETS: Record<string, GenerateOptions> = {
  clean: { rows: 20000, seed: 1 },
  drift: { rows: 20000, seed: 2, dataDrift: 0.8, conceptDrift: 0.5 },
  cluster: { rows: 20000, seed: 3, poisonedBatch: { batch: 4, fraction: 0.3, mode: 'cluster' } },
  flip: { rows: 20000, seed: 4, poisonedBatch: { batch: 2, fraction: 0.3, mode: 'flip' } },
  missing: { rows: 20000, seed: 5, missingRate: 0.3 },
  small: { rows: 50, seed: 6, batches: 3 },
};

/** JSON with every number to 8 significant digits and keys sorted, hashed. */
function digest(value: unknown): string {
  const canon = (v: unknown): unknown => {
    if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(8));
    if (Array.isArray(v)) return v.map(canon);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canon(value)))
    .digest('hex');
}

/** Paths where `actual` and `expected` differ (numbers by more than 1e-9, relative). */
function close(actual: unknown, expected: unknown, at: string): string[] {
  if (typeof actual === 'number' && typeof expected === 'number') {
    return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected))
      ? []
      : [`${at}: ${actual} vs ${expected}`];
  }
  if (actual !== null && expected !== null && typeof actual === 'object' && typeof expected === 'object') {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    return [...keys].flatMap((k) =>
      close((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${at}.${k}`),
    );
  }
  return actual === expected ? [] : [`${at}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`];
}

async function corpus(): Promise<string[]> {
  for (const [name, opts] of Object.entries(SETS)) {
    const rows = generateFraudDataset(opts);
    await writeCsv(path.join(dir, `${name}.csv`), rows);
    if (name === 'clean') await writeCsv(path.join(dir, 'dups.csv'), [...rows, ...rows.slice(0, 300)]);
  }
  const lines = readFileSync(path.join(dir, 'clean.csv'), 'utf8').split('\n');
  const edit = (i: number, col: number, v: string): void => {
    const c = (lines[i] as string).split(',');
    c[col] = v;
    lines[i] = c.join(',');
  };
  const edits: Array<[number, number, string]> = [
    [10, 2, 'abc'],
    [20, 2, ' 12 '],
    [30, 4, '99'],
    [40, 3, 'casino'],
    [50, 11, 'yes'],
    [60, 2, '1_000'],
    [70, 2, 'inf'],
    [80, 2, ' NA '],
    [90, 3, ' grocery'],
    [100, 2, '1e3'],
    [110, 9, 'NAN'],
    [120, 1, ' 3 '],
    [130, 3, 'NA'],
    [140, 0, 'NA'],
    [150, 0, ''],
  ];
  for (const [i, col, v] of edits) edit(i, col, v);
  lines[200] = `${lines[200]},extra`;
  lines[210] = (lines[210] as string).split(',').slice(0, 5).join(',');
  writeFileSync(path.join(dir, 'dirty.csv'), lines.join('\n'));
  const db = await openEngine();
  try {
    for (const name of [...Object.keys(SETS), 'dups']) {
      await db.run(
        `COPY (SELECT * FROM read_csv(${sqlString(path.join(dir, `${name}.csv`))}, header = true)) ` +
          `TO ${sqlString(path.join(dir, `${name}.parquet`))} (FORMAT parquet)`,
      );
    }
  } finally {
    db.close();
  }
  return [...Object.keys(SETS), 'dups']
    .flatMap((n) => [`${n}.csv`, `${n}.parquet`])
    .concat('dirty.csv')
    .sort();
}

describe('profiles and reports on the recorded corpus', () => {
  it('are the ones recorded before the engine changes', async () => {
    const expected = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<
      string,
      { report: string; profile: string }
    >;
    const files = await corpus();
    expect(files).toEqual(Object.keys(expected).sort());
    for (const f of files) {
      const profile = await profileDataset(path.join(dir, f), FRAUD_FEATURE_SPEC, { sha256: 'x' });
      const report = judgeDataset(profile, FRAUD_FEATURE_SPEC);
      const { sha256: _s, bytes: _b, ...measured } = profile;
      expect({ file: f, report: digest(report) }).toEqual({ file: f, report: expected[f]?.report });
      expect(close(measured, expected[f]?.profile, f)).toEqual([]);
    }
  }, 120_000);
});
