/**
 * A cross-process exclusive lock: a lock file created with `open(path, 'wx')` (fails if it exists), retried with
 * jittered exponential backoff, released by deleting it.
 *
 * Rules:
 * - A lock file older than the stale timeout is presumed left by a crashed holder and removed. Holders keep the
 *   lock for milliseconds, so the timeout is generous; a holder that really held it that long could lose it.
 * - Release removes the file only if it still carries this holder's token, so a holder that was presumed stale
 *   does not delete its successor's lock.
 * - The token is random (Node-only code: this never runs in a workflow).
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';

/** A lock file older than this is presumed abandoned by a crashed process (appends hold it for milliseconds). */
export const AUDIT_LOCK_STALE_MS = 30_000;
/** Give up acquiring after this long: well beyond the stale timeout, so an abandoned lock is always reclaimed. */
export const AUDIT_LOCK_ACQUIRE_TIMEOUT_MS = 45_000;
/** First retry delay: short, since holders release within milliseconds. */
export const AUDIT_LOCK_RETRY_MIN_MS = 2;
/** Largest retry delay, so a freed lock is noticed quickly even after many retries. */
export const AUDIT_LOCK_RETRY_MAX_MS = 100;

/** Thrown when the lock could not be acquired in time; `name` is stable for the activities layer (retryable). */
export class AuditLockTimeoutError extends Error {
  override readonly name = 'AuditLockTimeoutError';
}

export interface FileLockOptions {
  staleMs?: number;
  acquireTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Acquires the lock at `lockPath`; resolves to a release function. */
export async function acquireFileLock(
  lockPath: string,
  options: FileLockOptions = {},
): Promise<() => Promise<void>> {
  const staleMs = options.staleMs ?? AUDIT_LOCK_STALE_MS;
  const deadline = Date.now() + (options.acquireTimeoutMs ?? AUDIT_LOCK_ACQUIRE_TIMEOUT_MS);
  const token = `${process.pid}@${hostname()} ${randomUUID()}`;
  let delay = AUDIT_LOCK_RETRY_MIN_MS;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      try {
        await fh.writeFile(`${token}\n`, 'utf8');
      } finally {
        await fh.close();
      }
      return async () => {
        try {
          const content = await readFile(lockPath, 'utf8');
          if (content.trim() === token) await unlink(lockPath);
        } catch (err) {
          if (codeOf(err) !== 'ENOENT') throw err;
        }
      };
    } catch (err) {
      if (codeOf(err) !== 'EEXIST') throw err;
    }
    try {
      const st = await stat(lockPath);
      if (Date.now() - st.mtimeMs > staleMs) {
        await unlink(lockPath).catch((err: unknown) => {
          if (codeOf(err) !== 'ENOENT') throw err;
        });
        continue;
      }
    } catch (err) {
      if (codeOf(err) === 'ENOENT') continue;
      throw err;
    }
    if (Date.now() >= deadline) {
      throw new AuditLockTimeoutError(`could not acquire ${lockPath} in time (held by another process?)`);
    }
    await sleep(delay * (0.5 + Math.random()));
    delay = Math.min(delay * 2, AUDIT_LOCK_RETRY_MAX_MS);
  }
}
