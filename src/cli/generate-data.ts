/**
 * Writes a synthetic fraud dataset (see `src/workload/generator.ts`) as CSV and prints its row count, fraud
 * rate and sha256, which is what a pipeline input pins with `dataset.sha256`.
 *
 *   tsx src/cli/generate-data.ts --out data/fraud.csv --rows 5000 --seed 7 \
 *     [--fraud-rate 0.03] [--batches 10] [--data-drift 0.5] [--concept-drift 0.5] [--missing-rate 0.01] \
 *     [--poison-batch 3] [--poison-fraction 0.2] [--poison-mode cluster|flip] [--poison-region east] \
 *     [--history-poison replay-flip|near-duplicates --reference-rows 5000 --reference-seed 6 \
 *      [--history-poison-fraction 0.05] [--history-poison-region east] [--history-poison-templates 5]]
 *
 * `--history-poison` poisons every batch against a reference dataset (the champion's training data, named by
 * the generator options it was made with): rows replayed with flipped labels, or near-duplicates.
 *
 * Rules: arguments are validated with zod and every error names the flag; exit code 2 for bad arguments,
 * 1 for anything else, 0 on success.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { InputValidationError } from '../core/contracts/errors';
import { FRAUD_REGIONS } from '../core/contracts/fraud';
import {
  DEFAULT_FRAUD_RATE,
  HISTORY_POISON_MODES,
  POISON_MODES,
  generateFraudDataset,
  writeCsv,
  type FraudRow,
} from '../workload/generator';

/** Rows generated when --rows is not given: enough to train the reference model in seconds. */
export const DEFAULT_CLI_ROWS = 5000;
/** Seed used when --seed is not given, so two plain runs give the same file. */
export const DEFAULT_CLI_SEED = 7;

const USAGE =
  'usage: generate-data --out <file.csv> [--rows 5000] [--seed 7] [--fraud-rate 0.03] [--batches 10] ' +
  '[--data-drift 0..1] [--concept-drift 0..1] [--missing-rate 0..0.5] [--poison-batch <id>] ' +
  '[--poison-fraction 0..1] [--poison-mode cluster|flip] [--poison-region <region>] ' +
  '[--history-poison replay-flip|near-duplicates --reference-rows <n> --reference-seed <s> ' +
  '[--history-poison-fraction 0..1] [--history-poison-region <region>] [--history-poison-templates <n>]]';

/** A number given as a flag: decimal text only ('' or 'abc' are refused rather than read as 0 or NaN). */
const NumberFlag = z
  .string()
  .regex(/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/, 'must be a number')
  .transform(Number);

const ArgsSchema = z
  .object({
    out: z.string({ error: 'is required' }).min(1, 'is required'),
    rows: NumberFlag.default(DEFAULT_CLI_ROWS),
    seed: NumberFlag.default(DEFAULT_CLI_SEED),
    'fraud-rate': NumberFlag.default(DEFAULT_FRAUD_RATE),
    batches: NumberFlag.optional(),
    'data-drift': NumberFlag.optional(),
    'concept-drift': NumberFlag.optional(),
    'missing-rate': NumberFlag.optional(),
    'poison-batch': NumberFlag.optional(),
    'poison-fraction': NumberFlag.optional(),
    'poison-mode': z.enum(POISON_MODES).optional(),
    'poison-region': z.enum(FRAUD_REGIONS).optional(),
    'history-poison': z.enum(HISTORY_POISON_MODES).optional(),
    'reference-rows': NumberFlag.optional(),
    'reference-seed': NumberFlag.optional(),
    'history-poison-fraction': NumberFlag.optional(),
    'history-poison-region': z.enum(FRAUD_REGIONS).optional(),
    'history-poison-templates': NumberFlag.optional(),
  })
  .strict();

const FLAG_FOR_OPTION: Record<string, string> = {
  rows: '--rows',
  seed: '--seed',
  fraudRate: '--fraud-rate',
  batches: '--batches',
  dataDrift: '--data-drift',
  conceptDrift: '--concept-drift',
  missingRate: '--missing-rate',
  'poisonedBatch.batch': '--poison-batch',
  'poisonedBatch.fraction': '--poison-fraction',
  'poisonedBatch.mode': '--poison-mode',
  'poisonedBatch.region': '--poison-region',
  'historyPoison.mode': '--history-poison',
  'historyPoison.reference.rows': '--reference-rows',
  'historyPoison.reference.seed': '--reference-seed',
  'historyPoison.fraction': '--history-poison-fraction',
  'historyPoison.region': '--history-poison-region',
  'historyPoison.templates': '--history-poison-templates',
};

/** Bad command-line arguments; the message names the flag. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses the flags into generator options; undefined for --help. Throws {@link UsageError}. */
export function parseGenerateArgs(argv: string[]) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        out: { type: 'string' },
        rows: { type: 'string' },
        seed: { type: 'string' },
        'fraud-rate': { type: 'string' },
        batches: { type: 'string' },
        'data-drift': { type: 'string' },
        'concept-drift': { type: 'string' },
        'missing-rate': { type: 'string' },
        'poison-batch': { type: 'string' },
        'poison-fraction': { type: 'string' },
        'poison-mode': { type: 'string' },
        'poison-region': { type: 'string' },
        'history-poison': { type: 'string' },
        'reference-rows': { type: 'string' },
        'reference-seed': { type: 'string' },
        'history-poison-fraction': { type: 'string' },
        'history-poison-region': { type: 'string' },
        'history-poison-templates': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return undefined;
  const { help: _help, ...rest } = values;
  const parsed = ArgsSchema.safeParse(rest);
  if (!parsed.success) {
    // Paths are flag names here; print them as the user typed them.
    throw new UsageError(
      parsed.error.issues.map((i) => `--${String(i.path[0] ?? '')}: ${i.message}`).join('\n'),
    );
  }
  const a = parsed.data;
  const poisonFlags =
    a['poison-fraction'] !== undefined || a['poison-mode'] !== undefined || a['poison-region'] !== undefined;
  if (poisonFlags && a['poison-batch'] === undefined) {
    throw new UsageError('--poison-fraction, --poison-mode and --poison-region need --poison-batch');
  }
  const historyFlags = [
    'reference-rows',
    'reference-seed',
    'history-poison-fraction',
    'history-poison-region',
    'history-poison-templates',
  ] as const;
  const history = a['history-poison'];
  if (history === undefined && historyFlags.some((f) => a[f] !== undefined)) {
    throw new UsageError(`--${historyFlags.join(', --')} need --history-poison`);
  }
  if (history !== undefined && (a['reference-rows'] === undefined || a['reference-seed'] === undefined)) {
    throw new UsageError(
      '--history-poison needs --reference-rows and --reference-seed (the reference dataset)',
    );
  }
  return {
    out: a.out,
    options: {
      rows: a.rows,
      seed: a.seed,
      fraudRate: a['fraud-rate'],
      ...(a.batches !== undefined && { batches: a.batches }),
      ...(a['data-drift'] !== undefined && { dataDrift: a['data-drift'] }),
      ...(a['concept-drift'] !== undefined && { conceptDrift: a['concept-drift'] }),
      ...(a['missing-rate'] !== undefined && { missingRate: a['missing-rate'] }),
      ...(a['poison-batch'] !== undefined && {
        poisonedBatch: {
          batch: a['poison-batch'],
          ...(a['poison-fraction'] !== undefined && { fraction: a['poison-fraction'] }),
          ...(a['poison-mode'] !== undefined && { mode: a['poison-mode'] }),
          ...(a['poison-region'] !== undefined && { region: a['poison-region'] }),
        },
      }),
      ...(history !== undefined && {
        historyPoison: {
          mode: history,
          reference: { rows: a['reference-rows'] ?? 0, seed: a['reference-seed'] ?? 0 },
          ...(a['history-poison-fraction'] !== undefined && { fraction: a['history-poison-fraction'] }),
          ...(a['history-poison-region'] !== undefined && { region: a['history-poison-region'] }),
          ...(a['history-poison-templates'] !== undefined && { templates: a['history-poison-templates'] }),
        },
      }),
    },
  };
}

/** Runs the command; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let cli: ReturnType<typeof parseGenerateArgs>;
  try {
    cli = parseGenerateArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`generate-data: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (cli === undefined) {
    console.log(USAGE);
    return 0;
  }
  let rows: FraudRow[];
  try {
    rows = generateFraudDataset(cli.options);
  } catch (err) {
    if (err instanceof InputValidationError) {
      // Map option paths back to the flags the user typed.
      const lines = err.issues.map((line) =>
        line.replace(
          /^generator options: ([\w.]+):/,
          (_m, path: string) => `${FLAG_FOR_OPTION[path] ?? path}:`,
        ),
      );
      console.error(`generate-data: ${lines.join('\n')}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  await writeCsv(cli.out, rows);
  const sha256 = createHash('sha256')
    .update(await readFile(cli.out))
    .digest('hex');
  const fraud = rows.reduce((n, r) => n + r.is_fraud, 0);
  console.log(
    `wrote ${rows.length} rows to ${cli.out} (fraud rate ${((fraud / rows.length) * 100).toFixed(2)}%, ` +
      `sha256 ${sha256})`,
  );
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`generate-data: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
