/**
 * Approver keys for tests of the shipped policies, which require signed approvals: generates each
 * approver's Ed25519 key pair into the approver-keys folder the worker reads (`<policyDir>/approver-keys`
 * by default), exactly as `npm run approver-keys` does, and signs approvals with the private keys as
 * `npm run approve -- --key-file ...` does. The private keys stay in owner-only files of the test's
 * temporary folder; only signatures travel to the workflow.
 */
import path from 'node:path';
import { writeApproverKeyPair } from '../../src/cli/approver-keys';
import { buildApprovalRequest } from '../../src/cli/approve';
import type { ApprovePayload, RejectPayload } from '../../src/core/contracts/approval';
import { DEFAULT_APPROVER_KEYS_SUBDIR } from '../../activities/policy';
import { loadPrivateKey } from '../../src/security/approval-signing';

/** The shipped fraud policy's approvers. */
export const SHIPPED_APPROVERS = ['alice', 'bob', 'carol'] as const;

export interface TestApprovers {
  keysDir: string;
  /** Private key file of each approver (mode 0600). */
  keyFiles: Record<string, string>;
}

/** Registers fresh keys for `ids` in `keysDir` (default: the approver-keys folder of `policyDir`). */
export function registerApprovers(
  policyDir: string,
  ids: readonly string[] = SHIPPED_APPROVERS,
  keysDir = path.join(policyDir, DEFAULT_APPROVER_KEYS_SUBDIR),
): TestApprovers {
  const keyFiles: Record<string, string> = {};
  for (const id of ids) keyFiles[id] = writeApproverKeyPair(keysDir, id, true).privateKeyPath;
  return { keysDir, keyFiles };
}

function keyOf(approvers: TestApprovers, approver: string) {
  const file = approvers.keyFiles[approver];
  if (file === undefined) throw new Error(`no test key registered for ${approver}`);
  return loadPrivateKey({ file });
}

/** An `approve` payload for `version` of `workflowId`, signed by `approver`'s key. */
export function signedApprove(
  approvers: TestApprovers,
  args: { workflowId: string; approver: string; version: string; comment?: string; issuedAt?: string },
): ApprovePayload {
  return buildApprovalRequest({
    workflowId: args.workflowId,
    decision: 'approve',
    approver: args.approver,
    modelVersion: args.version,
    ...(args.comment !== undefined ? { comment: args.comment } : {}),
    ...(args.issuedAt !== undefined ? { issuedAt: args.issuedAt } : {}),
    privateKey: keyOf(approvers, args.approver),
  }).payload as ApprovePayload;
}

/** A `reject` payload for `version` of `workflowId`, signed by `approver`'s key. */
export function signedReject(
  approvers: TestApprovers,
  args: { workflowId: string; approver: string; version: string; reason: string; issuedAt?: string },
): RejectPayload {
  return buildApprovalRequest({
    workflowId: args.workflowId,
    decision: 'reject',
    approver: args.approver,
    modelVersion: args.version,
    reason: args.reason,
    ...(args.issuedAt !== undefined ? { issuedAt: args.issuedAt } : {}),
    privateKey: keyOf(approvers, args.approver),
  }).payload as RejectPayload;
}
