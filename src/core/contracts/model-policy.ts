/**
 * Per-model governance policy: the promotion gate and who may approve. Policies live with the
 * worker (a file per model under the policy folder, in production a ConfigMap), never in workflow
 * input, so whoever starts a pipeline cannot choose its approvers or loosen its gate. The
 * pipeline loads the policy once through an activity, so the version it used is in its history.
 *
 * Sandbox-safe.
 */
import { z } from 'zod';
import { ApprovalPolicySchema } from './approval';
import { GatePolicySchema } from './gate';
import { ValidationPolicySchema } from './poisoning-history';

export const ModelPolicySchema = z.strictObject({
  gate: GatePolicySchema.prefault({}),
  approval: ApprovalPolicySchema,
  /** Dataset validation: the poisoning screen against the champion's training snapshot. */
  validation: ValidationPolicySchema.prefault({}),
});
export type ModelPolicy = z.output<typeof ModelPolicySchema>;
export type ModelPolicyInput = z.input<typeof ModelPolicySchema>;

/** File name of a model's policy inside the policy folder. */
export const policyFileName = (model: string): string => `${model}.json`;
