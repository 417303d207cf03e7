/**
 * Dataset profiling on the analytics engine (`src/data/engine.ts`): a CSV or Parquet file is scanned once into
 * an in-memory columnar table of normalised cells (one projection, no join), and a few aggregate queries over
 * it measure everything validation needs (see {@link DatasetProfile}); the verdict is `judgeDataset` in
 * `src/core/policy/validation.ts`.
 *
 * Rules:
 * - Node-only. The file is read once by the engine (in parallel); when the caller does not pass the sha256 it
 *   already has (a content-addressed snapshot), the bytes are hashed by a concurrent stream. A CSV is first
 *   scanned for digit separators and tried on the fast path (numbers parsed by the reader, see
 *   {@link profileWith}); a file with a cell only the full path can judge is read again on it.
 * - The format is sniffed from the content: a file starting with `PAR1` is Parquet, anything else is CSV.
 * - CSV: the first record is the header (read here, before the engine, so a file that is not a dataset fails
 *   fast and by line). Feature, label and batch cells are trimmed (ASCII whitespace, NBSP, BOM); an empty cell or one of
 *   {@link MISSING_VALUE_TOKENS} is missing (the same tokens pandas reads as NaN, so the trainer sees the same
 *   nulls). Records with another field count than the header (ragged rows) are counted and skipped, not
 *   fatal: the judge decides. A file that cannot be a CSV dataset throws {@link DatasetFormatError} naming
 *   the line: empty, binary (a NUL byte in the first {@link MAX_RECORD_BYTES}), broken quoting, a record over
 *   {@link MAX_RECORD_BYTES}, invalid UTF-8, or a first row that cannot be a header (blank or duplicate names,
 *   or no column of the spec at all).
 * - Parquet: the schema's column names are the header; typed numeric columns are read as numbers (NaN is
 *   missing), every other column as its text. A truncated or corrupt file throws {@link DatasetFormatError}.
 *   `line` in a profile is the 1-based row number there.
 * - Numeric cells must be plain decimal numbers (`12`, `-0.5`, `1e3`); anything else is a type error.
 *   Categorical cells match the spec's categories exactly (case-sensitive).
 * - Repeated feature vectors, exact duplicate rows (equal after normalising: numbers as parsed, cells trimmed;
 *   the id and columns outside the spec as written) and repeated ids are found by 64-bit hashes: two
 *   different values collide with probability about n^2 / 2^65 (3e-8 for a million rows).
 * - Line numbers of accepted CSV rows count records after the header, corrected for the ragged rows before
 *   them; a blank line or a quoted line break before a row shifts its reported line by one each.
 * - A missing or unreadable file throws {@link DatasetReadError}.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  MISSING_BATCH_KEY,
  specColumns,
  type BatchProfile,
  type CategoricalFeature,
  type ColumnProfile,
  type DatasetProfile,
  type FeatureSpec,
  type LabelProfile,
  type NumericFeature,
  type ValueAtLine,
} from '../core/contracts/feature-spec';
import {
  openEngine,
  sqlIdent as id,
  sqlString as lit,
  toNumber,
  type EngineRow,
  type EngineSession,
} from './engine';
import { DEFAULT_DRIFT_BINS, measureDriftReference, type DriftReference } from './drift-reference';

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
/** Unknown categories listed in a profile, most frequent first. */
export const MAX_REPORTED_UNKNOWN_VALUES = 20;
/** Offending values quoted in a profile are cut to this length (they end up in reports and logs). */
export const MAX_QUOTED_VALUE_LENGTH = 40;

/** The file cannot be read as a dataset; the message says what is wrong and on which line. */
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

/** File formats the profiler reads. */
export const DatasetFormat = { csv: 'csv', parquet: 'parquet' } as const;
export type DatasetFormat = (typeof DatasetFormat)[keyof typeof DatasetFormat];

export interface ProfileOptions {
  /** The file's sha256 when the caller already hashed it (a snapshot); otherwise it is hashed here. */
  sha256?: string;
  /** Reads a CSV file on the full path only, never the fast one (tests compare the two). */
  fullPath?: boolean;
}

const PARQUET_MAGIC = 'PAR1';
/** Characters trimmed from CSV cells: ASCII whitespace, NBSP and a stray BOM. */
const TRIM_CHARS = ' \t\n\r\v\f\u00a0\ufeff';
/** Engine types read as numbers in a Parquet file; everything else is read as text. */
const NUMERIC_TYPE =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$/;

const quote = (value: string): string =>
  value.length > MAX_QUOTED_VALUE_LENGTH ? `${value.slice(0, MAX_QUOTED_VALUE_LENGTH)}...` : value;
const readError = (file: string, err: unknown): DatasetReadError =>
  new DatasetReadError(
    `${file}: cannot read dataset: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
  );

// ---------------------------------------------------------------------------------------------------------
// The start of the file: format sniffing and the CSV header
// ---------------------------------------------------------------------------------------------------------

export interface FileHead {
  format: DatasetFormat;
  /** CSV only: the header's fields (trimmed) and the 1-based line it is on. */
  header: string[];
  headerLine: number;
}

/** Reads at most MAX_RECORD_BYTES + 1 bytes from the start of the file. */
async function readStart(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
    const st = await handle.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    const buf = Buffer.alloc(Math.min(st.size, MAX_RECORD_BYTES + 1));
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    throw readError(file, err);
  } finally {
    await handle?.close();
  }
}

function countNewlines(buf: Buffer, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1 && i < end; i = buf.indexOf(10, i + 1)) n += 1;
  return n;
}

/** Parses the first non-blank record of a CSV start; throws DatasetFormatError when it is not one. */
function parseHeader(start: Buffer, file: string, complete: boolean): { fields: string[]; line: number } {
  const nul = start.indexOf(0);
  if (nul !== -1) {
    const line = countNewlines(start, nul) + 1;
    throw new DatasetFormatError(
      `${file}: line ${line}: NUL byte found: this is a binary file, not a CSV`,
      line,
    );
  }
  let text = start.toString('utf8');
  if (text.startsWith('\ufeff')) text = text.slice(1);
  let i = 0;
  let line = 1;
  while (i < text.length && (text[i] === '\n' || text[i] === '\r')) {
    if (text[i] === '\n') line += 1;
    i += 1;
  }
  if (i >= text.length) {
    throw new DatasetFormatError(`${file}: line 1: the file is empty: expected a header row`, 1);
  }
  const syntax = (what: string): DatasetFormatError =>
    new DatasetFormatError(`${file}: line ${line}: CSV syntax error (${what})`, line);
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let afterQuote = false;
  for (; i < text.length; i += 1) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else {
        quoted = false;
        afterQuote = true;
      }
      continue;
    }
    if (ch === ',' || ch === '\n' || ch === '\r') {
      fields.push(field.trim());
      field = '';
      afterQuote = false;
      if (ch !== ',') return { fields, line };
      continue;
    }
    if (afterQuote) throw syntax('a character after a closing quote');
    if (ch === '"') {
      if (field.trim() !== '') throw syntax('a quote inside an unquoted field');
      field = '';
      quoted = true;
      continue;
    }
    field += ch;
  }
  if (quoted) throw syntax('the header has an unterminated quote');
  if (!complete) {
    throw new DatasetFormatError(
      `${file}: line ${line}: a record is longer than ${MAX_RECORD_BYTES} bytes: not a line-oriented CSV`,
      line,
    );
  }
  fields.push(field.trim());
  return { fields, line };
}

function validateHeader(header: string[], spec: FeatureSpec, file: string, line: number): void {
  const expected = specColumns(spec);
  if (!expected.some((c) => header.includes(c))) {
    const sample = header.slice(0, 5).map((h) => `"${quote(h)}"`);
    throw new DatasetFormatError(
      `${file}: line ${line} is not a header for feature spec ${spec.name}@${spec.version}: none of its ` +
        `fields (${sample.join(', ')}${header.length > 5 ? ', ...' : ''}) is one of the expected columns ` +
        `(${expected.join(', ')}); is the header row missing or the file not a CSV?`,
      line,
    );
  }
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (name === '') {
      throw new DatasetFormatError(`${file}: line ${line}: header column ${i + 1} has an empty name`, line);
    }
    if (seen.has(name)) {
      throw new DatasetFormatError(`${file}: line ${line}: header names column "${quote(name)}" twice`, line);
    }
    seen.add(name);
  });
}

/** The format of a file from its first bytes: Parquet files start with `PAR1`, anything else is read as CSV. */
export function sniffFormat(start: Buffer): DatasetFormat {
  return start.subarray(0, 4).toString('latin1') === PARQUET_MAGIC
    ? DatasetFormat.parquet
    : DatasetFormat.csv;
}

export async function readHead(file: string, spec: FeatureSpec): Promise<FileHead> {
  const start = await readStart(file);
  if (sniffFormat(start) === DatasetFormat.parquet) {
    return { format: DatasetFormat.parquet, header: [], headerLine: 0 };
  }
  const { fields, line } = parseHeader(start, file, start.length <= MAX_RECORD_BYTES);
  validateHeader(fields, spec, file, line);
  return { format: DatasetFormat.csv, header: fields, headerLine: line };
}

// ---------------------------------------------------------------------------------------------------------
// SQL over the loaded table `d`
// ---------------------------------------------------------------------------------------------------------

/** How each spec role maps onto the loaded table's columns. */
export interface Plan {
  numeric: Array<{ feature: NumericFeature; k: number }>;
  categorical: Array<{ feature: CategoricalFeature; k: number }>;
  hasLabel: boolean;
  hasId: boolean;
  hasBatch: boolean;
}

/**
 * `expr` equals one of `values`, as a chain of comparisons: the engine plans an `IN` list of constants as a
 * join, which in a projection costs more than the whole scan (and gives up its order).
 */
const oneOf = (expr: string, values: readonly string[]): string =>
  values.length === 0 ? 'false' : `(${values.map((v) => `${expr} = ${lit(v)}`).join(' OR ')})`;
const isToken = (t: string): string => oneOf(t, MISSING_VALUE_TOKENS);
const missingExpr = (t: string): string => `(${t} IS NULL OR ${isToken(t)})`;
/** A finite decimal number or NULL (the engine's cast also takes `1_000`, `inf` and `nan`: refused here). */
const decimalExpr = (t: string): string =>
  `CASE WHEN NOT ${missingExpr(t)} AND NOT contains(${t}, '_') AND isfinite(TRY_CAST(${t} AS DOUBLE)) ` +
  `THEN TRY_CAST(${t} AS DOUBLE) + 0.0 END`;
const numLit = (x: number): string => (Number.isInteger(x) ? `${x}.0` : String(x));

function outOfRangeExpr(n: string, f: NumericFeature): string {
  const parts: string[] = [];
  if (f.min !== undefined) parts.push(`${n} < ${numLit(f.min)}`);
  if (f.max !== undefined) parts.push(`${n} > ${numLit(f.max)}`);
  return parts.length === 0 ? 'false' : `coalesce(${parts.join(' OR ')}, false)`;
}

/** Label class: 0 missing, 1 positive, 2 negative, 3 invalid. */
function labelExpr(t: string, spec: FeatureSpec): string {
  const { positiveValue: pos, negativeValue: neg } = spec.label;
  const matches = (target: number | string): string =>
    typeof target === 'number'
      ? `coalesce(${decimalExpr(t)} = ${numLit(target)}, false)`
      : `${t} = ${lit(target)}`;
  const otherwise =
    neg !== undefined
      ? `WHEN ${matches(neg)} THEN 2 ELSE 3`
      : typeof pos === 'number'
        ? `WHEN ${decimalExpr(t)} IS NULL THEN 3 ELSE 2`
        : 'ELSE 2';
  return `CASE WHEN ${missingExpr(t)} THEN 0 WHEN ${matches(pos)} THEN 1 ${otherwise} END::UTINYINT`;
}

/**
 * The statement that loads the source into `d`, in three projections over one scan (no join, no ORDER BY:
 * the engine keeps the scan's order, so the table's rowid is the record's index):
 * 1. the raw cells `r<j>`, numbers `x<k>` as the engine parses them, label and batch text;
 * 2. per numeric feature `n<k>` (a valid number or NULL) and `m<k>` (missing); per categorical feature `ci<k>`
 *    (index of its spec category, the count of categories for an unknown one, NULL when missing); `lb` (label
 *    class), `idv` (hash of the id), `bk` (batch key); the raw text of feature and extra columns passes through;
 * 3. from those: `e<k>` (the text of a cell that is not an in-range number), `c<k>` (an unknown category's
 *    text), `le` (an invalid label's text), `vh` (feature-vector hash) and `rh` (hash of the whole
 *    normalised row).
 * Trimming costs more than the rest of a cell's work, so it is done only where the cheap test fails: a number
 * parses with blanks around it, a category or label matching the spec as written needs none. CASE evaluates
 * a branch only for the rows that reach it (AND / OR in a projection evaluate both sides).
 */
function loadSql(
  source: string,
  header: string[],
  types: Map<string, string>,
  spec: FeatureSpec,
  plan: Plan,
  keepIdText = false,
  csvNumbersTyped = false,
): string[] {
  const isText = (name: string): boolean => (types.get(name) ?? 'VARCHAR') === 'VARCHAR';
  // A typed (Parquet) column is turned into text only where text is needed, and then lazily (inside CASE).
  const text = (col: string, name: string): string => (isText(name) ? col : `CAST(${col} AS VARCHAR)`);
  const raw = (name: string): string => text(`r${header.indexOf(name)}`, name);
  const trimmed = (r: string): string => `trim(${r}, ${lit(TRIM_CHARS)})`;
  const inner = header.map((h, j) => `${id(h)} AS r${j}`);
  const mid: string[] = [];
  /** The columns of `d` besides the hashes and the offending texts. */
  const kept: string[] = [];
  const pass = (name: string, as: string): void => {
    mid.push(`r${header.indexOf(name)} AS ${as}`);
  };
  const vector: string[] = [];

  /** Offending texts kept per row (NULL for a clean row): numeric features, categorical features, label. */
  const offending: string[] = [];
  const anyOffending: string[] = [];
  /** Fast path: conditions of a numeric cell the full path must judge (a type error, out of range). */
  const numericBad: string[] = [];

  for (const { feature, k } of plan.numeric) {
    const r = raw(feature.name);
    const typed = NUMERIC_TYPE.test(types.get(feature.name) ?? 'VARCHAR');
    inner.push(
      `${typed ? `${id(feature.name)}::DOUBLE` : `TRY_CAST(${id(feature.name)} AS DOUBLE)`} AS x${k}`,
    );
    const x = `x${k}`;
    // A typed CSV column holds what the reader parsed: NULL for an empty cell, and never a NaN it would
    // have to call missing (the tokens are read as text on the full path; a parsed NaN is a type error).
    const m = typed
      ? csvNumbersTyped
        ? `(${x} IS NULL)`
        : `(${x} IS NULL OR isnan(${x}))`
      : `CASE WHEN ${r} IS NULL THEN true WHEN NOT isnan(${x}) THEN false ELSE ${isToken(trimmed(r))} END`;
    const ok = typed ? `isfinite(${x})` : `CASE WHEN isfinite(${x}) THEN NOT contains(${r}, '_') END`;
    mid.push(`${m} AS m${k}`, `CASE WHEN ${ok} THEN ${x} + 0.0 END AS n${k}`);
    pass(feature.name, `p${k}`);
    const cell = trimmed(text(`p${k}`, feature.name));
    const typeError = `n${k} IS NULL AND NOT m${k}`;
    const bad = `(${typeError} OR ${outOfRangeExpr(`n${k}`, feature)})`;
    if (csvNumbersTyped) {
      // The fast path keeps no numeric text: a bad number only raises `nb` (the file is then read on the
      // full path), and a clean row's text slots are NULL, hashed as the full path hashes them.
      offending.push('NULL::VARCHAR');
      numericBad.push(bad);
      vector.push(`n${k}`, 'NULL::VARCHAR');
    } else {
      offending.push(`CASE WHEN ${bad} THEN ${cell} END`);
      anyOffending.push(bad);
      vector.push(`n${k}`, `CASE WHEN ${typeError} THEN ${cell} END`);
    }
    kept.push(`n${k}`);
  }
  for (const { feature, k } of plan.categorical) {
    const r = raw(feature.name);
    const t = trimmed(r);
    const index = (e: string): string =>
      feature.categories.map((c, j) => `WHEN ${e} = ${lit(c)} THEN ${j}`).join(' ');
    const unknown = feature.categories.length;
    mid.push(
      `CASE ${index(r)} WHEN ${r} IS NULL THEN NULL ELSE CASE ${index(t)} WHEN ${isToken(t)} THEN NULL ` +
        `ELSE ${unknown} END END::USMALLINT AS ci${k}`,
    );
    pass(feature.name, `q${k}`);
    const cell = `CASE WHEN ci${k} = ${unknown} THEN ${trimmed(text(`q${k}`, feature.name))} END`;
    offending.push(cell);
    anyOffending.push(`coalesce(ci${k} = ${unknown}, false)`);
    vector.push(`ci${k}`, cell);
    kept.push(`ci${k}`);
  }
  if (plan.hasLabel) {
    const r = raw(spec.label.column);
    const values = [spec.label.positiveValue, spec.label.negativeValue].flatMap((v) =>
      v === undefined ? [] : [String(v)],
    );
    inner.push(`CASE WHEN ${oneOf(r, values)} THEN ${r} ELSE ${trimmed(r)} END AS lt`);
    // The label values as written take the fast path; only other cells are parsed.
    const fast = [`WHEN lt = ${lit(String(spec.label.positiveValue))} THEN 1`];
    if (spec.label.negativeValue !== undefined)
      fast.push(`WHEN lt = ${lit(String(spec.label.negativeValue))} THEN 2`);
    mid.push(`CASE ${fast.join(' ')} ELSE ${labelExpr('lt', spec)} END::UTINYINT AS lb`, 'lt');
    offending.push('CASE WHEN lb = 3 THEN lt END');
    anyOffending.push('lb = 3');
  } else {
    mid.push('0::UTINYINT AS lb');
  }
  kept.push('lb');
  if (plan.hasId && spec.idColumn !== undefined) {
    mid.push(`hash(coalesce(${raw(spec.idColumn)}, '')) AS idv`);
    kept.push('idv');
    if (keepIdText) {
      mid.push(`${trimmed(raw(spec.idColumn))} AS idt`);
      kept.push('idt');
    }
  }
  if (plan.hasBatch && spec.batchColumn !== undefined) {
    const r = raw(spec.batchColumn);
    const t = `CASE WHEN ascii(${r}) > 32 AND ascii(reverse(${r})) > 32 THEN ${r} ELSE ${trimmed(r)} END`;
    inner.push(`${t} AS bt`);
    mid.push(`CASE WHEN ${missingExpr('bt')} THEN ${lit(MISSING_BATCH_KEY)} ELSE bt END AS bk`);
    kept.push('bk');
  }
  // Columns outside the spec take part in exact-duplicate detection as written.
  const specSet = new Set(specColumns(spec));
  const extra = header.filter((h) => !specSet.has(h));
  extra.forEach((h, i) => pass(h, `o${i}`));
  const extraCells = extra.map((h, i) => (isText(h) ? `coalesce(o${i}, '')` : `o${i}`));
  // The row hash builds on the vector hash (computed once), then adds what the vector leaves out.
  const rest = [
    'lb',
    ...(plan.hasLabel ? ['CASE WHEN lb = 3 THEN lt END'] : []),
    plan.hasId ? 'idv' : '0::UBIGINT',
    plan.hasBatch ? 'bk' : 'NULL::VARCHAR',
    ...extraCells,
  ];
  const inRowHash = [...(plan.hasLabel ? ['lt'] : []), ...extra.map((_, i) => `o${i}`)];
  const outer = [
    ...kept,
    ...inRowHash,
    `hash(${vector.length > 0 ? vector.join(', ') : 'NULL'}) AS vh`,
    anyOffending.length > 0
      ? `CASE WHEN ${anyOffending.join(' OR ')} THEN [${offending.join(', ')}] END AS x`
      : 'NULL::VARCHAR[] AS x',
    ...(csvNumbersTyped ? [`${numericBad.length > 0 ? numericBad.join(' OR ') : 'false'} AS nb`] : []),
  ];
  const exclude = inRowHash.length > 0 ? ` EXCLUDE (${inRowHash.join(', ')})` : '';
  return [
    `CREATE TEMP TABLE d AS SELECT *${exclude}, hash(vh, ${rest.join(', ')}) AS rh FROM ` +
      `(SELECT ${outer.join(', ')} FROM ` +
      `(SELECT ${mid.join(', ')} FROM (SELECT ${inner.join(', ')} FROM ${source})))`,
  ];
}

const slog = (n: string): string => `sign(${n}) * ln(1 + abs(${n}))`;

/** The 1-based position of a role's offending text in the list column `x` (see {@link loadSql}). */
const slotOf = (plan: Plan, role: 'numeric' | 'categorical' | 'label', i: number): number =>
  role === 'numeric'
    ? i + 1
    : role === 'categorical'
      ? plan.numeric.length + i + 1
      : plan.numeric.length + plan.categorical.length + 1;

/**
 * Statistics of every batch (with a batch column; else of the whole table, one row) in one scan of `d`. The
 * totals are combined from these rows ({@link combineTotals}), so the table is aggregated once.
 */
function statsSql(plan: Plan): string {
  const parts = ['count(*) AS rows', `min(${plan.hasBatch ? 'ri' : 'rowid'}) AS first`];
  for (const { k } of plan.numeric) {
    parts.push(
      `count(n${k}) AS cnt${k}`,
      `min(n${k}) AS min${k}`,
      `max(n${k}) AS max${k}`,
      `avg(n${k}) AS mean${k}`,
      `var_pop(n${k}) AS var${k}`,
    );
    if (plan.hasBatch) {
      parts.push(`avg(s${k}) AS bmean${k}`, `var_pop(s${k}) AS bvar${k}`);
    }
  }
  for (const { feature, k } of plan.categorical) {
    parts.push(`count(ci${k}) AS cnt${k}`);
    feature.categories.forEach((_, j) => parts.push(`count_if(ci${k} = ${j}) AS cat${k}_${j}`));
  }
  parts.push('count_if(lb = 1) AS pos', 'count_if(lb = 2) AS neg', 'count_if(lb = 0) AS lmiss');
  // The log-scaled values are projected once (an aggregate's argument is evaluated per aggregate).
  const logs = plan.numeric.map(({ k }) => `${slog(`n${k}`)} AS s${k}`);
  return plan.hasBatch
    ? `SELECT bk, ${parts.join(', ')} FROM (SELECT *, rowid AS ri${logs.map((l) => `, ${l}`).join('')} FROM d) GROUP BY bk`
    : `SELECT ${parts.join(', ')} FROM d`;
}

/**
 * Per batch (or for the whole table), over the rows holding an offending cell only (`x` is NULL for the
 * others, so a clean table costs a scan of one validity mask): type errors, out-of-range values, unknown
 * categories and invalid labels, counted, with the first of each and its text. Every such cell makes its row
 * offending, so these counts need no pass over the clean rows.
 */
function offendingSql(plan: Plan): string {
  const parts = ['count(*) AS bad'];
  plan.numeric.forEach(({ feature, k }, i) => {
    const t = `x[${slotOf(plan, 'numeric', i)}]`;
    const err = `n${k} IS NULL AND ${t} IS NOT NULL`;
    const oor = outOfRangeExpr(`n${k}`, feature);
    parts.push(
      `count_if(${err}) AS te${k}`,
      `min(rowid) FILTER (WHERE ${err}) AS te_row${k}`,
      `arg_min(${t}, rowid) FILTER (WHERE ${err}) AS te_val${k}`,
      `count_if(${oor}) AS oorn${k}`,
      `min(rowid) FILTER (WHERE ${oor}) AS oor_row${k}`,
      `arg_min(${t}, rowid) FILTER (WHERE ${oor}) AS oor_val${k}`,
      feature.min === undefined ? `0 AS below${k}` : `count_if(n${k} < ${numLit(feature.min)}) AS below${k}`,
      feature.max === undefined ? `0 AS above${k}` : `count_if(n${k} > ${numLit(feature.max)}) AS above${k}`,
    );
  });
  for (const { feature, k } of plan.categorical) {
    parts.push(`count_if(ci${k} = ${feature.categories.length}) AS unk${k}`);
  }
  parts.push(
    'count_if(lb = 3) AS linv',
    'min(rowid) FILTER (WHERE lb = 3) AS linv_row',
    plan.hasLabel
      ? `arg_min(x[${slotOf(plan, 'label', 0)}], rowid) FILTER (WHERE lb = 3) AS linv_val`
      : 'NULL AS linv_val',
  );
  return plan.hasBatch
    ? `SELECT bk, ${parts.join(', ')} FROM d WHERE x IS NOT NULL GROUP BY bk`
    : `SELECT ${parts.join(', ')} FROM d WHERE x IS NOT NULL`;
}

type Totals = Record<string, EngineRow[string]>;

/**
 * The whole table's statistics from its batches' rows: counts add up, extremes and first offending rows are
 * the batches' extremes, and means and variances combine exactly (Chan et al.'s pairwise update).
 */
function combineTotals(plan: Plan, stats: EngineRow[], offending: EngineRow[]): Totals {
  const sum = (rows: EngineRow[], key: string): number => rows.reduce((s, r) => s + n0(r[key]), 0);
  const firstOf = (
    rows: EngineRow[],
    rowKey: string,
    valKey: string,
  ): [EngineRow[string], EngineRow[string]] => {
    let best: EngineRow | undefined;
    for (const r of rows) {
      const at = r[rowKey];
      if (at === null || at === undefined) continue;
      if (best === undefined || n0(at) < n0(best[rowKey])) best = r;
    }
    return best === undefined ? [null, null] : [best[rowKey], best[valKey]];
  };
  const extreme = (key: string, pick: (a: number, b: number) => number): number | null => {
    let out: number | null = null;
    for (const r of stats) {
      const v = toNumber(r[key]);
      if (v !== null) out = out === null ? v : pick(out, v);
    }
    return out;
  };
  const t: Totals = { rows: sum(stats, 'rows') };
  for (const { k } of plan.numeric) {
    const count = sum(stats, `cnt${k}`);
    let mean = 0;
    let m2 = 0;
    let n = 0;
    for (const r of stats) {
      const nb = n0(r[`cnt${k}`]);
      if (nb === 0) continue;
      const mb = n0(r[`mean${k}`]);
      const delta = mb - mean;
      const total = n + nb;
      mean += (delta * nb) / total;
      m2 += n0(r[`var${k}`]) * nb + (delta * delta * n * nb) / total;
      n = total;
    }
    const te = sum(offending, `te${k}`);
    Object.assign(t, {
      [`cnt${k}`]: count,
      [`min${k}`]: extreme(`min${k}`, Math.min),
      [`max${k}`]: extreme(`max${k}`, Math.max),
      [`mean${k}`]: count > 0 ? mean : null,
      [`std${k}`]: count > 1 ? Math.sqrt(Math.max(0, m2) / (count - 1)) : null,
      [`below${k}`]: sum(offending, `below${k}`),
      [`above${k}`]: sum(offending, `above${k}`),
      [`te${k}`]: te,
      [`miss${k}`]: n0(t.rows) - count - te,
    });
    [t[`te_row${k}`], t[`te_val${k}`]] = firstOf(offending, `te_row${k}`, `te_val${k}`);
    [t[`oor_row${k}`], t[`oor_val${k}`]] = firstOf(offending, `oor_row${k}`, `oor_val${k}`);
  }
  for (const { feature, k } of plan.categorical) {
    const count = sum(stats, `cnt${k}`);
    t[`cnt${k}`] = count;
    t[`miss${k}`] = n0(t.rows) - count;
    feature.categories.forEach((_, j) => (t[`cat${k}_${j}`] = sum(stats, `cat${k}_${j}`)));
    t[`unk${k}`] = sum(offending, `unk${k}`);
  }
  for (const key of ['pos', 'neg', 'lmiss']) t[key] = sum(stats, key);
  t.linv = sum(offending, 'linv');
  [t.linv_row, t.linv_val] = firstOf(offending, 'linv_row', 'linv_val');
  return t;
}

/**
 * Rows whose feature vector occurs more than once, grouped into distinct rows (an exact duplicate repeats its
 * vector too, so no other row can be one): `copies` of each, first occurrence `r`. Usually a small table.
 */
const candidatesSql = (plan: Plan): string => `CREATE TEMP TABLE u AS
  WITH rep AS (SELECT vh FROM d GROUP BY vh HAVING count(*) > 1)
  SELECT rh, min(rowid) AS r, any_value(vh) AS vh, any_value(lb) AS lb,
    ${plan.hasBatch ? 'any_value(bk)' : 'NULL::VARCHAR'} AS bk, count(*) AS copies
  FROM d SEMI JOIN rep USING (vh) GROUP BY rh`;
const DUPLICATES_SQL = 'SELECT coalesce(sum(copies - 1), 0) AS duplicate_rows FROM u';
/**
 * Among distinct rows, per batch: the rows repeating an earlier row's feature vector, and those carrying a
 * label none of the earlier rows with that vector had.
 */
const VECTORS_SQL = `WITH rep AS (SELECT vh FROM u GROUP BY vh HAVING count(*) > 1),
  w AS (
    SELECT bk, CASE lb WHEN 1 THEN 1 WHEN 2 THEN 2 ELSE 0 END AS bit,
      row_number() OVER win AS k,
      bit_or(CASE lb WHEN 1 THEN 1 WHEN 2 THEN 2 ELSE 0 END) OVER (win ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS seen
    FROM u SEMI JOIN rep USING (vh)
    WINDOW win AS (PARTITION BY vh ORDER BY r))
  SELECT bk, count_if(k > 1) AS repeated, count_if(k > 1 AND bit <> 0 AND seen <> 0 AND (seen & bit) = 0) AS conflicting
  FROM w GROUP BY bk`;

function unknownValuesSql(plan: Plan): string | undefined {
  if (plan.categorical.length === 0) return undefined;
  const parts = plan.categorical.map(({ k }, i) => {
    const t = `x[${slotOf(plan, 'categorical', i)}]`;
    return `SELECT ${k} AS k, ${t} AS v, count(*) AS n FROM d WHERE x IS NOT NULL AND ${t} IS NOT NULL GROUP BY ${t}`;
  });
  return (
    `SELECT k, v, n FROM (${parts.join(' UNION ALL ')}) ` +
    `QUALIFY row_number() OVER (PARTITION BY k ORDER BY n DESC, v) <= ${MAX_REPORTED_UNKNOWN_VALUES} ORDER BY k, n DESC, v`
  );
}

// ---------------------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------------------

const n0 = (v: EngineRow[string]): number => toNumber(v) ?? 0;
const str = (v: EngineRow[string]): string => (v === null || v === undefined ? '' : String(v));

/** Turns an engine error into a named dataset error. */
function engineError(file: string, format: DatasetFormat, err: unknown): Error {
  const msg = (err as Error).message.split('\n')[0] ?? String(err);
  if (format === DatasetFormat.parquet) {
    return new DatasetFormatError(`${file}: not a readable Parquet file: ${msg}`);
  }
  const line = /line (\d+)/i.exec((err as Error).message)?.[1];
  return new DatasetFormatError(
    `${file}:${line ? ` line ${line}:` : ''} cannot be read as CSV: ${msg}`,
    line ? Number(line) : undefined,
  );
}

async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  } catch (err) {
    throw readError(file, err);
  }
  return { sha256: hash.digest('hex'), bytes };
}

interface Ragged {
  lines: number[];
  first?: DatasetProfile['firstRaggedRow'];
}

/** Reads the CSV reader's rejects: ragged rows are counted, any other reject is a format error. */
async function readRejects(db: EngineSession, file: string, expected: number): Promise<Ragged> {
  const rejects = await db.all('SELECT line, error_type, error_message FROM reject_errors ORDER BY line');
  const lines: number[] = [];
  let first: DatasetProfile['firstRaggedRow'];
  for (const r of rejects) {
    const line = n0(r.line);
    const type = str(r.error_type);
    if (type === 'MISSING COLUMNS' || type === 'TOO MANY COLUMNS') {
      // The reader reports a record once per missing or surplus field: count the record once.
      if (lines[lines.length - 1] === line) continue;
      lines.push(line);
      const found = /Found: (\d+)/.exec(str(r.error_message))?.[1];
      first ??= { line, fields: found === undefined ? 0 : Number(found), expected };
      continue;
    }
    const what =
      type === 'LINE SIZE OVER MAXIMUM'
        ? `a record is longer than ${MAX_RECORD_BYTES} bytes: not a line-oriented CSV`
        : `CSV syntax error (${type}): ${str(r.error_message)}`;
    throw new DatasetFormatError(`${file}: line ${line}: ${what}`, line);
  }
  return { lines, ...(first && { first }) };
}

/**
 * Profiles the CSV or Parquet file at `file` against `spec`. Throws {@link DatasetFormatError} when the file is
 * not a dataset and {@link DatasetReadError} when it cannot be read.
 */
export async function profileDataset(
  file: string,
  spec: FeatureSpec,
  options: ProfileOptions = {},
): Promise<DatasetProfile> {
  return (await profileRun(file, spec, options, undefined)).profile;
}

export interface ProfileExtrasOptions extends ProfileOptions {
  /** Quantile bins per numeric feature of the drift reference (default {@link DEFAULT_DRIFT_BINS}). */
  driftBins?: number;
  /** Where to write the row fingerprints (a Parquet file of one UBIGINT column `fp`); none when absent. */
  fingerprintsTo?: string;
  /** Values kept per numeric feature in the drift reference's sample (none when absent or 0). */
  driftSample?: number;
}

export interface ProfileWithExtras {
  profile: DatasetProfile;
  /** Quantile bins and category frequencies for drift monitoring (see `./drift-reference`). */
  drift: DriftReference;
  /** The fingerprint file written, with its row count (one fingerprint per row, repeats kept). */
  fingerprints?: { path: string; rows: number };
}

/**
 * {@link profileDataset}, plus what later stages need from the same single read of the file: the drift
 * reference and, when asked, the row fingerprints that the holdout-leak check compares with
 * ({@link countSharedRows}), so evaluation never reads the training snapshot again.
 */
export async function profileDatasetWithExtras(
  file: string,
  spec: FeatureSpec,
  options: ProfileExtrasOptions = {},
): Promise<ProfileWithExtras> {
  const extras = {
    driftBins: options.driftBins ?? DEFAULT_DRIFT_BINS,
    fingerprintsTo: options.fingerprintsTo,
    driftSample: options.driftSample ?? 0,
  };
  const run = await profileRun(file, spec, options, extras);
  if (run.drift === undefined) throw new Error('the profiler returned no drift reference');
  return {
    profile: run.profile,
    drift: run.drift,
    ...(run.fingerprints && { fingerprints: run.fingerprints }),
  };
}

async function profileRun(
  file: string,
  spec: FeatureSpec,
  options: ProfileOptions,
  extras: { driftBins: number; fingerprintsTo?: string | undefined; driftSample: number } | undefined,
): Promise<{
  profile: DatasetProfile;
  drift?: DriftReference;
  fingerprints?: { path: string; rows: number };
}> {
  const head = await readHead(file, spec);
  const hashing = options.sha256 === undefined ? hashFile(file) : undefined;
  // A rejected hash is awaited below; until then keep it from being reported as unhandled.
  hashing?.catch(() => undefined);
  const db = await openEngine();
  try {
    const { profile: measured, plan } = await profileWith(db, file, spec, head, options.fullPath === true);
    const { sha256, bytes } = hashing
      ? await hashing
      : { sha256: options.sha256 ?? '', bytes: await sizeOf(file) };
    const profile: DatasetProfile = { ...measured, sha256, bytes };
    if (extras === undefined) return { profile };
    const categorical = new Map(
      profile.columns.flatMap((c) => {
        if (c.kind !== 'categorical') return [];
        const k = spec.features.findIndex((f) => f.name === c.name);
        return [[k, { counts: c.categories.map((x) => x.count), unknown: c.unknown, missing: c.missing }]];
      }),
    );
    const numericCounts = new Map(
      profile.columns.flatMap((c) =>
        c.kind === 'numeric' ? [[spec.features.findIndex((f) => f.name === c.name), c.count] as const] : [],
      ),
    );
    const drift = await measureDriftReference(
      db,
      plan,
      { sha256, rows: profile.rows, categorical, numericCounts },
      extras.driftBins,
      extras.driftSample,
    );
    if (extras.fingerprintsTo === undefined) return { profile, drift };
    const fingerprints = await writeFingerprints(db, extras.fingerprintsTo);
    return { profile, drift, fingerprints };
  } finally {
    db.close();
  }
}

/**
 * A row's fingerprint: a 64-bit hash of its normalised feature vector and its label class (numbers as parsed,
 * cells trimmed, the id and other columns left out), so the same example written twice matches.
 */
const FINGERPRINT_SQL = 'SELECT hash(vh, lb) AS fp FROM d';

/** Writes the fingerprints of `d` to `target` (atomically: a temp file renamed into place). */
async function writeFingerprints(db: EngineSession, target: string): Promise<{ path: string; rows: number }> {
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    await db.run(`COPY (${FINGERPRINT_SQL}) TO ${lit(tmp)} (FORMAT parquet, COMPRESSION uncompressed)`);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const [r] = await db.all('SELECT count(*) AS n FROM d');
  return { path: target, rows: n0(r?.n) };
}

/**
 * Rows of the dataset at `file` whose fingerprint is among those in `fingerprintsFile` (written by
 * {@link profileDatasetWithExtras}): the holdout-leak check, reading the holdout once and the training
 * snapshot not at all. Throws {@link DatasetFormatError} / {@link DatasetReadError} as profiling does.
 */
export async function countSharedRows(
  fingerprintsFile: string,
  file: string,
  spec: FeatureSpec,
): Promise<{ rows: number; shared: number }> {
  const head = await readHead(file, spec);
  const db = await openEngine();
  try {
    await loadTable(db, file, spec, head);
    const [r] = await db.all(
      `SELECT count(*) AS n, count(*) FILTER (WHERE fp IN (SELECT fp FROM read_parquet(${lit(fingerprintsFile)}))) AS shared ` +
        `FROM (${FINGERPRINT_SQL})`,
    );
    return { rows: n0(r?.n), shared: n0(r?.shared) };
  } catch (err) {
    if (err instanceof DatasetFormatError || err instanceof DatasetReadError) throw err;
    throw new DatasetReadError(
      `${fingerprintsFile}: cannot read row fingerprints: ${(err as Error).message}`,
    );
  } finally {
    db.close();
  }
}

async function sizeOf(file: string): Promise<number> {
  const handle = await open(file, 'r').catch((err: unknown) => {
    throw readError(file, err);
  });
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

export interface Loaded {
  header: string[];
  plan: Plan;
}

/**
 * Reads the file once into the session's table `d` (see {@link loadSql}); `keepIdText` also keeps the trimmed
 * id cell as `idt` (the poisoning screen against history quotes ids as evidence).
 */
export async function loadTable(
  db: EngineSession,
  file: string,
  spec: FeatureSpec,
  head: FileHead,
  keepIdText = false,
  csvNumbersTyped = false,
): Promise<Loaded> {
  let header = head.header;
  const types = new Map<string, string>();
  const numericNames = new Set(spec.features.flatMap((f) => (f.kind === 'numeric' ? [f.name] : [])));
  let source: string;
  if (head.format === DatasetFormat.parquet) {
    source = `read_parquet(${lit(file)})`;
    try {
      for (const r of await db.all(`DESCRIBE SELECT * FROM ${source}`)) {
        types.set(str(r.column_name), str(r.column_type));
      }
    } catch (err) {
      throw engineError(file, head.format, err);
    }
    header = [...types.keys()];
    validateHeader(header, spec, file, 1);
  } else {
    if (csvNumbersTyped) for (const h of header) if (numericNames.has(h)) types.set(h, 'DOUBLE');
    const columns = header.map((h) => `${lit(h)}: ${lit(types.get(h) ?? 'VARCHAR')}`).join(', ');
    source =
      `read_csv(${lit(file)}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', ` +
      `skip = ${head.headerLine - 1}, columns = {${columns}}, max_line_size = ${MAX_RECORD_BYTES}, ` +
      `ignore_errors = true, store_rejects = true)`;
  }

  const position = new Set(header);
  const plan: Plan = {
    numeric: [],
    categorical: [],
    hasLabel: position.has(spec.label.column),
    hasId: false,
    hasBatch: false,
  };
  spec.features.forEach((feature, k) => {
    if (!position.has(feature.name)) return;
    if (feature.kind === 'numeric') plan.numeric.push({ feature, k });
    else plan.categorical.push({ feature, k });
  });
  plan.hasId = spec.idColumn !== undefined && position.has(spec.idColumn);
  plan.hasBatch = spec.batchColumn !== undefined && position.has(spec.batchColumn);

  try {
    for (const statement of loadSql(source, header, types, spec, plan, keepIdText, csvNumbersTyped)) {
      await db.run(statement);
    }
  } catch (err) {
    throw engineError(file, head.format, err);
  }
  return { header, plan };
}

type Measured = { profile: Omit<DatasetProfile, 'sha256' | 'bytes'>; plan: Plan };

/**
 * Measures the file into a profile. A CSV file is first read with its numeric columns parsed by the reader
 * (the fast path: no text kept for them, no cast afterwards). The reader accepts exactly the numbers the full
 * path's cast accepts, except digit separators (`1_000`), which the full path calls type errors: a file with
 * an underscore next to a digit skips the fast path. Any cell the fast path cannot judge as the full path
 * would (a reject, a type error or an out-of-range number, whose text as written the profile quotes) sends
 * the file down the full path, so both paths give the same profile.
 */
async function profileWith(
  db: EngineSession,
  file: string,
  spec: FeatureSpec,
  head: FileHead,
  fullPathOnly = false,
): Promise<Measured> {
  if (
    head.format === DatasetFormat.csv &&
    !fullPathOnly &&
    !(await mayHoldDigitSeparators(file, head.headerLine))
  ) {
    const fast = await measureProfile(db, file, spec, head, true);
    if (fast !== undefined) return fast;
    for (const table of ['d', 'u', 'reject_errors', 'reject_scans'])
      await db.run(`DROP TABLE IF EXISTS ${table}`);
  }
  const full = await measureProfile(db, file, spec, head, false);
  if (full === undefined) throw new Error('the full profile path gave up');
  return full;
}

/** Chunk size of the digit-separator scan. */
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;
const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x39;

/**
 * Whether the file holds an underscore next to a digit (a possible `1_000`) after its first `skipLines`
 * lines (the header: column names such as `count_24h` are not cells); reads it once.
 */
async function mayHoldDigitSeparators(file: string, skipLines: number): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'r');
    const buf = Buffer.allocUnsafe(SCAN_CHUNK_BYTES + 1);
    let carry: number | undefined;
    let position = 0;
    let skip = skipLines;
    for (;;) {
      // The previous chunk's last byte leads the buffer, so a pair across the boundary is seen (an
      // underscore ending a chunk is carried and checked against the next chunk's first byte).
      const offset = carry === undefined ? 0 : 1;
      if (carry !== undefined) buf[0] = carry;
      const { bytesRead } = await handle.read(buf, offset, SCAN_CHUNK_BYTES, position);
      if (bytesRead === 0) return false;
      position += bytesRead;
      const end = offset + bytesRead;
      let from = 0;
      while (skip > 0 && from !== -1) {
        from = buf.indexOf(0x0a, from, 'latin1');
        if (from !== -1 && from < end) {
          from += 1;
          skip -= 1;
        } else from = -1;
      }
      if (from === -1) {
        carry = undefined;
        continue;
      }
      const view = buf.subarray(0, end);
      for (let i = view.indexOf(0x5f, from); i !== -1; i = view.indexOf(0x5f, i + 1)) {
        if (isDigit(view[i - 1]) || isDigit(i + 1 < end ? view[i + 1] : undefined)) return true;
      }
      carry = view[end - 1];
    }
  } catch (err) {
    throw readError(file, err);
  } finally {
    await handle?.close();
  }
}

async function measureProfile(
  db: EngineSession,
  file: string,
  spec: FeatureSpec,
  head: FileHead,
  fast: boolean,
): Promise<Measured | undefined> {
  const { header, plan } = await loadTable(db, file, spec, head, false, fast);
  if (fast) {
    const [r] = await db.all(
      'SELECT (SELECT count(*) FROM reject_errors) AS rejects, (SELECT count_if(nb) FROM d) AS bad',
    );
    if (n0(r?.rejects) + n0(r?.bad) > 0) return undefined;
  }
  // The fast path has just found no reject at all, so only the full path reads them.
  const ragged: Ragged =
    head.format === DatasetFormat.csv && !fast ? await readRejects(db, file, header.length) : { lines: [] };
  /** The 1-based line of the row with table index `rn` (Parquet: the row number). */
  const lineOf = (rn: EngineRow[string]): number => {
    if (head.format === DatasetFormat.parquet) return n0(rn) + 1;
    let line = head.headerLine + 1 + n0(rn);
    for (const skipped of ragged.lines) if (skipped <= line) line += 1;
    return line;
  };
  const at = (rn: EngineRow[string], value: EngineRow[string]): ValueAtLine | undefined =>
    rn === null || rn === undefined ? undefined : { line: lineOf(rn), value: quote(str(value)) };

  const stats = await db.all(statsSql(plan));
  const offending = await db.all(offendingSql(plan));
  const totals = combineTotals(plan, stats, offending);
  const batchRows = plan.hasBatch ? stats.sort((a, b) => n0(a.first) - n0(b.first)) : [];
  const offendingByBatch = new Map(offending.map((r) => [str(r.bk), r]));
  const [ids] = plan.hasId ? await db.all('SELECT count(DISTINCT idv) AS n FROM d') : [];
  await db.run(candidatesSql(plan));
  const [dups] = await db.all(DUPLICATES_SQL);
  const vectors = await db.all(VECTORS_SQL);
  const unknownSql = unknownValuesSql(plan);
  const unknownRows = unknownSql === undefined ? [] : await db.all(unknownSql);

  const rows = n0(totals.rows);
  const byName = new Map<string, ColumnProfile>();
  for (const { feature, k } of plan.numeric) {
    const count = n0(totals[`cnt${k}`]);
    const firstTypeError = at(totals[`te_row${k}`], totals[`te_val${k}`]);
    const oorRow = totals[`oor_row${k}`];
    const firstOutOfRange =
      oorRow === null || oorRow === undefined
        ? undefined
        : { line: lineOf(oorRow), value: str(totals[`oor_val${k}`]) };
    byName.set(feature.name, {
      name: feature.name,
      kind: 'numeric',
      missing: n0(totals[`miss${k}`]),
      typeErrors: n0(totals[`te${k}`]),
      ...(firstTypeError && { firstTypeError }),
      count,
      min: count > 0 ? toNumber(totals[`min${k}`]) : null,
      max: count > 0 ? toNumber(totals[`max${k}`]) : null,
      mean: count > 0 ? toNumber(totals[`mean${k}`]) : null,
      std: count > 1 ? toNumber(totals[`std${k}`]) : count === 1 ? 0 : null,
      belowMin: n0(totals[`below${k}`]),
      aboveMax: n0(totals[`above${k}`]),
      ...(firstOutOfRange && { firstOutOfRange }),
    });
  }
  for (const { feature, k } of plan.categorical) {
    byName.set(feature.name, {
      name: feature.name,
      kind: 'categorical',
      missing: n0(totals[`miss${k}`]),
      count: n0(totals[`cnt${k}`]),
      categories: feature.categories.map((value, j) => ({ value, count: n0(totals[`cat${k}_${j}`]) })),
      unknown: n0(totals[`unk${k}`]),
      unknownValues: unknownRows
        .filter((r) => n0(r.k) === k)
        .map((r) => ({ value: quote(str(r.v)), count: n0(r.n) })),
    });
  }

  let label: LabelProfile | null = null;
  if (plan.hasLabel) {
    const firstInvalid = at(totals.linv_row, totals.linv_val);
    label = {
      column: spec.label.column,
      positive: n0(totals.pos),
      negative: n0(totals.neg),
      missing: n0(totals.lmiss),
      invalid: n0(totals.linv),
      ...(firstInvalid && { firstInvalid }),
    };
  }

  const perBatch = new Map(vectors.map((r) => [str(r.bk), r]));
  const tracked = batchRows.slice(0, MAX_PROFILED_BATCHES);
  const batches: BatchProfile[] = tracked.map((b) => {
    const v = perBatch.get(str(b.bk));
    return {
      batch: str(b.bk),
      rows: n0(b.rows),
      positives: n0(b.pos),
      negatives: n0(b.neg),
      repeatedVectors: n0(v?.repeated),
      conflictingLabels: n0(v?.conflicting),
      outOfRange: plan.numeric.reduce(
        (sum, { k }) => sum + n0(offendingByBatch.get(str(b.bk))?.[`oorn${k}`]),
        0,
      ),
      numeric: plan.numeric.map(({ feature, k }) => {
        const count = n0(b[`cnt${k}`]);
        return { column: feature.name, count, mean: n0(b[`bmean${k}`]), m2: n0(b[`bvar${k}`]) * count };
      }),
      categorical: plan.categorical.map(({ feature, k }) => {
        const categories = feature.categories.map((value, j) => ({ value, count: n0(b[`cat${k}_${j}`]) }));
        const unknown = n0(offendingByBatch.get(str(b.bk))?.[`unk${k}`]);
        return {
          column: feature.name,
          count: categories.reduce((s, c) => s + c.count, unknown),
          categories,
          unknown,
        };
      }),
    };
  });

  const headerSet = new Set(header);
  const expected = specColumns(spec);
  const expectedSet = new Set(expected);
  const duplicateRows = n0(dups?.duplicate_rows);
  // The ids of the distinct rows are the ids of all rows (a duplicate repeats its original's id).
  const distinctRows = rows - duplicateRows;
  const profile = {
    format: head.format,
    specName: spec.name,
    specVersion: spec.version,
    header,
    rows,
    raggedRows: ragged.lines.length,
    ...(ragged.first && { firstRaggedRow: ragged.first }),
    missingColumns: expected.filter((c) => !headerSet.has(c)),
    unexpectedColumns: header.filter((c) => !expectedSet.has(c)),
    duplicateRows,
    duplicateIds: plan.hasId ? distinctRows - n0(ids?.n) : null,
    columns: spec.features.flatMap((f) => byName.get(f.name) ?? []),
    label,
    repeatedVectors: vectors.reduce((s, r) => s + n0(r.repeated), 0),
    conflictingLabels: vectors.reduce((s, r) => s + n0(r.conflicting), 0),
    batchColumn: plan.hasBatch ? (spec.batchColumn ?? null) : null,
    batches,
    untrackedBatchRows: batchRows.slice(MAX_PROFILED_BATCHES).reduce((s, b) => s + n0(b.rows), 0),
  };
  return { profile, plan };
}

/** The row fingerprints written beside a snapshot when it is validated (`<sha256>.fingerprints.parquet`). */
export function fingerprintsPathOf(snapshotPath: string): string {
  return `${snapshotPath.replace(/\.(csv|parquet)$/, '')}.fingerprints.parquet`;
}

/**
 * Rows of `holdout` that also occur in the training snapshot (same normalised features and label class). Reads
 * the training snapshot's fingerprints written when it was validated; only a snapshot validated before they
 * existed is read again, once, to fingerprint it (into a temp file, removed after).
 */
export async function sharedRowsWithTraining(
  trainingSnapshotPath: string,
  holdout: string,
  spec: FeatureSpec,
): Promise<number> {
  const sidecar = fingerprintsPathOf(trainingSnapshotPath);
  if (
    await sizeOf(sidecar).then(
      () => true,
      () => false,
    )
  ) {
    return (await countSharedRows(sidecar, holdout, spec)).shared;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mlops-fingerprints-'));
  try {
    const file = path.join(dir, 'training.fingerprints.parquet');
    await profileDatasetWithExtras(trainingSnapshotPath, spec, { sha256: '', fingerprintsTo: file });
    return (await countSharedRows(file, holdout, spec)).shared;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
