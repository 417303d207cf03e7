/**
 * Out-of-distribution and adversarial-input screening against a model's reference profile: a numeric
 * feature outside its training range or beyond `maxZ` standard deviations from its training mean, or
 * a categorical value never seen in training, makes the request OOD. The policy (`flag` or `block`) is
 * the caller's; the reasons name each feature.
 */
import type { ReferenceProfile } from '../core/contracts/gateway';
import type { FeatureValues } from './validation';

export interface OodVerdict {
  ood: boolean;
  reasons: string[];
}

interface NumericCheck {
  name: string;
  min: number;
  max: number;
  mean?: number;
  std?: number;
}

/** A detector compiled once per model version from its profile. */
export class OodDetector {
  private readonly numeric: NumericCheck[];
  private readonly categorical: Array<{ name: string; categories: ReadonlySet<string> }>;

  constructor(
    profile: ReferenceProfile,
    private readonly maxZ: number,
  ) {
    this.numeric = profile.numeric.map((n) => ({
      name: n.name,
      min: n.min ?? Number.NEGATIVE_INFINITY,
      max: n.max ?? Number.POSITIVE_INFINITY,
      mean: n.mean,
      std: n.std !== undefined && n.std > 0 ? n.std : undefined,
    }));
    this.categorical = profile.categorical.map((c) => ({ name: c.name, categories: new Set(c.categories) }));
  }

  check(features: FeatureValues): OodVerdict {
    let reasons: string[] | undefined;
    for (const n of this.numeric) {
      const v = features[n.name];
      if (typeof v !== 'number') continue;
      if (v < n.min || v > n.max) {
        (reasons ??= []).push(`${n.name}: ${v} outside the training range [${n.min}, ${n.max}]`);
      } else if (n.mean !== undefined && n.std !== undefined) {
        const z = (v - n.mean) / n.std;
        if (Math.abs(z) > this.maxZ)
          (reasons ??= []).push(`${n.name}: z-score ${z.toFixed(1)} beyond ${this.maxZ}`);
      }
    }
    for (const c of this.categorical) {
      const v = features[c.name];
      if (typeof v === 'string' && !c.categories.has(v)) (reasons ??= []).push(`${c.name}: unseen category`);
    }
    return reasons ? { ood: true, reasons } : { ood: false, reasons: [] };
  }
}
