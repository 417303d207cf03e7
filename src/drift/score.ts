/**
 * Scores generated or logged rows with an ONNX model through the evaluation code's scorer (one
 * session for all rows), for CBPE and prediction-drift experiments.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseInputSchema, scoreModel } from '../eval/score';
import type { Holdout } from '../eval/holdout';
import type { FeatureSpec } from '../core/contracts/feature-spec';

export interface LoadedModel {
  onnx: Buffer;
  schema: ReturnType<typeof parseInputSchema>;
}

/** A model folder as the trainer writes it: model.onnx and input_schema.json. */
export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const [onnx, schema] = await Promise.all([
    readFile(path.join(dir, 'model.onnx')),
    readFile(path.join(dir, 'input_schema.json')),
  ]);
  return { onnx, schema: parseInputSchema(schema) };
}

const cell = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/** Scores records (objects keyed by feature name) in one pass. */
export async function scoreRecords(
  model: LoadedModel,
  spec: FeatureSpec,
  records: readonly Record<string, unknown>[],
): Promise<Float64Array> {
  const columns: Record<string, string[]> = {};
  for (const f of spec.features) columns[f.name] = records.map((r) => cell(r[f.name]));
  const holdout: Holdout = { rows: records.length, labels: new Uint8Array(records.length), columns };
  return (await scoreModel(model.onnx, model.schema, holdout)).scores;
}
