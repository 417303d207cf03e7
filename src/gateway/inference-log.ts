/**
 * The embedded inference log: JSON lines in hourly partitions,
 * `<dir>/<model>/date=YYYY-MM-DD/hour=HH/part-<pid>.jsonl` (UTC), one file per writing process so
 * cluster workers never interleave lines. Records are buffered and appended in batches off the request
 * path; features arrive already redacted.
 */
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceLog, InferenceRecord } from '../ports/inference-log';

/** Buffered records that trigger a write before the flush interval. */
export const INFERENCE_LOG_BATCH = 1000;
/** Longest a record waits in the buffer. */
export const INFERENCE_LOG_FLUSH_MS = 1000;

const pad = (n: number): string => String(n).padStart(2, '0');

export function partitionOf(time: Date): { date: string; hour: string } {
  return {
    date: `${time.getUTCFullYear()}-${pad(time.getUTCMonth() + 1)}-${pad(time.getUTCDate())}`,
    hour: pad(time.getUTCHours()),
  };
}

export class JsonlInferenceLog implements InferenceLog {
  private buffer = new Map<string, string[]>();
  private buffered = 0;
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

  /** The partition file of the current hour per model, so the hot path does no date arithmetic. */
  private hourCache = new Map<string, { hour: number; file: string }>();

  append(record: InferenceRecord): void {
    const at = Date.parse(record.time);
    const hour = Math.floor(at / 3_600_000);
    let cached = this.hourCache.get(record.model);
    if (!cached || cached.hour !== hour) {
      cached = { hour, file: this.fileFor(record.model, new Date(at)) };
      this.hourCache.set(record.model, cached);
    }
    const file = cached.file;
    let lines = this.buffer.get(file);
    if (!lines) this.buffer.set(file, (lines = []));
    lines.push(JSON.stringify(record));
    if (++this.buffered >= INFERENCE_LOG_BATCH) void this.flush();
  }

  flush(): Promise<void> {
    if (this.buffered === 0) return this.writing;
    const batch = this.buffer;
    this.buffer = new Map();
    this.buffered = 0;
    this.writing = this.writing.then(async () => {
      for (const [file, lines] of batch) {
        await mkdir(path.dirname(file), { recursive: true });
        await appendFile(file, `${lines.join('\n')}\n`);
      }
    });
    this.writing = this.writing.catch(() => undefined);
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
