/**
 * The embedded audit sink: an append-only, hash-chained JSONL file.
 *
 * Rules:
 * - Append-only: the file is only ever opened for appending; one line per entry, the canonical JSON of the entry,
 *   written in one `write` and fsynced before `append` resolves.
 * - Idempotent by `eventId`: appending an event whose id is already in the log returns the existing entry and
 *   writes nothing; the same id with different content is an {@link AuditEventConflictError}.
 * - Concurrency: appends from one sink are serialised by a promise chain; appends from several sinks or processes
 *   on the same file are serialised by the lock file `<path>.lock` (src/audit/lock.ts). Under the lock the sink
 *   first reads whatever other writers appended, so seq and prevHash always continue the file's real tail.
 * - Fail closed: if the existing log does not verify (tampering, or a partial last line left by a crash), appends
 *   are refused with {@link AuditLogCorruptError} until an operator has looked at it (`npm run audit:verify`).
 */
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuditChainChecker, buildAuditEntry, eventOf, sameAuditEvent, serialiseAuditEntry } from './chain';
import { readRawLines } from './lines';
import { acquireFileLock } from './lock';
import type { FileLockOptions } from './lock';
import type { AuditSink } from './sink';
import { verifyAuditLog } from './verify';
import { AUDIT_GENESIS_HASH, AuditEntrySchema, AuditEventSchema } from '../core/contracts/audit';
import type { AuditBreak, AuditEntry, AuditEventInput, AuditVerifyResult } from '../core/contracts/audit';
import { formatZodError } from '../core/contracts/errors';

/** The event is not a valid {@link AuditEventInput}; never retryable. */
export class AuditEventInvalidError extends Error {
  override readonly name = 'AuditEventInvalidError';
}

/** The eventId is already in the log with different content; never retryable (a bug or a replay divergence). */
export class AuditEventConflictError extends Error {
  override readonly name = 'AuditEventConflictError';
  constructor(
    readonly eventId: string,
    readonly line: number,
  ) {
    super(`audit eventId ${eventId} is already recorded on line ${line} with different content`);
  }
}

/** The existing log does not verify; appending is refused until it is repaired. */
export class AuditLogCorruptError extends Error {
  override readonly name = 'AuditLogCorruptError';
  constructor(
    readonly path: string,
    readonly broken: AuditBreak,
  ) {
    super(
      `audit log ${path} is broken at line ${broken.line} (seq ${broken.seq ?? '?'}, event ` +
        `${broken.eventId ?? '?'}): ${broken.reason}; refusing to append`,
    );
  }
}

interface IndexedLine {
  line: number;
  offset: number;
  bytes: number;
}

export interface JsonlAuditSinkOptions {
  lock?: FileLockOptions;
}

/** Append-only JSONL audit sink; see the module rules. */
export class JsonlAuditSink implements AuditSink {
  private queue: Promise<unknown> = Promise.resolve();
  private checker = new AuditChainChecker();
  private index = new Map<string, IndexedLine>();
  private loadedBytes = 0;
  private lines = 0;
  private fileIdentity: string | undefined;

  constructor(
    readonly path: string,
    private readonly options: JsonlAuditSinkOptions = {},
  ) {}

  /** Appends `event` (or returns the entry already recorded under its eventId). */
  append(event: AuditEventInput): Promise<AuditEntry> {
    const parsed = AuditEventSchema.safeParse(event);
    if (!parsed.success) {
      return Promise.reject(new AuditEventInvalidError(formatZodError(parsed.error, 'audit event')));
    }
    return this.serialised(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const release = await acquireFileLock(`${this.path}.lock`, this.options.lock);
      try {
        await this.catchUp();
        const existing = this.index.get(parsed.data.eventId);
        if (existing !== undefined) {
          const entry = await this.readEntry(existing);
          if (!sameAuditEvent(eventOf(entry), parsed.data)) {
            throw new AuditEventConflictError(parsed.data.eventId, existing.line);
          }
          return entry;
        }
        const head = this.checker.head;
        const entry = buildAuditEntry(parsed.data, (head?.seq ?? 0) + 1, head?.hash ?? AUDIT_GENESIS_HASH);
        const text = serialiseAuditEntry(entry);
        await this.writeLine(text);
        // Record our own line exactly as catchUp would have.
        const bytes = Buffer.byteLength(text, 'utf8') + 1;
        this.lines += 1;
        const r = this.checker.check({ line: this.lines, text, terminated: true });
        if (!r.ok) throw new AuditLogCorruptError(this.path, r.broken);
        this.index.set(entry.eventId, { line: this.lines, offset: this.loadedBytes, bytes });
        this.loadedBytes += bytes;
        return entry;
      } finally {
        await release();
      }
    });
  }

  /** Verifies the whole file (after appends already queued on this sink). */
  verify(): Promise<AuditVerifyResult> {
    return this.serialised(() => verifyAuditLog(this.path));
  }

  /** Streams the verified entries; throws {@link AuditLogCorruptError} on reaching a broken line. */
  async *entries(): AsyncIterable<AuditEntry> {
    const checker = new AuditChainChecker();
    let line = 0;
    try {
      for await (const raw of readRawLines(this.path)) {
        line += 1;
        const r = checker.check({ line, text: raw.text, terminated: raw.terminated });
        if (!r.ok) throw new AuditLogCorruptError(this.path, r.broken);
        yield r.entry;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private reset(): void {
    this.checker = new AuditChainChecker();
    this.index = new Map();
    this.loadedBytes = 0;
    this.lines = 0;
  }

  /** Reads (and verifies) what was appended since the last look, from this or another process. */
  private async catchUp(): Promise<void> {
    let size: number;
    let identity: string;
    try {
      const st = await stat(this.path);
      size = st.size;
      identity = `${st.dev}:${st.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.reset();
      this.fileIdentity = undefined;
      return;
    }
    if (identity !== this.fileIdentity || size < this.loadedBytes) {
      this.reset();
      this.fileIdentity = identity;
    }
    if (size === this.loadedBytes) return;
    for await (const raw of readRawLines(this.path, this.loadedBytes)) {
      const line = this.lines + 1;
      const r = this.checker.check({ line, text: raw.text, terminated: raw.terminated });
      if (!r.ok) {
        // Forget everything so the next append re-reads the file from the start (it may have been repaired).
        this.reset();
        this.fileIdentity = undefined;
        throw new AuditLogCorruptError(this.path, r.broken);
      }
      this.lines = line;
      this.index.set(r.entry.eventId, { line, offset: raw.offset, bytes: raw.bytes });
      this.loadedBytes = raw.offset + raw.bytes;
    }
  }

  private async readEntry(at: IndexedLine): Promise<AuditEntry> {
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(at.bytes - 1);
      await fh.read(buf, 0, buf.length, at.offset);
      return AuditEntrySchema.parse(JSON.parse(buf.toString('utf8')));
    } finally {
      await fh.close();
    }
  }

  private async writeLine(text: string): Promise<void> {
    let created = false;
    let fh;
    try {
      fh = await open(this.path, 'ax', 0o600);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      fh = await open(this.path, 'a');
    }
    try {
      await fh.writeFile(`${text}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (created) {
      const st = await stat(this.path);
      this.fileIdentity = `${st.dev}:${st.ino}`;
      await syncDirectory(dirname(this.path));
    }
  }
}

/** Makes a newly created file's directory entry durable (best effort: not every platform allows it). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Directory fsync is unsupported on some platforms; the file itself was fsynced.
  }
}
