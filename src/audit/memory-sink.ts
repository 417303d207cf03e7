/**
 * In-memory audit sink: a fake of the audit port for workflow-logic tests. Same rules as the JSONL
 * sink (validated events, idempotent by eventId, a conflicting reuse refused, a real hash chain
 * that `verify` checks with the same checker), but nothing is durable. Not for production use.
 */
import {
  AUDIT_GENESIS_HASH,
  AuditEventSchema,
  type AuditEntry,
  type AuditEventInput,
} from '../core/contracts/audit';
import { formatZodError } from '../core/contracts/errors';
import { AuditChainChecker, buildAuditEntry, eventOf, sameAuditEvent, serialiseAuditEntry } from './chain';
import { AuditEventConflictError, AuditEventInvalidError } from './jsonl-sink';
import type { AuditSink } from './sink';

export class MemoryAuditSink implements AuditSink {
  private readonly log: AuditEntry[] = [];
  private readonly byId = new Map<string, number>();

  async append(event: AuditEventInput): Promise<AuditEntry> {
    const parsed = AuditEventSchema.safeParse(event);
    if (!parsed.success) throw new AuditEventInvalidError(formatZodError(parsed.error, 'audit event'));
    const index = this.byId.get(parsed.data.eventId);
    if (index !== undefined) {
      const existing = this.log[index]!;
      if (!sameAuditEvent(eventOf(existing), parsed.data)) {
        throw new AuditEventConflictError(parsed.data.eventId, index + 1);
      }
      return existing;
    }
    const head = this.log[this.log.length - 1];
    const entry = buildAuditEntry(parsed.data, (head?.seq ?? 0) + 1, head?.hash ?? AUDIT_GENESIS_HASH);
    this.byId.set(entry.eventId, this.log.length);
    this.log.push(entry);
    return entry;
  }

  async verify() {
    const checker = new AuditChainChecker();
    for (const [i, entry] of this.log.entries()) {
      const r = checker.check({ line: i + 1, text: serialiseAuditEntry(entry), terminated: true });
      if (!r.ok) return { ok: false, entries: checker.count, head: checker.head, firstBroken: r.broken };
    }
    return { ok: true, entries: checker.count, head: checker.head };
  }

  async *entries(): AsyncIterable<AuditEntry> {
    yield* this.log;
  }

  /** Test helper: the event types recorded so far, in order. */
  types(): string[] {
    return this.log.map((e) => e.type);
  }
}
