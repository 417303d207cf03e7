/**
 * Loads a model's governance policy from the worker's policy folder. A missing or invalid policy
 * is a permanent failure naming the file and the field: nothing is promoted without one.
 *
 * Approver keys registered by file (`publicKeyFile`) are read from the worker's approver-keys folder
 * (default `<policy folder>/approver-keys`) into `publicKey`; an unregistered or malformed key fails the
 * policy, naming the approver and the file. Only public keys are read; nothing else in that folder is.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatZodError } from '../src/core/contracts/errors';
import { FailureType } from '../src/core/contracts/failures';
import { ApproverPublicKeySchema } from '../src/core/contracts/approval';
import { ModelPolicySchema, policyFileName, type ModelPolicy } from '../src/core/contracts/model-policy';

export const PolicyFailure = FailureType.PolicyInvalid;

/** Folder of registered approver public keys, inside the policy folder, when none is configured. */
export const DEFAULT_APPROVER_KEYS_SUBDIR = 'approver-keys';

/** Reads every approver's `publicKeyFile` from `keysDir` into `publicKey` (an inline key wins). */
async function registerApproverKeys(
  policy: ModelPolicy,
  file: string,
  keysDir: string,
): Promise<ModelPolicy> {
  const approvers = await Promise.all(
    policy.approval.approvers.map(async (a, i) => {
      if (a.publicKeyFile === undefined || a.publicKey !== undefined) return a;
      const where = `${file}: approval.approvers[${i}].publicKeyFile`;
      const keyPath = path.join(keysDir, a.publicKeyFile);
      let text: string;
      try {
        text = await readFile(keyPath, 'utf8');
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `${where}: ${a.id}'s public key is not registered: ${keyPath} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create it with \`npm run approver-keys -- --out-dir ${keysDir} --approver ${a.id}\``,
          PolicyFailure,
        );
      }
      const key = ApproverPublicKeySchema.safeParse(text);
      if (!key.success)
        throw ApplicationFailure.nonRetryable(
          `${where}: ${keyPath} ${formatZodError(key.error)}`,
          PolicyFailure,
        );
      return { ...a, publicKey: key.data };
    }),
  );
  // Parsed again: the cross-field rules (one key per person) now see the registered keys too.
  const again = ModelPolicySchema.safeParse({ ...policy, approval: { ...policy.approval, approvers } });
  if (!again.success)
    throw ApplicationFailure.nonRetryable(`${file}: ${formatZodError(again.error)}`, PolicyFailure);
  return again.data;
}

/**
 * The model's policy file as JSON, or undefined when there is none; unreadable or malformed JSON is a
 * non-retryable `PolicyInvalid` naming the file. Shared by every reader of a policy section.
 */
export async function readPolicyJson(
  policyDir: string,
  model: string,
): Promise<{ file: string; json: unknown } | undefined> {
  const file = path.join(policyDir, policyFileName(model));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ApplicationFailure.nonRetryable(
      `no governance policy for model "${model}": ${file} is unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      PolicyFailure,
    );
  }
  try {
    return { file, json: JSON.parse(text) as unknown };
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `${file} is not valid JSON: ${(err as Error).message}`,
      PolicyFailure,
    );
  }
}

export function createPolicyActivities(cfg: { policyDir: string; approverKeysDir?: string | undefined }) {
  const keysDir = cfg.approverKeysDir ?? path.join(cfg.policyDir, DEFAULT_APPROVER_KEYS_SUBDIR);
  return {
    async loadModelPolicy(input: { model: string }): Promise<ModelPolicy> {
      const read = await readPolicyJson(cfg.policyDir, input.model);
      if (read === undefined)
        throw ApplicationFailure.nonRetryable(
          `no governance policy for model "${input.model}": ${path.join(cfg.policyDir, policyFileName(input.model))} is unreadable (ENOENT)`,
          PolicyFailure,
        );
      const { file, json } = read;
      const parsed = ModelPolicySchema.safeParse(json);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(`${file}: ${formatZodError(parsed.error)}`, PolicyFailure);
      }
      return registerApproverKeys(parsed.data, file, keysDir);
    },
  };
}
