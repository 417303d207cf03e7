/**
 * Dataset profiling: one streaming pass over a CSV file measuring what validation needs (see
 * {@link DatasetProfile}); the verdict is `judgeDataset` in `src/core/policy/validation.ts`.
 *
 * Rules:
 * - Node-only (file I/O, node:crypto). Memory is bounded except for duplicate detection: the sha1 digests of
 *   rows, ids and feature vectors are kept in sets, one 40-character hex digest per distinct row.
 * - The first record is the header. Cells are trimmed; an empty cell or one of {@link MISSING_VALUE_TOKENS}
 *   is missing (the same tokens pandas reads as NaN, so the trainer sees the same nulls).
 * - Numeric cells must be plain decimal numbers (`12`, `-0.5`, `1e3`); anything else is a type error.
 *   Categorical cells match the spec's categories exactly (case-sensitive).
 * - Records with another field count than the header (ragged rows) are counted and skipped, not fatal: the
 *   judge decides. A file that cannot be a CSV dataset throws {@link DatasetFormatError} naming the line:
 *   empty, binary (NUL bytes), broken quoting, a record over {@link MAX_RECORD_BYTES}, or a first row that
 *   cannot be a header (blank or duplicate names, or no column of the spec at all).
 * - A missing or unreadable file throws {@link DatasetReadError}.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CsvError, parse } from 'csv-parse';
import {
  MISSING_BATCH_KEY,
  signedLog1p,
  specColumns,
  type BatchProfile,
  type CategoricalColumnProfile,
  type CategoricalFeature,
  type CategoryCount,
  type ColumnProfile,
  type DatasetProfile,
  type FeatureSpec,
  type LabelProfile,
  type NumericColumnProfile,
  type NumericFeature,
} from '../core/contracts/feature-spec';

/** Cells read as missing; the same tokens pandas' read_csv turns into NaN by default (a common subset). */
export const MISSING_VALUE_TOKENS: readonly string[] = [
  '',
  'NA',
  'N/A',
  'n/a',
  'NaN',
  'nan',
  'null',
  'NULL',
  'None',
];
/** Longest record accepted: a CSV row longer than 1 MiB is a file without line structure. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Batches profiled separately; rows of further batches are counted but not screened (keeps profiles small). */
export const MAX_PROFILED_BATCHES = 1000;
/** Distinct unknown categories counted per column; beyond, unknown values are only counted in total. */
export const MAX_TRACKED_UNKNOWN_VALUES = 1000;
/** Unknown categories listed in a profile, most frequent first. */
export const MAX_REPORTED_UNKNOWN_VALUES = 20;
/** Offending values quoted in a profile are cut to this length (they end up in reports and logs). */
export const MAX_QUOTED_VALUE_LENGTH = 40;

/** The file cannot be read as a CSV dataset; the message says what is wrong and on which line. */
export class DatasetFormatError extends Error {
  override readonly name = 'DatasetFormatError';
  constructor(
    message: string,
    /** 1-based line of the file where the problem was found. */
    readonly line?: number,
  ) {
    super(message);
  }
}

/** The file does not exist or cannot be read (permissions, a folder, I/O error). */
export class DatasetReadError extends Error {
  override readonly name = 'DatasetReadError';
}

const MISSING = new Set(MISSING_VALUE_TOKENS);
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const quote = (value: string): string =>
  value.length > MAX_QUOTED_VALUE_LENGTH ? `${value.slice(0, MAX_QUOTED_VALUE_LENGTH)}...` : value;
const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');

/** Parses a trimmed, non-missing cell as a finite decimal number, or returns undefined. */
export function parseDecimal(cell: string): number | undefined {
  if (!DECIMAL.test(cell)) return undefined;
  const n = Number(cell);
  return Number.isFinite(n) ? n : undefined;
}

/** Welford's running mean and sum of squared deviations. */
class Moments {
  count = 0;
  mean = 0;
  m2 = 0;
  add(x: number): void {
    this.count += 1;
    const delta = x - this.mean;
    this.mean += delta / this.count;
    this.m2 += delta * (x - this.mean);
  }
}

class NumericAcc {
  readonly moments = new Moments();
  missing = 0;
  typeErrors = 0;
  firstTypeError: { line: number; value: string } | undefined;
  min = Infinity;
  max = -Infinity;
  belowMin = 0;
  aboveMax = 0;
  firstOutOfRange: { line: number; value: string } | undefined;
  constructor(
    readonly feature: NumericFeature,
    readonly index: number,
  ) {}

  toProfile(): NumericColumnProfile {
    const { count, mean, m2 } = this.moments;
    return {
      name: this.feature.name,
      kind: 'numeric',
      missing: this.missing,
      typeErrors: this.typeErrors,
      ...(this.firstTypeError && { firstTypeError: this.firstTypeError }),
      count,
      min: count > 0 ? this.min : null,
      max: count > 0 ? this.max : null,
      mean: count > 0 ? mean : null,
      std: count > 1 ? Math.sqrt(m2 / (count - 1)) : count === 1 ? 0 : null,
      belowMin: this.belowMin,
      aboveMax: this.aboveMax,
      ...(this.firstOutOfRange && { firstOutOfRange: this.firstOutOfRange }),
    };
  }
}

class CategoricalAcc {
  readonly known: Map<string, number>;
  readonly counts: number[];
  missing = 0;
  count = 0;
  unknown = 0;
  readonly unknownValues = new Map<string, number>();
  constructor(
    readonly feature: CategoricalFeature,
    readonly index: number,
  ) {
    this.known = new Map(feature.categories.map((c, i) => [c, i]));
    this.counts = feature.categories.map(() => 0);
  }

  toProfile(): CategoricalColumnProfile {
    const unknownValues: CategoryCount[] = [...this.unknownValues.entries()]
      .map(([value, count]) => ({ value: quote(value), count }))
      .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1))
      .slice(0, MAX_REPORTED_UNKNOWN_VALUES);
    return {
      name: this.feature.name,
      kind: 'categorical',
      missing: this.missing,
      count: this.count,
      categories: this.feature.categories.map((value, i) => ({ value, count: this.counts[i] ?? 0 })),
      unknown: this.unknown,
      unknownValues,
    };
  }
}

interface BatchAcc {
  batch: string;
  rows: number;
  positives: number;
  negatives: number;
  repeatedVectors: number;
  conflictingLabels: number;
  outOfRange: number;
  numeric: Moments[];
  /** Per categorical column: counts per spec category, then the unknown count last. */
  categorical: number[][];
}

type LabelClass = 'positive' | 'negative' | 'missing' | 'invalid';

function labelClassifier(spec: FeatureSpec): (cell: string) => LabelClass {
  const { positiveValue, negativeValue } = spec.label;
  const matches = (target: number | string, cell: string): boolean =>
    typeof target === 'number' ? parseDecimal(cell) === target : cell === target;
  return (cell) => {
    if (MISSING.has(cell)) return 'missing';
    if (matches(positiveValue, cell)) return 'positive';
    if (negativeValue !== undefined) return matches(negativeValue, cell) ? 'negative' : 'invalid';
    // Without a negative value, a numeric label must at least be a number.
    if (typeof positiveValue === 'number' && parseDecimal(cell) === undefined) return 'invalid';
    return 'negative';
  };
}

/** Counts newlines in `buf[0..end)`. */
function countNewlines(buf: Buffer, end = buf.length): number {
  let n = 0;
  let i = buf.indexOf(10);
  while (i !== -1 && i < end) {
    n += 1;
    i = buf.indexOf(10, i + 1);
  }
  return n;
}

function validateHeader(header: string[], spec: FeatureSpec, path: string): void {
  const expected = specColumns(spec);
  if (!expected.some((c) => header.includes(c))) {
    const sample = header.slice(0, 5).map((h) => `"${quote(h)}"`);
    throw new DatasetFormatError(
      `${path}: line 1 is not a header for feature spec ${spec.name}@${spec.version}: none of its fields ` +
        `(${sample.join(', ')}${header.length > 5 ? ', ...' : ''}) is one of the expected columns ` +
        `(${expected.join(', ')}); is the header row missing or the file not a CSV?`,
      1,
    );
  }
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (name === '') {
      throw new DatasetFormatError(`${path}: line 1: header column ${i + 1} has an empty name`, 1);
    }
    if (seen.has(name)) {
      throw new DatasetFormatError(`${path}: line 1: header names column "${quote(name)}" twice`, 1);
    }
    seen.add(name);
  });
}

/**
 * Streams the CSV at `path` and measures it against `spec`. Throws {@link DatasetFormatError} when the file is
 * not a CSV dataset and {@link DatasetReadError} when it cannot be read.
 */
export async function profileDataset(path: string, spec: FeatureSpec): Promise<DatasetProfile> {
  const fileHash = createHash('sha256');
  let bytes = 0;
  let linesSeen = 0;
  const stream = createReadStream(path);
  const parser = parse({
    bom: true,
    info: true,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  stream.on('data', (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    fileHash.update(buf);
    bytes += buf.length;
    const nul = buf.indexOf(0);
    if (nul !== -1) {
      const line = linesSeen + countNewlines(buf, nul) + 1;
      parser.destroy(
        new DatasetFormatError(
          `${path}: line ${line}: NUL byte found: this is a binary file, not a CSV`,
          line,
        ),
      );
      stream.destroy();
      return;
    }
    linesSeen += countNewlines(buf);
  });
  stream.on('error', (err: NodeJS.ErrnoException) => {
    parser.destroy(new DatasetReadError(`${path}: cannot read dataset: ${err.code ?? err.message}`));
  });
  stream.pipe(parser);

  let header: string[] | undefined;
  let numeric: NumericAcc[] = [];
  let categorical: CategoricalAcc[] = [];
  let labelIndex = -1;
  let idIndex = -1;
  let batchIndex = -1;
  const classify = labelClassifier(spec);
  const label: LabelProfile = { column: spec.label.column, positive: 0, negative: 0, missing: 0, invalid: 0 };
  let rows = 0;
  let raggedRows = 0;
  let firstRaggedRow: DatasetProfile['firstRaggedRow'];
  let duplicateRows = 0;
  let duplicateIds = 0;
  let repeatedVectors = 0;
  let conflictingLabels = 0;
  let untrackedBatchRows = 0;
  const rowDigests = new Set<string>();
  const idDigests = new Set<string>();
  /** Feature-vector digest -> labels seen with it (bit 1: positive, bit 2: negative). */
  const vectorLabels = new Map<string, number>();
  const batches = new Map<string, BatchAcc>();

  const newBatch = (key: string): BatchAcc => ({
    batch: key,
    rows: 0,
    positives: 0,
    negatives: 0,
    repeatedVectors: 0,
    conflictingLabels: 0,
    outOfRange: 0,
    numeric: numeric.map(() => new Moments()),
    categorical: categorical.map((c) => new Array<number>(c.feature.categories.length + 1).fill(0)),
  });

  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const { record, info } = item;
      const line = info.lines;
      if (header === undefined) {
        header = record.map((h) => h.trim());
        validateHeader(header, spec, path);
        const position = new Map(header.map((h, i) => [h, i]));
        numeric = [];
        categorical = [];
        for (const f of spec.features) {
          const index = position.get(f.name);
          if (index === undefined) continue;
          if (f.kind === 'numeric') numeric.push(new NumericAcc(f, index));
          else categorical.push(new CategoricalAcc(f, index));
        }
        labelIndex = position.get(spec.label.column) ?? -1;
        idIndex = spec.idColumn === undefined ? -1 : (position.get(spec.idColumn) ?? -1);
        batchIndex = spec.batchColumn === undefined ? -1 : (position.get(spec.batchColumn) ?? -1);
        continue;
      }
      if (record.length !== header.length) {
        raggedRows += 1;
        firstRaggedRow ??= { line, fields: record.length, expected: header.length };
        continue;
      }
      rows += 1;
      const cells = record.map((c) => c.trim());

      const rowDigest = sha1(JSON.stringify(cells));
      const duplicate = rowDigests.has(rowDigest);
      if (duplicate) duplicateRows += 1;
      else rowDigests.add(rowDigest);
      if (idIndex >= 0 && !duplicate) {
        const idDigest = sha1(cells[idIndex] ?? '');
        if (idDigests.has(idDigest)) duplicateIds += 1;
        else idDigests.add(idDigest);
      }

      let batch: BatchAcc | undefined;
      if (batchIndex >= 0) {
        const raw = cells[batchIndex] ?? '';
        const key = MISSING.has(raw) ? MISSING_BATCH_KEY : raw;
        batch = batches.get(key);
        if (batch === undefined && batches.size < MAX_PROFILED_BATCHES) {
          batch = newBatch(key);
          batches.set(key, batch);
        }
        if (batch === undefined) untrackedBatchRows += 1;
        else batch.rows += 1;
      }

      // The feature vector, normalised (numbers as parsed, missing as null) for the repeat / conflict screen.
      const vector: Array<number | string | null> = [];
      for (let k = 0; k < numeric.length; k += 1) {
        const acc = numeric[k] as NumericAcc;
        const cell = cells[acc.index] ?? '';
        if (MISSING.has(cell)) {
          acc.missing += 1;
          vector.push(null);
          continue;
        }
        const x = parseDecimal(cell);
        if (x === undefined) {
          acc.typeErrors += 1;
          acc.firstTypeError ??= { line, value: quote(cell) };
          vector.push(`!${cell}`);
          continue;
        }
        vector.push(x);
        acc.moments.add(x);
        if (x < acc.min) acc.min = x;
        if (x > acc.max) acc.max = x;
        const { min, max } = acc.feature;
        const below = min !== undefined && x < min;
        const above = max !== undefined && x > max;
        if (below) acc.belowMin += 1;
        if (above) acc.aboveMax += 1;
        if (below || above) {
          acc.firstOutOfRange ??= { line, value: cell };
          if (batch) batch.outOfRange += 1;
        }
        if (batch) (batch.numeric[k] as Moments).add(signedLog1p(x));
      }
      for (let k = 0; k < categorical.length; k += 1) {
        const acc = categorical[k] as CategoricalAcc;
        const cell = cells[acc.index] ?? '';
        if (MISSING.has(cell)) {
          acc.missing += 1;
          vector.push(null);
          continue;
        }
        vector.push(cell);
        acc.count += 1;
        const known = acc.known.get(cell);
        const slot = known ?? acc.feature.categories.length;
        if (known !== undefined) {
          acc.counts[known] = (acc.counts[known] ?? 0) + 1;
        } else {
          acc.unknown += 1;
          const seen = acc.unknownValues.get(cell);
          if (seen !== undefined) acc.unknownValues.set(cell, seen + 1);
          else if (acc.unknownValues.size < MAX_TRACKED_UNKNOWN_VALUES) acc.unknownValues.set(cell, 1);
        }
        if (batch) {
          const counts = batch.categorical[k] as number[];
          counts[slot] = (counts[slot] ?? 0) + 1;
        }
      }

      let labelBit = 0;
      if (labelIndex >= 0) {
        const cell = cells[labelIndex] ?? '';
        const cls = classify(cell);
        label[cls] += 1;
        if (cls === 'invalid') label.firstInvalid ??= { line, value: quote(cell) };
        if (cls === 'positive') labelBit = 1;
        if (cls === 'negative') labelBit = 2;
        if (batch && cls === 'positive') batch.positives += 1;
        if (batch && cls === 'negative') batch.negatives += 1;
      }

      // Exact duplicates are judged by the duplicate-row check; the vector screen is about distinct rows.
      if (vector.length > 0 && !duplicate) {
        const digest = sha1(JSON.stringify(vector));
        const seen = vectorLabels.get(digest);
        if (seen !== undefined) {
          repeatedVectors += 1;
          if (batch) batch.repeatedVectors += 1;
          if (labelBit !== 0 && (seen & labelBit) === 0 && seen !== 0) {
            conflictingLabels += 1;
            if (batch) batch.conflictingLabels += 1;
          }
        }
        vectorLabels.set(digest, (seen ?? 0) | labelBit);
      }
    }
  } catch (err) {
    stream.destroy();
    if (err instanceof DatasetFormatError || err instanceof DatasetReadError) throw err;
    if (err instanceof CsvError) {
      const line = typeof err.lines === 'number' ? err.lines : undefined;
      const where = line === undefined ? '' : ` line ${line}:`;
      const what =
        err.code === 'CSV_MAX_RECORD_SIZE'
          ? `a record is longer than ${MAX_RECORD_BYTES} bytes: not a line-oriented CSV`
          : `CSV syntax error (${err.code}): ${err.message}`;
      throw new DatasetFormatError(`${path}:${where} ${what}`, line);
    }
    throw err;
  }

  if (header === undefined) {
    throw new DatasetFormatError(`${path}: line 1: the file is empty: expected a header row`, 1);
  }
  const headerSet = new Set(header);
  const expected = specColumns(spec);
  const expectedSet = new Set(expected);
  const byName = new Map<string, ColumnProfile>();
  for (const acc of numeric) byName.set(acc.feature.name, acc.toProfile());
  for (const acc of categorical) byName.set(acc.feature.name, acc.toProfile());

  const batchProfiles: BatchProfile[] = [...batches.values()].map((b) => ({
    batch: b.batch,
    rows: b.rows,
    positives: b.positives,
    negatives: b.negatives,
    repeatedVectors: b.repeatedVectors,
    conflictingLabels: b.conflictingLabels,
    outOfRange: b.outOfRange,
    numeric: numeric.map((acc, k) => {
      const m = b.numeric[k] as Moments;
      return { column: acc.feature.name, count: m.count, mean: m.mean, m2: m.m2 };
    }),
    categorical: categorical.map((acc, k) => {
      const counts = b.categorical[k] as number[];
      const cats = acc.feature.categories.map((value, i) => ({ value, count: counts[i] ?? 0 }));
      const unknown = counts[acc.feature.categories.length] ?? 0;
      return {
        column: acc.feature.name,
        count: cats.reduce((s, c) => s + c.count, unknown),
        categories: cats,
        unknown,
      };
    }),
  }));

  return {
    specName: spec.name,
    specVersion: spec.version,
    sha256: fileHash.digest('hex'),
    bytes,
    header,
    rows,
    raggedRows,
    ...(firstRaggedRow && { firstRaggedRow }),
    missingColumns: expected.filter((c) => !headerSet.has(c)),
    unexpectedColumns: header.filter((c) => !expectedSet.has(c)),
    duplicateRows,
    duplicateIds: idIndex >= 0 ? duplicateIds : null,
    columns: spec.features.flatMap((f) => byName.get(f.name) ?? []),
    label: labelIndex >= 0 ? label : null,
    repeatedVectors,
    conflictingLabels,
    batchColumn: batchIndex >= 0 ? (spec.batchColumn ?? null) : null,
    batches: batchProfiles,
    untrackedBatchRows,
  };
}
