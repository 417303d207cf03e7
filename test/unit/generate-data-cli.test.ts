import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UsageError, main, parseGenerateArgs } from '../../src/cli/generate-data';
import { generateFraudDataset, toCsv } from '../../src/workload/generator';

const ROOT = resolve(__dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'generate-data-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('parseGenerateArgs', () => {
  it('maps every flag onto the generator options', () => {
    expect(
      parseGenerateArgs([
        '--out',
        'x.csv',
        '--rows',
        '300',
        '--seed',
        '3',
        '--batches',
        '5',
        '--data-drift',
        '0.5',
        '--concept-drift',
        '0.25',
        '--poison-batch',
        '2',
        '--poison-mode',
        'flip',
      ]),
    ).toEqual({
      out: 'x.csv',
      options: {
        rows: 300,
        seed: 3,
        fraudRate: 0.03,
        batches: 5,
        dataDrift: 0.5,
        conceptDrift: 0.25,
        poisonedBatch: { batch: 2, mode: 'flip' },
      },
    });
  });

  it.each([
    [['--rows', '10'], /--out: is required/],
    [['--out', 'x.csv', '--rows', 'abc'], /--rows: must be a number/],
    [['--out', 'x.csv', '--poison-mode', 'nuke', '--poison-batch', '1'], /--poison-mode:/],
    [['--out', 'x.csv', '--poison-fraction', '0.3'], /need --poison-batch/],
    [['--out', 'x.csv', '--bogus'], /Unknown option '--bogus'/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseGenerateArgs(argv)).toThrow(UsageError);
    expect(() => parseGenerateArgs(argv)).toThrow(message);
  });
});

describe('generate-data', () => {
  it('writes the generator output and prints its sha256', async () => {
    const out = join(tmp, 'data', 'fraud.csv');
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    let printed: string;
    try {
      expect(await main(['--out', out, '--rows', '400', '--seed', '9', '--poison-batch', '3'])).toBe(0);
      printed = log.mock.calls.map((c) => String(c[0])).join('\n');
    } finally {
      log.mockRestore();
    }
    const bytes = readFileSync(out);
    expect(bytes.toString()).toBe(
      toCsv(generateFraudDataset({ rows: 400, seed: 9, poisonedBatch: { batch: 3 } })),
    );
    expect(printed).toContain(createHash('sha256').update(bytes).digest('hex'));
  });

  it('exits 2 naming the flag when an option is out of range', () => {
    const r = spawnSync(
      join(ROOT, 'node_modules/.bin/tsx'),
      [
        'src/cli/generate-data.ts',
        '--out',
        join(tmp, 'x.csv'),
        '--rows',
        '100',
        '--batches',
        '4',
        '--poison-batch',
        '4',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/generate-data: --poison-batch: batch 4 does not exist: batch ids are 0\.\.3/);
  });
});
