/**
 * Scores an ONNX model that follows the job contract (one input tensor per feature column, named
 * after it, [N, 1]; float32 for numeric, string for categorical; a [N, 2] probability output) with
 * onnxruntime-node, and measures single-example latency.
 */
import * as ort from 'onnxruntime-node';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import type { Holdout } from './holdout';

/** Examples timed one at a time for the latency guardrail: enough for a stable p95 and p99. */
export const LATENCY_SAMPLE = 200;
/** Untimed warm-up calls before latency sampling (first calls allocate). */
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

export class ModelContractError extends Error {
  override readonly name = 'ModelContractError';
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

export interface ScoreResult {
  scores: Float64Array;
  latenciesMs: number[];
}

export async function scoreModel(
  onnx: Buffer,
  schema: ModelInputSchema,
  holdout: Holdout,
): Promise<ScoreResult> {
  const session = await ort.InferenceSession.create(onnx);
  try {
    if (!session.outputNames.includes(schema.probabilityOutput)) {
      throw new ModelContractError(
        `model has outputs ${session.outputNames.join(', ')}, not the declared "${schema.probabilityOutput}"`,
      );
    }
    const result = await session.run(feeds(schema, holdout, 0, holdout.rows), [schema.probabilityOutput]);
    const probs = result[schema.probabilityOutput];
    if (!probs || probs.dims.length !== 2 || probs.dims[0] !== holdout.rows) {
      throw new ModelContractError(
        `probability output has shape [${probs?.dims.join(', ')}], expected [${holdout.rows}, k]`,
      );
    }
    const k = probs.dims[1] as number;
    const data = probs.data as Float32Array;
    const scores = new Float64Array(holdout.rows);
    for (let i = 0; i < holdout.rows; i++) scores[i] = data[i * k + schema.positiveClassIndex] as number;

    const sample = Math.min(LATENCY_SAMPLE, holdout.rows);
    for (let i = 0; i < Math.min(LATENCY_WARMUP, sample); i++) {
      await session.run(feeds(schema, holdout, i, i + 1), [schema.probabilityOutput]);
    }
    const latenciesMs: number[] = [];
    for (let i = 0; i < sample; i++) {
      const f = feeds(schema, holdout, i, i + 1);
      const t0 = performance.now();
      await session.run(f, [schema.probabilityOutput]);
      latenciesMs.push(performance.now() - t0);
    }
    return { scores, latenciesMs };
  } finally {
    await session.release();
  }
}
