/**
 * Audit activities. The audit sink is idempotent by event id, so a retried activity never writes an
 * event twice; an id reused with different content is a permanent error.
 */
import type { AuditEventInput } from '../src/core/contracts/audit';
import type { AuditSink } from '../src/audit';
import { mapped } from './errors';

export function createAuditActivities(cfg: { audit: AuditSink }) {
  return {
    async recordAudit(event: AuditEventInput): Promise<{ seq: number; hash: string }> {
      const entry = await mapped(() => cfg.audit.append(event));
      return { seq: entry.seq, hash: entry.hash };
    },
  };
}
