import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FeatureSpecSchema,
  type DatasetProfile,
  type FeatureSpec,
  type NumericColumnProfile,
} from '../../src/core/contracts/feature-spec';
import { openEngine, sqlString } from '../../src/data/engine';
import { binIndex } from '../../src/data/drift-reference';
import {
  DatasetFormatError,
  DatasetReadError,
  profileDataset,
  profileDatasetWithExtras,
} from '../../src/data/profile';
import { judgeDataset } from '../../src/core/policy/validation';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-profile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(content: string | Buffer): string {
  fileCount += 1;
  const p = path.join(dir, `f${fileCount}.csv`);
  writeFileSync(p, content);
  return p;
}

/** A small spec for crafted files: one numeric and one categorical feature, an id and a 0/1 label. */
const SPEC: FeatureSpec = FeatureSpecSchema.parse({
  name: 'toy',
  version: '3',
  label: { column: 'y', positiveValue: 1, negativeValue: 0 },
  idColumn: 'id',
  features: [
    { name: 'amount', kind: 'numeric', min: 0, max: 1000, maxNullRate: 0.1 },
    {
      name: 'color',
      kind: 'categorical',
      categories: ['red', 'green', 'blue'],
      maxNullRate: 0.1,
      maxUnknownRate: 0.1,
    },
  ],
  quality: { minRows: 20, maxDuplicateRate: 0.05, labelRate: { min: 0.1, max: 0.6 } },
});

const HEADER = ['id', 'amount', 'color', 'y'];
const COLORS = ['red', 'green', 'blue'];

/** 40 clean rows: every check passes on them. */
function cleanRows(): string[][] {
  return Array.from({ length: 40 }, (_, i) => [
    `r${i}`,
    String(10 + ((i * 37) % 400) + i / 100),
    COLORS[i % 3] as string,
    i % 4 === 0 ? '1' : '0',
  ]);
}
const csv = (header: string[], rows: string[][]): string =>
  [header, ...rows].map((r) => r.join(',')).join('\n') + '\n';

async function failures(content: string) {
  const report = judgeDataset(await profileDataset(file(content), SPEC), SPEC);
  return report.checks.filter((c) => !c.passed);
}

describe('profileDataset + judgeDataset on crafted CSVs', () => {
  it('passes the clean file on every check', async () => {
    expect(await failures(csv(HEADER, cleanRows()))).toEqual([]);
  });

  type Case = {
    name: string;
    content: () => string;
    check: string;
    column?: string;
    message: RegExp;
  };
  const cases: Case[] = [
    {
      name: 'a missing column',
      content: () =>
        csv(
          ['id', 'amount', 'y'],
          cleanRows().map(([id, a, , y]) => [id, a, y] as string[]),
        ),
      check: 'schema.missing-column',
      column: 'color',
      message: /column "color" is missing from the header \(required by feature spec toy@3\)/,
    },
    {
      name: 'an unexpected column',
      content: () =>
        csv(
          [...HEADER, 'note'],
          cleanRows().map((r) => [...r, 'x']),
        ),
      check: 'schema.unexpected-column',
      column: 'note',
      message: /column "note" is not part of feature spec toy@3/,
    },
    {
      name: 'type errors',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i === 5 ? [r[0], 'abc', r[2], r[3]] : r) as string[]),
        ),
      check: 'schema.type-errors',
      column: 'amount',
      message:
        /column "amount" \(numeric\): 1 of 40 values are not numbers \(2\.50%\), first at line 7: "abc"; allowed 0\.00%/,
    },
    {
      name: 'out-of-range values',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i < 2 ? [r[0], '5000', r[2], r[3]] : r) as string[]),
        ),
      check: 'quality.range',
      column: 'amount',
      message:
        /column "amount": 2 of 40 values outside \[0, 1000\] \(5\.00%\).*max 5000.*first at line 2: 5000; allowed 0\.10%/,
    },
    {
      name: 'nulls above the allowed rate',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i % 5 === 0 ? [r[0], r[1], 'NA', r[3]] : r) as string[]),
        ),
      check: 'quality.null-rate',
      column: 'color',
      message: /column "color": 8 of 40 values missing \(20\.00%\); allowed 10\.00%/,
    },
    {
      name: 'unknown categories',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i % 4 === 1 ? [r[0], r[1], 'purple', r[3]] : r) as string[]),
        ),
      check: 'quality.unknown-categories',
      column: 'color',
      message:
        /column "color": 10 of 40 values outside the known categories \(25\.00%\): "purple" x10; allowed 10\.00%/,
    },
    {
      name: 'duplicate rows',
      content: () => csv(HEADER, [...cleanRows(), ...cleanRows().slice(0, 4)]),
      check: 'quality.duplicate-rows',
      message: /4 of 44 rows \(9\.09%\) repeat an earlier row exactly; allowed 5\.00%/,
    },
    {
      name: 'a reused id',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i === 9 ? ['r3', ...r.slice(1)] : r)),
        ),
      check: 'quality.duplicate-ids',
      column: 'id',
      message: /id column "id": 1 row\(s\) reuse an earlier row's id/,
    },
    {
      name: 'label imbalance',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => [...r.slice(0, 3), i === 0 ? '1' : '0']),
        ),
      check: 'quality.label-rate',
      column: 'y',
      message: /label column "y": positive rate 2\.50% \(1 of 40 labelled rows\); allowed 10\.00% to 60\.00%/,
    },
    {
      name: 'invalid labels',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i === 3 ? [...r.slice(0, 3), 'maybe'] : r)),
        ),
      check: 'schema.label-values',
      column: 'y',
      message: /label column "y": 1 value\(s\) are neither 1 nor 0, first at line 5: "maybe"/,
    },
    {
      name: 'missing labels',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i === 3 ? [...r.slice(0, 3), ''] : r)),
        ),
      check: 'quality.label-missing',
      column: 'y',
      message: /label column "y": 1 of 40 rows unlabelled \(2\.50%\); allowed 0\.00%/,
    },
    {
      name: 'ragged rows',
      content: () =>
        csv(
          HEADER,
          cleanRows().map((r, i) => (i === 6 ? r.slice(0, 3) : r)),
        ),
      check: 'schema.ragged-rows',
      message:
        /1 row\(s\) have a different number of fields than the header \(4 columns\); first at line 8 with 3 fields/,
    },
    {
      name: 'too few rows',
      content: () => csv(HEADER, cleanRows().slice(0, 12)),
      check: 'quality.min-rows',
      message: /only 12 rows; at least 20 required/,
    },
  ];

  it.each(cases)('$name -> $check', async ({ content, check, column, message }) => {
    const failed = await failures(content());
    const hit = failed.find((c) => c.check === check);
    expect(hit, JSON.stringify(failed, null, 2)).toBeDefined();
    expect(hit?.column).toBe(column);
    expect(hit?.message).toMatch(message);
    if (column !== undefined) expect(hit?.message).toContain(`"${column}"`);
    // Only the check the file was crafted to break fails (a missing column also empties its null/type checks).
    expect(failed.map((c) => c.check)).toEqual([check]);
  });

  it('measures the numbers validation uses', async () => {
    const rows = cleanRows();
    const content = `\uFEFF${csv(HEADER, rows).replace(/\n/g, '\r\n')}`;
    const p = file(content);
    const profile = await profileDataset(p, SPEC);
    expect(profile.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(profile.rows).toBe(40);
    expect(profile.header).toEqual(HEADER);
    const amounts = rows.map((r) => Number(r[1]));
    const m = amounts.reduce((a, b) => a + b, 0) / amounts.length;
    const sd = Math.sqrt(amounts.reduce((s, x) => s + (x - m) ** 2, 0) / (amounts.length - 1));
    const amount = profile.columns.find((c) => c.name === 'amount') as NumericColumnProfile;
    expect(amount.count).toBe(40);
    expect(amount.mean).toBeCloseTo(m, 9);
    expect(amount.std).toBeCloseTo(sd, 9);
    expect(amount.min).toBe(Math.min(...amounts));
    expect(amount.max).toBe(Math.max(...amounts));
    const color = profile.columns.find((c) => c.name === 'color');
    expect(color?.kind === 'categorical' && color.categories).toEqual([
      { value: 'red', count: 14 },
      { value: 'green', count: 13 },
      { value: 'blue', count: 13 },
    ]);
    expect(profile.label).toMatchObject({ positive: 10, negative: 30, missing: 0, invalid: 0 });
    expect(profile.duplicateRows).toBe(0);
    expect(profile.duplicateIds).toBe(0);
    expect(JSON.parse(JSON.stringify(profile))).toEqual(profile);
  });

  it('reads the missing-value tokens as missing and trims cells', async () => {
    const rows = cleanRows().map(
      (r, i) => (i < 3 ? [r[0], ['', 'NA', 'null'][i], ` ${r[2]} `, r[3]] : r) as string[],
    );
    const profile = await profileDataset(file(csv(HEADER, rows)), SPEC);
    const amount = profile.columns.find((c) => c.name === 'amount') as NumericColumnProfile;
    expect(amount.missing).toBe(3);
    expect(amount.typeErrors).toBe(0);
    const color = profile.columns.find((c) => c.name === 'color');
    expect(color?.kind === 'categorical' && color.unknown).toBe(0);
  });
});

describe('files that are not a CSV dataset', () => {
  it.each<[string, string | Buffer, RegExp, number]>([
    ['an empty file', '', /line 1: the file is empty: expected a header row/, 1],
    ['a file of blank lines', '\n\n\n', /the file is empty/, 1],
    [
      'a binary file',
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]),
      /line 3: NUL byte found: this is a binary file, not a CSV/,
      3,
    ],
    ['JSON', '{"id": 1, "amount": 3}\n', /line 1: CSV syntax error \(a quote inside an unquoted field\)/, 1],
    [
      'prose',
      'Dear team,\nplease find the data attached.\n',
      /line 1 is not a header for feature spec toy@3/,
      1,
    ],
    [
      'a file without its header row',
      'r1,10,red,0\nr2,11,blue,1\n',
      /line 1 is not a header.*is the header row missing/,
      1,
    ],
    [
      'a header with an empty name',
      'id,,color,y\nr1,1,red,0\n',
      /line 1: header column 2 has an empty name/,
      1,
    ],
    [
      'a header naming a column twice',
      'id,amount,amount,y\nr1,1,2,0\n',
      /line 1: header names column "amount" twice/,
      1,
    ],
    [
      'an unclosed quote',
      'id,amount,color,y\nr1,1,red,0\nr2,"2,blue,0\nr3,3,red,1\n',
      // The line where the unterminated quoted field starts.
      /line 3: CSV syntax error \(UNQUOTED VALUE\): Value with unterminated quote found/,
      3,
    ],
  ])('%s throws DatasetFormatError naming the line', async (_case, content, message, line) => {
    const p = file(content);
    const err = await profileDataset(p, SPEC).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).message).toMatch(message);
    expect((err as DatasetFormatError).message).toContain(p);
    expect((err as DatasetFormatError).line).toBe(line);
  });

  it('a missing file throws DatasetReadError', async () => {
    await expect(profileDataset(path.join(dir, 'nope.csv'), SPEC)).rejects.toThrow(DatasetReadError);
    await expect(profileDataset(path.join(dir, 'nope.csv'), SPEC)).rejects.toThrow(/ENOENT/);
  });
});

describe('the poisoning screen on crafted batches', () => {
  const spec = FeatureSpecSchema.parse({
    ...SPEC,
    batchColumn: 'batch',
    quality: { ...SPEC.quality, minRows: 10 },
  });
  const header = [...HEADER, 'batch'];
  /** Four batches of 60 distinct rows. */
  const batches = (): string[][] =>
    Array.from({ length: 240 }, (_, i) => [
      `r${i}`,
      String(((i * 7919) % 997) + (i % 13) / 10),
      COLORS[(i * 7) % 3] as string,
      i % 5 === 0 ? '1' : '0',
      `b${Math.floor(i / 60)}`,
    ]);

  it('passes clean batches', async () => {
    const report = judgeDataset(await profileDataset(file(csv(header, batches())), spec), spec);
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.checks.filter((c) => c.check === 'poisoning.label-rate')).toHaveLength(4);
  });

  it('flags copies of earlier rows with flipped labels in the batch that carries them', async () => {
    const rows = batches();
    // Batch b3 replays 20 rows of b0 (new ids) with the opposite label.
    for (let k = 0; k < 20; k += 1) {
      const src = rows[k] as string[];
      rows[180 + k] = [`x${k}`, src[1] as string, src[2] as string, src[3] === '1' ? '0' : '1', 'b3'];
    }
    const failed = judgeDataset(await profileDataset(file(csv(header, rows)), spec), spec).checks.filter(
      (c) => !c.passed,
    );
    const conflict = failed.find((c) => c.check === 'poisoning.conflicting-labels' && c.batch === 'b3');
    expect(conflict?.message).toMatch(/batch "b3": 20 of 60 labelled rows \(33\.33%\) carry the other label/);
    const repeated = failed.find((c) => c.check === 'poisoning.repeated-vectors' && c.batch === 'b3');
    expect(repeated?.observed).toBeCloseTo(20 / 60, 9);
    expect(failed.every((c) => c.batch === undefined || c.batch === 'b3')).toBe(true);
  });

  it('does not compare batches when there are too few of them', async () => {
    const rows = batches().slice(0, 120);
    const report = judgeDataset(await profileDataset(file(csv(header, rows)), spec), spec);
    expect(report.checks.filter((c) => c.check === 'poisoning.label-rate')).toHaveLength(0);
    expect(report.checks.find((c) => c.check === 'poisoning.batches')?.message).toMatch(/fewer than 3/);
  });
});

describe('line numbers and encodings', () => {
  it('names the file line of a bad value after skipped ragged rows', async () => {
    const rows = cleanRows().map((r, i) => (i === 10 ? [r[0], 'abc', r[2], r[3]] : r) as string[]);
    const lines = csv(HEADER, rows).split('\n');
    lines[7] = 'r6,1,red'; // line 8: a ragged row, skipped
    const failed = await failures(lines.join('\n'));
    const typeError = failed.find((c) => c.check === 'schema.type-errors');
    expect(typeError?.message).toMatch(/first at line 12: "abc"/);
    expect(failed.find((c) => c.check === 'schema.ragged-rows')?.message).toMatch(
      /first at line 8 with 3 fields/,
    );
  });

  it('refuses invalid UTF-8 in a data row, naming the line', async () => {
    const content = Buffer.concat([
      Buffer.from(csv(HEADER, cleanRows().slice(0, 5))),
      Buffer.from('r9,3,'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(',0\n'),
    ]);
    const err = await profileDataset(file(content), SPEC).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).message).toMatch(
      /line 7: CSV syntax error \(INVALID ENCODING\).*not utf-8 encoded/,
    );
  });

  it('takes the sha256 a caller already has instead of hashing the file again', async () => {
    const p = file(csv(HEADER, cleanRows()));
    const profile = await profileDataset(p, SPEC, { sha256: 'f'.repeat(64) });
    expect(profile.sha256).toBe('f'.repeat(64));
    expect(profile.bytes).toBe(Buffer.byteLength(csv(HEADER, cleanRows())));
  });
});

describe('Parquet input', () => {
  /** Writes `csvPath` as Parquet with the engine itself: typed columns as its CSV sniffer infers them. */
  async function toParquet(csvPath: string, typed: boolean): Promise<string> {
    const out = csvPath.replace(/\.csv$/, typed ? '.typed.parquet' : '.parquet');
    const db = await openEngine();
    try {
      const read = typed
        ? `read_csv(${sqlString(csvPath)}, header = true)`
        : `read_csv(${sqlString(csvPath)}, header = true, all_varchar = true)`;
      await db.run(`COPY (SELECT * FROM ${read}) TO ${sqlString(out)} (FORMAT parquet)`);
    } finally {
      db.close();
    }
    return out;
  }
  const withoutFile = ({ sha256: _s, bytes: _b, format: _f, ...rest }: DatasetProfile) => rest;

  it.each([
    ['text', false],
    ['typed', true],
  ])('a %s Parquet file gives the profile and report of the same CSV', async (_kind, typed) => {
    const rows = cleanRows().map((r, i) => (i === 3 ? [r[0], '', r[2], r[3]] : r) as string[]);
    const csvPath = file(csv(HEADER, [...rows, ...rows.slice(0, 2)]));
    const parquet = await toParquet(csvPath, typed);
    const fromCsv = await profileDataset(csvPath, SPEC);
    const fromParquet = await profileDataset(parquet, SPEC);
    expect(fromParquet.format).toBe('parquet');
    expect(fromCsv.format).toBe('csv');
    expect(fromParquet.sha256).toBe(createHash('sha256').update(readFileSync(parquet)).digest('hex'));
    expect(withoutFile(fromParquet)).toEqual(withoutFile(fromCsv));
    expect(fromParquet.duplicateRows).toBe(2);
    expect(judgeDataset(fromParquet, SPEC)).toEqual(judgeDataset(fromCsv, SPEC));
  });

  it('reports out-of-range values of a typed column by row number', async () => {
    const rows = cleanRows().map((r, i) => (i === 4 ? [r[0], '5000', r[2], r[3]] : r) as string[]);
    const parquet = await toParquet(file(csv(HEADER, rows)), true);
    const amount = (await profileDataset(parquet, SPEC)).columns[0] as NumericColumnProfile;
    expect(amount.aboveMax).toBe(1);
    expect(amount.firstOutOfRange).toEqual({ line: 5, value: '5000.0' });
  });

  it('a truncated Parquet file throws DatasetFormatError', async () => {
    const parquet = await toParquet(file(csv(HEADER, cleanRows())), true);
    const bytes = readFileSync(parquet);
    const cut = file(bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(profileDataset(cut, SPEC)).rejects.toThrow(DatasetFormatError);
    await expect(profileDataset(cut, SPEC)).rejects.toThrow(/not a readable Parquet file/);
  });

  it('a Parquet file without a spec column fails the missing-column check', async () => {
    const parquet = await toParquet(
      file(
        csv(
          ['id', 'amount', 'y'],
          cleanRows().map(([id, a, , y]) => [id, a, y] as string[]),
        ),
      ),
      true,
    );
    const failed = judgeDataset(await profileDataset(parquet, SPEC), SPEC).checks.filter((c) => !c.passed);
    expect(failed.map((c) => [c.check, c.column])).toEqual([['schema.missing-column', 'color']]);
  });
});

describe('a file the engine reads in parallel chunks', () => {
  it('keeps file order: first offending values and batch order by line, far into the file', async () => {
    const spec = FeatureSpecSchema.parse({ ...SPEC, batchColumn: 'batch', quality: { ...SPEC.quality } });
    const n = 400_000; // about 16 MB: several of the engine's read buffers
    const lines: string[] = ['id,amount,color,y,batch'];
    for (let i = 0; i < n; i += 1) {
      // Batches appear in the order b9, b8, ..., b0, so order by first appearance differs from sorting.
      const batch = `b${9 - Math.floor((i * 10) / n)}`;
      lines.push(`r${i},${(i % 997) + 0.5},${COLORS[i % 3]},${i % 4 === 0 ? 1 : 0},${batch}`);
    }
    lines[300_001] = 'r300000,abc,red,0,b2'; // line 300002
    lines[350_001] = 'r350000,2000,red,0,b1'; // line 350002
    lines[390_001] = 'r390000,1,red,maybe,b0'; // line 390002
    const profile = await profileDataset(file(`${lines.join('\n')}\n`), spec);
    const amount = profile.columns[0] as NumericColumnProfile;
    expect(amount.firstTypeError).toEqual({ line: 300_002, value: 'abc' });
    expect(amount.firstOutOfRange).toEqual({ line: 350_002, value: '2000' });
    expect(profile.label?.firstInvalid).toEqual({ line: 390_002, value: 'maybe' });
    expect(profile.batches.map((b) => b.batch)).toEqual([
      'b9',
      'b8',
      'b7',
      'b6',
      'b5',
      'b4',
      'b3',
      'b2',
      'b1',
      'b0',
    ]);
    expect(profile.rows).toBe(n);
  }, 60_000);
});

describe('the drift reference from the same read', () => {
  it('bins every number once by its edges and gives category frequencies', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => [
      `r${i}`,
      String((i * 7919) % 997),
      COLORS[i % 3] as string,
      i % 4 === 0 ? '1' : '0',
    ]);
    rows[3] = ['r3', '', 'red', '0'];
    const p = file(csv(HEADER, rows));
    const { profile, drift } = await profileDatasetWithExtras(p, SPEC, { driftBins: 5 });
    const amount = drift.numeric.find((n) => n.column === 'amount');
    expect(amount).toBeDefined();
    const { edges, counts, count, missing } = amount as NonNullable<typeof amount>;
    expect(count).toBe(499);
    expect(missing).toBe(1);
    expect(edges.length).toBe(4);
    expect([...edges].sort((a, b) => a - b)).toEqual(edges);
    const recount = new Array<number>(edges.length + 1).fill(0);
    for (const r of rows) if (r[1] !== '') recount[binIndex(edges, Number(r[1]))]! += 1;
    expect(counts).toEqual(recount);
    for (const c of counts) expect(Math.abs(c - 100)).toBeLessThanOrEqual(2);
    const color = drift.categorical.find((c) => c.column === 'color');
    expect(color?.categories.map((c) => c.count)).toEqual([167, 167, 166]);
    expect(color?.categories.reduce((s, c) => s + c.frequency, 0)).toBeCloseTo(1, 12);
    expect(drift.rows).toBe(profile.rows);
  });
});

describe('the CSV fast path (numbers parsed by the reader) and the full path give the same profile', () => {
  async function bothPaths(content: string, spec: FeatureSpec = SPEC) {
    const p = file(content);
    const fast = await profileDatasetWithExtras(p, spec, { fingerprintsTo: `${p}.fast.parquet` });
    const full = await profileDatasetWithExtras(p, spec, {
      fullPath: true,
      fingerprintsTo: `${p}.full.parquet`,
    });
    const db = await openEngine();
    try {
      const read = (f: string) => db.all(`SELECT list(fp) AS fps FROM read_parquet(${sqlString(f)})`);
      const [a] = await read(`${p}.fast.parquet`);
      const [b] = await read(`${p}.full.parquet`);
      expect(a?.fps).toEqual(b?.fps);
    } finally {
      db.close();
    }
    expect(fast.profile).toEqual(full.profile);
    expect(fast.drift).toEqual(full.drift);
    return fast.profile;
  }

  it('on a clean file with missing cells, repeated rows and a column outside the spec', async () => {
    const rows = cleanRows().map((r, i) => (i % 7 === 0 ? [r[0], '', r[2], r[3]] : r) as string[]);
    rows.push(rows[5] as string[], rows[6] as string[]);
    const profile = await bothPaths(csv(HEADER, rows));
    expect(profile.duplicateRows).toBe(2);
    expect((profile.columns[0] as NumericColumnProfile).missing).toBe(6);
  });

  it.each([
    ['a digit separator', '1_000', { typeErrors: 1, firstTypeError: { line: 2, value: '1_000' } }],
    ['infinity', 'inf', { typeErrors: 1, firstTypeError: { line: 2, value: 'inf' } }],
    ['a parsed NaN that is not a missing token', '-nan', { typeErrors: 1 }],
    ['a padded missing token', ' NA ', { missing: 1, typeErrors: 0 }],
    ['text', 'abc', { typeErrors: 1, firstTypeError: { line: 2, value: 'abc' } }],
    [
      'an out-of-range number, quoted as written',
      '-5.50',
      { belowMin: 1, firstOutOfRange: { line: 2, value: '-5.50' } },
    ],
  ])('when a cell holds %s', async (_what, cell, expected) => {
    const rows = cleanRows();
    (rows[0] as string[])[1] = cell;
    const profile = await bothPaths(csv(HEADER, rows));
    expect(profile.columns[0]).toMatchObject(expected);
  });

  it('with ragged rows (two fields short, two fields over) and an unknown category', async () => {
    const rows = cleanRows();
    rows[4] = ['r4', '12'];
    rows[6] = [...(rows[6] as string[]), '9', '9'];
    (rows[8] as string[])[2] = 'purple';
    (rows[10] as string[])[1] = 'abc';
    const profile = await bothPaths(csv(HEADER, rows));
    // Each ragged record counts once, and the lines after it are still named right.
    expect(profile.raggedRows).toBe(2);
    expect(profile.firstRaggedRow).toEqual({ line: 6, fields: 2, expected: 4 });
    expect(profile.columns[0]).toMatchObject({ firstTypeError: { line: 12, value: 'abc' } });
    expect(profile.columns[1]).toMatchObject({ unknown: 1 });
  });

  it('finds a digit separator that straddles the scan chunk boundary (4 MiB), and ignores header names', async () => {
    const chunk = 4 * 1024 * 1024;
    const header = 'id,amount,color,y,count_24h';
    const spec = FeatureSpecSchema.parse({ ...SPEC, quality: { ...SPEC.quality, minRows: 1 } });
    for (const [before, after] of [
      ['1', '_000'],
      ['1_', '000'],
    ] as const) {
      const lines = [header];
      let length = header.length + 1;
      let i = 0;
      for (;;) {
        const line = `r${i},${(i % 997) + 0.5},${COLORS[i % 3]},0,x`;
        if (length + line.length + 1 > chunk - 200) break;
        lines.push(line);
        length += line.length + 1;
        i += 1;
      }
      // Pad an id so the cell `<before><after>` starts exactly `before.length` bytes before the boundary.
      const prefix = `r${i}`;
      const pad = chunk - before.length - length - (prefix.length + 1);
      const last = `${prefix}${'p'.repeat(pad)},${before}${after},red,0,x`;
      expect(length + prefix.length + pad + 1 + before.length).toBe(chunk);
      lines.push(last);
      const content = `${lines.join('\n')}\n`;
      const profile = await profileDataset(file(content), spec);
      expect(profile.columns[0]).toMatchObject({
        typeErrors: 1,
        firstTypeError: { line: lines.length, value: `${before}${after}` },
      });
    }
    // The header's `count_24h` alone does not send a clean file down the full path, and gives the same profile.
    const rows = cleanRows().map((r) => [...r, 'x']);
    await bothPaths(csv([...HEADER, 'count_24h'], rows));
  }, 60_000);
});

describe('the engine thread setting', () => {
  it('caps the engine threads with MLOPS_DATA_ENGINE_THREADS and refuses a value that is not a count', async () => {
    const before = process.env.MLOPS_DATA_ENGINE_THREADS;
    try {
      process.env.MLOPS_DATA_ENGINE_THREADS = '1';
      const db = await openEngine();
      try {
        const [r] = await db.all("SELECT current_setting('threads') AS t");
        expect(Number(r?.t)).toBe(1);
      } finally {
        db.close();
      }
      for (const bad of ['0', 'two', '-1', '1.5']) {
        process.env.MLOPS_DATA_ENGINE_THREADS = bad;
        await expect(openEngine()).rejects.toThrow(/MLOPS_DATA_ENGINE_THREADS: expected a whole number/);
      }
    } finally {
      if (before === undefined) delete process.env.MLOPS_DATA_ENGINE_THREADS;
      else process.env.MLOPS_DATA_ENGINE_THREADS = before;
    }
  });
});
