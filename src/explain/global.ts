/**
 * Global importance from per-row attributions: mean |value| per feature and its share of the total, over all
 * rows and per segment of the sensitive attribute.
 */
import type { AttributionSummary, FeatureImportance } from '../core/contracts/attribution';

function importance(
  features: readonly string[],
  values: readonly ArrayLike<number>[],
  rows: readonly number[],
): Record<string, FeatureImportance> {
  const sums = new Float64Array(features.length);
  for (const r of rows) {
    const v = values[r] as ArrayLike<number>;
    for (let j = 0; j < features.length; j++) sums[j] = (sums[j] as number) + Math.abs(v[j] as number);
  }
  const total = sums.reduce((a, b) => a + b, 0);
  const out: Record<string, FeatureImportance> = {};
  features.forEach((f, j) => {
    const meanAbs = rows.length > 0 ? (sums[j] as number) / rows.length : 0;
    const share = total > 0 ? (sums[j] as number) / total : 0;
    Object.defineProperty(out, f, {
      value: { meanAbs, share },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  });
  return out;
}

export function globalImportance(args: {
  method: AttributionSummary['method'];
  output: AttributionSummary['output'];
  features: readonly string[];
  values: readonly ArrayLike<number>[];
  segments?: readonly string[];
  background: number;
  nsamples?: number;
  seed: number;
}): AttributionSummary {
  const all = args.values.map((_, i) => i);
  const bySegment: AttributionSummary['bySegment'] = {};
  if (args.segments) {
    const groups = new Map<string, number[]>();
    args.segments.forEach((s, i) => {
      let g = groups.get(s);
      if (!g) groups.set(s, (g = []));
      g.push(i);
    });
    for (const s of [...groups.keys()].sort()) {
      const rows = groups.get(s) as number[];
      Object.defineProperty(bySegment, s, {
        value: { n: rows.length, global: importance(args.features, args.values, rows) },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return {
    method: args.method,
    output: args.output,
    features: [...args.features],
    rows: args.values.length,
    background: args.background,
    ...(args.nsamples === undefined ? {} : { nsamples: args.nsamples }),
    seed: args.seed,
    global: importance(args.features, args.values, all),
    bySegment,
  };
}
