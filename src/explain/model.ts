/**
 * A served ONNX model as the explainers see it: rows of feature values in the input schema's order, batched
 * positive-class probabilities from onnxruntime-node, and (when the graph is a separable tree ensemble) the
 * ensemble's input for each row, so TreeSHAP and the exact tree value function can run on the very numbers the
 * ensemble sees. The tree path is used only after it reproduced onnxruntime's probabilities on sample rows.
 */
import * as ort from 'onnxruntime-node';
import { positiveScores, type ModelInputSchema } from '../eval/score';
import { readOnnxGraph, withExtraOutput } from './onnx-graph';
import {
  columnOwners,
  readTreeEnsemble,
  transformMargin,
  treeMargin,
  type TreeEnsemble,
} from './tree-ensemble';

/** A feature value: a number (NaN for missing) for numeric inputs, a string for categorical ones. */
export type FeatureValue = number | string;
/** One row, in the input schema's order. */
export type Row = readonly FeatureValue[];

/** Rows per onnxruntime call: large enough to amortise the call, small enough to bound memory. */
export const PREDICT_BATCH_ROWS = 65_536;
/** Largest |p_tree - p_onnxruntime| accepted before the tree path is trusted (float32 rounding). */
export const TREE_PARITY_TOLERANCE = 1e-5;
/** Intra-op threads of the sessions the explainers open: one, as the gateway's (faster on a loaded 2-core machine). */
export const EXPLAIN_INTRA_OP_THREADS = 1;
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: EXPLAIN_INTRA_OP_THREADS };

/** The tree structure of a model, with the input each ensemble column belongs to. */
export interface TreeView {
  ensemble: TreeEnsemble;
  /** `owner[column]`: index of the model input feeding the ensemble's column (-1: constant). */
  owner: Int32Array;
}

export class ExplainableModel {
  readonly features: readonly string[];
  private treeSession: ort.InferenceSession | undefined;
  private treeChecked: boolean | undefined;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly schema: ModelInputSchema,
    private readonly onnx: Uint8Array,
    readonly tree: TreeView | undefined,
    private readonly ownsSession: boolean,
  ) {
    this.features = [...schema.inputs].sort((a, b) => a.order - b.order).map((i) => i.name);
  }

  static async load(onnx: Uint8Array, schema: ModelInputSchema): Promise<ExplainableModel> {
    return ExplainableModel.open(
      await ort.InferenceSession.create(onnx, SESSION_OPTIONS),
      schema,
      onnx,
      true,
    );
  }

  /** Over a session someone else owns (the gateway's served version): {@link release} leaves it open. */
  static async fromSession(
    session: ort.InferenceSession,
    schema: ModelInputSchema,
    onnx: Uint8Array,
  ): Promise<ExplainableModel> {
    return ExplainableModel.open(session, schema, onnx, false);
  }

  private static async open(
    session: ort.InferenceSession,
    schema: ModelInputSchema,
    onnx: Uint8Array,
    owns: boolean,
  ): Promise<ExplainableModel> {
    const graph = readOnnxGraph(onnx);
    const ensemble = readTreeEnsemble(graph);
    const names = [...schema.inputs].sort((a, b) => a.order - b.order).map((i) => i.name);
    let tree: TreeView | undefined;
    if (ensemble) {
      const owners = columnOwners(graph, ensemble.inputTensor, names);
      if (owners && owners.length >= ensemble.columns) tree = { ensemble, owner: Int32Array.from(owners) };
    }
    return new ExplainableModel(session, schema, onnx, tree, owns);
  }

  async release(): Promise<void> {
    if (this.ownsSession) await this.session.release();
    await this.treeSession?.release();
  }

  private inputs() {
    return [...this.schema.inputs].sort((a, b) => a.order - b.order);
  }

  private feeds(rows: readonly Row[]): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    const n = rows.length;
    this.inputs().forEach((input, j) => {
      if (input.dtype === 'float32') {
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const v = (rows[i] as Row)[j];
          data[i] = typeof v === 'number' ? v : Number.NaN;
        }
        out[input.name] = new ort.Tensor('float32', data, [n, 1]);
      } else {
        const data = new Array<string>(n);
        for (let i = 0; i < n; i++) data[i] = String((rows[i] as Row)[j] ?? '');
        out[input.name] = new ort.Tensor('string', data, [n, 1]);
      }
    });
    return out;
  }

  /** The positive-class column of an `n`-row call's result. */
  private scoresOf(result: ort.InferenceSession.OnnxValueMapType, n: number): Float64Array {
    const scores = positiveScores(result, this.schema, n);
    if (!scores) throw new Error(`model output ${this.schema.probabilityOutput} is not a [N, k] tensor`);
    return scores;
  }

  /** Positive-class probabilities of `rows`, in batches of {@link PREDICT_BATCH_ROWS}. */
  async predict(rows: readonly Row[]): Promise<Float64Array> {
    const out = new Float64Array(rows.length);
    const { probabilityOutput } = this.schema;
    for (let from = 0; from < rows.length; from += PREDICT_BATCH_ROWS) {
      const chunk = rows.slice(from, from + PREDICT_BATCH_ROWS);
      const result = await this.session.run(this.feeds(chunk), [probabilityOutput]);
      out.set(this.scoresOf(result, chunk.length), from);
    }
    return out;
  }

  /** Per input (schema order): true for a float input, false for a string one. */
  numericInputs(): boolean[] {
    return this.inputs().map((i) => i.dtype === 'float32');
  }

  /**
   * Positive-class probabilities of `n` rows given as columns in schema order (Float32Array for float inputs,
   * strings for string inputs): one onnxruntime call, no row objects.
   */
  async predictColumns(
    columns: ReadonlyArray<Float32Array | readonly string[]>,
    n: number,
  ): Promise<Float64Array> {
    const feeds: Record<string, ort.Tensor> = {};
    this.inputs().forEach((input, j) => {
      const c = columns[j] as Float32Array | string[];
      feeds[input.name] =
        input.dtype === 'float32'
          ? new ort.Tensor('float32', c as Float32Array, [n, 1])
          : new ort.Tensor('string', c as string[], [n, 1]);
    });
    const result = await this.session.run(feeds, [this.schema.probabilityOutput]);
    return this.scoresOf(result, n);
  }

  /** The tree ensemble's input for each row (onnxruntime runs the preprocessing); requires {@link tree}. */
  async transform(rows: readonly Row[]): Promise<Float32Array[]> {
    const tree = this.tree;
    if (!tree) throw new Error('model has no separable tree ensemble');
    this.treeSession ??= await ort.InferenceSession.create(
      withExtraOutput(this.onnx, tree.ensemble.inputTensor),
      SESSION_OPTIONS,
    );
    const out: Float32Array[] = [];
    for (let from = 0; from < rows.length; from += PREDICT_BATCH_ROWS) {
      const chunk = rows.slice(from, from + PREDICT_BATCH_ROWS);
      const result = await this.treeSession.run(this.feeds(chunk), [tree.ensemble.inputTensor]);
      const t = result[tree.ensemble.inputTensor];
      if (!t) throw new Error(`model did not return ${tree.ensemble.inputTensor}`);
      const width = t.dims[t.dims.length - 1] as number;
      const data = t.data as Float32Array;
      for (let i = 0; i < chunk.length; i++) out.push(data.slice(i * width, (i + 1) * width));
    }
    return out;
  }

  /**
   * True when the tree path reproduces onnxruntime's probabilities on `rows` within
   * {@link TREE_PARITY_TOLERANCE} (checked once per model, on the first rows given).
   */
  async treeMatches(rows: readonly Row[]): Promise<boolean> {
    if (!this.tree) return false;
    if (this.treeChecked !== undefined) return this.treeChecked;
    const tree = this.tree;
    const [probs, transformed] = await Promise.all([this.predict(rows), this.transform(rows)]);
    let ok = true;
    transformed.forEach((t, i) => {
      const p = transformMargin(tree.ensemble, treeMargin(tree.ensemble, t));
      if (!(Math.abs(p - (probs[i] as number)) <= TREE_PARITY_TOLERANCE)) ok = false;
    });
    this.treeChecked = ok;
    return ok;
  }
}
