/**
 * The hash chain of the audit log: how an entry is built, hashed and serialised, and how a sequence of lines is
 * checked.
 *
 * Rules:
 * - `hash` = sha256 hex of the RFC 8785 canonical JSON of the entry without `hash`; a line of the log is the
 *   canonical JSON of the whole entry, so any byte change to a line changes either its parse, its canonical form
 *   or its hash.
 * - The checker stops at the first break; it reports the 1-based line, the entry's seq and eventId when they can be
 *   read, and one of: unparsable line, seq gap, prevHash mismatch, hash mismatch (which includes a line that is
 *   not in canonical form), duplicate eventId.
 */
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { AUDIT_FIRST_SEQ, AUDIT_GENESIS_HASH, AuditEntrySchema } from '../core/contracts/audit';
import type { AuditBreak, AuditEntry, AuditEvent } from '../core/contracts/audit';
import { formatZodError } from '../core/contracts/errors';

function canonical(value: unknown): string {
  const out = canonicalize(value);
  if (out === undefined) throw new Error('value cannot be serialised as canonical JSON');
  return out;
}

/** sha256 hex of the canonical JSON of `entry` without its `hash` field. */
export function auditEntryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const { hash: _hash, ...rest } = entry;
  return createHash('sha256').update(canonical(rest), 'utf8').digest('hex');
}

/** Builds the entry that follows (`seq`, `prevHash`) for a validated event. */
export function buildAuditEntry(event: AuditEvent, seq: number, prevHash: string): AuditEntry {
  const body = { ...event, seq, prevHash };
  return { ...body, hash: auditEntryHash(body) };
}

/** One JSONL line (without the newline): the canonical JSON of the entry. */
export function serialiseAuditEntry(entry: AuditEntry): string {
  return canonical(entry);
}

/** The event part of an entry (without seq, prevHash, hash). */
export function eventOf(entry: AuditEntry): AuditEvent {
  const { seq: _seq, prevHash: _prev, hash: _hash, ...event } = entry;
  return event;
}

/** True when two events have the same content (canonical JSON equality). */
export function sameAuditEvent(a: AuditEvent, b: AuditEvent): boolean {
  return canonical(a) === canonical(b);
}

/** A line of the log as read from disk. */
export interface AuditLine {
  /** 1-based line number. */
  line: number;
  text: string;
  /** False for a last line with no trailing newline (an interrupted write, or a truncated file). */
  terminated: boolean;
}

/** Checks lines in order; keeps the chain head. */
export class AuditChainChecker {
  private nextSeq = AUDIT_FIRST_SEQ;
  private prevHash = AUDIT_GENESIS_HASH;
  private readonly firstLineOf = new Map<string, number>();
  /** Number of entries verified so far. */
  count = 0;

  /** seq and hash of the last verified entry. */
  get head(): { seq: number; hash: string } | undefined {
    return this.count === 0 ? undefined : { seq: this.nextSeq - 1, hash: this.prevHash };
  }

  /** Line on which a verified `eventId` appears. */
  lineOf(eventId: string): number | undefined {
    return this.firstLineOf.get(eventId);
  }

  /** Verifies the next line; returns its entry, or the break. Once broken, do not feed further lines. */
  check(l: AuditLine): { ok: true; entry: AuditEntry } | { ok: false; broken: AuditBreak } {
    const fail = (reason: string, raw?: unknown) => {
      const broken: AuditBreak = { line: l.line, reason };
      if (raw !== null && typeof raw === 'object') {
        const r = raw as Record<string, unknown>;
        if (typeof r.seq === 'number') broken.seq = r.seq;
        if (typeof r.eventId === 'string') broken.eventId = r.eventId;
      }
      return { ok: false as const, broken };
    };
    let raw: unknown;
    try {
      raw = JSON.parse(l.text);
    } catch {
      raw = undefined;
    }
    if (!l.terminated) {
      return fail('unparsable line: last line is incomplete (no trailing newline: interrupted write?)', raw);
    }
    if (l.text === '') return fail('unparsable line: empty line');
    if (raw === undefined) return fail('unparsable line: not valid JSON');
    const parsed = AuditEntrySchema.safeParse(raw);
    if (!parsed.success) {
      return fail(`unparsable line: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`, raw);
    }
    const entry = parsed.data;
    if (entry.seq !== this.nextSeq)
      return fail(`seq gap: expected seq ${this.nextSeq}, found ${entry.seq}`, raw);
    if (entry.prevHash !== this.prevHash) {
      return fail(
        this.count === 0
          ? 'prevHash mismatch: the first entry must point at the genesis hash'
          : `prevHash mismatch: does not match the hash of line ${l.line - 1}`,
        raw,
      );
    }
    if (auditEntryHash(entry) !== entry.hash)
      return fail('hash mismatch: content does not match its hash', raw);
    if (canonical(raw) !== l.text) return fail('hash mismatch: line is not in canonical form (edited?)', raw);
    const seen = this.firstLineOf.get(entry.eventId);
    if (seen !== undefined) return fail(`duplicate eventId: first written on line ${seen}`, raw);
    this.firstLineOf.set(entry.eventId, l.line);
    this.nextSeq += 1;
    this.prevHash = entry.hash;
    this.count += 1;
    return { ok: true, entry };
  }
}
