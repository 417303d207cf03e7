/**
 * Inference batching: the predictions a serving process is asked for within one turn of the event loop
 * run as one onnxruntime call, one row per prediction, instead of one call per request.
 *
 * Why: a call costs far more than a row. For the reference fraud model (a tree ensemble behind its
 * preprocessing graph) one call of one row takes about 35 us of CPU and each further row about 5 us, so
 * under load most of a prediction's cost was the call. Rows are independent in such a model, so a row's
 * answer does not depend on the rows batched with it; a load-time check ({@link enableBatching}) runs a
 * small batch against single-row calls and leaves batching off for a model where they disagree (or whose
 * batch dimension is fixed).
 *
 * No request waits for a batch to fill. onnxruntime-node runs a session's call in a `setImmediate`
 * callback after `run()` returns (onnxruntime-node/dist/backend.js), and reads the feeds only then. The
 * first prediction of a turn opens a batch: it schedules the batch's own `setImmediate` and then calls
 * `run()` with the batch's feeds object, whose tensors are placeholders until that first callback (which
 * runs before the call's, immediates being run in the order they were scheduled) fills them with the rows
 * that came meanwhile. So a batched prediction runs in the same turn as an unbatched one would: the
 * requests of a busy turn simply share the call. The load-time check also proves this order holds for the
 * installed onnxruntime; if it did not, the check fails and batching stays off.
 *
 * A batch that fails is retried one row per call, so one row cannot fail the others' requests.
 */
import * as ort from 'onnxruntime-node';
import type { FeatureSpec } from '../core/contracts/feature-spec';
import { DEFAULT_MAX_BATCH } from '../core/contracts/gateway';
import { positiveScores, type ModelInputSchema } from '../eval/score';
import type { FeatureValues } from './validation';

/** Largest difference between a batched and a single-row score the load-time check accepts. */
export const BATCH_CHECK_TOLERANCE = 1e-6;

interface Waiter {
  resolve: (score: number) => void;
  reject: (err: Error) => void;
}

interface Batch {
  rows: FeatureValues[];
  waiters: Waiter[];
  feeds: Record<string, ort.Tensor>;
}

/** The part of a loaded model a batcher needs. */
export interface BatchableModel {
  name: string;
  version: string;
  session: ort.InferenceSession;
  schema: ModelInputSchema;
}

/** Builds the feeds of `rows` (null: NaN or the missing category, as in the job contract). */
export function feedsOf(
  schema: ModelInputSchema,
  rows: readonly FeatureValues[],
  into: Record<string, ort.Tensor> = {},
): Record<string, ort.Tensor> {
  const n = rows.length;
  for (const input of schema.inputs) {
    const name = input.name;
    if (input.dtype === 'float32') {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = (rows[i] as FeatureValues)[name];
        data[i] = typeof v === 'number' ? v : Number.NaN;
      }
      into[name] = new ort.Tensor('float32', data, [n, 1]);
    } else {
      const data = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const v = (rows[i] as FeatureValues)[name];
        data[i] = typeof v === 'string' ? v : '';
      }
      into[name] = new ort.Tensor('string', data, [n, 1]);
    }
  }
  return into;
}

/** The positive-class scores of an `n`-row call's result; throws when the output is not `n` rows. */
export function scoresOf(
  model: BatchableModel,
  result: ort.InferenceSession.OnnxValueMapType,
  n: number,
): Float64Array {
  const scores = positiveScores(result, model.schema, n);
  if (!scores) {
    throw new Error(
      `model ${model.name} v${model.version}: output ${model.schema.probabilityOutput} is not a [${n}, k] tensor`,
    );
  }
  return scores;
}

/** One row, one call. */
export async function predictOne(model: BatchableModel, features: FeatureValues): Promise<number> {
  const result = await model.session.run(feedsOf(model.schema, [features]), [model.schema.probabilityOutput]);
  return scoresOf(model, result, 1)[0] as number;
}

export class InferenceBatcher {
  private open: Batch | undefined;
  /** While the load-time check runs: a failed batch is reported, not retried row by row. */
  private strict = false;

  constructor(
    private readonly model: BatchableModel,
    readonly maxBatch: number = DEFAULT_MAX_BATCH,
    /** Told the size of each call it makes for traffic (for the batch-size histogram). */
    private readonly onBatch?: (rows: number) => void,
  ) {}

  predict(features: FeatureValues): Promise<number> {
    const batch = this.open ?? this.start();
    batch.rows.push(features);
    if (batch.rows.length >= this.maxBatch) this.open = undefined;
    return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }));
  }

  private start(): Batch {
    const batch: Batch = { rows: [], waiters: [], feeds: {} };
    // Defined placeholders (onnxruntime checks each input is present when run() is called).
    for (const input of this.model.schema.inputs) batch.feeds[input.name] = null as unknown as ort.Tensor;
    this.open = batch;
    // Scheduled before run() schedules the call, so it runs first (see the module comment).
    setImmediate(() => this.fill(batch));
    this.model.session.run(batch.feeds, [this.model.schema.probabilityOutput]).then(
      (result) => this.settle(batch, result),
      (err: unknown) => this.failed(batch, err as Error),
    );
    return batch;
  }

  private fill(batch: Batch): void {
    if (this.open === batch) this.open = undefined;
    try {
      feedsOf(this.model.schema, batch.rows, batch.feeds);
      // The load-time check's batch is not traffic.
      if (!this.strict) this.onBatch?.(batch.rows.length);
    } catch {
      // Inside an immediate a throw would end the process: the placeholders stay, the call fails,
      // and each row is retried in a call of its own, where its error reaches its own request.
    }
  }

  private settle(batch: Batch, result: ort.InferenceSession.OnnxValueMapType): void {
    let scores: Float64Array;
    try {
      scores = scoresOf(this.model, result, batch.rows.length);
    } catch (err) {
      this.failed(batch, err as Error);
      return;
    }
    batch.waiters.forEach((w, i) => w.resolve(scores[i] as number));
  }

  private failed(batch: Batch, err: Error): void {
    if (this.strict || batch.rows.length === 1) {
      for (const w of batch.waiters) w.reject(err);
      return;
    }
    batch.rows.forEach((row, i) => {
      const w = batch.waiters[i] as Waiter;
      predictOne(this.model, row).then(w.resolve, w.reject);
    });
  }

  /**
   * Runs `rows` as one batch and one row per call; true when every batched score is within
   * {@link BATCH_CHECK_TOLERANCE} of its single-row score.
   */
  async agrees(rows: readonly FeatureValues[]): Promise<boolean> {
    this.strict = true;
    try {
      const single: number[] = [];
      for (const row of rows) single.push(await predictOne(this.model, row));
      const batched = await Promise.all(rows.map((row) => this.predict(row)));
      return batched.every((s, i) => Math.abs(s - (single[i] as number)) <= BATCH_CHECK_TOLERANCE);
    } catch {
      return false;
    } finally {
      this.strict = false;
      this.open = undefined;
    }
  }
}

/**
 * Rows for the load-time check, from the model's feature spec: each numeric feature at its lower and
 * upper bound, between them and missing; each categorical one at its first and last category, missing
 * and unseen.
 */
export function checkRows(spec: FeatureSpec): FeatureValues[] {
  const rows: FeatureValues[] = [{}, {}, {}, {}];
  for (const f of spec.features) {
    if (f.kind === 'numeric') {
      const lo = f.min ?? 0;
      const hi = f.max ?? lo + 1;
      [lo, hi, (lo + hi) / 2, null].forEach((v, i) => ((rows[i] as FeatureValues)[f.name] = v));
    } else {
      const cats = f.categories;
      [cats[0] ?? '', cats[cats.length - 1] ?? '', null, ''].forEach(
        (v, i) => ((rows[i] as FeatureValues)[f.name] = v),
      );
    }
  }
  return rows;
}

/**
 * A batcher for `model` when batched calls agree with single-row ones on {@link checkRows} (and
 * `maxBatch` allows batches); undefined otherwise, and the model is served one call per row.
 */
export async function enableBatching(
  model: BatchableModel & { spec: FeatureSpec },
  maxBatch: number,
  onBatch?: (rows: number) => void,
): Promise<InferenceBatcher | undefined> {
  if (maxBatch <= 1) return undefined;
  const batcher = new InferenceBatcher(model, maxBatch, onBatch);
  return (await batcher.agrees(checkRows(model.spec))) ? batcher : undefined;
}
