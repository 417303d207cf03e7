/**
 * Permutation importance (Breiman 2001, as scikit-learn's `permutation_importance`): the drop of a score when one
 * feature's column is shuffled across the rows, `repeats` times per feature; mean and standard deviation (ddof 0)
 * over the repeats. Scores: ROC AUC or average precision (PR AUC) of the positive-class probability.
 */
import { createSeededRandom } from '../core/stats/random';
import { prAuc, rocAuc } from '../core/stats/metrics';
import type { ExplainableModel, Row } from './model';

/** Shuffles per feature: scikit-learn's default. */
export const DEFAULT_PERMUTATION_REPEATS = 5;
/** Seed of the shuffles: fixed so a re-run reproduces the importances. */
export const DEFAULT_PERMUTATION_SEED = 20_261_203;

export type PermutationScoring = 'roc_auc' | 'average_precision';

export interface PermutationResult {
  features: readonly string[];
  baseline: number;
  mean: Float64Array;
  std: Float64Array;
  /** `importances[j][r]`: drop of the score in repeat r for feature j. */
  importances: Float64Array[];
}

export async function permutationImportance(
  model: ExplainableModel,
  rows: readonly Row[],
  labels: ArrayLike<number>,
  options: { repeats?: number; seed?: number; scoring?: PermutationScoring } = {},
): Promise<PermutationResult> {
  const repeats = options.repeats ?? DEFAULT_PERMUTATION_REPEATS;
  const score = (options.scoring ?? 'roc_auc') === 'roc_auc' ? rocAuc : prAuc;
  const rng = createSeededRandom(options.seed ?? DEFAULT_PERMUTATION_SEED);
  const baseline = score(labels, await model.predict(rows));
  const F = model.features.length;
  const n = rows.length;
  // Every shuffled copy of every feature is scored in one batch.
  const shuffled: Row[] = [];
  for (let j = 0; j < F; j++) {
    for (let r = 0; r < repeats; r++) {
      const perm = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const k = rng.nextInt(i + 1);
        const t = perm[i] as number;
        perm[i] = perm[k] as number;
        perm[k] = t;
      }
      for (let i = 0; i < n; i++) {
        const row = (rows[i] as Row).slice();
        row[j] = (rows[perm[i] as number] as Row)[j] as Row[number];
        shuffled.push(row);
      }
    }
  }
  const preds = await model.predict(shuffled);
  const importances = Array.from({ length: F }, () => new Float64Array(repeats));
  const mean = new Float64Array(F);
  const std = new Float64Array(F);
  for (let j = 0; j < F; j++) {
    const imp = importances[j] as Float64Array;
    for (let r = 0; r < repeats; r++) {
      const from = (j * repeats + r) * n;
      imp[r] = baseline - score(labels, preds.subarray(from, from + n));
    }
    const m = imp.reduce((a, b) => a + b, 0) / repeats;
    mean[j] = m;
    std[j] = Math.sqrt(imp.reduce((a, b) => a + (b - m) * (b - m), 0) / repeats);
  }
  return { features: model.features, baseline, mean, std, importances };
}
