/**
 * KernelSHAP (Lundberg and Lee 2017) for any model of {@link ExplainableModel}: Shapley values of the
 * positive-class probability against a background sample, estimated by the Shapley-kernel-weighted least squares
 * over coalitions of input features, with the efficiency constraint (values sum to `f(x) - mean f(background)`).
 *
 * Coalitions follow shap's KernelExplainer: only features whose value differs from some background row take
 * part; subset sizes are enumerated completely, smallest first (with their complements), while the budget
 * `nsamples` covers them, and the rest is sampled by size with the kernel's weights, paired with complements,
 * repeats adding weight. With a budget of at least `2^M - 2` every coalition is enumerated and the result is the
 * exact Shapley value. No L1 feature selection (shap's `l1_reg=False`).
 *
 * Value function: the mean model output over the background with the coalition's features taken from the row.
 * Two ways to get it, same numbers: onnxruntime on the hybrid rows (any model, all rows of all coalitions batched
 * into large calls), or, for a tree ensemble whose structure the graph exposes (src/explain/tree-ensemble.ts),
 * from the leaves each hybrid reaches, computed once per background row and tree; the tree path is used only
 * after it reproduced onnxruntime's outputs on the background.
 */
import { createSeededRandom, type SeededRandom } from '../core/stats/random';
import type { ExplainableModel, Row } from './model';
import { hybridLeaves, transformMargin, type HybridLeaf } from './tree-ensemble';

/** Default budget of coalitions per row: shap's `2 M + 2048`. */
export const defaultKernelSamples = (features: number): number => 2 * features + 2048;
/** Default seed of the coalition sampling: fixed so a re-run reproduces the values. */
export const DEFAULT_KERNEL_SEED = 20_261_202;
/** Pivot below which the normal equations are singular and a ridge of this size is added. */
const SINGULAR_PIVOT = 1e-12;
/** Most players for the table form of the tree value function (tables of 2^players entries). */
const TABLE_MAX_PLAYERS = 14;
/** Hybrid rows per onnxruntime call of the generic value function. */
const ONNX_CHUNK_ROWS = 65_536;

export type ValueFunction = 'auto' | 'onnxruntime' | 'tree';

export interface KernelShapOptions {
  nsamples?: number;
  seed?: number;
  valueFunction?: ValueFunction;
}

export interface KernelShapResult {
  features: readonly string[];
  /** Per row, one value per feature (schema order). */
  values: Float64Array[];
  /** mean model output over the background. */
  expectedValue: number;
  /** Model output of each row. */
  predictions: Float64Array;
  /** Which value function ran. */
  valueFunction: 'onnxruntime' | 'tree';
  /** Coalitions evaluated per row (the budget, capped at 2^M - 2). */
  coalitions: number[];
}

function binom(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Coalitions over `M` players and their kernel weights, as shap's KernelExplainer builds them. */
export function kernelCoalitions(
  M: number,
  nsamples: number,
  rng: SeededRandom,
): { masks: Uint8Array[]; weights: number[] } {
  const maxSamples = M <= 30 ? 2 ** M - 2 : 2 ** 30;
  const budget = Math.min(nsamples, maxSamples);
  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const sizes = Math.ceil((M - 1) / 2);
  const paired = Math.floor((M - 1) / 2);
  const wv = Array.from({ length: sizes }, (_, i) => (M - 1) / ((i + 1) * (M - i - 1)));
  for (let i = 0; i < paired; i++) wv[i] = (wv[i] as number) * 2;
  const total = wv.reduce((a, b) => a + b, 0);
  for (let i = 0; i < sizes; i++) wv[i] = (wv[i] as number) / total;

  let full = 0;
  let left = budget;
  const remaining = [...wv];
  for (let size = 1; size <= sizes; size++) {
    let nsub = binom(M, size);
    if (size <= paired) nsub *= 2;
    if ((left * (remaining[size - 1] as number)) / nsub < 1 - 1e-8) break;
    full++;
    left -= nsub;
    const r = remaining[size - 1] as number;
    if (r < 1) for (let i = 0; i < sizes; i++) remaining[i] = (remaining[i] as number) / (1 - r);
    let w = (wv[size - 1] as number) / binom(M, size);
    if (size <= paired) w /= 2;
    const idx = Array.from({ length: size }, (_, k) => k);
    for (;;) {
      const m = new Uint8Array(M);
      for (const k of idx) m[k] = 1;
      masks.push(m);
      weights.push(w);
      if (size <= paired) {
        masks.push(m.map((v) => 1 - v));
        weights.push(w);
      }
      // next combination in lexicographic order
      let k = size - 1;
      while (k >= 0 && (idx[k] as number) === M - size + k) k--;
      if (k < 0) break;
      idx[k] = (idx[k] as number) + 1;
      for (let j = k + 1; j < size; j++) idx[j] = (idx[j - 1] as number) + 1;
    }
  }

  const fixed = masks.length;
  let samplesLeft = budget - fixed;
  if (full !== sizes && samplesLeft > 0) {
    const rw = wv.map((w, i) => (i < paired ? w / 2 : w)).slice(full);
    const rsum = rw.reduce((a, b) => a + b, 0);
    const cdf: number[] = [];
    let acc = 0;
    for (const w of rw) cdf.push((acc += w / rsum));
    const used = new Map<string, number>();
    let draws = 4 * samplesLeft;
    const perm = Array.from({ length: M }, (_, k) => k);
    while (samplesLeft > 0 && draws-- > 0) {
      const u = rng.nextFloat();
      let ind = cdf.findIndex((c) => u < c);
      if (ind < 0) ind = cdf.length - 1;
      const size = ind + full + 1;
      for (let k = 0; k < size; k++) {
        const j = k + rng.nextInt(M - k);
        const t = perm[k] as number;
        perm[k] = perm[j] as number;
        perm[j] = t;
      }
      const m = new Uint8Array(M);
      for (let k = 0; k < size; k++) m[perm[k] as number] = 1;
      const key = m.join('');
      const seen = used.get(key);
      if (seen === undefined) {
        used.set(key, masks.length);
        masks.push(m);
        weights.push(1);
        samplesLeft--;
      } else weights[seen] = (weights[seen] as number) + 1;
      if (samplesLeft > 0 && size <= paired) {
        if (seen === undefined) {
          masks.push(m.map((v) => 1 - v));
          weights.push(1);
          samplesLeft--;
        } else weights[seen + 1] = (weights[seen + 1] as number) + 1;
      }
    }
    const weightLeft = wv.slice(full).reduce((a, b) => a + b, 0);
    let sampled = 0;
    for (let k = fixed; k < weights.length; k++) sampled += weights[k] as number;
    for (let k = fixed; k < weights.length; k++) weights[k] = ((weights[k] as number) * weightLeft) / sampled;
  }
  return { masks, weights };
}

/** Solves the constrained weighted least squares of KernelSHAP; returns one value per player. */
export function solveKernel(
  masks: readonly Uint8Array[],
  weights: readonly number[],
  ey: ArrayLike<number>,
  fx: number,
  fnull: number,
): Float64Array {
  const M = (masks[0] as Uint8Array).length;
  const total = fx - fnull;
  const p = M - 1;
  const A = Array.from({ length: p }, () => new Float64Array(p));
  const rhs = new Float64Array(p);
  const row = new Float64Array(p);
  masks.forEach((m, s) => {
    const w = weights[s] as number;
    const last = m[M - 1] as number;
    const y = (ey[s] as number) - fnull - last * total;
    for (let j = 0; j < p; j++) row[j] = (m[j] as number) - last;
    for (let i = 0; i < p; i++) {
      const wi = w * (row[i] as number);
      if (wi === 0) continue;
      rhs[i] = (rhs[i] as number) + wi * y;
      const Ai = A[i] as Float64Array;
      for (let j = 0; j < p; j++) Ai[j] = (Ai[j] as number) + wi * (row[j] as number);
    }
  });
  const w = gaussSolve(A, rhs);
  const phi = new Float64Array(M);
  let sum = 0;
  for (let j = 0; j < p; j++) {
    phi[j] = w[j] as number;
    sum += w[j] as number;
  }
  phi[M - 1] = total - sum;
  for (let j = 0; j < M; j++) if (Math.abs(phi[j] as number) < 1e-10) phi[j] = 0;
  return phi;
}

function gaussSolve(A: Float64Array[], b: Float64Array): Float64Array {
  const n = b.length;
  const M: Float64Array[] = A.map((r) => Float64Array.from(r));
  const x = Float64Array.from(b);
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs((M[i] as Float64Array)[i] as number));
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs((M[r] as Float64Array)[c] as number) > Math.abs((M[piv] as Float64Array)[c] as number))
        piv = r;
    if (piv !== c) {
      const rowC = M[c] as Float64Array;
      M[c] = M[piv] as Float64Array;
      M[piv] = rowC;
      const t = x[c] as number;
      x[c] = x[piv] as number;
      x[piv] = t;
    }
    const Mc = M[c] as Float64Array;
    if (Math.abs(Mc[c] as number) < SINGULAR_PIVOT * Math.max(scale, 1))
      Mc[c] = (Mc[c] as number) + SINGULAR_PIVOT * Math.max(scale, 1);
    for (let r = c + 1; r < n; r++) {
      const Mr = M[r] as Float64Array;
      const f = (Mr[c] as number) / (Mc[c] as number);
      if (f === 0) continue;
      for (let k = c; k < n; k++) Mr[k] = (Mr[k] as number) - f * (Mc[k] as number);
      x[r] = (x[r] as number) - f * (x[c] as number);
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    const Mc = M[c] as Float64Array;
    let s = x[c] as number;
    for (let k = c + 1; k < n; k++) s -= (Mc[k] as number) * (x[k] as number);
    x[c] = s / (Mc[c] as number);
  }
  return x;
}

const same = (a: unknown, b: unknown): boolean =>
  a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b));

/** Features whose value in `x` differs from at least one background row (shap's varying groups). */
export function varyingFeatures(x: Row, background: readonly Row[]): number[] {
  const out: number[] = [];
  for (let j = 0; j < x.length; j++) if (background.some((b) => !same(b[j], x[j]))) out.push(j);
  return out;
}

interface RowPlan {
  varying: number[];
  masks: Uint8Array[];
  weights: number[];
}

/** Values of the coalitions of every row through onnxruntime: all hybrids of all rows batched together. */
async function onnxValues(
  model: ExplainableModel,
  rows: readonly Row[],
  background: readonly Row[],
  plans: RowPlan[],
): Promise<Float64Array[]> {
  const out = plans.map((p) => new Float64Array(p.masks.length));
  const B = background.length;
  const F = model.features.length;
  const numeric = model.numericInputs();
  // Column buffers of one chunk of hybrid rows, filled in place (no row objects): whole coalitions per chunk.
  const perChunk = Math.max(1, Math.floor(ONNX_CHUNK_ROWS / B));
  const capacity = perChunk * B;
  const columns: Array<Float32Array | string[]> = numeric.map((isNum) =>
    isNum ? new Float32Array(capacity) : new Array<string>(capacity),
  );
  const bgNumeric = numeric.map((isNum, j) =>
    isNum
      ? Float32Array.from(background, (b) => (typeof b[j] === 'number' ? (b[j] as number) : Number.NaN))
      : undefined,
  );
  const bgText = numeric.map((isNum, j) => (isNum ? undefined : background.map((b) => String(b[j] ?? ''))));
  let pending: Array<{ plan: number; mask: number }> = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const n = pending.length * B;
    const preds = await model.predictColumns(
      columns.map((c) => (c instanceof Float32Array ? c.subarray(0, n) : c.length === n ? c : c.slice(0, n))),
      n,
    );
    pending.forEach(({ plan, mask }, k) => {
      let sum = 0;
      for (let b = 0; b < B; b++) sum += preds[k * B + b] as number;
      (out[plan] as Float64Array)[mask] = sum / B;
    });
    pending = [];
  };
  const fromX = new Uint8Array(F);
  for (let r = 0; r < rows.length; r++) {
    const x = rows[r] as Row;
    const plan = plans[r] as RowPlan;
    for (let s = 0; s < plan.masks.length; s++) {
      const m = plan.masks[s] as Uint8Array;
      fromX.fill(0);
      plan.varying.forEach((j, k) => {
        if (m[k] === 1) fromX[j] = 1;
      });
      const at = pending.length * B;
      for (let j = 0; j < F; j++) {
        const col = columns[j] as Float32Array | string[];
        if (col instanceof Float32Array) {
          if (fromX[j] === 1) col.fill(typeof x[j] === 'number' ? (x[j] as number) : Number.NaN, at, at + B);
          else col.set(bgNumeric[j] as Float32Array, at);
        } else {
          const src = bgText[j] as string[];
          const v = String(x[j] ?? '');
          for (let b = 0; b < B; b++) col[at + b] = fromX[j] === 1 ? v : (src[b] as string);
        }
      }
      pending.push({ plan: r, mask: s });
      if (pending.length >= perChunk) await flush();
    }
  }
  await flush();
  return out;
}

/** Values of the coalitions of every row from the tree structure (see the module comment). */
async function treeValues(
  model: ExplainableModel,
  rows: readonly Row[],
  background: readonly Row[],
  plans: RowPlan[],
): Promise<Float64Array[]> {
  const tree = model.tree;
  if (!tree) throw new Error('no tree view');
  const { ensemble, owner } = tree;
  const logistic = transformMargin(ensemble, 0) === 0.5;
  const [tx, tb] = await Promise.all([model.transform(rows), model.transform(background)]);
  const leaves: HybridLeaf[] = [];
  return plans.map((plan, r) => {
    const x = tx[r] as Float32Array;
    // players: the row's varying features; a column of a non-varying feature is equal in x and every b
    const player = new Int32Array(owner.length).fill(-1);
    owner.forEach((f, c) => {
      player[c] = plan.varying.indexOf(f);
    });
    const coalition = plan.masks.map((m) => {
      let bits = 0;
      m.forEach((v, k) => {
        if (v === 1) bits |= 1 << k;
      });
      return bits;
    });
    const S = Int32Array.from(coalition);
    const ey = new Float64Array(S.length);
    const margins = new Float64Array(S.length);
    const leafEnd = new Int32Array(ensemble.trees.length);
    const tableSize = 1 << plan.varying.length;
    // Tables of this row's player sets, reused for every background row (no allocation per row and tree).
    const tables = new Map<number, Float64Array>();
    const pool: Float64Array[] = [];
    for (const b of tb) {
      leaves.length = 0;
      let constant = ensemble.base;
      ensemble.trees.forEach((t, k) => {
        hybridLeaves(t, x, b, player, leaves);
        leafEnd[k] = leaves.length;
      });
      margins.fill(0);
      if (plan.varying.length <= TABLE_MAX_PLAYERS) {
        // Per tree, its leaves as a table over the players its conditions name; trees naming the same players
        // share one summed table, looked up at (S & players) for every coalition S.
        tables.clear();
        let used = 0;
        let start = 0;
        for (let t = 0; t < ensemble.trees.length; t++) {
          const end = leafEnd[t] as number;
          let players = 0;
          for (let k = start; k < end; k++) {
            const leaf = leaves[k] as HybridLeaf;
            players |= leaf.fromX | leaf.fromB;
          }
          if (players === 0) {
            for (let k = start; k < end; k++) constant += (leaves[k] as HybridLeaf).value;
          } else {
            let tab = tables.get(players);
            if (!tab) {
              // A pooled table, cleared on the entries this player set can reach (its submasks).
              tab = pool[used] ??= new Float64Array(tableSize);
              used++;
              for (let q = players; ; q = (q - 1) & players) {
                tab[q] = 0;
                if (q === 0) break;
              }
              tables.set(players, tab);
            }
            for (let k = start; k < end; k++) {
              const { fromX: fx, fromB: fb, value } = leaves[k] as HybridLeaf;
              // every q within `players` with fx ⊆ q and q ∩ fb = ∅
              const free = players & ~fx & ~fb;
              for (let q = free; ; q = (q - 1) & free) {
                tab[q | fx] = (tab[q | fx] as number) + value;
                if (q === 0) break;
              }
            }
          }
          start = end;
        }
        for (const [players, tab] of tables) {
          for (let s = 0; s < S.length; s++)
            margins[s] = (margins[s] as number) + (tab[(S[s] as number) & players] as number);
        }
      } else {
        // Entry-outer: each conditional leaf adds its value to the coalitions it is reached in.
        for (const leaf of leaves) {
          const fx = leaf.fromX;
          const fb = leaf.fromB;
          const v = leaf.value;
          if (fx === 0 && fb === 0) {
            constant += v;
            continue;
          }
          for (let s = 0; s < S.length; s++) {
            const c = S[s] as number;
            if ((c & fx) === fx && (c & fb) === 0) margins[s] = (margins[s] as number) + v;
          }
        }
      }
      if (logistic) {
        for (let s = 0; s < S.length; s++)
          ey[s] = (ey[s] as number) + 1 / (1 + Math.exp(-(constant + (margins[s] as number))));
      } else for (let s = 0; s < S.length; s++) ey[s] = (ey[s] as number) + constant + (margins[s] as number);
    }
    for (let s = 0; s < ey.length; s++) ey[s] = (ey[s] as number) / background.length;
    return ey;
  });
}

/** KernelSHAP values of `rows` against `background` (see the module comment). */
export async function kernelShap(
  model: ExplainableModel,
  rows: readonly Row[],
  background: readonly Row[],
  options: KernelShapOptions = {},
): Promise<KernelShapResult> {
  if (background.length === 0) throw new Error('KernelSHAP needs at least one background row');
  const F = model.features.length;
  const nsamples = options.nsamples ?? defaultKernelSamples(F);
  const rng = createSeededRandom(options.seed ?? DEFAULT_KERNEL_SEED);
  const wanted = options.valueFunction ?? 'auto';
  let useTree = false;
  if (wanted !== 'onnxruntime' && model.tree) useTree = await model.treeMatches(background);
  if (wanted === 'tree' && !useTree)
    throw new Error('the tree value function is not available for this model');

  const [predictions, bgPreds] = await Promise.all([model.predict(rows), model.predict(background)]);
  let fnull = 0;
  for (const p of bgPreds) fnull += p;
  fnull /= background.length;

  const plans: RowPlan[] = rows.map((x) => {
    const varying = varyingFeatures(x, background);
    if (varying.length < 2) return { varying, masks: [], weights: [] };
    const { masks, weights } = kernelCoalitions(varying.length, nsamples, rng);
    return { varying, masks, weights };
  });
  const ey = useTree
    ? await treeValues(model, rows, background, plans)
    : await onnxValues(model, rows, background, plans);
  const values = plans.map((plan, r) => {
    const phi = new Float64Array(F);
    const fx = predictions[r] as number;
    if (plan.varying.length === 1) phi[plan.varying[0] as number] = fx - fnull;
    if (plan.varying.length >= 2) {
      const v = solveKernel(plan.masks, plan.weights, ey[r] as Float64Array, fx, fnull);
      plan.varying.forEach((j, k) => {
        phi[j] = v[k] as number;
      });
    }
    return phi;
  });
  return {
    features: model.features,
    values,
    expectedValue: fnull,
    predictions,
    valueFunction: useTree ? 'tree' : 'onnxruntime',
    coalitions: plans.map((p) => p.masks.length),
  };
}
