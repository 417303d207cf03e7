/**
 * File digests of a model folder, the way OpenSSF model signing's `files` serialization sees it:
 * one sha256 per regular file, named by its POSIX path relative to the folder, sorted by name.
 *
 * Rules:
 * - Node-only. Folders are hashed in parallel, one file per worker thread, each reading
 *   {@link HASH_READ_CHUNK_BYTES} at a time into one reused buffer (large sequential reads, no
 *   stream machinery), so a multi-gigabyte model is bound by sha256 throughput times cores. The
 *   workers are kept between calls for {@link HASH_POOL_IDLE_MS} (unref'd: they never hold the
 *   process open), so only the first verification of a process pays their start.
 * - Symlinks are refused, as `model_signing` refuses them unless told otherwise: a link could point
 *   outside the folder and change what is loaded without changing what was signed.
 * - `ignorePaths` are matched as model_signing matches them: a path equal to an entry, or below it.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** Bytes read per `read` call while hashing a file: large reads keep the hash busy, not the syscalls. */
export const HASH_READ_CHUNK_BYTES = 8 * 1024 * 1024;
/** Files smaller than this are hashed on the calling thread: a worker round trip would cost more. */
export const INLINE_HASH_MAX_BYTES = 1024 * 1024;
/** Paths model_signing ignores by default (its `--ignore-git-paths`), so both sides hash the same files. */
export const DEFAULT_IGNORE_PATHS: readonly string[] = ['.gitattributes', '.github', '.gitignore', '.git'];

export interface FileDigest {
  /** POSIX path relative to the model folder. */
  path: string;
  sha256: string;
  bytes: number;
}

/** A model folder cannot be hashed as signed content (a symlink, an unreadable file). */
export class ModelHashingError extends Error {
  override readonly name = 'ModelHashingError';
}

/** Code-unit order, as model_signing sorts its resources. */
export const byPath = (a: { path: string }, b: { path: string }): number =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

/** True when `rel` is one of `ignorePaths` or lies below one. */
export function isIgnored(rel: string, ignorePaths: readonly string[]): boolean {
  return ignorePaths.some((p) => {
    const q = p.replace(/\/+$/, '');
    return rel === q || rel.startsWith(`${q}/`);
  });
}

/** Every regular file below `root` (relative POSIX paths), refusing symlinks and other special files. */
export async function listModelFiles(
  root: string,
  ignorePaths: readonly string[] = DEFAULT_IGNORE_PATHS,
): Promise<Array<{ path: string; abs: string; bytes: number }>> {
  const out: Array<{ path: string; abs: string; bytes: number }> = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (isIgnored(childRel, ignorePaths)) continue;
      const abs = path.join(dir, e.name);
      if (e.isSymbolicLink()) throw new ModelHashingError(`${childRel}: symlinks are not allowed in a model`);
      if (e.isDirectory()) await walk(abs, childRel);
      else if (e.isFile()) out.push({ path: childRel, abs, bytes: (await lstat(abs)).size });
      else throw new ModelHashingError(`${childRel}: not a regular file`);
    }
  };
  await walk(root, '');
  return out.sort(byPath);
}

/** sha256 of in-memory files (the bytes a loader holds), sorted by path. */
export function digestBuffers(files: ReadonlyArray<{ path: string; content: Buffer }>): FileDigest[] {
  return files
    .map((f) => ({
      path: f.path,
      sha256: createHash('sha256').update(f.content).digest('hex'),
      bytes: f.content.length,
    }))
    .sort(byPath);
}

// Plain JavaScript evaluated in each worker (no loader needed under tsx or vitest): hash one file per message.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(workerData.chunk);
parentPort.on('message', (job) => {
  let fd;
  try {
    fd = openSync(job.file, 'r');
    const h = createHash('sha256');
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
    }
    parentPort.postMessage({ id: job.id, sha256: h.digest('hex'), bytes: total });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: String((err && err.code) || (err && err.message) || err) });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

type WorkerReply = { id: number; sha256: string; bytes: number } | { id: number; error: string };

/**
 * Idle hash workers are kept this long for the next call, then stopped: starting a pool costs 50 to
 * 200 ms (a tenth of verifying 2 GB), and a worker process verifies at every hop.
 */
export const HASH_POOL_IDLE_MS = 30_000;

/** Started workers not hashing now; unref'd, so they never keep the process alive. */
const idleWorkers: Worker[] = [];
let idleTimer: NodeJS.Timeout | undefined;

function takeWorker(): Worker {
  const w =
    idleWorkers.pop() ??
    new Worker(WORKER_SOURCE, { eval: true, workerData: { chunk: HASH_READ_CHUNK_BYTES } });
  w.ref();
  return w;
}

/** Back to the idle list (up to one per core) if it is still healthy, else stopped. */
function returnWorker(w: Worker, healthy: boolean): void {
  w.removeAllListeners('message');
  w.removeAllListeners('error');
  if (!healthy || idleWorkers.length >= availableParallelism()) {
    void w.terminate();
    return;
  }
  w.unref();
  idleWorkers.push(w);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    for (const idle of idleWorkers.splice(0)) void idle.terminate();
  }, HASH_POOL_IDLE_MS);
  idleTimer.unref();
}

/** Hashes files on `threads` pooled worker threads (started on first use, kept while calls come). */
async function hashOnPool(
  jobs: ReadonlyArray<{ path: string; abs: string }>,
  threads: number,
): Promise<Map<string, { sha256: string; bytes: number }>> {
  const results = new Map<string, { sha256: string; bytes: number }>();
  if (jobs.length === 0) return results;
  const size = Math.max(1, Math.min(threads, jobs.length));
  const workers = Array.from({ length: size }, takeWorker);
  const healthy = workers.map(() => true);
  try {
    let next = 0;
    await Promise.all(
      workers.map(
        (w, k) =>
          new Promise<void>((resolve, reject) => {
            const fail = (err: Error): void => {
              healthy[k] = false;
              reject(err);
            };
            const feed = () => {
              if (next >= jobs.length) return resolve();
              const id = next++;
              const job = jobs[id];
              if (job) w.postMessage({ id, file: job.abs });
            };
            w.on('message', (reply: WorkerReply) => {
              const job = jobs[reply.id];
              if (!job) return fail(new ModelHashingError(`hash worker answered unknown job ${reply.id}`));
              if ('error' in reply) {
                // The worker is fine (it answered); only the file was unreadable.
                reject(new ModelHashingError(`${job.path}: ${reply.error}`));
                return;
              }
              results.set(job.path, { sha256: reply.sha256, bytes: reply.bytes });
              feed();
            });
            w.on('error', fail);
            feed();
          }),
      ),
    );
  } catch (err) {
    // A worker may still be hashing a file of this call: none of them goes back to the pool.
    healthy.fill(false);
    throw err;
  } finally {
    workers.forEach((w, k) => returnWorker(w, healthy[k]!));
  }
  return results;
}

/**
 * The digest of every file below `root`, sorted by path. Large files go to a pool of
 * `threads` workers (default: one per core), largest first so the pool finishes together.
 */
export async function digestFolder(
  root: string,
  options: { ignorePaths?: readonly string[]; threads?: number } = {},
): Promise<FileDigest[]> {
  const files = await listModelFiles(root, options.ignorePaths ?? DEFAULT_IGNORE_PATHS);
  const threads = options.threads ?? availableParallelism();
  const big = files.filter((f) => f.bytes > INLINE_HASH_MAX_BYTES).sort((a, b) => b.bytes - a.bytes);
  const pooled = hashOnPool(big, threads);
  const out: FileDigest[] = [];
  for (const f of files) {
    if (f.bytes > INLINE_HASH_MAX_BYTES) continue;
    const content = await readFile(f.abs);
    out.push({
      path: f.path,
      sha256: createHash('sha256').update(content).digest('hex'),
      bytes: content.length,
    });
  }
  const hashed = await pooled;
  for (const f of big) {
    const r = hashed.get(f.path);
    if (!r) throw new ModelHashingError(`${f.path}: not hashed`);
    out.push({ path: f.path, ...r });
  }
  return out.sort(byPath);
}
