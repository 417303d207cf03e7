/**
 * The audit sink interface: where audit events go. The embedded default is {@link JsonlAuditSink}
 * (src/audit/jsonl-sink.ts); a production deployment can put a durable append-only store behind the same interface.
 *
 * Rules every implementation keeps:
 * - `append` is idempotent by `eventId` (an activity retry writes nothing new) and refuses the same id with
 *   different content.
 * - Entries form a hash chain (seq, prevHash, hash) that `verify` checks end to end.
 */
import type { AuditEntry, AuditEventInput, AuditVerifyResult } from '../core/contracts/audit';

export interface AuditSink {
  /** Appends the event, or returns the entry already recorded under its eventId. */
  append(event: AuditEventInput): Promise<AuditEntry>;
  /** Verifies the whole chain. */
  verify(): Promise<AuditVerifyResult>;
  /** Streams the entries in order, when the backend supports reading back. */
  entries?(): AsyncIterable<AuditEntry>;
}
