/**
 * Security activities: checks that need node:crypto, so they run here rather than in the workflow.
 * Today the approvers' Ed25519 signatures; the artifact signer/verifier port joins them later.
 */
import type { ApprovalSignature } from '../src/core/contracts/approval';
import { verifyApprovalSignature, type ApprovalSignedFields } from '../src/security/approval-signing';

export function createSecurityActivities() {
  return {
    async verifyApprovalSignature(input: {
      fields: Omit<ApprovalSignedFields, 'issuedAt'>;
      signature: ApprovalSignature;
      publicKey: string;
    }): Promise<boolean> {
      return verifyApprovalSignature(input.fields, input.signature, input.publicKey);
    },
  };
}
