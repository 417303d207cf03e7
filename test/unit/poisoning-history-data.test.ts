/**
 * The poisoning screen against history on generated data: each snapshot is measured against a champion
 * snapshot by the real engine (`src/data/history.ts`) and judged under the fraud policy's
 * `validation.history` section (deploy/policies/fraud.json). A clean batch passes; each poisoning kind of the
 * generator is caught with its evidence; segments below the minimum counts never decide.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import {
  ValidationPolicySchema,
  type HistoryCheck,
  type HistoryScreen,
  type HistoryScreenPolicy,
} from '../../src/core/contracts/poisoning-history';
import { judgeHistory } from '../../src/core/policy/poisoning-history';
import { measureHistory } from '../../src/data/history';
import { generateFraudDataset, writeCsv, type GenerateOptions } from '../../src/workload/generator';
import { tempDir } from '../helpers/env';

const dir = tempDir('poison-history');
const CHAMPION = { rows: 6000, seed: 31 };
const championPath = path.join(dir, 'champion.csv');
const fraudPolicy: HistoryScreenPolicy = ValidationPolicySchema.parse(
  (JSON.parse(readFileSync('deploy/policies/fraud.json', 'utf8')) as { validation: unknown }).validation,
).history;

beforeAll(async () => {
  await writeCsv(championPath, generateFraudDataset(CHAMPION));
});

async function screen(
  name: string,
  opts: GenerateOptions,
  policy: HistoryScreenPolicy = fraudPolicy,
): Promise<{ screen: HistoryScreen; rows: Map<string, string[]> }> {
  const file = path.join(dir, `${name}.csv`);
  const generated = generateFraudDataset(opts);
  await writeCsv(file, generated);
  const m = await measureHistory({
    current: { path: file, sha256: name },
    reference: { path: championPath, sha256: 'champion', version: '7' },
    spec: FRAUD_FEATURE_SPEC,
    tolerance: policy.nearDuplicateTolerance,
    segments: ['merchant_category', 'region'],
    sampleRows: policy.sampleRows,
  });
  const rows = new Map(generated.map((r) => [r.transaction_id, [String(r.is_fraud), r.region]]));
  return { screen: judgeHistory(m, policy), rows };
}

const failing = (s: HistoryScreen): HistoryCheck[] => s.checks.filter((c) => !c.passed);
const names = (s: HistoryScreen): string[] =>
  failing(s).map((c) => `${c.check}${c.evidence.segment ? `@${c.evidence.segment.value}` : ''}:${c.phase}`);

describe('poisoning screen against the champion snapshot', () => {
  it('passes a clean batch of the same world', async () => {
    const { screen: s } = await screen('clean', { rows: 6000, seed: 32 });
    expect(s.status).toBe('compared');
    expect(names(s)).toEqual([]);
    expect(s.checks.map((c) => c.check)).toEqual(
      expect.arrayContaining([
        'history.label-shift',
        'history.segment-label-shift',
        'history.duplicate-surge',
        'history.label-flips',
        'history.out-of-reference-range',
      ]),
    );
  });

  it('blocks champion rows replayed with flipped labels in one region, naming the region and the rows', async () => {
    const { screen: s, rows } = await screen('replay-flip', {
      rows: 6000,
      seed: 33,
      historyPoison: { reference: CHAMPION, mode: 'replay-flip', fraction: 0.04, region: 'east' },
    });
    const east = failing(s).find(
      (c) => c.check === 'history.label-flips' && c.evidence.segment?.value === 'east',
    );
    expect(east?.phase).toBe('failed');
    const e = east?.evidence;
    expect(e?.counts.flipped).toBeGreaterThan(150);
    expect(e?.counts.flipped).toBe(e?.counts.matched);
    expect(e?.adjustedPValue).toBeLessThan(1e-10);
    expect(e?.correction?.method).toBe('holm');
    // No other region has a flip: the finding is concentrated.
    for (const region of ['north', 'south', 'west']) {
      expect(names(s)).not.toContain(`history.label-flips@${region}:failed`);
    }
    // The sampled ids are rows of the batch, in region east.
    expect(e?.sampleRows?.length).toBe(fraudPolicy.sampleRows);
    for (const idv of e?.sampleRows ?? []) expect(rows.get(idv)?.[1]).toBe('east');
    expect(s.blocked).toBeGreaterThan(0);
  });

  it('blocks a surge of near-duplicates that exact-duplicate checks miss', async () => {
    const { screen: s } = await screen('near-dups', {
      rows: 6000,
      seed: 34,
      historyPoison: { reference: CHAMPION, mode: 'near-duplicates', fraction: 0.04, templates: 5 },
    });
    const dup = failing(s).find((c) => c.check === 'history.duplicate-surge');
    expect(dup?.phase).toBe('failed');
    const c = dup?.evidence.counts ?? {};
    expect(c.nearDuplicateRows).toBeGreaterThan(200);
    // jittered copies: most are not exact repeats of a feature vector
    expect(c.exactFeatureRepeats).toBeLessThan(c.nearDuplicateRows ?? 0);
    expect(dup?.evidence.pValue).toBeLessThan(1e-10);
    expect(dup?.evidence.sampleRows).toHaveLength(fraudPolicy.sampleRows);
    expect(dup?.message).toMatch(/near-duplicates/);
  });

  it("blocks a region's labels flipped in place (its rate moves unlike the other regions')", async () => {
    const { screen: s } = await screen('region-flip', {
      rows: 6000,
      seed: 35,
      batches: 2,
      poisonedBatch: { batch: 1, fraction: 0.3, mode: 'flip', region: 'east' },
    });
    const east = failing(s).find(
      (c) => c.check === 'history.segment-label-shift' && c.evidence.segment?.value === 'east',
    );
    expect(east?.phase).toBe('failed');
    expect(east?.evidence.interval?.low).toBeGreaterThan(0);
    expect(east?.evidence.correction).toEqual({ method: 'holm', tests: 4 });
    // merchant categories are not a blocking segment column of the fraud policy
    expect(failing(s).some((c) => c.column === 'merchant_category')).toBe(false);
    // compared with the median region, the clean regions are not flagged along with east
    expect(names(s).filter((n) => n.startsWith('history.segment-label-shift'))).toEqual([
      'history.segment-label-shift@east:failed',
    ]);
  });

  it.each([
    ['data drift', { rows: 6000, seed: 37, dataDrift: 1 }],
    ['concept drift', { rows: 6000, seed: 38, conceptDrift: 1 }],
  ])('does not block the genuine %s of the generator (at most warns)', async (name, opts) => {
    const { screen: s } = await screen(name.replace(' ', '-'), opts);
    expect(s.blocked).toBe(0);
  });

  it('warns on records outside the champion ranges (a crafted cluster far from home)', async () => {
    const { screen: s } = await screen('cluster', {
      rows: 6000,
      seed: 36,
      poisonedBatch: { batch: 3, fraction: 0.5, mode: 'cluster' },
    });
    const out = failing(s).find((c) => c.check === 'history.out-of-reference-range');
    expect(out?.phase).toBe('inconclusive');
    expect(out?.evidence.counts['distance_from_home_km.outside']).toBeGreaterThan(200);
    expect(out?.message).toMatch(/^WARN: /);
  });

  it('never lets segments under the minimum counts decide', async () => {
    const policy = ValidationPolicySchema.parse({
      history: { ...fraudPolicy, minSegmentRows: 5000, labelShift: { action: 'warn', minEffect: 5 } },
    }).history;
    const { screen: s } = await screen(
      'small-segments',
      {
        rows: 6000,
        seed: 35,
        batches: 2,
        poisonedBatch: { batch: 1, fraction: 0.3, mode: 'flip', region: 'east' },
      },
      policy,
    );
    const segments = s.checks.filter((c) => c.check === 'history.segment-label-shift');
    expect(segments.length).toBe(4);
    for (const c of segments) {
      expect(c.passed).toBe(true);
      expect(c.evidence.notJudged).toMatch(/at least 5000 each needed/);
    }
  });
});
