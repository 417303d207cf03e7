/**
 * Verification of a JSONL audit log file.
 *
 * Rules:
 * - Streams the file; stops at the first broken line and reports it (see {@link AuditChainChecker}).
 * - A missing file is an empty, valid log (nothing has been audited yet); callers that expect a file check
 *   for it themselves.
 * - A hash chain cannot show that entries were cut off the end. Record `head` (seq and hash of the last entry)
 *   somewhere else and pass it back as `anchor` to detect that.
 */
import { AuditChainChecker } from './chain';
import { readRawLines } from './lines';
import type { AuditVerifyResult } from '../core/contracts/audit';

export interface VerifyAuditLogOptions {
  /** A head recorded earlier: the log must still contain this entry with this hash. */
  anchor?: { seq: number; hash: string };
}

/** Verifies the hash chain of the JSONL audit log at `path`. */
export async function verifyAuditLog(
  path: string,
  options: VerifyAuditLogOptions = {},
): Promise<AuditVerifyResult> {
  const checker = new AuditChainChecker();
  let anchorSeen = false;
  let line = 0;
  try {
    for await (const raw of readRawLines(path)) {
      line += 1;
      const r = checker.check({ line, text: raw.text, terminated: raw.terminated });
      if (!r.ok) return withHead({ ok: false, entries: checker.count, firstBroken: r.broken }, checker);
      const anchor = options.anchor;
      if (anchor !== undefined && r.entry.seq === anchor.seq) {
        anchorSeen = true;
        if (r.entry.hash !== anchor.hash) {
          return withHead(
            {
              ok: false,
              entries: checker.count,
              firstBroken: {
                line,
                seq: r.entry.seq,
                eventId: r.entry.eventId,
                reason: 'hash mismatch: entry differs from the recorded anchor',
              },
            },
            checker,
          );
        }
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (options.anchor !== undefined && !anchorSeen) {
    return withHead(
      {
        ok: false,
        entries: checker.count,
        firstBroken: {
          line: line + 1,
          seq: options.anchor.seq,
          reason: `seq gap: log ends at ${checker.count} entries but the anchor names seq ${options.anchor.seq} (truncated?)`,
        },
      },
      checker,
    );
  }
  return withHead({ ok: true, entries: checker.count }, checker);
}

function withHead(result: AuditVerifyResult, checker: AuditChainChecker): AuditVerifyResult {
  const head = checker.head;
  return head === undefined ? result : { ...result, head };
}

/** One-line human summary: `audit log OK: N entries` or `audit log BROKEN at line L (seq S, event E): reason`. */
export function formatAuditVerifyResult(result: AuditVerifyResult): string {
  if (result.ok || result.firstBroken === undefined) return `audit log OK: ${result.entries} entries`;
  const b = result.firstBroken;
  return `audit log BROKEN at line ${b.line} (seq ${b.seq ?? '?'}, event ${b.eventId ?? '?'}): ${b.reason}`;
}
