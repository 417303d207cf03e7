/**
 * The drift monitor's read side of the inference log, and the delayed-label source.
 *
 * - {@link InferenceLogSource}: records of a model answered in [from, to). The file implementation
 *   reads the gateway's JSONL partitions (`<dir>/<model>/date=YYYY-MM-DD/hour=HH/part-*.jsonl`, see
 *   src/gateway/inference-log.ts) hour by hour; a line that does not parse is counted, not fatal.
 * - {@link LabelSource}: labels that arrive later (chargebacks), JSON lines `{requestId, label}` in
 *   `<dir>/<model>/*.jsonl`, joined to predictions by request id.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { partitionOf } from '../gateway/inference-log';
import type { InferenceRecord } from '../ports/inference-log';

export interface InferenceLogSource {
  read(model: string, from: Date, to: Date): AsyncIterable<InferenceRecord>;
}

export interface LabelSource {
  /** Labels by request id for the given ids (missing ids have no label yet). */
  labels(model: string, requestIds: ReadonlySet<string>): Promise<Map<string, 0 | 1>>;
}

const RecordSchema = z.object({
  time: z.string(),
  requestId: z.string(),
  model: z.string(),
  version: z.string(),
  route: z.enum(['stable', 'canary', 'staging', 'shadow']),
  features: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
  prediction: z.number(),
  ood: z.boolean(),
});

const HOUR_MS = 3_600_000;

export class FileInferenceLogSource implements InferenceLogSource {
  /** Lines that were not valid records, across reads. */
  malformed = 0;
  constructor(private readonly dir: string) {}

  async *read(model: string, from: Date, to: Date): AsyncIterable<InferenceRecord> {
    const root = path.join(this.dir, model);
    for (let t = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS; t < to.getTime(); t += HOUR_MS) {
      const { date, hour } = partitionOf(new Date(t));
      const folder = path.join(root, `date=${date}`, `hour=${hour}`);
      const parts = await readdir(folder).catch(() => [] as string[]);
      for (const part of parts.filter((p) => p.endsWith('.jsonl')).sort()) {
        const text = await readFile(path.join(folder, part), 'utf8');
        for (const line of text.split('\n')) {
          if (!line) continue;
          let parsed: z.infer<typeof RecordSchema>;
          try {
            parsed = RecordSchema.parse(JSON.parse(line));
          } catch {
            this.malformed++;
            continue;
          }
          const at = Date.parse(parsed.time);
          if (at >= from.getTime() && at < to.getTime()) yield parsed;
        }
      }
    }
  }
}

const LabelSchema = z.object({ requestId: z.string(), label: z.union([z.literal(0), z.literal(1)]) });

export class FileLabelSource implements LabelSource {
  /** Lines that were not valid labels (bad JSON, wrong shape), across reads; skipped, never fatal. */
  malformed = 0;
  constructor(private readonly dir: string) {}

  async labels(model: string, ids: ReadonlySet<string>): Promise<Map<string, 0 | 1>> {
    const out = new Map<string, 0 | 1>();
    const folder = path.join(this.dir, model);
    const files = await readdir(folder).catch(() => [] as string[]);
    for (const f of files.filter((x) => x.endsWith('.jsonl')).sort()) {
      for (const line of (await readFile(path.join(folder, f), 'utf8')).split('\n')) {
        if (!line) continue;
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch {
          this.malformed++;
          continue;
        }
        const r = LabelSchema.safeParse(raw);
        if (!r.success) this.malformed++;
        else if (ids.has(r.data.requestId)) out.set(r.data.requestId, r.data.label);
      }
    }
    return out;
  }
}
