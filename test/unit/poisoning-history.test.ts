/**
 * The poisoning screen against history, judged on hand-built measurements (the pure judge), and the small
 * hypothesis tests under it checked against values computed by hand.
 */
import { describe, expect, it } from 'vitest';
import {
  HistoryScreenPolicySchema,
  type HistoryMeasurements,
  type HistoryScreenPolicyInput,
  type SegmentMeasurement,
} from '../../src/core/contracts/poisoning-history';
import { judgeHistory, skippedHistory, withHistory } from '../../src/core/policy/poisoning-history';
import {
  binomialUpperTail,
  holm,
  normalTwoSidedP,
  poissonUpperTail,
  segmentInteractionTest,
  twoProportionTest,
} from '../../src/core/stats/hypothesis';
import type { ValidationReport } from '../../src/core/contracts/feature-spec';

describe('hypothesis tests', () => {
  it.each([
    ['normal two-sided p at 1.959964', () => normalTwoSidedP(1.959964), 0.05, 1e-6],
    ['normal two-sided p at 0', () => normalTwoSidedP(0), 1, 1e-12],
    // 1 - sum_{k<3} C(10,k) 0.1^k 0.9^(10-k)
    ['binomial P(X >= 3 | 10, 0.1)', () => binomialUpperTail(3, 10, 0.1), 0.0701908264, 1e-9],
    // far tail summed directly: 0.5^20
    ['binomial P(X >= 20 | 20, 0.5)', () => binomialUpperTail(20, 20, 0.5), 0.5 ** 20, 1e-15],
    ['binomial P(X >= 0)', () => binomialUpperTail(0, 5, 0.3), 1, 0],
    // 1 - e^-1 (1 + 1 + 1/2)
    ['Poisson P(X >= 3 | 1)', () => poissonUpperTail(3, 1), 1 - Math.exp(-1) * 2.5, 1e-9],
    ['Poisson with lambda 0', () => poissonUpperTail(1, 0), 0, 0],
  ])('%s', (_name, f, expected, tol) => {
    expect(Math.abs(f() - expected)).toBeLessThanOrEqual(tol);
  });

  it('Holm adjusts step-down, monotone, capped at 1, NaN left out of the family', () => {
    // sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04
    expect(holm([0.04, 0.01, Number.NaN, 0.02])).toEqual([0.04, 0.03, Number.NaN, 0.04]);
    expect(holm([0.6, 0.9])).toEqual([1, 1]);
  });

  it('two-proportion test: equal rates give p 1, known z', () => {
    expect(twoProportionTest({ events: 10, n: 100 }, { events: 10, n: 100 }).pValue).toBeCloseTo(1, 12);
    // pooled 0.15, se sqrt(.15*.85*(2/100)) = 0.0504975; z = 0.1 / se
    const t = twoProportionTest({ events: 10, n: 100 }, { events: 20, n: 100 });
    expect(t.z).toBeCloseTo(0.1 / Math.sqrt(0.15 * 0.85 * 0.02), 9);
  });

  it('segment interaction: a shift shared by segment and rest is no interaction', () => {
    const t = segmentInteractionTest(
      { reference: { pos: 30, neg: 970 }, current: { pos: 60, neg: 940 } },
      { reference: { pos: 90, neg: 2910 }, current: { pos: 180, neg: 2820 } },
      3,
    );
    expect(Math.abs(t.z)).toBeLessThan(0.5);
    const moved = segmentInteractionTest(
      { reference: { pos: 30, neg: 970 }, current: { pos: 200, neg: 800 } },
      { reference: { pos: 90, neg: 2910 }, current: { pos: 90, neg: 2910 } },
      3,
    );
    expect(moved.z).toBeGreaterThan(8);
    expect(moved.low).toBeLessThan(moved.logRatio);
    expect(moved.high).toBeGreaterThan(moved.logRatio);
  });
});

// ---------------------------------------------------------------------------------------------------------

const REGIONS = ['north', 'south', 'east', 'west'];

/** A clean measurement: 4 regions of 1000 labelled rows at 3% on both sides, nothing matching. */
function clean(): HistoryMeasurements {
  const seg = (value: string): SegmentMeasurement => ({
    column: 'region',
    value,
    reference: { pos: 30, neg: 970 },
    current: { pos: 30, neg: 970 },
    matched: 0,
    flipped: 0,
    flippedSample: [],
  });
  return {
    champion: { version: '3', sha256: 'a'.repeat(64), rows: 4000 },
    snapshot: { sha256: 'b'.repeat(64), rows: 4000 },
    tolerance: 0.02,
    rowIds: 'transaction_id',
    reference: { pos: 120, neg: 3880 },
    current: { pos: 120, neg: 3880 },
    segments: REGIONS.map(seg),
    duplicates: {
      referenceRepeats: 0,
      carriedOver: 0,
      nearRepeats: 0,
      withinCurrent: 0,
      againstReference: 0,
      exact: 0,
      sample: [],
    },
    flips: { referenceMatched: 0, referenceConflicts: 0, matched: 0, flipped: 0, sample: [] },
    ranges: [
      {
        column: 'amount',
        kind: 'numeric',
        referenceMin: 1,
        referenceMax: 900,
        below: 0,
        above: 3,
        outside: 3,
        sample: [],
      },
      {
        column: 'region',
        kind: 'categorical',
        referenceCategories: REGIONS,
        below: 0,
        above: 0,
        outside: 0,
        sample: [],
      },
    ],
    rowsOutsideRanges: 3,
    outsideSample: [],
  };
}

type Edit = (m: HistoryMeasurements) => void;
const segment = (m: HistoryMeasurements, value: string): SegmentMeasurement =>
  m.segments.find((s) => s.value === value) as SegmentMeasurement;
/** Sets a region's current counts and keeps the totals consistent. */
const setCurrent = (m: HistoryMeasurements, value: string, pos: number, neg: number): void => {
  const s = segment(m, value);
  m.current.pos += pos - s.current.pos;
  m.current.neg += neg - s.current.neg;
  s.current = { pos, neg };
};

interface Case {
  name: string;
  edit: Edit;
  policy?: HistoryScreenPolicyInput;
  /** Checks expected to fail, as `name` or `name@segment value`, with the phase they take. */
  failing: Record<string, 'failed' | 'inconclusive'>;
}

const CASES: Case[] = [
  { name: 'a clean snapshot passes every check', edit: () => undefined, failing: {} },
  {
    name: 'a shift of the overall label rate warns by default',
    edit: (m) => REGIONS.forEach((r) => setCurrent(m, r, 80, 920)),
    failing: { 'history.label-shift': 'inconclusive' },
  },
  {
    name: 'the same shift blocks when the policy says so',
    edit: (m) => REGIONS.forEach((r) => setCurrent(m, r, 80, 920)),
    policy: { labelShift: { action: 'block' } },
    failing: { 'history.label-shift': 'failed' },
  },
  {
    name: 'a significant but tiny overall shift is no finding (effect floor)',
    edit: (m) => {
      m.reference = { pos: 300_000, neg: 9_700_000 };
      m.current = { pos: 306_000, neg: 9_694_000 };
    },
    failing: {},
  },
  {
    name: 'one region flipped towards fraud blocks under a blocking segment policy, and only that region',
    edit: (m) => setCurrent(m, 'east', 200, 800),
    policy: { segmentShift: { action: 'block' } },
    failing: {
      'history.label-shift': 'inconclusive',
      'history.segment-label-shift@east': 'failed',
      // compared with the median region's shift, the clean regions are not dragged along
    },
  },
  {
    name: 'with two judged segments each is compared with the rest (both move, in opposite directions)',
    edit: (m) => {
      m.segments = m.segments.slice(0, 2);
      m.reference = { pos: 60, neg: 1940 };
      m.current = { pos: 30, neg: 1970 };
      setCurrent(m, 'north', 200, 800);
    },
    policy: { segmentShift: { action: 'block' } },
    failing: {
      'history.label-shift': 'inconclusive',
      'history.segment-label-shift@north': 'failed',
      'history.segment-label-shift@south': 'failed',
    },
  },
  {
    name: 'a region too small to judge never decides',
    edit: (m) => {
      const s = segment(m, 'east');
      s.reference = { pos: 3, neg: 97 };
      s.current = { pos: 60, neg: 40 };
    },
    policy: { segmentShift: { action: 'block' }, labelShift: { minEffect: 5 } },
    failing: {},
  },
  {
    name: 'genuine drift moving every region alike is no segment finding',
    edit: (m) => REGIONS.forEach((r) => setCurrent(m, r, 90, 910)),
    policy: { segmentShift: { action: 'block' } },
    failing: { 'history.label-shift': 'inconclusive' },
  },
  {
    name: 'a surge of near-duplicates blocks',
    edit: (m) => {
      Object.assign(m.duplicates, { nearRepeats: 300, withinCurrent: 280, againstReference: 120, exact: 40 });
      m.duplicates.sample = ['tx-1', 'tx-2'];
    },
    failing: { 'history.duplicate-surge': 'failed' },
  },
  {
    name: 'a few near-duplicates, as the champion snapshot itself has, pass',
    edit: (m) => {
      m.duplicates.referenceRepeats = 4;
      Object.assign(m.duplicates, { nearRepeats: 12, withinCurrent: 6, againstReference: 6 });
    },
    failing: {},
  },
  {
    name: 'rows carried over unchanged from the champion snapshot are not a surge',
    edit: (m) => {
      m.snapshot.rows = 8000;
      m.duplicates.carriedOver = 4000;
    },
    failing: {},
  },
  {
    name: 'label flips concentrated in one region block, overall and in the region',
    edit: (m) => {
      m.flips = { referenceMatched: 0, referenceConflicts: 0, matched: 60, flipped: 55, sample: ['tx-9'] };
      Object.assign(segment(m, 'east'), { matched: 60, flipped: 55, flippedSample: ['tx-9'] });
    },
    failing: { 'history.label-flips@': 'failed', 'history.label-flips@east': 'failed' },
  },
  {
    name: 'fewer flips than the minimum never decide',
    edit: (m) => {
      m.flips = { referenceMatched: 0, referenceConflicts: 0, matched: 6, flipped: 6, sample: [] };
      Object.assign(segment(m, 'east'), { matched: 6, flipped: 6 });
    },
    failing: {},
  },
  {
    name: 'flips at the label-noise rate of many matches pass',
    edit: (m) => {
      m.flips = { referenceMatched: 0, referenceConflicts: 0, matched: 1000, flipped: 30, sample: [] };
      Object.assign(segment(m, 'north'), { matched: 1000, flipped: 30 });
    },
    failing: {},
  },
  {
    name: 'many rows outside the reference ranges warn by default',
    edit: (m) => {
      m.rowsOutsideRanges = 400;
      const amount = m.ranges[0];
      if (amount) Object.assign(amount, { above: 400, outside: 400 });
    },
    failing: { 'history.out-of-reference-range': 'inconclusive' },
  },
];

describe('judgeHistory', () => {
  it.each(CASES)('$name', ({ edit, policy, failing }) => {
    const m = clean();
    edit(m);
    const screen = judgeHistory(m, HistoryScreenPolicySchema.parse(policy ?? {}));
    const got: Record<string, string> = {};
    for (const c of screen.checks) {
      if (c.passed) continue;
      const key =
        c.check.includes('segment') || c.check.includes('flips')
          ? `${c.check}@${c.evidence.segment?.value ?? ''}`
          : c.check;
      got[key] = c.phase;
    }
    expect(got).toEqual(failing);
    expect(screen.blocked).toBe(Object.values(failing).filter((p) => p === 'failed').length);
    expect(screen.warnings).toBe(Object.values(failing).filter((p) => p === 'inconclusive').length);
  });

  it('a blocking finding carries its evidence: counts, segment, statistic, raw and adjusted p, interval, samples', () => {
    const m = clean();
    m.flips = { referenceMatched: 0, referenceConflicts: 0, matched: 60, flipped: 55, sample: ['tx-9'] };
    Object.assign(segment(m, 'east'), { matched: 60, flipped: 55, flippedSample: ['tx-9', 'tx-10'] });
    const screen = judgeHistory(m, HistoryScreenPolicySchema.parse({}));
    const east = screen.checks.find(
      (c) => c.check === 'history.label-flips' && c.evidence.segment?.value === 'east',
    );
    expect(east).toMatchObject({ passed: false, phase: 'failed', action: 'block', column: 'region' });
    const e = east?.evidence;
    expect(e?.counts).toMatchObject({ matched: 60, flipped: 55 });
    expect(e?.correction).toEqual({ method: 'holm', tests: 2 });
    expect(e?.adjustedPValue).toBeGreaterThanOrEqual(e?.pValue ?? 1);
    expect(e?.adjustedPValue).toBeLessThan(1e-10);
    expect(e?.interval?.low).toBeGreaterThan(0.7);
    expect(e?.interval?.confidence).toBeCloseTo(0.999, 12);
    expect(e?.sampleRows).toEqual(['tx-9', 'tx-10']);
    expect(east?.message).toMatch(/^BLOCK: segment region=east: 55 of 60 rows/);
  });
});

describe('withHistory', () => {
  const base: ValidationReport = {
    ok: true,
    phase: 'successful',
    checks: [
      {
        check: 'quality.min-rows',
        name: 'quality.min-rows',
        passed: true,
        phase: 'successful',
        severity: 'failed',
        observed: 4000,
        threshold: 1000,
        message: '4000 rows',
        detail: '4000 rows',
      },
    ],
  };

  it('leaves the existing checks alone when nothing blocks (warnings stay in the history section)', () => {
    const m = clean();
    REGIONS.forEach((r) => setCurrent(m, r, 80, 920));
    const out = withHistory(base, judgeHistory(m, HistoryScreenPolicySchema.parse({})));
    expect(out.ok).toBe(true);
    expect(out.phase).toBe('successful');
    expect(out.checks).toEqual(base.checks);
    expect(out.history?.warnings).toBe(1);
  });

  it('appends the blocking findings to the checks and fails the report', () => {
    const m = clean();
    Object.assign(m.duplicates, { nearRepeats: 300, withinCurrent: 300 });
    const out = withHistory(base, judgeHistory(m, HistoryScreenPolicySchema.parse({})));
    expect(out.ok).toBe(false);
    expect(out.phase).toBe('failed');
    expect(out.checks.slice(0, 1)).toEqual(base.checks);
    expect(out.checks.slice(1).map((c) => c.check)).toEqual(['history.duplicate-surge']);
  });

  it('a skipped screen says why and changes nothing else', () => {
    const out = withHistory(base, skippedHistory('no champion yet'));
    expect(out).toEqual({
      ...base,
      history: { status: 'skipped', reason: 'no champion yet', checks: [], blocked: 0, warnings: 0 },
    });
  });
});
