/**
 * The embedded inference log: JSON lines in hourly partitions,
 * `<dir>/<model>/date=YYYY-MM-DD/hour=HH/part-<pid>.jsonl` (UTC), one file per writing process so
 * cluster workers never interleave lines. Records are buffered and appended in batches off the request
 * path; features arrive already redacted.
 *
 * A record's line is copied into an off-heap chunk per partition file at once ({@link LineChunks}), so
 * buffered records hold no JS objects; a chunk is appended to its file once full (LINE_CHUNK_BYTES)
 * or after {@link INFERENCE_LOG_FLUSH_MS}.
 *
 * Loss window: a record is on disk once its chunk is written, at most {@link INFERENCE_LOG_FLUSH_MS}
 * (or one chunk) after it was appended; a crash loses what is buffered then. `close()` (the gateway's
 * graceful shutdown) writes everything out.
 */
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceLog, InferenceRecord } from '../ports/inference-log';
import { LineChunks } from './line-chunks';

/** Longest a record waits in the buffer. */
export const INFERENCE_LOG_FLUSH_MS = 1000;

const pad = (n: number): string => String(n).padStart(2, '0');

/** Length of an ISO-8601 UTC time as Date.prototype.toISOString writes it (`YYYY-MM-DDTHH:MM:SS.sssZ`). */
const ISO_UTC_LENGTH = 24;
/** Characters of such a time up to and including its hour (`YYYY-MM-DDTHH`). */
const ISO_HOUR_PREFIX = 13;

export function partitionOf(time: Date): { date: string; hour: string } {
  return {
    date: `${time.getUTCFullYear()}-${pad(time.getUTCMonth() + 1)}-${pad(time.getUTCDate())}`,
    hour: pad(time.getUTCHours()),
  };
}

export class JsonlInferenceLog implements InferenceLog {
  /** The chunk being filled per partition file. */
  private chunks = new Map<string, LineChunks>();
  /** Partition folders made so far. */
  private readonly folders = new Set<string>();
  /** Settles once every chunk emitted so far is appended (writes run one after another, in order). */
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly dir: string) {
    this.timer = setInterval(() => void this.flush(), INFERENCE_LOG_FLUSH_MS);
    this.timer.unref();
  }

  private fileFor(model: string, time: Date): string {
    const { date, hour } = partitionOf(time);
    return path.join(this.dir, model, `date=${date}`, `hour=${hour}`, `part-${process.pid}.jsonl`);
  }

  /**
   * The partition file of the current hour per model, keyed by the hour's prefix of the ISO time
   * (`YYYY-MM-DDTHH`), so the hot path neither parses nor formats a date.
   */
  private hourCache = new Map<string, { prefix: string; file: string }>();

  private partitionFile(model: string, time: string): string {
    const iso = time.length === ISO_UTC_LENGTH && time.charCodeAt(ISO_UTC_LENGTH - 1) === 90; // ...Z
    const cached = this.hourCache.get(model);
    if (iso && cached && time.startsWith(cached.prefix)) return cached.file;
    const at = new Date(Date.parse(time));
    const file = this.fileFor(model, at);
    if (iso) this.hourCache.set(model, { prefix: time.slice(0, ISO_HOUR_PREFIX), file });
    return file;
  }

  append(record: InferenceRecord): void {
    const file = this.partitionFile(record.model, record.time);
    let chunks = this.chunks.get(file);
    if (!chunks) this.chunks.set(file, (chunks = new LineChunks((bytes) => this.write(file, bytes))));
    chunks.push(JSON.stringify(record), true);
  }

  private write(file: string, bytes: Buffer): void {
    this.writing = this.writing
      .then(async () => {
        const folder = path.dirname(file);
        if (!this.folders.has(folder)) {
          await mkdir(folder, { recursive: true });
          this.folders.add(folder);
        }
        await appendFile(file, bytes);
      })
      .catch(() => undefined);
  }

  flush(): Promise<void> {
    const batch = this.chunks;
    this.chunks = new Map();
    for (const chunks of batch.values()) chunks.flush();
    return this.writing;
  }

  async *read(model: string, from: Date, to: Date): AsyncIterable<InferenceRecord> {
    const root = path.join(this.dir, model);
    const first = new Date(Math.floor(from.getTime() / 3_600_000) * 3_600_000);
    for (let t = first.getTime(); t < to.getTime(); t += 3_600_000) {
      const { date, hour } = partitionOf(new Date(t));
      const folder = path.join(root, `date=${date}`, `hour=${hour}`);
      const parts = await readdir(folder).catch(() => [] as string[]);
      for (const part of parts.sort()) {
        const text = await readFile(path.join(folder, part), 'utf8');
        for (const line of text.split('\n')) {
          if (!line) continue;
          const r = JSON.parse(line) as InferenceRecord;
          const at = Date.parse(r.time);
          if (at >= from.getTime() && at < to.getTime()) yield r;
        }
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
