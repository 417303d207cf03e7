/**
 * Loads a model's governance policy from the worker's policy folder. A missing or invalid policy
 * is a permanent failure naming the file and the field: nothing is promoted without one.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatZodError } from '../src/core/contracts/errors';
import { FailureType } from '../src/core/contracts/failures';
import { ModelPolicySchema, policyFileName, type ModelPolicy } from '../src/core/contracts/model-policy';

export const PolicyFailure = FailureType.PolicyInvalid;

export function createPolicyActivities(cfg: { policyDir: string }) {
  return {
    async loadModelPolicy(input: { model: string }): Promise<ModelPolicy> {
      const file = path.join(cfg.policyDir, policyFileName(input.model));
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `no governance policy for model "${input.model}": ${file} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          PolicyFailure,
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `${file} is not valid JSON: ${(err as Error).message}`,
          PolicyFailure,
        );
      }
      const parsed = ModelPolicySchema.safeParse(json);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(`${file}: ${formatZodError(parsed.error)}`, PolicyFailure);
      }
      return parsed.data;
    },
  };
}
