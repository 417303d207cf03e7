/**
 * A trained linear classifier over hashed n-grams, served by onnxruntime-node. The ONNX graph (written
 * by src/guardrails/train/fit.py) takes the sparse features as two inputs, `indices` (int32 [N]) and
 * `values` (float32 [N, 1]), gathers the weight rows, sums, adds the bias and applies a sigmoid: one
 * probability per head (`scores`, float32 [K]). Its sidecar `model.json` names the heads and carries the
 * featuriser version and the thresholds chosen on the benign validation split.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { FEATURE_DIM, FEATURISER_VERSION, Featuriser } from './features';

/** One intra-op thread: the graph is a gather and a sum, threads would only add hand-off latency. */
export const CLASSIFIER_THREADS = 1;

export const ModelMetaSchema = z
  .object({
    kind: z.enum(['input', 'output']),
    heads: z.array(z.string().min(1)).min(1),
    dim: z.literal(FEATURE_DIM),
    featuriserVersion: z.literal(FEATURISER_VERSION),
    /** Per head: the score above which a benign validation message is a false positive at 1% and 0.1%. */
    thresholds: z.record(z.string(), z.object({ fpr1: z.number(), fpr01: z.number() })),
    digest: z.string().min(8),
    trainedOn: z.record(z.string(), z.number().int().nonnegative()),
  })
  .strict();
export type ModelMeta = z.infer<typeof ModelMetaSchema>;

export class LinearTextClassifier {
  private readonly featuriser = new Featuriser();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly meta: ModelMeta,
  ) {}

  /** Loads `<dir>/model.onnx` and `<dir>/model.json`; a sidecar that does not parse names the field. */
  static async load(dir: string): Promise<LinearTextClassifier> {
    const raw: unknown = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const meta = ModelMetaSchema.safeParse(raw);
    if (!meta.success) {
      const issue = meta.error.issues[0];
      throw new Error(`${dir}/model.json: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
    }
    const session = await ort.InferenceSession.create(readFileSync(path.join(dir, 'model.onnx')), {
      intraOpNumThreads: CLASSIFIER_THREADS,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new LinearTextClassifier(session, meta.data);
  }

  /** Probabilities per head, in `meta.heads` order. */
  async score(text: string): Promise<number[]> {
    const f = this.featuriser.featurise(text);
    // An empty text still gets one (zero-valued) feature so the graph never sees an empty axis.
    const indices = f.indices.length > 0 ? f.indices : Int32Array.of(0);
    const values = f.values.length > 0 ? f.values : Float32Array.of(0);
    const out = await this.session.run({
      indices: new ort.Tensor('int32', indices, [indices.length]),
      values: new ort.Tensor('float32', values, [values.length, 1]),
    });
    const scores = out.scores as ort.Tensor;
    return Array.from(scores.data as Float32Array);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
