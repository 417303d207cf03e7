/**
 * Tree ensembles read from an ONNX graph (ai.onnx.ml TreeEnsembleClassifier / TreeEnsembleRegressor), their raw
 * margin, and exact interventional TreeSHAP over them.
 *
 * - Structure: every `nodes_*` attribute, leaf weights from `class_*` / `target_*` for the explained class
 *   (binary classifiers with one weight column: class 0's weights are the margin of the positive class, as
 *   onnxruntime scores them), `base_values`, `post_transform`.
 * - Column owners: which model input each column of the ensemble's input tensor comes from, traced through the
 *   preprocessing ops skl2onnx emits (Concat, Imputer, Scaler, OneHotEncoder, Reshape, Identity, Cast,
 *   Normalizer-free). A column that two inputs feed, or an op outside that list, makes the model not separable:
 *   TreeSHAP is then unavailable and callers fall back to KernelSHAP.
 * - Interventional TreeSHAP (Lundberg et al. 2020, "From local explanations to global understanding", the
 *   algorithm shap's TreeExplainer runs with `feature_perturbation="interventional"`): for each background row
 *   the tree is walked with the explained row and the background row together; where they part on a player's
 *   split, the player goes to the explained side or the background side once and for all; at a leaf reached with
 *   `nx` players on the explained side and `nb` on the background side each explained-side player gains
 *   `v (nx-1)! nb! / (nx+nb)!` and each background-side player loses `v nx! (nb-1)! / (nx+nb)!`. Averaged over
 *   the background these are the exact Shapley values of `v(S) = mean_b margin(x_S, b_~S)`, which sum to
 *   `margin(x) - mean_b margin(b)`. Players are either the model's inputs (a one-hot block counts as its
 *   categorical input) or the ensemble's input columns.
 */
import type { OnnxGraph, OnnxNode } from './onnx-graph';

/** Split modes of ONNX tree ensembles. */
const MODES = [
  'BRANCH_LEQ',
  'BRANCH_LT',
  'BRANCH_GTE',
  'BRANCH_GT',
  'BRANCH_EQ',
  'BRANCH_NEQ',
  'LEAF',
] as const;
const LEAF = 6;
/** Most players an interventional walk tracks in one bitmask. */
export const MAX_TREESHAP_PLAYERS = 30;

export interface TreeEnsemble {
  kind: 'classifier' | 'regressor';
  /** Name of the tensor the ensemble reads ([N, columns]). */
  inputTensor: string;
  columns: number;
  base: number;
  postTransform: string;
  /** Per tree, the flattened node arrays; node 0 is the root. */
  trees: Array<{
    feature: Int32Array;
    threshold: Float64Array;
    mode: Uint8Array;
    yes: Int32Array;
    no: Int32Array;
    missingYes: Uint8Array;
    value: Float64Array;
  }>;
}

function attr(node: OnnxNode, name: string) {
  return node.attributes.get(name);
}

/** Reads the graph's single tree ensemble, or undefined when it has none (or more than one). */
export function readTreeEnsemble(graph: OnnxGraph): TreeEnsemble | undefined {
  const nodes = graph.nodes.filter(
    (n) =>
      n.domain === 'ai.onnx.ml' &&
      (n.opType === 'TreeEnsembleClassifier' || n.opType === 'TreeEnsembleRegressor'),
  );
  if (nodes.length !== 1) return undefined;
  const node = nodes[0] as OnnxNode;
  const kind = node.opType === 'TreeEnsembleClassifier' ? 'classifier' : 'regressor';
  const prefix = kind === 'classifier' ? 'class' : 'target';
  const treeIds = attr(node, 'nodes_treeids')?.ints ?? [];
  const nodeIds = attr(node, 'nodes_nodeids')?.ints ?? [];
  const featureIds = attr(node, 'nodes_featureids')?.ints ?? [];
  const values = attr(node, 'nodes_values')?.floats ?? [];
  const modes = attr(node, 'nodes_modes')?.strings ?? [];
  const trueIds = attr(node, 'nodes_truenodeids')?.ints ?? [];
  const falseIds = attr(node, 'nodes_falsenodeids')?.ints ?? [];
  const missing = attr(node, 'nodes_missing_value_tracks_true')?.ints ?? [];
  const wTree = attr(node, `${prefix}_treeids`)?.ints ?? [];
  const wNode = attr(node, `${prefix}_nodeids`)?.ints ?? [];
  const wId = attr(node, `${prefix}_ids`)?.ints ?? [];
  const wVal = attr(node, `${prefix}_weights`)?.floats ?? [];
  if (treeIds.length === 0 || values.length !== treeIds.length) return undefined;
  // Binary classifier with one weight column (class_ids all 0) or a single-target regressor: explain target 0.
  if (wId.some((c) => c !== 0)) return undefined;
  const byTree = new Map<number, number[]>();
  treeIds.forEach((t, k) => {
    let list = byTree.get(t);
    if (!list) byTree.set(t, (list = []));
    list.push(k);
  });
  const weights = new Map<string, number>();
  wTree.forEach((t, k) => {
    const key = `${t}:${wNode[k]}`;
    weights.set(key, (weights.get(key) ?? 0) + (wVal[k] as number));
  });
  let columns = 0;
  const trees: TreeEnsemble['trees'] = [];
  for (const [t, ks] of [...byTree.entries()].sort((a, b) => a[0] - b[0])) {
    const size = Math.max(...ks.map((k) => nodeIds[k] as number)) + 1;
    const tree = {
      feature: new Int32Array(size),
      threshold: new Float64Array(size),
      mode: new Uint8Array(size).fill(LEAF),
      yes: new Int32Array(size),
      no: new Int32Array(size),
      missingYes: new Uint8Array(size),
      value: new Float64Array(size),
    };
    for (const k of ks) {
      const id = nodeIds[k] as number;
      const mode = MODES.indexOf(modes[k] as (typeof MODES)[number]);
      if (mode < 0) return undefined;
      tree.mode[id] = mode;
      tree.feature[id] = featureIds[k] as number;
      tree.threshold[id] = values[k] as number;
      tree.yes[id] = trueIds[k] as number;
      tree.no[id] = falseIds[k] as number;
      tree.missingYes[id] = missing[k] ?? 0;
      tree.value[id] = weights.get(`${t}:${id}`) ?? 0;
      if (mode !== LEAF) columns = Math.max(columns, (featureIds[k] as number) + 1);
    }
    trees.push(tree);
  }
  const base = attr(node, 'base_values')?.floats[0] ?? 0;
  const postTransform = attr(node, 'post_transform')?.s ?? 'NONE';
  return { kind, inputTensor: node.inputs[0] as string, columns, base, postTransform, trees };
}

/** True when the split sends `v` to the `yes` child. */
function goesYes(mode: number, v: number, threshold: number, missingYes: number): boolean {
  if (Number.isNaN(v)) return missingYes === 1;
  switch (mode) {
    case 0:
      return v <= threshold;
    case 1:
      return v < threshold;
    case 2:
      return v >= threshold;
    case 3:
      return v > threshold;
    case 4:
      return v === threshold;
    default:
      return v !== threshold;
  }
}

/** Raw margin (base plus the reached leaves) of one row of the ensemble's input. */
export function treeMargin(ensemble: TreeEnsemble, row: ArrayLike<number>): number {
  let sum = ensemble.base;
  for (const t of ensemble.trees) {
    let n = 0;
    while (t.mode[n] !== LEAF) {
      n = goesYes(
        t.mode[n] as number,
        row[t.feature[n] as number] as number,
        t.threshold[n] as number,
        t.missingYes[n] as number,
      )
        ? (t.yes[n] as number)
        : (t.no[n] as number);
    }
    sum += t.value[n] as number;
  }
  return sum;
}

/** The model output for a margin, by post_transform (LOGISTIC: the positive-class probability). */
export function transformMargin(ensemble: TreeEnsemble, margin: number): number {
  return ensemble.postTransform === 'LOGISTIC' ? 1 / (1 + Math.exp(-margin)) : margin;
}

/**
 * For each column of `tensor`, the index of the graph input it comes from (-1: a constant), traced through the
 * per-column preprocessing ops; undefined when the trace meets an op it does not know or a column fed by two
 * inputs.
 */
export function columnOwners(
  graph: OnnxGraph,
  tensor: string,
  inputs: readonly string[],
): number[] | undefined {
  const owners = new Map<string, number[]>();
  inputs.forEach((name, i) => owners.set(name, [i]));
  const producer = new Map<string, OnnxNode>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const visiting = new Set<string>();
  const trace = (name: string): number[] | undefined => {
    const known = owners.get(name);
    if (known) return known;
    const node = producer.get(name);
    if (!node || visiting.has(name)) return undefined;
    visiting.add(name);
    let out: number[] | undefined;
    const first = node.inputs[0] === undefined ? undefined : trace(node.inputs[0]);
    switch (node.opType) {
      case 'Concat': {
        const parts = node.inputs.map(trace);
        out = parts.some((p) => p === undefined) ? undefined : parts.flatMap((p) => p as number[]);
        break;
      }
      case 'Imputer':
      case 'Scaler':
      case 'Identity':
      case 'Cast':
      case 'Reshape':
      case 'Flatten':
        out = first;
        break;
      case 'OneHotEncoder': {
        const cats =
          (node.attributes.get('cats_strings')?.strings.length ?? 0) ||
          (node.attributes.get('cats_int64s')?.ints.length ?? 0);
        out =
          first && first.length === 1 ? Array.from({ length: cats }, () => first[0] as number) : undefined;
        break;
      }
      default:
        out = undefined;
    }
    visiting.delete(name);
    if (out) owners.set(name, out);
    return out;
  };
  return trace(tensor);
}

/** A leaf reachable by a hybrid of two rows: its value and which players must come from which row. */
export interface HybridLeaf {
  value: number;
  /** Players that must take the explained row's value (bitmask). */
  fromX: number;
  /** Players that must take the background row's value (bitmask). */
  fromB: number;
}

/**
 * Every leaf of `tree` that some hybrid of `x` and `b` reaches, with the coalition condition for it; the leaves'
 * conditions partition the coalitions, so exactly one holds for any coalition S (`S ⊇ fromX`, `S ∩ fromB = ∅`).
 */
export function hybridLeaves(
  tree: TreeEnsemble['trees'][number],
  x: ArrayLike<number>,
  b: ArrayLike<number>,
  player: ArrayLike<number>,
  out: HybridLeaf[],
): void {
  // Depth-first with an explicit stack of (node, fromX, fromB): no closure per call.
  const stack = HYBRID_STACK;
  let top = 0;
  stack[top++] = 0;
  stack[top++] = 0;
  stack[top++] = 0;
  while (top > 0) {
    let fromB = stack[--top] as number;
    const fromX = stack[--top] as number;
    let n = stack[--top] as number;
    while (tree.mode[n] !== LEAF) {
      const f = tree.feature[n] as number;
      const mode = tree.mode[n] as number;
      const thr = tree.threshold[n] as number;
      const miss = tree.missingYes[n] as number;
      const xi = goesYes(mode, x[f] as number, thr, miss);
      const bi = goesYes(mode, b[f] as number, thr, miss);
      const yes = tree.yes[n] as number;
      const no = tree.no[n] as number;
      if (xi === bi) {
        n = xi ? yes : no;
        continue;
      }
      const p = player[f] as number;
      const bit = p < 0 ? 0 : 1 << p;
      if (bit === 0 || fromX & bit) n = xi ? yes : no;
      else if (fromB & bit) n = bi ? yes : no;
      else {
        stack[top++] = xi ? yes : no;
        stack[top++] = fromX | bit;
        stack[top++] = fromB;
        n = bi ? yes : no;
        fromB |= bit;
      }
    }
    out.push({ value: tree.value[n] as number, fromX, fromB });
  }
}

/** Scratch stack of {@link hybridLeaves}: three entries per pending branch, at most one branch per player. */
const HYBRID_STACK = new Int32Array(3 * (MAX_TREESHAP_PLAYERS + 2));

function popcount(v: number): number {
  let c = 0;
  for (let m = v; m !== 0; m &= m - 1) c++;
  return c;
}

/** `W[a][c] = a! c! / (a + c + 1)!`, the Shapley weight of one player joining `a` before it and `c` after. */
function shapleyWeights(players: number): Float64Array[] {
  const fact = [1];
  for (let k = 1; k <= players + 1; k++) fact.push((fact[k - 1] as number) * k);
  return Array.from({ length: players + 1 }, (_, a) =>
    Float64Array.from({ length: players + 1 }, (_, c) =>
      a + c + 1 <= players + 1
        ? ((fact[a] as number) * (fact[c] as number)) / (fact[a + c + 1] as number)
        : 0,
    ),
  );
}

export interface TreeShapResult {
  /** One value per player. */
  values: Float64Array;
  /** mean over the background of the margin. */
  expectedValue: number;
  /** Margin of the explained row. */
  margin: number;
}

/**
 * Exact interventional TreeSHAP of `x` (a row of the ensemble's input) against `background` rows, with
 * `player[column]` naming the player of each column (-1: none) and `players` players in all.
 */
export function treeShap(
  ensemble: TreeEnsemble,
  x: ArrayLike<number>,
  background: readonly ArrayLike<number>[],
  player: ArrayLike<number>,
  players: number,
): TreeShapResult {
  if (players > MAX_TREESHAP_PLAYERS)
    throw new Error(`TreeSHAP tracks at most ${MAX_TREESHAP_PLAYERS} players, got ${players}`);
  const W = shapleyWeights(players);
  const values = new Float64Array(players);
  const leaves: HybridLeaf[] = [];
  let expected = 0;
  for (const b of background) {
    expected += treeMargin(ensemble, b);
    for (const tree of ensemble.trees) {
      leaves.length = 0;
      hybridLeaves(tree, x, b, player, leaves);
      for (const leaf of leaves) {
        const nx = popcount(leaf.fromX);
        const nb = popcount(leaf.fromB);
        if (nx + nb === 0) continue;
        const gain = nx > 0 ? leaf.value * ((W[nx - 1] as Float64Array)[nb] as number) : 0;
        const loss = nb > 0 ? leaf.value * ((W[nx] as Float64Array)[nb - 1] as number) : 0;
        for (let p = 0; p < players; p++) {
          const bit = 1 << p;
          if (leaf.fromX & bit) values[p] = (values[p] as number) + gain;
          else if (leaf.fromB & bit) values[p] = (values[p] as number) - loss;
        }
      }
    }
  }
  for (let p = 0; p < players; p++) values[p] = (values[p] as number) / background.length;
  return { values, expectedValue: expected / background.length, margin: treeMargin(ensemble, x) };
}
