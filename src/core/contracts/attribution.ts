/**
 * Contract of a model version's global attributions (src/explain/global.ts) and of the attribution guardrail's
 * policy (src/core/policy/attribution.ts). Sandbox-safe, plain JSON.
 *
 * - `global[feature].meanAbs` is the mean absolute attribution over the explained rows; `share` is that over the
 *   sum across features (shares sum to 1 unless every attribution is 0).
 * - `bySegment` holds the same per value of the sensitive attribute, with the rows in each segment.
 */
import { z } from 'zod';

export const ATTRIBUTION_METHODS = ['tree-shap', 'kernel-shap'] as const;

export const FeatureImportanceSchema = z.strictObject({
  meanAbs: z.number().min(0),
  share: z.number().min(0).max(1),
});
export type FeatureImportance = z.infer<typeof FeatureImportanceSchema>;

export const AttributionSummarySchema = z.strictObject({
  method: z.enum(ATTRIBUTION_METHODS),
  /** What the values explain: the positive-class probability, or a tree ensemble's raw margin (log-odds). */
  output: z.enum(['probability', 'margin']),
  features: z.array(z.string()).min(1),
  /** Rows explained, and background rows they were explained against. */
  rows: z.int().min(0),
  background: z.int().min(0),
  /** KernelSHAP's coalition budget per row (absent for TreeSHAP). */
  nsamples: z.int().min(1).optional(),
  seed: z.int().min(0),
  global: z.record(z.string(), FeatureImportanceSchema),
  bySegment: z.record(
    z.string(),
    z.strictObject({ n: z.int().min(0), global: z.record(z.string(), FeatureImportanceSchema) }),
  ),
  /** Permutation importance on the same rows: drop of `scoring` when the feature is shuffled (mean, sd). */
  permutation: z
    .strictObject({
      scoring: z.enum(['roc_auc', 'average_precision']),
      baseline: z.number(),
      repeats: z.int().min(1),
      mean: z.record(z.string(), z.number()),
      std: z.record(z.string(), z.number()),
    })
    .optional(),
});
export type AttributionSummary = z.infer<typeof AttributionSummarySchema>;

/** Largest share of the global importance a sensitive feature may carry before a human must review. */
export const DEFAULT_MAX_SENSITIVE_SHARE = 0.05;
/** Largest rise of a proxy-sensitive feature's share against the champion before a human must review. */
export const DEFAULT_MAX_PROXY_SHARE_INCREASE = 0.1;
/** Features whose share changed most, listed in the drift report. */
export const DEFAULT_TOP_SHIFTS = 3;

export const AttributionGuardrailSchema = z.strictObject({
  /** Features the model must not lean on (the sensitive attribute itself, if it is an input). */
  sensitiveFeatures: z.array(z.string()).default([]),
  /** Features that can stand in for a sensitive one (e.g. a postcode for ethnicity). */
  proxyFeatures: z.array(z.string()).default([]),
  maxSensitiveShare: z.number().min(0).max(1).default(DEFAULT_MAX_SENSITIVE_SHARE),
  maxProxyShareIncrease: z.number().min(0).max(1).default(DEFAULT_MAX_PROXY_SHARE_INCREASE),
  /** Attributions not measured while this is set: review (inconclusive) rather than pass. */
  requireAttributions: z.boolean().default(false),
});
export type AttributionGuardrail = z.infer<typeof AttributionGuardrailSchema>;
export type AttributionGuardrailInput = z.input<typeof AttributionGuardrailSchema>;

export interface AttributionShift {
  feature: string;
  champion: number;
  challenger: number;
  /** challenger share - champion share */
  change: number;
}

export interface AttributionDrift {
  /** Spearman rank correlation of the two models' global importances over their common features. */
  rankCorrelation: number;
  /** Features whose share changed most, largest |change| first. */
  shifts: AttributionShift[];
}
