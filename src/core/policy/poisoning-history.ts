/**
 * The poisoning screen against history: a pure judge of a snapshot's measurements against the champion's
 * training snapshot ({@link HistoryMeasurements}, taken by `src/data/history.ts`) under the model's policy
 * (`validation.history`). The in-snapshot screen of `./validation.ts` compares batches with each other; an
 * attacker who spreads poison over every batch passes it, so these checks compare with the data the
 * champion was trained on. Each check's finding blocks or warns as the policy says.
 *
 * Rules:
 * - Sandbox-safe and deterministic. Every check is reported with its evidence: counts, the segment, the test
 *   statistic, raw and Holm-adjusted p-values, an interval at confidence 1 - alpha, the effect with its floor,
 *   and sample row ids. A finding needs significance (adjusted p < alpha) AND an effect at least the floor:
 *   with big snapshots tiny, harmless differences become significant.
 * - Tiny segments never decide: a segment is judged only with `minSegmentRows` labelled rows on each side and
 *   `minExpectedEvents` expected positives and negatives; a flip finding needs `minFlips` flipped rows.
 *
 * The checks (H0: the current snapshot is another draw from the champion snapshot's distribution):
 * 1. `history.label-shift`: overall positive rate, two-proportion z-test; effect Cohen's h; Newcombe interval of
 *    the rate difference.
 * 2. `history.segment-label-shift`: per segment (each value of each segment column), whether the odds of a
 *    positive moved differently in the segment than in its column's other segments: the segment's log odds
 *    ratio (current vs champion, Woolf's variance) minus the median of its column's segments (variance of a
 *    median of k: pi/2 times the median variance over k), as the in-snapshot screen compares batches with
 *    their median; with fewer than {@link MIN_SEGMENTS_FOR_MEDIAN} judged segments, the segment against the
 *    rest of its column. Effect: the segment's Cohen's h shift minus the reference's. Drift that moves the
 *    base rate everywhere is not a segment's finding; targeted flipping is.
 * 3. `history.duplicate-surge`: rows (not carried over unchanged from the champion snapshot) whose
 *    near-duplicate key (numeric features rounded on the signed-log scale to `tolerance` champion standard
 *    deviations, categories as they are) repeats an earlier current row's or any champion row's. Under H0 the
 *    chance that two rows share a key, q, is estimated from the champion's own repeats (plus one, so a
 *    reference without repeats still predicts some): q = (R_ref + 1) / C(N_ref, 2); the expected count is
 *    q (C(N, 2) + N N_ref), an upper bound on the rows that repeat since several pairs can share a row. The
 *    p-value is the Poisson upper tail; the effect is the excess share (observed - expected) / N.
 * 4. `history.label-flips`: rows whose key matches a champion row but whose label none of those rows has,
 *    per segment and over all rows. H0 flip rate p0 = max(baseRate, the champion's own conflicting share when
 *    it has `minSegmentRows` repeats); exact binomial upper tail; Holm over the segments and the overall line.
 * 5. `history.out-of-reference-range`: rows with a numeric value outside the champion snapshot's [min, max]
 *    or a category it never had. Under H0 (exchangeable rows) a new value exceeds the largest of N_ref
 *    reference values with probability at most 1 / (N_ref + 1), so a row is outside with probability at most
 *    p0 = (2 per numeric feature + vocabulary size + 1 per categorical feature) / (N_ref + 1) (union bound; a
 *    category of probability q is unseen in N_ref rows and drawn now with probability q (1 - q)^N_ref, at most
 *    1 / (N_ref + 1)); exact
 *    binomial upper tail; effect the excess share.
 */
import { CheckPhase, worstPhase, worstPhaseOf } from '../contracts/checks';
import type { ValidationReport } from '../contracts/feature-spec';
import {
  HISTORY_CHECKS as H,
  HistoryAction,
  type HistoryCheck,
  type HistoryEvidence,
  type HistoryMeasurements,
  type HistoryScreen,
  type HistoryScreenPolicy,
  type LabelCounts,
  type SegmentMeasurement,
} from '../contracts/poisoning-history';
import {
  HALDANE_CORRECTION,
  binomialUpperTail,
  holm,
  normalTwoSidedP,
  poissonUpperTail,
  segmentInteractionTest,
  twoProportionTest,
} from '../stats/hypothesis';
import { normalQuantile, rateDifferenceInterval, wilsonInterval } from '../stats/proportions';
import { cohenH, median } from './validation';

/** A validation report with the history section (absent when the screen did not run at all). */
export interface ScreenedValidationReport extends ValidationReport {
  history?: HistoryScreen;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const sci = (x: number): string => (x === 0 ? '0' : x < 1e-3 ? x.toExponential(2) : x.toPrecision(3));
const labelled = (c: LabelCounts): number => c.pos + c.neg;
const rateOf = (c: LabelCounts): number => (labelled(c) > 0 ? c.pos / labelled(c) : 0);
const pairs = (n: number): number => (n * (n - 1)) / 2;
/** p-values below this are reported as this (a JSON number; far beyond any alpha). */
const MIN_REPORTED_P = 1e-300;
const clampP = (p: number): number => (Number.isNaN(p) ? p : Math.max(MIN_REPORTED_P, p));

interface Draft {
  check: string;
  column?: string;
  finding: boolean;
  action: HistoryAction;
  observed: number | string;
  threshold: number | string;
  message: string;
  evidence: HistoryEvidence;
}

function toCheck(d: Draft): HistoryCheck {
  const severity = d.action === HistoryAction.block ? CheckPhase.failed : CheckPhase.inconclusive;
  const phase = d.finding ? severity : CheckPhase.successful;
  const verdict = d.finding ? (d.action === HistoryAction.block ? 'BLOCK: ' : 'WARN: ') : '';
  const message = `${verdict}${d.message}`;
  return {
    check: d.check,
    name: d.check,
    ...(d.column !== undefined && { column: d.column }),
    passed: !d.finding,
    phase,
    severity,
    observed: d.observed,
    threshold: d.threshold,
    message,
    detail: message,
    action: d.action,
    evidence: d.evidence,
  };
}

function labelShift(m: HistoryMeasurements, policy: HistoryScreenPolicy): Draft {
  const { action, minEffect } = policy.labelShift;
  const ref = { events: m.reference.pos, n: labelled(m.reference) };
  const cur = { events: m.current.pos, n: labelled(m.current) };
  const counts = {
    referencePositives: ref.events,
    referenceLabelled: ref.n,
    currentPositives: cur.events,
    currentLabelled: cur.n,
  };
  const base = { check: H.labelShift, action, threshold: `p < ${policy.alpha} and |h| >= ${minEffect}` };
  if (ref.n < policy.minSegmentRows || cur.n < policy.minSegmentRows) {
    return {
      ...base,
      finding: false,
      observed: 'n/a',
      message: `label rate not compared: ${ref.n} champion and ${cur.n} current labelled rows (at least ${policy.minSegmentRows} each needed)`,
      evidence: { counts, notJudged: `fewer than ${policy.minSegmentRows} labelled rows` },
    };
  }
  const t = twoProportionTest(ref, cur);
  const h = cohenH(rateOf(m.current), rateOf(m.reference));
  const ci = rateDifferenceInterval(ref, cur, policy.alpha);
  const finding = t.pValue < policy.alpha && Math.abs(h) >= minEffect;
  return {
    ...base,
    finding,
    observed: h,
    message:
      `positive rate ${pct(rateOf(m.current))} vs ${pct(rateOf(m.reference))} in champion v${m.champion.version}'s ` +
      `snapshot (difference ${pct(t.difference)}, ${pct(1 - policy.alpha)} CI ${pct(ci.low)} to ${pct(ci.high)}; ` +
      `z = ${t.z.toFixed(2)}, p = ${sci(t.pValue)}; Cohen's h ${h.toFixed(3)}, flagged at p < ${policy.alpha} and |h| >= ${minEffect})`,
    evidence: {
      counts,
      statistic: { name: 'z', value: t.z },
      pValue: clampP(t.pValue),
      adjustedPValue: clampP(t.pValue),
      correction: { method: 'none', tests: 1 },
      interval: {
        of: 'rate difference (current - champion)',
        low: ci.low,
        high: ci.high,
        confidence: 1 - policy.alpha,
      },
      effect: { name: "Cohen's h", value: h, min: minEffect },
    },
  };
}

/** Whether a segment has enough rows and expected events on both sides to be judged; the reason if not. */
function tooSmall(
  s: { reference: LabelCounts; current: LabelCounts },
  policy: HistoryScreenPolicy,
): string | undefined {
  const nr = labelled(s.reference);
  const nc = labelled(s.current);
  if (nr < policy.minSegmentRows || nc < policy.minSegmentRows) {
    return `${nr} champion / ${nc} current labelled rows; at least ${policy.minSegmentRows} each needed`;
  }
  const pooled = (s.reference.pos + s.current.pos) / (nr + nc);
  const fewest = Math.min(nr, nc) * Math.min(pooled, 1 - pooled);
  if (fewest < policy.minExpectedEvents) {
    return `${fewest.toFixed(1)} expected positives or negatives on the smaller side; at least ${policy.minExpectedEvents} needed`;
  }
  return undefined;
}

/** Fewest judged segments of a column for the robust (median) reference; with fewer, segment vs the rest. */
export const MIN_SEGMENTS_FOR_MEDIAN = 3;

/** Log odds ratio of a positive label, current vs champion, with its Woolf variance (cells corrected). */
function logOddsShift(s: { reference: LabelCounts; current: LabelCounts }): {
  lor: number;
  variance: number;
} {
  const h = HALDANE_CORRECTION;
  const lo = (c: LabelCounts): number => Math.log((c.pos + h) / (c.neg + h));
  const variance = [s.reference, s.current].reduce((v, c) => v + 1 / (c.pos + h) + 1 / (c.neg + h), 0);
  return { lor: lo(s.current) - lo(s.reference), variance };
}

function segmentShifts(m: HistoryMeasurements, policy: HistoryScreenPolicy): Draft[] {
  const { action, minEffect } = policy.segmentShift;
  const zc = normalQuantile(1 - policy.alpha / 2);
  const drafts: Draft[] = [];
  const minus = (a: LabelCounts, b: LabelCounts): LabelCounts => ({ pos: a.pos - b.pos, neg: a.neg - b.neg });
  const hShift = (x: { reference: LabelCounts; current: LabelCounts }): number =>
    cohenH(rateOf(x.current), rateOf(x.reference));
  const columns = policy.segmentShift.segments ?? policy.segments;
  const base = (column: string) => ({
    check: H.segmentShift,
    column,
    action,
    threshold: `Holm-adjusted p < ${policy.alpha} and |effect| >= ${minEffect}`,
  });

  interface Judged {
    s: SegmentMeasurement;
    z: number;
    p: number;
    low: number;
    high: number;
    diff: number;
    effect: number;
    against: string;
    counts: Record<string, number>;
  }
  const judged: Judged[] = [];
  const byColumn = new Map<string, SegmentMeasurement[]>();
  for (const s of m.segments) {
    if (columns !== undefined && !columns.includes(s.column)) continue;
    byColumn.set(s.column, [...(byColumn.get(s.column) ?? []), s]);
  }
  for (const [column, segs] of byColumn) {
    const ok: SegmentMeasurement[] = [];
    for (const s of segs) {
      const rest = { reference: minus(m.reference, s.reference), current: minus(m.current, s.current) };
      const small = tooSmall(s, policy) ?? tooSmall(rest, policy);
      if (small === undefined) {
        ok.push(s);
        continue;
      }
      drafts.push({
        ...base(column),
        finding: false,
        observed: 'n/a',
        message: `segment ${column}=${s.value} not judged: ${small}`,
        evidence: {
          counts: {
            segmentReferencePositives: s.reference.pos,
            segmentReferenceLabelled: labelled(s.reference),
            segmentCurrentPositives: s.current.pos,
            segmentCurrentLabelled: labelled(s.current),
          },
          segment: { column, value: s.value },
          notJudged: small,
        },
      });
    }
    const shifts = ok.map(logOddsShift);
    // Robust reference: the median segment's shift, so one targeted segment neither hides itself nor makes
    // the others look shifted the other way (as it does when each is compared with the rest).
    const robust = ok.length >= MIN_SEGMENTS_FOR_MEDIAN;
    const center = robust ? median(shifts.map((x) => x.lor)) : 0;
    const centerVar = robust ? ((Math.PI / 2) * median(shifts.map((x) => x.variance))) / ok.length : 0;
    const centerH = robust ? median(ok.map(hShift)) : 0;
    ok.forEach((s, i) => {
      const counts: Record<string, number> = {
        segmentReferencePositives: s.reference.pos,
        segmentReferenceLabelled: labelled(s.reference),
        segmentCurrentPositives: s.current.pos,
        segmentCurrentLabelled: labelled(s.current),
      };
      if (robust) {
        const { lor, variance } = shifts[i] as { lor: number; variance: number };
        const se = Math.sqrt(variance + centerVar);
        const diff = lor - center;
        const z = diff / se;
        judged.push({
          s,
          z,
          p: normalTwoSidedP(z),
          low: diff - zc * se,
          high: diff + zc * se,
          diff,
          effect: hShift(s) - centerH,
          against: `the median shift of ${ok.length} ${column} segments`,
          counts: { ...counts, medianLogOddsShift: center },
        });
        return;
      }
      const rest = { reference: minus(m.reference, s.reference), current: minus(m.current, s.current) };
      const t = segmentInteractionTest(s, rest, zc);
      judged.push({
        s,
        z: t.z,
        p: t.pValue,
        low: t.low,
        high: t.high,
        diff: t.logRatio,
        effect: hShift(s) - hShift(rest),
        against: `the rest of ${column}`,
        counts: {
          ...counts,
          restReferencePositives: rest.reference.pos,
          restReferenceLabelled: labelled(rest.reference),
          restCurrentPositives: rest.current.pos,
          restCurrentLabelled: labelled(rest.current),
        },
      });
    });
  }
  const adjusted = holm(judged.map((j) => j.p));
  judged.forEach((j, i) => {
    const adj = adjusted[i] ?? 1;
    const { s } = j;
    drafts.push({
      ...base(s.column),
      finding: adj < policy.alpha && Math.abs(j.effect) >= minEffect,
      observed: j.effect,
      message:
        `segment ${s.column}=${s.value}: positive rate ${pct(rateOf(s.current))} vs ${pct(rateOf(s.reference))} ` +
        `in champion v${m.champion.version}'s snapshot; its log odds moved ${j.diff.toFixed(2)} beyond ${j.against} ` +
        `(${pct(1 - policy.alpha)} CI ${j.low.toFixed(2)} to ${j.high.toFixed(2)}; z = ${j.z.toFixed(2)}, ` +
        `Holm-adjusted p = ${sci(adj)} over ${judged.length} segments; effect ${j.effect.toFixed(3)}, flagged at ` +
        `p < ${policy.alpha} and |effect| >= ${minEffect})`,
      evidence: {
        counts: j.counts,
        segment: { column: s.column, value: s.value },
        statistic: { name: 'z (log odds shift beyond the reference shift)', value: j.z },
        pValue: clampP(j.p),
        adjustedPValue: clampP(adj),
        correction: { method: 'holm', tests: judged.length },
        interval: {
          of: `ln OR(segment, current vs champion) minus that of ${j.against}`,
          low: j.low,
          high: j.high,
          confidence: 1 - policy.alpha,
        },
        effect: {
          name: `Cohen's h shift of the segment minus that of ${j.against}`,
          value: j.effect,
          min: minEffect,
        },
      },
    });
  });
  return drafts;
}

function duplicateSurge(m: HistoryMeasurements, policy: HistoryScreenPolicy): Draft {
  const { action, minExcessRate } = policy.duplicates;
  const d = m.duplicates;
  const nRef = m.champion.rows;
  const n = m.snapshot.rows - d.carriedOver;
  const q = nRef >= 2 ? Math.min(1, (d.referenceRepeats + 1) / pairs(nRef)) : Number.NaN;
  const expected = Math.min(n, q * (pairs(n) + n * nRef));
  const counts = {
    judgedRows: n,
    carriedOver: d.carriedOver,
    nearDuplicateRows: d.nearRepeats,
    repeatingCurrentRows: d.withinCurrent,
    matchingChampionRows: d.againstReference,
    exactFeatureRepeats: d.exact,
    championRows: nRef,
    championRepeats: d.referenceRepeats,
  };
  const base = {
    check: H.duplicates,
    action,
    threshold: `p < ${policy.alpha} and excess >= ${pct(minExcessRate)}`,
  };
  if (Number.isNaN(q) || n <= 0) {
    return {
      ...base,
      finding: false,
      observed: 'n/a',
      message: `near-duplicates not judged: ${n} current rows to judge, ${nRef} champion rows`,
      evidence: { counts, notJudged: 'too few rows' },
    };
  }
  const p = poissonUpperTail(d.nearRepeats, expected);
  const excess = (d.nearRepeats - expected) / n;
  const ci = wilsonInterval(d.nearRepeats, n, policy.alpha);
  const finding = p < policy.alpha && excess >= minExcessRate;
  return {
    ...base,
    finding,
    observed: excess,
    message:
      `${d.nearRepeats} of ${n} rows (${pct(d.nearRepeats / n)}, ${pct(1 - policy.alpha)} CI ${pct(ci.low)} to ` +
      `${pct(ci.high)}) are near-duplicates (numeric features within ${m.tolerance} champion standard deviations ` +
      `on the log scale): ${d.withinCurrent} repeat an earlier row, ${d.againstReference} match champion ` +
      `v${m.champion.version}'s snapshot, ${d.exact} repeat a feature vector exactly; ${expected.toFixed(1)} expected ` +
      `from the champion's own repeats (${d.referenceRepeats} in ${nRef} rows); p = ${sci(p)}; excess ${pct(excess)}, ` +
      `flagged at p < ${policy.alpha} and excess >= ${pct(minExcessRate)}` +
      (d.carriedOver > 0
        ? `; ${d.carriedOver} rows carried over unchanged from the champion snapshot not judged`
        : ''),
    evidence: {
      counts: { ...counts, expected },
      statistic: { name: 'observed near-duplicate rows', value: d.nearRepeats },
      pValue: clampP(p),
      adjustedPValue: clampP(p),
      correction: { method: 'none', tests: 1 },
      interval: { of: 'near-duplicate share', low: ci.low, high: ci.high, confidence: 1 - policy.alpha },
      effect: { name: 'excess share over expected', value: excess, min: minExcessRate },
      sampleRows: d.sample.slice(0, policy.sampleRows),
    },
  };
}

function labelFlips(m: HistoryMeasurements, policy: HistoryScreenPolicy): Draft[] {
  const { action, baseRate, minExcessRate, minFlips } = policy.labelFlips;
  const own =
    m.flips.referenceMatched >= policy.minSegmentRows
      ? m.flips.referenceConflicts / m.flips.referenceMatched
      : 0;
  const p0 = Math.max(baseRate, own);
  const all: SegmentMeasurement = {
    column: '(all rows)',
    value: '',
    reference: m.reference,
    current: m.current,
    matched: m.flips.matched,
    flipped: m.flips.flipped,
    flippedSample: m.flips.sample,
  };
  // Segments no current row of which matches the champion snapshot say nothing: left out.
  const family = [all, ...m.segments.filter((s) => s.matched > 0)];
  const judged: Array<{ s: SegmentMeasurement; p: number }> = [];
  const drafts: Draft[] = [];
  const threshold = `Holm-adjusted p < ${policy.alpha}, flip rate - ${pct(p0)} >= ${pct(minExcessRate)}, >= ${minFlips} flips`;
  const nameOf = (s: SegmentMeasurement): string =>
    s === all ? 'all rows' : `segment ${s.column}=${s.value}`;
  for (const s of family) {
    if (s.matched < minFlips) {
      drafts.push({
        check: H.labelFlips,
        ...(s !== all && { column: s.column }),
        action,
        finding: false,
        observed: s.flipped,
        threshold,
        message: `${nameOf(s)}: ${s.flipped} of ${s.matched} rows matching the champion snapshot carry another label; not judged (fewer than ${minFlips} matches)`,
        evidence: {
          counts: { matched: s.matched, flipped: s.flipped },
          ...(s !== all && { segment: { column: s.column, value: s.value } }),
          notJudged: `fewer than ${minFlips} rows match the champion snapshot`,
          sampleRows: s.flippedSample.slice(0, policy.sampleRows),
        },
      });
      continue;
    }
    judged.push({ s, p: binomialUpperTail(s.flipped, s.matched, p0) });
  }
  const adjusted = holm(judged.map((j) => j.p));
  judged.forEach(({ s, p }, i) => {
    const adj = adjusted[i] ?? 1;
    const rate = s.flipped / s.matched;
    const excess = rate - p0;
    const ci = wilsonInterval(s.flipped, s.matched, policy.alpha);
    const finding = adj < policy.alpha && excess >= minExcessRate && s.flipped >= minFlips;
    drafts.push({
      check: H.labelFlips,
      ...(s !== all && { column: s.column }),
      action,
      finding,
      observed: rate,
      threshold,
      message:
        `${nameOf(s)}: ${s.flipped} of ${s.matched} rows whose features match champion v${m.champion.version}'s ` +
        `snapshot carry a label none of the matching rows has (${pct(rate)}, ${pct(1 - policy.alpha)} CI ${pct(ci.low)} ` +
        `to ${pct(ci.high)}; expected at most ${pct(p0)}; Holm-adjusted p = ${sci(adj)} over ${judged.length} tests)`,
      evidence: {
        counts: {
          matched: s.matched,
          flipped: s.flipped,
          championMatched: m.flips.referenceMatched,
          championConflicts: m.flips.referenceConflicts,
        },
        ...(s !== all && { segment: { column: s.column, value: s.value } }),
        statistic: { name: 'flipped rows', value: s.flipped },
        pValue: clampP(p),
        adjustedPValue: clampP(adj),
        correction: { method: 'holm', tests: judged.length },
        interval: { of: 'flip rate', low: ci.low, high: ci.high, confidence: 1 - policy.alpha },
        effect: { name: `flip rate over the base rate ${p0}`, value: excess, min: minExcessRate },
        sampleRows: s.flippedSample.slice(0, policy.sampleRows),
      },
    });
  });
  return drafts;
}

function outOfRange(m: HistoryMeasurements, policy: HistoryScreenPolicy): Draft {
  const { action, minExcessRate } = policy.ranges;
  const nRef = m.champion.rows;
  const n = m.snapshot.rows;
  const slots = m.ranges.reduce(
    (s, r) => s + (r.kind === 'numeric' ? 2 : (r.vocabulary ?? r.referenceCategories?.length ?? 0) + 1),
    0,
  );
  const p0 = Math.min(1, slots / (nRef + 1));
  const k = m.rowsOutsideRanges;
  const counts: Record<string, number> = { rowsOutside: k, rows: n, championRows: nRef, expectedShare: p0 };
  for (const r of m.ranges) counts[`${r.column}.outside`] = r.outside;
  const base = {
    check: H.ranges,
    action,
    threshold: `p < ${policy.alpha} and excess >= ${pct(minExcessRate)}`,
  };
  if (n === 0 || nRef === 0) {
    return {
      ...base,
      finding: false,
      observed: 'n/a',
      message: 'ranges not compared: an empty snapshot',
      evidence: { counts, notJudged: 'empty' },
    };
  }
  const p = binomialUpperTail(k, n, p0);
  const excess = k / n - p0;
  const ci = wilsonInterval(k, n, policy.alpha);
  const worst = m.ranges
    .filter((r) => r.outside > 0)
    .sort((a, b) => b.outside - a.outside)
    .slice(0, 3)
    .map((r) =>
      r.kind === 'numeric'
        ? `"${r.column}" ${r.below} below ${r.referenceMin}, ${r.above} above ${r.referenceMax}`
        : `"${r.column}" ${r.outside} with a category the champion snapshot lacks`,
    );
  return {
    ...base,
    finding: p < policy.alpha && excess >= minExcessRate,
    observed: excess,
    message:
      `${k} of ${n} rows (${pct(k / n)}, ${pct(1 - policy.alpha)} CI ${pct(ci.low)} to ${pct(ci.high)}) lie outside ` +
      `champion v${m.champion.version}'s snapshot ranges${worst.length > 0 ? ` (${worst.join('; ')})` : ''}; at most ` +
      `${pct(p0)} expected; p = ${sci(p)}; excess ${pct(excess)}, flagged at p < ${policy.alpha} and excess >= ${pct(minExcessRate)}`,
    evidence: {
      counts,
      statistic: { name: 'rows outside', value: k },
      pValue: clampP(p),
      adjustedPValue: clampP(p),
      correction: { method: 'none', tests: 1 },
      interval: { of: 'share of rows outside', low: ci.low, high: ci.high, confidence: 1 - policy.alpha },
      effect: { name: 'excess share over expected', value: excess, min: minExcessRate },
      sampleRows: m.outsideSample.slice(0, policy.sampleRows),
    },
  };
}

/** Judges the measurements against the champion snapshot under the policy. */
export function judgeHistory(m: HistoryMeasurements, policy: HistoryScreenPolicy): HistoryScreen {
  const drafts = [
    labelShift(m, policy),
    ...segmentShifts(m, policy),
    duplicateSurge(m, policy),
    ...labelFlips(m, policy),
    outOfRange(m, policy),
  ];
  const checks = drafts.map(toCheck);
  return {
    status: 'compared',
    champion: m.champion,
    checks,
    blocked: checks.filter((c) => !c.passed && c.action === HistoryAction.block).length,
    warnings: checks.filter((c) => !c.passed && c.action === HistoryAction.warn).length,
  };
}

/** The section of a screen that did not run, with the reason. */
export function skippedHistory(reason: string): HistoryScreen {
  return { status: 'skipped', reason, checks: [], blocked: 0, warnings: 0 };
}

/**
 * The validation report with the history section added: its existing checks stay as they are; the blocking
 * failures are appended to `checks` (so every reader of failed checks sees them) and make the report fail.
 * Warnings and passed history checks are in `history` only.
 */
export function withHistory(report: ValidationReport, history: HistoryScreen): ScreenedValidationReport {
  const blocking = history.checks.filter((c) => !c.passed && c.action === HistoryAction.block);
  const checks = [...report.checks, ...blocking];
  const phase = worstPhase([report.phase ?? worstPhaseOf(report.checks), ...blocking.map((c) => c.phase)]);
  return { ...report, ok: report.ok && blocking.length === 0, phase, checks, history };
}
