/**
 * Loads a holdout CSV into columnar form for scoring: labels, the sensitive attribute, and the raw
 * feature columns. Also fingerprints rows, so evaluation can prove the holdout shares no row with
 * the training snapshot.
 */
import { parse } from 'csv-parse';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FeatureSpec } from '../core/contracts/feature-spec';

export interface Holdout {
  rows: number;
  labels: Uint8Array;
  groups?: string[];
  columns: Record<string, string[]>;
}

export class HoldoutError extends Error {
  override readonly name = 'HoldoutError';
}

async function* records(path: string): AsyncGenerator<Record<string, string>> {
  const parser = createReadStream(path).pipe(
    parse({ columns: true, skip_empty_lines: true, relax_column_count: false }),
  );
  for await (const rec of parser) yield rec as Record<string, string>;
}

export async function loadHoldout(path: string, spec: FeatureSpec): Promise<Holdout> {
  const labelCol = spec.label.column;
  const names = spec.features.map((f) => f.name);
  const columns: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
  const labels: number[] = [];
  const groups: string[] = [];
  const positive = String(spec.label.positiveValue);
  let line = 1;
  for await (const rec of records(path)) {
    line++;
    const y = rec[labelCol];
    if (y === undefined || y === '')
      throw new HoldoutError(`holdout line ${line}: label column "${labelCol}" is empty`);
    labels.push(y === positive ? 1 : 0);
    for (const n of names) {
      const v = rec[n];
      if (v === undefined) throw new HoldoutError(`holdout line ${line}: missing column "${n}"`);
      (columns[n] as string[]).push(v);
    }
    if (spec.sensitiveAttribute) groups.push(rec[spec.sensitiveAttribute] ?? '');
  }
  if (labels.length === 0) throw new HoldoutError('holdout has no rows');
  return {
    rows: labels.length,
    labels: Uint8Array.from(labels),
    groups: spec.sensitiveAttribute ? groups : undefined,
    columns,
  };
}

/** sha256 fingerprints of each row's features and label, for leakage checks. */
export async function rowFingerprints(path: string, spec: FeatureSpec): Promise<Set<string>> {
  const cols = [...spec.features.map((f) => f.name), spec.label.column];
  const out = new Set<string>();
  for await (const rec of records(path)) {
    out.add(
      createHash('sha1')
        .update(cols.map((c) => rec[c] ?? '').join('\u001f'))
        .digest('hex'),
    );
  }
  return out;
}
