/**
 * Scores ONNX models that follow the job contract (one input tensor per feature column, named
 * after it, [N, 1]; float32 for numeric, string for categorical; a [N, 2] probability output) with
 * onnxruntime-node, and measures single-example latency.
 *
 * Latency of models that are compared (champion and challenger) is timed interleaved: after an
 * untimed warm-up, every timed row is scored by each model in turn, the order alternating from row
 * to row (A,B then B,A: see {@link interleavedSchedule}), over the same rows. Background load on
 * the machine then lands on both models alike instead of on whichever happened to be timed second.
 */
import * as ort from 'onnxruntime-node';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import type { Holdout } from './holdout';

/** Examples timed one at a time for the latency guardrail: enough for a stable p95 and p99. */
export const LATENCY_SAMPLE = 200;
/** Untimed warm-up calls per model before latency sampling (first calls allocate). */
export const LATENCY_WARMUP = 20;

export const InputSchemaSchema = z.object({
  inputs: z
    .array(
      z.object({
        name: z.string(),
        kind: z.enum(['numeric', 'categorical']),
        dtype: z.enum(['float32', 'string']),
        order: z.number().int(),
      }),
    )
    .min(1),
  probabilityOutput: z.string(),
  positiveClassIndex: z.number().int().min(0),
});
export type ModelInputSchema = z.infer<typeof InputSchemaSchema>;

/**
 * A model that breaks the job contract. `modelIndex` is the position of the offending model in the
 * list given to {@link scoreModels} (absent when thrown for a single input schema).
 */
export class ModelContractError extends Error {
  override readonly name = 'ModelContractError';
  constructor(
    message: string,
    readonly modelIndex?: number,
  ) {
    super(message);
  }
}

export function parseInputSchema(bytes: Buffer): ModelInputSchema {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ModelContractError(`input_schema.json is not JSON: ${(err as Error).message}`);
  }
  const r = InputSchemaSchema.safeParse(json);
  if (!r.success) throw new ModelContractError(`input_schema.json: ${formatZodError(r.error)}`);
  return r.data;
}

function feeds(
  schema: ModelInputSchema,
  holdout: Holdout,
  from: number,
  to: number,
): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  const n = to - from;
  for (const input of schema.inputs) {
    const raw = holdout.columns[input.name];
    if (!raw) throw new ModelContractError(`model expects input "${input.name}", which the holdout lacks`);
    if (input.dtype === 'float32') {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = raw[from + i] as string;
        data[i] = v === '' ? Number.NaN : Number(v);
      }
      out[input.name] = new ort.Tensor('float32', data, [n, 1]);
    } else {
      out[input.name] = new ort.Tensor('string', raw.slice(from, to), [n, 1]);
    }
  }
  return out;
}

/**
 * The positive-class column of an `n`-row call's result (the schema's probability output, `[n, k]`);
 * undefined when that output is missing or not `n` rows with the positive class among its columns.
 * Callers say what a bad output means for them.
 */
export function positiveScores(
  result: ort.InferenceSession.OnnxValueMapType,
  schema: ModelInputSchema,
  n: number,
): Float64Array | undefined {
  const probs = result[schema.probabilityOutput];
  if (!probs || probs.dims.length !== 2 || probs.dims[0] !== n) return undefined;
  const k = probs.dims[1] as number;
  if (k <= schema.positiveClassIndex) return undefined;
  const data = probs.data as Float32Array;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) scores[i] = data[i * k + schema.positiveClassIndex] as number;
  return scores;
}

export interface ScoreResult {
  scores: Float64Array;
  latenciesMs: number[];
}

/** One model to score: its ONNX bytes and the input schema it was exported with. */
export interface ModelToScore {
  onnx: Buffer;
  schema: ModelInputSchema;
}

/** One single-example call of the latency sample: which model scores which holdout row. */
export interface TimedCall {
  model: number;
  row: number;
}

/**
 * The order of single-example calls for `models` models over rows `0..rows-1`: each row is scored
 * by every model, in list order on even rows and in reverse order on odd rows (for two models
 * A,B,B,A,A,B,...), so neither model is systematically first after the other's call.
 */
export function interleavedSchedule(models: number, rows: number): TimedCall[] {
  const calls: TimedCall[] = [];
  for (let row = 0; row < rows; row++) {
    for (let k = 0; k < models; k++) calls.push({ model: row % 2 === 0 ? k : models - 1 - k, row });
  }
  return calls;
}

interface OpenModel {
  session: ort.InferenceSession;
  schema: ModelInputSchema;
}

/** Scores every holdout row in one batch and returns the positive-class probabilities. */
async function scoreAll(model: OpenModel, holdout: Holdout): Promise<Float64Array> {
  const { session, schema } = model;
  if (!session.outputNames.includes(schema.probabilityOutput)) {
    throw new ModelContractError(
      `model has outputs ${session.outputNames.join(', ')}, not the declared "${schema.probabilityOutput}"`,
    );
  }
  const result = await session.run(feeds(schema, holdout, 0, holdout.rows), [schema.probabilityOutput]);
  const scores = positiveScores(result, schema, holdout.rows);
  if (!scores) {
    throw new ModelContractError(
      `probability output has shape [${result[schema.probabilityOutput]?.dims.join(', ')}], expected [${holdout.rows}, k]`,
    );
  }
  return scores;
}

/** Runs `model` on one holdout row; the feeds are built before the clock starts. */
async function timeOne(model: OpenModel, holdout: Holdout, row: number): Promise<number> {
  const f = feeds(model.schema, holdout, row, row + 1);
  const t0 = performance.now();
  await model.session.run(f, [model.schema.probabilityOutput]);
  return performance.now() - t0;
}

/**
 * Scores each model on the whole holdout, then times single-example calls of all of them
 * interleaved over the same rows (see the module comment). Results are in the order of `models`.
 * A contract violation throws {@link ModelContractError} with the offending model's index.
 */
export async function scoreModels(models: readonly ModelToScore[], holdout: Holdout): Promise<ScoreResult[]> {
  const open: OpenModel[] = [];
  try {
    const scores: Float64Array[] = [];
    for (const [index, m] of models.entries()) {
      try {
        const model = { session: await ort.InferenceSession.create(m.onnx), schema: m.schema };
        open.push(model);
        scores.push(await scoreAll(model, holdout));
      } catch (err) {
        if (err instanceof ModelContractError) throw new ModelContractError(err.message, index);
        throw err;
      }
    }
    const sample = Math.min(LATENCY_SAMPLE, holdout.rows);
    for (const call of interleavedSchedule(open.length, Math.min(LATENCY_WARMUP, sample))) {
      await timeOne(open[call.model] as OpenModel, holdout, call.row);
    }
    const latenciesMs: number[][] = open.map(() => []);
    for (const call of interleavedSchedule(open.length, sample)) {
      const ms = await timeOne(open[call.model] as OpenModel, holdout, call.row);
      (latenciesMs[call.model] as number[]).push(ms);
    }
    return scores.map((s, i) => ({ scores: s, latenciesMs: latenciesMs[i] as number[] }));
  } finally {
    for (const m of open) await m.session.release();
  }
}

/** Scores one model and times it alone (see {@link scoreModels} for models that are compared). */
export async function scoreModel(
  onnx: Buffer,
  schema: ModelInputSchema,
  holdout: Holdout,
): Promise<ScoreResult> {
  const [result] = await scoreModels([{ onnx, schema }], holdout);
  return result as ScoreResult;
}
