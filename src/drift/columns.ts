/**
 * Columnar views of the reference fraud workload's rows for drift profiling, and the feature lists
 * the monitor watches (the feature spec's numeric and categorical features).
 */
import type { FeatureSpec } from '../core/contracts/feature-spec';
import type { ColumnarData } from '../core/stats/drift-profile';

export interface FeatureKinds {
  numeric: string[];
  categorical: string[];
}

export function featureKinds(spec: FeatureSpec): FeatureKinds {
  return {
    numeric: spec.features.filter((f) => f.kind === 'numeric').map((f) => f.name),
    categorical: spec.features.filter((f) => f.kind === 'categorical').map((f) => f.name),
  };
}

/** Values of generic records (CSV rows, inference-log features) as typed columns; non-numbers are NaN. */
export function toColumns(
  records: readonly Record<string, unknown>[],
  kinds: FeatureKinds,
  prediction?: readonly number[],
): ColumnarData {
  const numeric: ColumnarData['numeric'] = {};
  for (const name of kinds.numeric) {
    const col = new Float64Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const v = records[i]![name];
      col[i] = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    }
    numeric[name] = col;
  }
  const categorical: ColumnarData['categorical'] = {};
  for (const name of kinds.categorical) {
    categorical[name] = records.map((r) => {
      const v = r[name];
      return v === null || v === undefined || v === '' ? null : String(v);
    });
  }
  return {
    rows: records.length,
    numeric,
    categorical,
    ...(prediction && { prediction: Float64Array.from(prediction) }),
  };
}
