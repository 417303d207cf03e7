/**
 * Exact interventional TreeSHAP for models whose graph is a separable tree ensemble (src/explain/tree-ensemble.ts),
 * in the ensemble's raw output (the log-odds margin of a classifier): values per model input (a one-hot block
 * counts as its categorical input) or per column of the ensemble's input (as shap's TreeExplainer sees a
 * scikit-learn model after its preprocessing).
 */
import type { ExplainableModel, Row } from './model';
import { treeShap } from './tree-ensemble';

export interface TreeShapRowsResult {
  /** Player names: the model's inputs, or `column_<k>` per ensemble column. */
  players: string[];
  values: Float64Array[];
  /** mean over the background of the margin. */
  expectedValue: number;
  /** Margin of each row. */
  margins: Float64Array;
}

/** TreeSHAP of `rows` against `background`; throws when the model has no separable tree ensemble. */
export async function treeShapRows(
  model: ExplainableModel,
  rows: readonly Row[],
  background: readonly Row[],
  players: 'features' | 'columns' = 'features',
): Promise<TreeShapRowsResult> {
  const tree = model.tree;
  if (!tree)
    throw new Error('TreeSHAP needs a tree ensemble the graph exposes (TreeEnsembleClassifier/Regressor)');
  if (background.length === 0) throw new Error('TreeSHAP needs at least one background row');
  const [tx, tb] = await Promise.all([model.transform(rows), model.transform(background)]);
  const columns = tree.owner.length;
  const player = players === 'features' ? tree.owner : Int32Array.from({ length: columns }, (_, c) => c);
  const names =
    players === 'features' ? [...model.features] : Array.from({ length: columns }, (_, c) => `column_${c}`);
  let expectedValue = 0;
  const margins = new Float64Array(rows.length);
  const values = tx.map((x, i) => {
    const r = treeShap(tree.ensemble, x, tb, player, names.length);
    expectedValue = r.expectedValue;
    margins[i] = r.margin;
    return r.values;
  });
  return { players: names, values, expectedValue, margins };
}
