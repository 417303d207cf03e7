/**
 * Measurements of the poisoning screen against history: a snapshot compared with the champion's training
 * snapshot on the analytics engine (`./engine.ts`), both loaded with the profiler's loader (`./profile.ts`,
 * so cells are normalised exactly as validation normalises them). The verdict is `judgeHistory` in
 * `src/core/policy/poisoning-history.ts`; this module only counts.
 *
 * Rules:
 * - Node-only. Each file is read once into a table; the rest are aggregate queries over the two tables.
 * - Near-duplicate key: every numeric feature on the signed-log scale, sign(x) ln(1 + |x|), divided by
 *   `tolerance` times the champion snapshot's standard deviation of that scale and floored (a missing value is
 *   its own cell), every categorical feature as its category index; hashed to 64 bits with the label left
 *   out. Rows equal in every feature fall in one cell; rows a rounding or a jitter apart usually do (two values
 *   straddling a cell edge do not: the count is a lower bound). Hash collisions are as in `./profile.ts`.
 * - A current row equal to a champion row in its features, label and id is carried over (a cumulative dataset
 *   repeats its history): it is counted but judged neither as a duplicate nor as a flip.
 * - Samples are ids from the spec's id column, else 1-based row numbers of the loaded table (`row 12`).
 */
import type { FeatureSpec } from '../core/contracts/feature-spec';
import type {
  HistoryMeasurements,
  LabelCounts,
  RangeMeasurement,
  SegmentMeasurement,
} from '../core/contracts/poisoning-history';
import { openEngine, toNumber, type EngineRow, type EngineSession } from './engine';
import { loadTable, readHead, type Plan } from './profile';

/** Segment value of rows whose segment cell is empty. */
export const MISSING_SEGMENT = '(missing)';
/** Segment value of rows whose category is outside the spec's vocabulary. */
export const UNKNOWN_SEGMENT = '(unknown)';

export interface HistoryInput {
  /** The snapshot being validated, and its sha256. */
  current: { path: string; sha256: string };
  /** The champion's training snapshot, its version and sha256. */
  reference: { path: string; sha256: string; version: string };
  spec: FeatureSpec;
  /** Near-duplicate grid as a share of the champion's standard deviation on the signed-log scale. */
  tolerance: number;
  /** Categorical features whose values are segments (default: every categorical feature). */
  segments?: readonly string[];
  /** Row ids quoted per finding. */
  sampleRows: number;
}

const n0 = (v: EngineRow[string]): number => toNumber(v) ?? 0;
const slog = (n: string): string => `sign(${n}) * ln(1 + abs(${n}))`;
const num = (x: number): string => (Number.isInteger(x) ? `${x}.0` : String(x));
const strings = (v: EngineRow[string]): string[] => (Array.isArray(v) ? v.map((x) => String(x)) : []);
/** Label bit: 1 positive, 2 negative, 0 missing or invalid. */
const BIT = 'CASE lb WHEN 1 THEN 1 WHEN 2 THEN 2 ELSE 0 END';

/** Loads `file` into a table named `name` (the loader always writes `d`). */
async function load(db: EngineSession, file: string, spec: FeatureSpec, name: string): Promise<Plan> {
  const head = await readHead(file, spec);
  const { plan } = await loadTable(db, file, spec, head, true);
  await db.run(`ALTER TABLE d RENAME TO ${name}`);
  return plan;
}

/** Measures the snapshot at `input.current` against the champion snapshot at `input.reference`. */
export async function measureHistory(input: HistoryInput): Promise<HistoryMeasurements> {
  const { spec } = input;
  const db = await openEngine();
  try {
    const curPlan = await load(db, input.current.path, spec, 'cur');
    const refPlan = await load(db, input.reference.path, spec, 'ref');
    const numeric = curPlan.numeric.filter((c) => refPlan.numeric.some((r) => r.k === c.k));
    const categorical = curPlan.categorical.filter((c) => refPlan.categorical.some((r) => r.k === c.k));
    const hasId = curPlan.hasId && refPlan.hasId;
    const rowIds = hasId && spec.idColumn !== undefined ? spec.idColumn : 'row';
    const idExpr = hasId ? 'idt' : `'row ' || (rowid + 1)::VARCHAR`;

    // The grid of each numeric feature, from the champion snapshot.
    const steps = new Map<number, number>();
    if (numeric.length > 0) {
      const [s] = await db.all(
        `SELECT ${numeric.map(({ k }) => `stddev_samp(${slog(`n${k}`)}) AS s${k}`).join(', ')} FROM ref`,
      );
      for (const { k } of numeric) {
        const sd = toNumber(s?.[`s${k}`] ?? null);
        steps.set(k, input.tolerance * (sd !== null && sd > 0 ? sd : 1));
      }
    }
    const keyParts = [
      ...numeric.map(({ k }) => `floor(${slog(`n${k}`)} / ${num(steps.get(k) ?? 1)})::BIGINT`),
      ...categorical.map(({ k }) => `ci${k}`),
    ];
    const key = `hash(${keyParts.length > 0 ? keyParts.join(', ') : 'NULL'})`;
    const carry = `hash(vh, lb, ${hasId ? 'idv' : '0::UBIGINT'})`;
    const cols = categorical.map(({ k }) => `ci${k}`).join(', ');
    const keyed = (t: string): string =>
      `SELECT rowid AS r, ${BIT} AS bit, vh, ${carry} AS ch, ${key} AS kh, ${idExpr} AS sid` +
      `${cols ? `, ${cols}` : ''}, ${numeric.map(({ k }) => `n${k}`).join(', ') || 'NULL AS none'} FROM ${t}`;
    await db.run(`CREATE TEMP TABLE rk AS ${keyed('ref')}`);
    await db.run(`CREATE TEMP TABLE rkeys AS SELECT kh, bit_or(bit) AS labels FROM rk GROUP BY kh`);
    await db.run(
      `CREATE TEMP TABLE ck AS SELECT c.*, ch IN (SELECT ch FROM rk) AS carried, ` +
        `rkeys.kh IS NOT NULL AS inref, coalesce(rkeys.labels, 0) AS reflabels ` +
        `FROM (${keyed('cur')}) c LEFT JOIN rkeys USING (kh)`,
    );

    const [sizes] = await db.all(
      `SELECT (SELECT count(*) FROM rk) AS nref, (SELECT count(*) FROM ck) AS ncur, ` +
        `(SELECT count_if(bit = 1) FROM rk) AS rpos, (SELECT count_if(bit = 2) FROM rk) AS rneg, ` +
        `(SELECT count_if(bit = 1) FROM ck) AS cpos, (SELECT count_if(bit = 2) FROM ck) AS cneg`,
    );
    const [refRepeats] = await db.all(
      `SELECT count_if(k > 1) AS repeats, count_if(k > 1 AND bit <> 0) AS matched, ` +
        `count_if(k > 1 AND bit <> 0 AND seen <> 0 AND (seen & bit) = 0) AS conflicts FROM (` +
        `SELECT bit, row_number() OVER w AS k, ` +
        `bit_or(bit) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS seen ` +
        `FROM rk SEMI JOIN (SELECT kh FROM rk GROUP BY kh HAVING count(*) > 1) USING (kh) ` +
        `WINDOW w AS (PARTITION BY kh ORDER BY r))`,
    );
    const lim = Math.max(1, input.sampleRows);
    const [dups] = await db.all(
      `WITH j AS (SELECT r, sid, inref, row_number() OVER (PARTITION BY kh ORDER BY r) AS kn, ` +
        `row_number() OVER (PARTITION BY vh ORDER BY r) AS vn, vh IN (SELECT vh FROM rk) AS vref ` +
        `FROM ck WHERE NOT carried) ` +
        `SELECT count_if(kn > 1 OR inref) AS near, count_if(kn > 1) AS within, count_if(inref) AS against, ` +
        `count_if(vn > 1 OR vref) AS exact, (SELECT count_if(carried) FROM ck) AS carried, ` +
        `(list(sid ORDER BY r) FILTER (WHERE kn > 1 OR inref))[1:${lim}] AS sample FROM j`,
    );
    const flipCond = 'inref AND bit <> 0 AND (reflabels & bit) = 0';
    const [flips] = await db.all(
      `SELECT count_if(inref AND bit <> 0) AS matched, count_if(${flipCond}) AS flipped, ` +
        `(list(sid ORDER BY r) FILTER (WHERE ${flipCond}))[1:${lim}] AS sample FROM ck`,
    );

    const segmentColumns = categorical.filter(
      ({ feature }) => input.segments === undefined || input.segments.includes(feature.name),
    );
    const segments: SegmentMeasurement[] = [];
    for (const { feature, k } of segmentColumns) {
      const valueOf = (ci: EngineRow[string]): string =>
        ci === null || ci === undefined
          ? MISSING_SEGMENT
          : n0(ci) < feature.categories.length
            ? (feature.categories[n0(ci)] as string)
            : UNKNOWN_SEGMENT;
      const ref = await db.all(
        `SELECT ci${k} AS ci, count_if(bit = 1) AS pos, count_if(bit = 2) AS neg FROM rk GROUP BY ci${k}`,
      );
      const cur = await db.all(
        `SELECT ci${k} AS ci, count_if(bit = 1) AS pos, count_if(bit = 2) AS neg, ` +
          `count_if(inref AND bit <> 0) AS matched, count_if(${flipCond}) AS flipped, ` +
          `(list(sid ORDER BY r) FILTER (WHERE ${flipCond}))[1:${lim}] AS sample FROM ck GROUP BY ci${k}`,
      );
      const byValue = new Map<string, SegmentMeasurement>();
      const entry = (value: string): SegmentMeasurement => {
        let e = byValue.get(value);
        if (e === undefined) {
          e = {
            column: feature.name,
            value,
            reference: { pos: 0, neg: 0 },
            current: { pos: 0, neg: 0 },
            matched: 0,
            flipped: 0,
            flippedSample: [],
          };
          byValue.set(value, e);
        }
        return e;
      };
      for (const r of ref) entry(valueOf(r.ci)).reference = { pos: n0(r.pos), neg: n0(r.neg) };
      for (const r of cur) {
        const e = entry(valueOf(r.ci));
        e.current = { pos: n0(r.pos), neg: n0(r.neg) };
        e.matched = n0(r.matched);
        e.flipped = n0(r.flipped);
        e.flippedSample = strings(r.sample);
      }
      const order = [...feature.categories, UNKNOWN_SEGMENT, MISSING_SEGMENT];
      segments.push(...[...byValue.values()].sort((a, b) => order.indexOf(a.value) - order.indexOf(b.value)));
    }

    // Reference ranges: numeric [min, max] and the categories present in the champion snapshot.
    const ranges: RangeMeasurement[] = [];
    const outside: string[] = [];
    let rowsOutside = 0;
    if (numeric.length + categorical.length > 0) {
      const [mm] = await db.all(
        `SELECT ${[
          ...numeric.map(({ k }) => `min(n${k}) AS lo${k}, max(n${k}) AS hi${k}`),
          ...categorical.map(
            ({ k }) => `list(DISTINCT ci${k}) FILTER (WHERE ci${k} IS NOT NULL) AS cats${k}`,
          ),
        ].join(', ')} FROM rk`,
      );
      const parts: string[] = [];
      const conds: string[] = [];
      for (const { feature, k } of numeric) {
        const lo = toNumber(mm?.[`lo${k}`] ?? null);
        const hi = toNumber(mm?.[`hi${k}`] ?? null);
        const below = lo === null ? 'false' : `coalesce(n${k} < ${num(lo)}, false)`;
        const above = hi === null ? 'false' : `coalesce(n${k} > ${num(hi)}, false)`;
        parts.push(`count_if(${below}) AS b${k}`, `count_if(${above}) AS a${k}`);
        conds.push(below, above);
        ranges.push({
          column: feature.name,
          kind: 'numeric',
          referenceMin: lo,
          referenceMax: hi,
          below: 0,
          above: 0,
          outside: 0,
          sample: [],
        });
      }
      for (const { feature, k } of categorical) {
        const present = strings(mm?.[`cats${k}`] ?? null)
          .map(Number)
          .sort((a, b) => a - b);
        const cond =
          present.length === 0
            ? `ci${k} IS NOT NULL`
            : `coalesce(NOT list_contains([${present.join(', ')}], ci${k}), false)`;
        parts.push(`count_if(${cond}) AS o${k}`);
        conds.push(cond);
        ranges.push({
          column: feature.name,
          kind: 'categorical',
          referenceCategories: present.map((j) => feature.categories[j] ?? UNKNOWN_SEGMENT),
          vocabulary: feature.categories.length,
          below: 0,
          above: 0,
          outside: 0,
          sample: [],
        });
      }
      const any = conds.join(' OR ');
      const [o] = await db.all(
        `SELECT ${parts.join(', ')}, count_if(${any}) AS rows_out, ` +
          `(list(sid ORDER BY r) FILTER (WHERE ${any}))[1:${lim}] AS sample FROM ck`,
      );
      let i = 0;
      for (const { k } of numeric) {
        const r = ranges[i++] as RangeMeasurement;
        r.below = n0(o?.[`b${k}`]);
        r.above = n0(o?.[`a${k}`]);
        r.outside = r.below + r.above;
      }
      for (const { k } of categorical) {
        const r = ranges[i++] as RangeMeasurement;
        r.outside = n0(o?.[`o${k}`]);
        r.above = r.outside;
      }
      outside.push(...strings(o?.sample ?? null));
      rowsOutside = n0(o?.rows_out);
    }

    const labels = (pos: EngineRow[string], neg: EngineRow[string]): LabelCounts => ({
      pos: n0(pos),
      neg: n0(neg),
    });
    return {
      champion: { version: input.reference.version, sha256: input.reference.sha256, rows: n0(sizes?.nref) },
      snapshot: { sha256: input.current.sha256, rows: n0(sizes?.ncur) },
      tolerance: input.tolerance,
      rowIds,
      reference: labels(sizes?.rpos, sizes?.rneg),
      current: labels(sizes?.cpos, sizes?.cneg),
      segments,
      duplicates: {
        referenceRepeats: n0(refRepeats?.repeats),
        carriedOver: n0(dups?.carried),
        nearRepeats: n0(dups?.near),
        withinCurrent: n0(dups?.within),
        againstReference: n0(dups?.against),
        exact: n0(dups?.exact),
        sample: strings(dups?.sample ?? null),
      },
      flips: {
        referenceMatched: n0(refRepeats?.matched),
        referenceConflicts: n0(refRepeats?.conflicts),
        matched: n0(flips?.matched),
        flipped: n0(flips?.flipped),
        sample: strings(flips?.sample ?? null),
      },
      ranges,
      rowsOutsideRanges: rowsOutside,
      outsideSample: outside,
    };
  } finally {
    db.close();
  }
}
