/**
 * Audit and approval-security activities. The audit sink is idempotent by event id, so a retried
 * activity never writes an event twice; an id reused with different content is a permanent error.
 * Signature checks need node:crypto, so they run here rather than in the workflow.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ApprovalSignature } from '../src/core/contracts/approval';
import type { AuditEventInput } from '../src/core/contracts/audit';
import { AuditEventConflictError, AuditEventInvalidError, type AuditSink } from '../src/audit';
import { verifyApprovalSignature, type ApprovalSignedFields } from '../src/security/approval-signing';

export function createAuditActivities(cfg: { audit: AuditSink }) {
  return {
    async recordAudit(event: AuditEventInput): Promise<{ seq: number; hash: string }> {
      try {
        const entry = await cfg.audit.append(event);
        return { seq: entry.seq, hash: entry.hash };
      } catch (err) {
        if (err instanceof AuditEventConflictError || err instanceof AuditEventInvalidError) {
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        }
        throw err;
      }
    },

    async verifyApprovalSignature(input: {
      fields: Omit<ApprovalSignedFields, 'issuedAt'>;
      signature: ApprovalSignature;
      publicKey: string;
    }): Promise<boolean> {
      return verifyApprovalSignature(input.fields, input.signature, input.publicKey);
    },
  };
}
