/**
 * The generator's history-poisoning flags: parsed onto `historyPoison` and `poisonedBatch.region`, refused
 * (naming the flag) when incomplete, and the options they make poison every batch against the reference.
 */
import { describe, expect, it } from 'vitest';
import { UsageError, parseGenerateArgs } from '../../src/cli/generate-data';
import { generateFraudDataset } from '../../src/workload/generator';

describe('history poisoning flags', () => {
  it('map onto historyPoison and poisonedBatch.region', () => {
    expect(
      parseGenerateArgs([
        '--out',
        'x.csv',
        '--poison-batch',
        '1',
        '--poison-region',
        'east',
        '--history-poison',
        'replay-flip',
        '--reference-rows',
        '3000',
        '--reference-seed',
        '41',
        '--history-poison-fraction',
        '0.05',
        '--history-poison-region',
        'west',
      ])?.options,
    ).toMatchObject({
      poisonedBatch: { batch: 1, region: 'east' },
      historyPoison: {
        mode: 'replay-flip',
        reference: { rows: 3000, seed: 41 },
        fraction: 0.05,
        region: 'west',
      },
    });
  });

  it.each([
    [['--out', 'x.csv', '--reference-seed', '4'], /need --history-poison/],
    [['--out', 'x.csv', '--history-poison', 'replay-flip'], /needs --reference-rows and --reference-seed/],
    [
      ['--out', 'x.csv', '--history-poison', 'nuke', '--reference-rows', '5', '--reference-seed', '1'],
      /--history-poison:/,
    ],
    [['--out', 'x.csv', '--poison-region', 'east'], /need --poison-batch/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseGenerateArgs(argv)).toThrow(UsageError);
    expect(() => parseGenerateArgs(argv)).toThrow(message);
  });
});

describe('history poisoning in the generator', () => {
  const reference = { rows: 2000, seed: 5 };
  const referenceRows = generateFraudDataset(reference);
  const byFeatures = new Map(
    referenceRows.map((r) => [JSON.stringify({ ...r, transaction_id: '', batch_id: 0, is_fraud: 0 }), r]),
  );

  it('replay-flip copies reference rows of the region with the other label, in every batch', () => {
    const rows = generateFraudDataset({
      rows: 4000,
      seed: 6,
      historyPoison: { reference, mode: 'replay-flip', fraction: 0.1, region: 'south' },
    });
    const replayed = rows.filter((r) =>
      byFeatures.has(JSON.stringify({ ...r, transaction_id: '', batch_id: 0, is_fraud: 0 })),
    );
    expect(replayed.length).toBeGreaterThan(300);
    expect(replayed.length).toBeLessThan(500);
    for (const r of replayed) {
      expect(r.region).toBe('south');
      const original = byFeatures.get(JSON.stringify({ ...r, transaction_id: '', batch_id: 0, is_fraud: 0 }));
      expect(r.is_fraud).toBe(original?.is_fraud === 1 ? 0 : 1);
    }
    expect(new Set(replayed.map((r) => r.batch_id)).size).toBe(10);
  });

  it('near-duplicates copy a few reference rows with the amount jittered by at most two cents', () => {
    const rows = generateFraudDataset({
      rows: 4000,
      seed: 6,
      historyPoison: { reference, mode: 'near-duplicates', fraction: 0.1, templates: 3 },
    });
    const templates = referenceRows.slice(0, 3);
    const copies = rows.filter((r) =>
      templates.some(
        (t) =>
          t.device_risk_score === r.device_risk_score &&
          t.customer_age_days === r.customer_age_days &&
          Math.abs(t.amount - r.amount) <= 0.02 + 1e-9,
      ),
    );
    expect(copies.length).toBeGreaterThan(300);
    expect(copies.some((c) => templates.every((t) => t.amount !== c.amount))).toBe(true);
  });

  it('leaves the dataset unchanged without the option', () => {
    expect(generateFraudDataset({ rows: 500, seed: 6 })).toEqual(
      generateFraudDataset({ rows: 500, seed: 6 }),
    );
  });
});
