/**
 * The dataset activities judge what they cannot read as a failed report (the pipeline then ends as
 * `rejected-data`), never as a retry loop.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createDataActivities, fingerprintsPathOf } from '../../activities/data';
import { sharedRowsWithTraining } from '../../src/data/profile';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { openEngine, sqlString } from '../../src/data/engine';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';

const generateToCsv = (file: string) => writeCsv(file, generateFraudDataset({ rows: 2000, seed: 11 }));

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-data-acts-'));
const acts = createDataActivities({ snapshotDir: path.join(dir, 'snapshots') });

describe('validateDataset', () => {
  it('reports a vanished snapshot as a failed "readable" check naming the file', async () => {
    const missing = path.join(dir, 'gone.csv');
    const { report, profile } = await acts.validateDataset({
      snapshotPath: missing,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(profile).toBeUndefined();
    expect(report.ok).toBe(false);
    expect(report.checks).toHaveLength(1);
    expect(report.checks[0]).toMatchObject({ check: 'readable', passed: false });
    expect(report.checks[0]?.message).toContain('gone.csv');
  });

  it('reports a file that is not a CSV as a failed "format" check', async () => {
    const binary = path.join(dir, 'binary.csv');
    writeFileSync(binary, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a, 0x00]));
    const { report } = await acts.validateDataset({ snapshotPath: binary, spec: FRAUD_FEATURE_SPEC });
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['format', false]]);
    expect(report.checks[0]?.message).toMatch(/^dataset is not a readable CSV or Parquet file: /);
  });
});

describe('snapshotDataset + validateDataset on Parquet', () => {
  it('snapshots a Parquet file as <sha256>.parquet and validates it without hashing it again', async () => {
    const csvPath = path.join(dir, 'fraud.csv');
    await generateToCsv(csvPath);
    const parquet = path.join(dir, 'fraud.parquet');
    const db = await openEngine();
    try {
      await db.run(
        `COPY (SELECT * FROM read_csv(${sqlString(csvPath)}, header = true)) TO ${sqlString(parquet)} (FORMAT parquet)`,
      );
    } finally {
      db.close();
    }
    const snapshot = await acts.snapshotDataset({ dataset: { uri: pathToFileURL(parquet).href } });
    expect(snapshot.sha256).toBe(createHash('sha256').update(readFileSync(parquet)).digest('hex'));
    expect(path.basename(snapshot.snapshotPath)).toBe(`${snapshot.sha256}.parquet`);
    const { report, profile } = await acts.validateDataset({
      snapshotPath: snapshot.snapshotPath,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(profile?.format).toBe('parquet');
    expect(profile?.sha256).toBe(snapshot.sha256);
    expect(profile?.rows).toBe(2000);
    expect(report.ok, JSON.stringify(report.checks.filter((c) => !c.passed))).toBe(true);
  });

  it('a truncated Parquet snapshot is a failed "format" check', async () => {
    const cut = path.join(dir, 'cut.parquet');
    const bytes = readFileSync(path.join(dir, 'fraud.parquet'));
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const { report } = await acts.validateDataset({ snapshotPath: cut, spec: FRAUD_FEATURE_SPEC });
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['format', false]]);
    expect(report.checks[0]?.message).toMatch(/not a readable Parquet file/);
  });
});

describe('the holdout-leak check reads the fingerprints validation wrote', () => {
  it('counts shared rows from the sidecar, and without one fingerprints the training file once', async () => {
    const rows = generateFraudDataset({ rows: 600, seed: 31 });
    const train = path.join(dir, 'leak-train.csv');
    await writeCsv(train, rows);
    const snapshot = await acts.snapshotDataset({ dataset: { uri: pathToFileURL(train).href } });
    await acts.validateDataset({ snapshotPath: snapshot.snapshotPath, spec: FRAUD_FEATURE_SPEC });
    const sidecar = fingerprintsPathOf(snapshot.snapshotPath);
    expect(readFileSync(sidecar).subarray(0, 4).toString('latin1')).toBe('PAR1');

    const leaky = path.join(dir, 'leak-holdout.csv');
    const fresh = generateFraudDataset({ rows: 300, seed: 32 });
    await writeCsv(leaky, [...fresh, ...rows.slice(0, 7)]);
    const clean = path.join(dir, 'clean-holdout.csv');
    await writeCsv(clean, fresh);
    expect(await sharedRowsWithTraining(snapshot.snapshotPath, leaky, FRAUD_FEATURE_SPEC)).toBe(7);
    expect(await sharedRowsWithTraining(snapshot.snapshotPath, clean, FRAUD_FEATURE_SPEC)).toBe(0);

    // The same rows with another id and numbers written differently are the same examples.
    const rewritten = path.join(dir, 'leak-rewritten.csv');
    const text = readFileSync(leaky, 'utf8')
      .replace(/tx-1f-/g, 'other-')
      .replace(/,0\.5,/g, ',0.50,');
    writeFileSync(rewritten, text);
    expect(await sharedRowsWithTraining(snapshot.snapshotPath, rewritten, FRAUD_FEATURE_SPEC)).toBe(7);

    // A file never validated (no sidecar) is fingerprinted once, to the same answer.
    expect(await sharedRowsWithTraining(train, leaky, FRAUD_FEATURE_SPEC)).toBe(7);
  });
});
