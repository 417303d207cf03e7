/**
 * The reference a drift monitor compares live traffic with, measured by the profiler in the same engine
 * session as the validation profile (`profileDatasetWithExtras` in `./profile`), over the table the one scan
 * of the snapshot loaded: no second read of the file.
 *
 * - Numeric features: the deciles (`quantile_disc`, so every edge is a value of the column; taken from
 *   {@link DRIFT_EDGE_SAMPLE_ROWS} evenly spaced rows, exact below that) as bin edges, repeated edges merged (a 0/1 column has one edge), and the count of values in each bin. Bins are
 *   right-closed: bin 0 is (-inf, edges[0]], bin i is (edges[i-1], edges[i]], the last is (edges[last], +inf).
 *   Missing values and type errors are counted apart, in no bin.
 * - Categorical features: the count and frequency of every spec category, unknown values and missing cells
 *   as their own buckets; frequencies are shares of the rows.
 *
 * Rules: Node-only (built from engine rows). The types are plain JSON, so a reference can travel through
 * workflow history (a few KB) and be judged by a pure function in the sandbox-safe core.
 */
import type { CategoricalFeature, NumericFeature } from '../core/contracts/feature-spec';
import { toNumber, type EngineRow, type EngineSession } from './engine';

/** Quantile bins per numeric feature when none is asked for: deciles, the usual choice for PSI. */
export const DEFAULT_DRIFT_BINS = 10;
/** Most bins a reference may ask for (keeps references small and every bin populated). */
export const MAX_DRIFT_BINS = 100;
/**
 * Rows the bin edges are taken from: every k-th row of the table, k = floor(rows / this) (all rows below it).
 * A decile from 100k evenly spaced rows is within about 0.2 percentile points of the exact one, and sorting
 * 7 columns of 10M rows would cost more than the rest of the profile; the counts per bin are exact.
 */
export const DRIFT_EDGE_SAMPLE_ROWS = 100_000;

export interface NumericDriftReference {
  column: string;
  /** Values that are numbers (missing and invalid cells excluded). */
  count: number;
  /** Missing cells and type errors: in no bin. */
  missing: number;
  /** Ascending, distinct, right-closed bin edges: `edges.length + 1` bins (empty when `count` is 0). */
  edges: number[];
  /** Values per bin; `counts.length === edges.length + 1`, summing to `count`. */
  counts: number[];
  /**
   * A sample of the column's values (missing cells left out), when asked for: the values of the same
   * rows in every column, chosen by a hash of the row number, so the same snapshot gives the same sample.
   */
  sample?: number[];
}

export interface CategoryFrequency {
  value: string;
  count: number;
  /** count / rows of the dataset. */
  frequency: number;
}

export interface CategoricalDriftReference {
  column: string;
  rows: number;
  /** Every spec category, in spec order (also those never seen, with count 0). */
  categories: CategoryFrequency[];
  /** Cells that are not a spec category. */
  unknown: CategoryFrequency;
  /** Empty cells and missing-value tokens. */
  missing: CategoryFrequency;
}

export interface DriftReference {
  /** sha256 of the profiled snapshot (the reference is named by it). */
  sha256: string;
  rows: number;
  /** Bins asked for per numeric feature (fewer where edges repeat). */
  bins: number;
  numeric: NumericDriftReference[];
  categorical: CategoricalDriftReference[];
}

/** The bin of `value` in a reference's edges (right-closed bins, as documented above). */
export function binIndex(edges: readonly number[], value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value <= (edges[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** What the profiler knows about the loaded table `d` (column `n<k>` / `ci<k>` per spec feature). */
export interface DriftColumns {
  numeric: Array<{ feature: NumericFeature; k: number }>;
  categorical: Array<{ feature: CategoricalFeature; k: number }>;
}

const n0 = (v: EngineRow[string]): number => toNumber(v) ?? 0;

/**
 * Measures the drift reference on the open session's table `d`: one query for the quantile edges of every
 * numeric column, one for the bin counts. Value counts and categorical frequencies come from the profile's own
 * counts.
 */
export async function measureDriftReference(
  db: EngineSession,
  columns: DriftColumns,
  totals: {
    sha256: string;
    rows: number;
    categorical: Map<number, { counts: number[]; unknown: number; missing: number }>;
    /** Values that are numbers, per numeric feature `k` (the profile's counts). */
    numericCounts: Map<number, number>;
  },
  bins: number = DEFAULT_DRIFT_BINS,
  sampleSize = 0,
): Promise<DriftReference> {
  if (!Number.isInteger(bins) || bins < 2 || bins > MAX_DRIFT_BINS) {
    throw new RangeError(`bins: expected an integer in 2..${MAX_DRIFT_BINS}, got ${bins}`);
  }
  const probabilities = Array.from({ length: bins - 1 }, (_, i) => (i + 1) / bins);
  const numeric: NumericDriftReference[] = [];
  if (columns.numeric.length > 0) {
    const probs = `[${probabilities.map((p) => String(p)).join(', ')}]`;
    const step = Math.max(1, Math.floor(totals.rows / DRIFT_EDGE_SAMPLE_ROWS));
    // The edges come from the sampled rows only (one filter for all columns); the counts from the profile.
    const [q] = await db.all(
      `SELECT ${columns.numeric
        .map(({ k }) => `quantile_disc(n${k}, ${probs}) AS q${k}`)
        .join(', ')} FROM d WHERE rowid % ${step} = 0`,
    );
    const edgesOf = new Map<number, number[]>();
    for (const { k } of columns.numeric) {
      const raw = q?.[`q${k}`];
      const list = Array.isArray(raw) ? raw.map((v) => toNumber(v as EngineRow[string])) : [];
      const edges = [...new Set(list.filter((v): v is number => v !== null))].sort((a, b) => a - b);
      edgesOf.set(k, (totals.numericCounts.get(k) ?? 0) > 0 ? edges : []);
    }
    // One histogram per column: values binned by binary search over the edges (right-closed buckets, the
    // ones above the last edge under a NULL key), in one scan of the table.
    const withEdges = columns.numeric.filter(({ k }) => (edgesOf.get(k) ?? []).length > 0);
    const [h] =
      withEdges.length > 0
        ? await db.all(
            `SELECT ${withEdges
              .map(
                ({ k }) =>
                  `histogram(n${k}, [${(edgesOf.get(k) ?? []).map(String).join(', ')}]::DOUBLE[]) AS h${k}`,
              )
              .join(', ')} FROM d`,
          )
        : [undefined];
    for (const { feature, k } of columns.numeric) {
      const edges = edgesOf.get(k) ?? [];
      const count = totals.numericCounts.get(k) ?? 0;
      const inBucket = new Map<number, number>();
      const buckets = h?.[`h${k}`];
      if (Array.isArray(buckets)) {
        for (const entry of buckets as Array<{ key: EngineRow[string]; value: EngineRow[string] }>) {
          const key = toNumber(entry.key);
          if (key !== null) inBucket.set(key, n0(entry.value));
        }
      }
      const below = edges.map((e) => inBucket.get(e) ?? 0);
      const counts = [...below, count - below.reduce((a, b) => a + b, 0)];
      numeric.push({ column: feature.name, count, missing: totals.rows - count, edges, counts });
    }
    if (sampleSize > 0) {
      // Top-k by a hash of the row number: deterministic, one pass, memory bounded by k.
      const rows = await db.all(
        `SELECT ${columns.numeric.map(({ k }) => `n${k}`).join(', ')} FROM d ORDER BY hash(rowid), rowid LIMIT ${Math.floor(sampleSize)}`,
      );
      columns.numeric.forEach(({ k }, i) => {
        const values = rows.map((r) => toNumber(r[`n${k}`] as EngineRow[string]));
        (numeric[i] as NumericDriftReference).sample = values.filter(
          (v): v is number => v !== null && Number.isFinite(v),
        );
      });
    }
  }
  const share = (count: number): number => (totals.rows > 0 ? count / totals.rows : 0);
  const categorical = columns.categorical.map(({ feature, k }): CategoricalDriftReference => {
    const c = totals.categorical.get(k) ?? { counts: [], unknown: 0, missing: totals.rows };
    return {
      column: feature.name,
      rows: totals.rows,
      categories: feature.categories.map((value, j) => {
        const count = c.counts[j] ?? 0;
        return { value, count, frequency: share(count) };
      }),
      unknown: { value: '(unknown)', count: c.unknown, frequency: share(c.unknown) },
      missing: { value: '(missing)', count: c.missing, frequency: share(c.missing) },
    };
  });
  return { sha256: totals.sha256, rows: totals.rows, bins, numeric, categorical };
}
