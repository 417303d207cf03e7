/**
 * Reference profiles and live window summaries for drift monitoring (sandbox-safe, pure).
 *
 * Rules:
 * - A reference profile is computed once from the training snapshot: per numeric feature the
 *   interior reference-quantile bin edges with the reference's counts per bin, nulls, summary
 *   statistics and a bounded reservoir sample; per categorical feature the category counts (the
 *   vocabulary is the reference's, anything else is `other`). It is plain JSON (stored as an MLflow
 *   artifact of the version).
 * - A window summary holds only counts (per bin, per category, nulls, other) and running sums, so
 *   windows merge by addition into days and weeks, and a window's drift against the profile costs
 *   O(bins), whatever the number of rows behind it.
 * - Window comparisons are tests of homogeneity between the reference counts and the window counts
 *   (chi-square on bins, null bin included) plus a distance (PSI for numeric, Jensen-Shannon for
 *   categorical), and L-infinity between shares.
 */
import { z } from 'zod';
import {
  binCounts,
  binCountsSorted,
  chiSquareHomogeneity,
  DEFAULT_QUANTILE_BINS,
  jensenShannonDistance,
  lInfinity,
  meanStd,
  psi,
  quantileEdges,
} from './drift-tests';
import { createSeededRandom } from './random';
import { sortedWithoutNaN } from './sort';

/** Reservoir sample size kept per numeric feature: enough for an exact KS against a small window. */
export const DEFAULT_RESERVOIR_SIZE = 2_000;
/** Format version of the profile JSON. */
export const PROFILE_FORMAT = 1;

const Finite = z.number().refine(Number.isFinite, 'must be finite');

export const NumericProfileSchema = z
  .object({
    name: z.string().min(1),
    edges: z.array(Finite),
    counts: z.array(z.number().min(0)),
    nulls: z.number().int().min(0),
    rows: z.number().int().min(0),
    mean: z.number(),
    std: z.number(),
    min: z.number(),
    max: z.number(),
    reservoir: z.array(Finite),
  })
  .refine((p) => p.counts.length === p.edges.length + 1, {
    message: 'counts must have edges + 1 entries',
    path: ['counts'],
  });
export type NumericProfile = z.infer<typeof NumericProfileSchema>;

export const CategoricalProfileSchema = z
  .object({
    name: z.string().min(1),
    categories: z.array(z.string()),
    counts: z.array(z.number().min(0)),
    other: z.number().min(0),
    nulls: z.number().int().min(0),
    rows: z.number().int().min(0),
  })
  .refine((p) => p.counts.length === p.categories.length, {
    message: 'one count per category',
    path: ['counts'],
  });
export type CategoricalProfile = z.infer<typeof CategoricalProfileSchema>;

export const ReferenceProfileSchema = z.object({
  format: z.literal(PROFILE_FORMAT),
  rows: z.number().int().min(0),
  source: z.object({ sha256: z.string().optional(), uri: z.string().optional() }).default({}),
  numeric: z.array(NumericProfileSchema),
  categorical: z.array(CategoricalProfileSchema),
  /** The champion's scores on the reference, profiled like a numeric feature (prediction drift). */
  prediction: NumericProfileSchema.optional(),
  /** The champion's calibration on its holdout (CBPE): the isotonic map and its out-of-sample check. */
  calibration: z
    .object({
      map: z.object({ x: z.array(z.number()), y: z.array(z.number()) }),
      check: z.object({
        rows: z.number(),
        z: z.number(),
        pValue: z.number(),
        ece: z.number(),
        calibrated: z.boolean(),
        reason: z.string(),
      }),
    })
    .optional(),
});
export type ReferenceProfile = z.infer<typeof ReferenceProfileSchema>;

export const WindowSummarySchema = z.object({
  rows: z.number().int().min(0),
  numeric: z.record(
    z.string(),
    z.object({
      counts: z.array(z.number().min(0)),
      nulls: z.number().min(0),
      sum: z.number(),
      sumSq: z.number(),
    }),
  ),
  categorical: z.record(
    z.string(),
    z.object({ counts: z.array(z.number().min(0)), other: z.number().min(0), nulls: z.number().min(0) }),
  ),
  prediction: z
    .object({
      counts: z.array(z.number().min(0)),
      nulls: z.number().min(0),
      sum: z.number(),
      sumSq: z.number(),
    })
    .optional(),
});
export type WindowSummary = z.infer<typeof WindowSummarySchema>;

/** A numeric column: values with NaN for null. */
export type NumericColumn = Float64Array;
/** A categorical column: strings, null for a missing value. */
export type CategoricalColumn = readonly (string | null)[];

/** Sorted copy of the non-null values of a column. */
export function sortedNonNull(column: NumericColumn): Float64Array {
  return sortedWithoutNaN(column);
}

function reservoir(values: Float64Array, size: number, seed: number): number[] {
  if (values.length <= size) return Array.from(values);
  const rng = createSeededRandom(seed);
  const out = Array.from(values.subarray(0, size));
  for (let i = size; i < values.length; i++) {
    const j = rng.nextInt(i + 1);
    if (j < size) out[j] = values[i]!;
  }
  return out;
}

export interface ProfileOptions {
  bins?: number;
  reservoirSize?: number;
  /** Seed of the reservoir sample (fixed: the same snapshot gives the same profile). */
  seed?: number;
}

/** Profile of one numeric column; `sorted` may be passed when the caller already sorted it. */
export function profileNumeric(
  name: string,
  column: NumericColumn,
  options: ProfileOptions = {},
  sorted = sortedNonNull(column),
): NumericProfile {
  const edges = quantileEdges(sorted, options.bins ?? DEFAULT_QUANTILE_BINS);
  const counts = Array.from(binCountsSorted(edges, sorted));
  const { mean, std } = meanStd(sorted);
  return {
    name,
    edges: Array.from(edges),
    counts,
    nulls: column.length - sorted.length,
    rows: column.length,
    mean: Number.isFinite(mean) ? mean : 0,
    std: Number.isFinite(std) ? std : 0,
    min: sorted.length ? sorted[0]! : 0,
    max: sorted.length ? sorted[sorted.length - 1]! : 0,
    reservoir: reservoir(
      column.filter((v) => !Number.isNaN(v)),
      options.reservoirSize ?? DEFAULT_RESERVOIR_SIZE,
      options.seed ?? 1,
    ),
  };
}

/** Profile of one categorical column, categories in descending frequency. */
export function profileCategorical(name: string, column: CategoricalColumn): CategoricalProfile {
  const counts = new Map<string, number>();
  let nulls = 0;
  for (const v of column) {
    if (v === null) nulls++;
    else counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const cats = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return {
    name,
    categories: cats.map((c) => c[0]),
    counts: cats.map((c) => c[1]),
    other: 0,
    nulls,
    rows: column.length,
  };
}

export interface ColumnarData {
  rows: number;
  numeric: Record<string, NumericColumn>;
  categorical: Record<string, CategoricalColumn>;
  prediction?: NumericColumn;
}

export function buildReferenceProfile(
  data: ColumnarData,
  options: ProfileOptions = {},
  source: ReferenceProfile['source'] = {},
): ReferenceProfile {
  return {
    format: PROFILE_FORMAT,
    rows: data.rows,
    source,
    numeric: Object.entries(data.numeric).map(([name, col]) => profileNumeric(name, col, options)),
    categorical: Object.entries(data.categorical).map(([name, col]) => profileCategorical(name, col)),
    ...(data.prediction && { prediction: profileNumeric('prediction', data.prediction, options) }),
  };
}

function summariseNumeric(p: NumericProfile, column: NumericColumn): WindowSummary['numeric'][string] {
  const { counts, nulls, sum, sumSq } = binCounts(Float64Array.from(p.edges), column);
  return { counts: Array.from(counts), nulls, sum, sumSq };
}

/** Counts of one window against the profile's bins and vocabularies: O(rows log bins). */
export function summariseWindow(profile: ReferenceProfile, data: ColumnarData): WindowSummary {
  const numeric: WindowSummary['numeric'] = {};
  for (const p of profile.numeric) {
    const col = data.numeric[p.name];
    numeric[p.name] = col
      ? summariseNumeric(p, col)
      : { counts: p.counts.map(() => 0), nulls: data.rows, sum: 0, sumSq: 0 };
  }
  const categorical: WindowSummary['categorical'] = {};
  for (const p of profile.categorical) {
    const index = new Map(p.categories.map((c, i) => [c, i]));
    const counts = new Array<number>(p.categories.length).fill(0);
    let other = 0;
    let nulls = 0;
    const col = data.categorical[p.name];
    if (!col) nulls = data.rows;
    else
      for (const v of col) {
        if (v === null) nulls++;
        else {
          const i = index.get(v);
          if (i === undefined) other++;
          else counts[i]!++;
        }
      }
    categorical[p.name] = { counts, other, nulls };
  }
  const out: WindowSummary = { rows: data.rows, numeric, categorical };
  if (profile.prediction && data.prediction)
    out.prediction = summariseNumeric(profile.prediction, data.prediction);
  return out;
}

const addArrays = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x + (b[i] ?? 0));

/** Sum of two windows over the same profile (associative and commutative: windows roll up into days). */
export function mergeWindows(a: WindowSummary, b: WindowSummary): WindowSummary {
  const numeric: WindowSummary['numeric'] = {};
  for (const [k, x] of Object.entries(a.numeric)) {
    const y = b.numeric[k];
    numeric[k] = y
      ? {
          counts: addArrays(x.counts, y.counts),
          nulls: x.nulls + y.nulls,
          sum: x.sum + y.sum,
          sumSq: x.sumSq + y.sumSq,
        }
      : x;
  }
  const categorical: WindowSummary['categorical'] = {};
  for (const [k, x] of Object.entries(a.categorical)) {
    const y = b.categorical[k];
    categorical[k] = y
      ? { counts: addArrays(x.counts, y.counts), other: x.other + y.other, nulls: x.nulls + y.nulls }
      : x;
  }
  const out: WindowSummary = { rows: a.rows + b.rows, numeric, categorical };
  if (a.prediction && b.prediction)
    out.prediction = {
      counts: addArrays(a.prediction.counts, b.prediction.counts),
      nulls: a.prediction.nulls + b.prediction.nulls,
      sum: a.prediction.sum + b.prediction.sum,
      sumSq: a.prediction.sumSq + b.prediction.sumSq,
    };
  return out;
}

export interface FeatureDrift {
  feature: string;
  kind: 'numeric' | 'categorical' | 'prediction';
  /** Rows of the window with a value. */
  rows: number;
  test: 'chi-square' | 'ks';
  statistic: number;
  pValue: number;
  /** PSI (binned numeric), Wasserstein-1 over the reference std (raw numeric), Jensen-Shannon (categorical). */
  distanceName: 'psi' | 'jensen-shannon' | 'wasserstein';
  distance: number;
  lInfinity: number;
  /** Bin shares, reference and window (nulls last), for the report's histograms. */
  referenceShares: number[];
  windowShares: number[];
  labels: string[];
}

const shares = (c: readonly number[]): number[] => {
  const t = c.reduce((s, x) => s + x, 0);
  return c.map((x) => (t > 0 ? x / t : 0));
};

function compareCounts(
  feature: string,
  kind: FeatureDrift['kind'],
  ref: number[],
  cur: number[],
  labels: string[],
  distanceName: FeatureDrift['distanceName'],
): FeatureDrift {
  const test = chiSquareHomogeneity(ref, cur);
  const distance = distanceName === 'psi' ? psi(ref, cur) : jensenShannonDistance(ref, cur);
  return {
    feature,
    kind,
    rows: cur.reduce((s, x) => s + x, 0),
    test: 'chi-square',
    statistic: test.statistic,
    pValue: test.pValue,
    distanceName,
    distance,
    lInfinity: lInfinity(ref, cur),
    referenceShares: shares(ref),
    windowShares: shares(cur),
    labels,
  };
}

function numericLabels(edges: readonly number[]): string[] {
  const f = (v: number): string =>
    Math.abs(v) >= 1000 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3);
  const out = edges.length ? [`<= ${f(edges[0]!)}`] : ['all'];
  for (let i = 1; i < edges.length; i++) out.push(`(${f(edges[i - 1]!)}, ${f(edges[i]!)}]`);
  if (edges.length) out.push(`> ${f(edges[edges.length - 1]!)}`);
  return out;
}

/** Drift of every feature (and the prediction) of a window against the profile: O(bins). */
export function compareWindowToProfile(profile: ReferenceProfile, window: WindowSummary): FeatureDrift[] {
  const out: FeatureDrift[] = [];
  for (const p of profile.numeric) {
    const w = window.numeric[p.name];
    if (!w) continue;
    out.push(
      compareCounts(
        p.name,
        'numeric',
        [...p.counts, p.nulls],
        [...w.counts, w.nulls],
        [...numericLabels(p.edges), 'null'],
        'psi',
      ),
    );
  }
  for (const p of profile.categorical) {
    const w = window.categorical[p.name];
    if (!w) continue;
    out.push(
      compareCounts(
        p.name,
        'categorical',
        [...p.counts, p.other, p.nulls],
        [...w.counts, w.other, w.nulls],
        [...p.categories, 'other', 'null'],
        'jensen-shannon',
      ),
    );
  }
  if (profile.prediction && window.prediction) {
    const p = profile.prediction;
    out.push(
      compareCounts(
        'prediction',
        'prediction',
        [...p.counts, p.nulls],
        [...window.prediction.counts, window.prediction.nulls],
        [...numericLabels(p.edges), 'null'],
        'psi',
      ),
    );
  }
  return out;
}
