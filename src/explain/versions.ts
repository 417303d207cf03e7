/**
 * Global attributions of the versions an evaluation compares, on the same rows and background: exact TreeSHAP
 * (raw margin) when every model is a tree ensemble the graph exposes, else KernelSHAP of the probability with a
 * modest budget, so champion and challenger are always explained alike. Per segment of the sensitive attribute
 * too, and the champion/challenger attribution drift.
 */
import type { AttributionDrift, AttributionSummary } from '../core/contracts/attribution';
import { attributionDrift } from '../core/policy/attribution';
import { createSeededRandom } from '../core/stats/random';
import { globalImportance } from './global';
import { kernelShap } from './kernel-shap';
import type { ExplainableModel, Row } from './model';
import { DEFAULT_PERMUTATION_REPEATS, permutationImportance } from './permutation';
import { treeShapRows } from './tree-shap';

/** Holdout rows explained per version: enough for stable global shares at a few seconds of CPU. */
export const DEFAULT_EXPLAINED_ROWS = 500;
/** Background rows (from the training data the reference profile describes). */
export const DEFAULT_BACKGROUND_ROWS = 100;
/** KernelSHAP budget for models without a readable tree structure. */
export const DEFAULT_EVALUATION_KERNEL_SAMPLES = 256;
/** Seed of the row samples and of KernelSHAP. */
export const DEFAULT_EXPLAIN_SEED = 20_261_204;

/** `k` distinct indices of `0..n-1`, seeded, in ascending order (all of them when k >= n). */
export function sampleIndices(n: number, k: number, seed: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const rng = createSeededRandom(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.nextInt(n - i);
    const t = idx[i] as number;
    idx[i] = idx[j] as number;
    idx[j] = t;
  }
  return idx.slice(0, k).sort((a, b) => a - b);
}

export interface VersionAttributions {
  challenger: AttributionSummary;
  champion?: AttributionSummary;
  drift?: AttributionDrift;
}

export async function explainVersions(args: {
  challenger: ExplainableModel;
  champion?: ExplainableModel;
  rows: readonly Row[];
  segments?: readonly string[];
  background: readonly Row[];
  seed?: number;
  nsamples?: number;
  /** Labels of `rows`: with them, permutation importance (ROC AUC) rides along. */
  labels?: ArrayLike<number>;
}): Promise<VersionAttributions> {
  const seed = args.seed ?? DEFAULT_EXPLAIN_SEED;
  const models = args.champion ? [args.challenger, args.champion] : [args.challenger];
  let tree = models.every((m) => m.tree !== undefined);
  for (const m of models) if (tree) tree = await m.treeMatches(args.background);
  const nsamples = args.nsamples ?? DEFAULT_EVALUATION_KERNEL_SAMPLES;
  const summaries: AttributionSummary[] = [];
  for (const m of models) {
    if (tree) {
      const r = await treeShapRows(m, args.rows, args.background, 'features');
      summaries.push(
        globalImportance({
          method: 'tree-shap',
          output: 'margin',
          features: m.features,
          values: r.values,
          segments: args.segments,
          background: args.background.length,
          seed,
        }),
      );
    } else {
      const r = await kernelShap(m, args.rows, args.background, { nsamples, seed });
      summaries.push(
        globalImportance({
          method: 'kernel-shap',
          output: 'probability',
          features: m.features,
          values: r.values,
          segments: args.segments,
          background: args.background.length,
          nsamples,
          seed,
        }),
      );
    }
  }
  if (args.labels) {
    const labels = args.labels;
    let positives = 0;
    for (let i = 0; i < labels.length; i++) positives += labels[i] as number;
    if (positives > 0 && positives < labels.length) {
      for (const [k, m] of models.entries()) {
        const p = await permutationImportance(m, args.rows, labels, { seed, scoring: 'roc_auc' });
        const rec = (v: Float64Array) => Object.fromEntries(m.features.map((f, j) => [f, v[j] as number]));
        (summaries[k] as AttributionSummary).permutation = {
          scoring: 'roc_auc',
          baseline: p.baseline,
          repeats: DEFAULT_PERMUTATION_REPEATS,
          mean: rec(p.mean),
          std: rec(p.std),
        };
      }
    }
  }
  const [challenger, champion] = summaries as [AttributionSummary, AttributionSummary | undefined];
  return champion ? { challenger, champion, drift: attributionDrift(champion, challenger) } : { challenger };
}
