/**
 * Rows for the explainers from the shapes the rest of the system holds: a holdout's text columns, or feature
 * objects as the gateway receives them. Numeric cells parse to numbers (empty or missing: NaN), categorical
 * cells stay strings (missing: the empty string, as the trainer encodes it).
 */
import type { ModelInputSchema } from '../eval/score';
import type { Row } from './model';

function ordered(schema: ModelInputSchema) {
  return [...schema.inputs].sort((a, b) => a.order - b.order);
}

/** Rows `indices` of text columns (as src/eval/holdout.ts loads them). */
export function rowsFromColumns(
  schema: ModelInputSchema,
  columns: Record<string, readonly string[]>,
  indices: readonly number[],
): Row[] {
  const inputs = ordered(schema);
  return indices.map((i) =>
    inputs.map((input) => {
      const v = columns[input.name]?.[i] ?? '';
      if (input.dtype === 'float32') return v === '' ? Number.NaN : Number(v);
      return v;
    }),
  );
}

/** One row from a feature object (numbers, strings, null or absent for missing). */
export function rowFromFeatures(schema: ModelInputSchema, features: Readonly<Record<string, unknown>>): Row {
  return ordered(schema).map((input) => {
    const v = features[input.name];
    if (input.dtype === 'float32')
      return typeof v === 'number' ? v : v === null || v === undefined || v === '' ? Number.NaN : Number(v);
    return v === null || v === undefined ? '' : String(v);
  });
}
