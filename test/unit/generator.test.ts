import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputValidationError } from '../../src/core/contracts/errors';
import { FRAUD_COLUMNS, FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { profileDataset } from '../../src/data/profile';
import { judgeDataset } from '../../src/core/policy/validation';
import {
  DEFAULT_BATCHES,
  generateFraudDataset,
  toCsv,
  writeCsv,
  type FraudRow,
  type GenerateOptions,
} from '../../src/workload/generator';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-generator-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const fraudRate = (rows: FraudRow[]): number => mean(rows.map((r) => r.is_fraud));
const share = (rows: FraudRow[], pred: (r: FraudRow) => boolean): number =>
  rows.filter(pred).length / rows.length;

async function judge(opts: GenerateOptions) {
  const file = path.join(dir, `d-${JSON.stringify(opts).replace(/\W+/g, '_')}.csv`);
  await writeCsv(file, generateFraudDataset(opts));
  return judgeDataset(await profileDataset(file, FRAUD_FEATURE_SPEC), FRAUD_FEATURE_SPEC);
}

describe('generateFraudDataset', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = toCsv(generateFraudDataset({ rows: 2000, seed: 7 }));
    const b = toCsv(generateFraudDataset({ rows: 2000, seed: 7 }));
    const c = toCsv(generateFraudDataset({ rows: 2000, seed: 8 }));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(a.split('\n')[0]).toBe(FRAUD_COLUMNS.join(','));
    expect(a.trimEnd().split('\n')).toHaveLength(2001);
  });

  it('writes the same bytes as toCsv', async () => {
    const rows = generateFraudDataset({ rows: 500, seed: 3 });
    const file = path.join(dir, 'nested', 'write.csv');
    await writeCsv(file, rows);
    expect(readFileSync(file, 'utf8')).toBe(toCsv(rows));
  });

  it('writes the same bytes as toCsv across many write buffers, with multi-byte and over-long cells', async () => {
    const rows = generateFraudDataset({ rows: 60_000, seed: 3 }); // about 3.6 MB: several 1 MiB buffers
    rows[100] = { ...(rows[100] as (typeof rows)[number]), transaction_id: 'tx-"é€"-, ünïcode' };
    // A cell longer than a buffer's worth of UTF-8, written on its own between two buffers.
    rows[30_000] = { ...(rows[30_000] as (typeof rows)[number]), transaction_id: '€'.repeat(400_000) };
    const file = path.join(dir, 'buffers.csv');
    await writeCsv(file, rows);
    expect(readFileSync(file, 'utf8')).toBe(toCsv(rows));
  });

  it.each([0.01, 0.03, 0.1, 0.3])('hits the requested fraud rate %d', (rate) => {
    const observed = fraudRate(generateFraudDataset({ rows: 20_000, seed: 11, fraudRate: rate }));
    // Binomial noise is at most ~0.003 here; calibration adds well under 10% of the rate.
    expect(Math.abs(observed - rate)).toBeLessThan(0.1 * rate + 0.004);
  });

  it('splits rows into consecutive batches of near-equal size', () => {
    const rows = generateFraudDataset({ rows: 1003, seed: 1 });
    const sizes = Array.from(
      { length: DEFAULT_BATCHES },
      (_, b) => rows.filter((r) => r.batch_id === b).length,
    );
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1003);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(rows.map((r) => r.batch_id)).toEqual([...rows.map((r) => r.batch_id)].sort((a, b) => a - b));
  });

  it('keeps values inside the fraud spec ranges and categories, with some missing enrichments', () => {
    const rows = generateFraudDataset({ rows: 5000, seed: 4, dataDrift: 1 });
    for (const f of FRAUD_FEATURE_SPEC.features) {
      const values = rows.map((r) => r[f.name as keyof FraudRow]).filter((v) => v !== null);
      if (f.kind === 'numeric') {
        expect(Math.min(...(values as number[])), f.name).toBeGreaterThanOrEqual(f.min ?? -Infinity);
        expect(Math.max(...(values as number[])), f.name).toBeLessThanOrEqual(f.max ?? Infinity);
      } else {
        expect(new Set(values).size, f.name).toBeLessThanOrEqual(f.categories.length);
        for (const v of values) expect(f.categories).toContain(v);
      }
    }
    expect(share(rows, (r) => r.device_risk_score === null)).toBeGreaterThan(0.005);
    expect(
      generateFraudDataset({ rows: 2000, seed: 4, missingRate: 0 }).some((r) => r.device_risk_score === null),
    ).toBe(false);
  });

  it('gives regions slightly different base rates', () => {
    const rows = generateFraudDataset({ rows: 60_000, seed: 5 });
    const rate = (region: string) => fraudRate(rows.filter((r) => r.region === region));
    expect(rate('south') / rate('east')).toBeGreaterThan(1.15);
    expect(rate('south') / rate('east')).toBeLessThan(2.5);
  });

  it('data drift shifts the feature distributions', () => {
    const base = generateFraudDataset({ rows: 10_000, seed: 9 });
    const drifted = generateFraudDataset({ rows: 10_000, seed: 9, dataDrift: 1 });
    const logAmount = (rows: FraudRow[]) => mean(rows.map((r) => Math.log(r.amount)));
    const device = (rows: FraudRow[]) => mean(rows.flatMap((r) => r.device_risk_score ?? []));
    const online = (rows: FraudRow[]) => share(rows, (r) => r.merchant_category === 'online_retail');
    expect(logAmount(drifted) - logAmount(base)).toBeGreaterThan(0.25);
    expect(device(drifted) - device(base)).toBeGreaterThan(0.03);
    expect(online(drifted) - online(base)).toBeGreaterThan(0.08);
    // A half-strength drift lands in between.
    const half = generateFraudDataset({ rows: 10_000, seed: 9, dataDrift: 0.5 });
    expect(logAmount(half)).toBeGreaterThan(logAmount(base));
    expect(logAmount(half)).toBeLessThan(logAmount(drifted));
  });

  it('concept drift changes who commits fraud, not how often', () => {
    const base = generateFraudDataset({ rows: 20_000, seed: 10 });
    const drifted = generateFraudDataset({ rows: 20_000, seed: 10, conceptDrift: 1 });
    const risky = (rows: FraudRow[]) => fraudRate(rows.filter((r) => (r.device_risk_score ?? 0) >= 0.5));
    expect(Math.abs(fraudRate(drifted) - fraudRate(base))).toBeLessThan(0.01);
    expect(risky(base)).toBeGreaterThan(2 * risky(drifted));
    // The features themselves are untouched: same draws, only labels differ.
    expect(drifted.map((r) => r.amount)).toEqual(base.map((r) => r.amount));
    expect(drifted.some((r, i) => r.is_fraud !== base[i]?.is_fraud)).toBe(true);
  });

  it.each(['cluster', 'flip'] as const)('poisons only the chosen batch (%s)', (mode) => {
    const clean = generateFraudDataset({ rows: 3000, seed: 12 });
    const poisoned = generateFraudDataset({
      rows: 3000,
      seed: 12,
      poisonedBatch: { batch: 4, fraction: 0.3, mode },
    });
    const changed = poisoned.filter((r, i) => JSON.stringify(r) !== JSON.stringify(clean[i]));
    expect(changed.every((r) => r.batch_id === 4)).toBe(true);
    expect(changed.length / 300).toBeGreaterThan(0.15);
    expect(changed.length / 300).toBeLessThan(0.45);
  });

  it.each<[string, GenerateOptions, string]>([
    ['zero rows', { rows: 0, seed: 1 }, 'rows'],
    ['a negative seed', { rows: 10, seed: -1 }, 'seed'],
    ['a drift above 1', { rows: 10, seed: 1, dataDrift: 1.5 }, 'dataDrift'],
    ['a fraud rate of 0', { rows: 10, seed: 1, fraudRate: 0 }, 'fraudRate'],
    ['more batches than rows', { rows: 5, seed: 1, batches: 6 }, 'batches'],
    [
      'a poisoned batch that does not exist',
      { rows: 100, seed: 1, poisonedBatch: { batch: 10 } },
      'poisonedBatch.batch',
    ],
  ])('rejects %s, naming the option', (_case, opts, field) => {
    expect(() => generateFraudDataset(opts)).toThrow(InputValidationError);
    expect(() => generateFraudDataset(opts)).toThrow(
      new RegExp(`generator options: ${field.replace('.', '\\.')}:`),
    );
  });
});

describe('the poisoning screen on generated data', () => {
  it.each([
    { rows: 5000, seed: 1 },
    { rows: 3000, seed: 2, batches: 6 },
    { rows: 8000, seed: 3, dataDrift: 0.5, conceptDrift: 0.5 },
  ])('passes clean data on every check (%o)', async (opts) => {
    const report = await judge(opts);
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.filter((c) => c.check === 'poisoning.feature-shift').length).toBe(
      opts.batches ?? 10,
    );
  });

  it.each([
    ['cluster', 0.2, 'poisoning.feature-shift'],
    ['cluster', 0.1, 'poisoning.feature-shift'],
    ['flip', 0.1, 'poisoning.label-rate'],
    ['flip', 0.3, 'poisoning.label-rate'],
  ] as const)('flags the %s-poisoned batch (fraction %d) and only it', async (mode, fraction, check) => {
    const report = await judge({ rows: 5000, seed: 6, poisonedBatch: { batch: 3, fraction, mode } });
    expect(report.ok).toBe(false);
    const failed = report.checks.filter((c) => !c.passed);
    expect(failed.map((c) => c.check)).toContain(check);
    for (const c of failed.filter((f) => f.check.startsWith('poisoning.'))) {
      expect(c.batch).toBe('3');
      expect(c.message).toContain('batch "3"');
    }
    const hit = failed.find((c) => c.check === check);
    expect(Math.abs(hit?.observed as number)).toBeGreaterThan(hit?.threshold as number);
  });
});
