/**
 * `npm run bench:data`: this project's data plane against what a user would write in a notebook, in one run,
 * on the same files: the reference workload's 1M rows (seed 7), as CSV and as Parquet, generated once and
 * cached under the OS temp folder.
 *
 * - Ours: `snapshotDataset` (copy + sha256 into a fresh snapshot store) then `validateDataset` (DuckDB profile
 *   + `judgeDataset`), the two activities the pipeline runs, in a child process of their own.
 * - Pandas (the provisioned venv's): `read_csv` / `read_parquet`, `describe(include='all')`, null rates,
 *   `duplicated().sum()` and the label rate, timed after `import pandas`, in a child process of its own.
 * - ROUNDS interleaved rounds, best wall time of each (with its CPU seconds: on a shared machine the wall
 *   time depends on the neighbours); peak RSS is each child's own maximum.
 *
 * The last line printed is one JSON object with the rows, every time in seconds, the ratios and peak memory.
 */
import { spawnSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDataActivities } from '../../activities/data';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { openEngine, sqlString } from '../../src/data/engine';
import { ensurePythonEnv } from '../../src/stack/provision';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';

/** Rows of the benchmark dataset: the size the issue measures. */
const ROWS = Number(process.env.BENCH_DATA_ROWS ?? 1_000_000);
/** Seed of the generated dataset (the CLI's default). */
const SEED = 7;
/** Interleaved rounds; each side keeps its best. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Longest a single measurement may take before the bench gives up on it. */
const CHILD_TIMEOUT_MS = 300_000;
/** Where the generated files are cached between runs. */
const CACHE = path.join(os.tmpdir(), 'mlops-bench-data');

const PANDAS = `
import json, resource, sys, time
import pandas as pd
path, fmt, label = sys.argv[1:4]
r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
df = pd.read_csv(path) if fmt == 'csv' else pd.read_parquet(path)
describe = df.describe(include='all')
null_rates = df.isna().mean()
duplicates = int(df.duplicated().sum())
label_rate = float(df[label].mean())
seconds = time.perf_counter() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({'seconds': seconds, 'cpu_s': cpu, 'rows': len(df), 'duplicates': duplicates, 'label_rate': label_rate,
                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

interface Measurement {
  seconds: number;
  rows: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

/** The child's side: snapshot + validate one file, print one JSON line. */
async function runOurs(file: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-bench-snap-'));
  try {
    const acts = createDataActivities({ snapshotDir: dir });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const snapshot = await acts.snapshotDataset({ dataset: { uri: file } });
    const t1 = performance.now();
    const { report, profile } = await acts.validateDataset({
      snapshotPath: snapshot.snapshotPath,
      spec: FRAUD_FEATURE_SPEC,
    });
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const result: Measurement = {
      seconds: (t2 - t0) / 1000,
      cpu_s: (cpu.user + cpu.system) / 1e6,
      snapshot_s: (t1 - t0) / 1000,
      validate_s: (t2 - t1) / 1000,
      rows: profile?.rows ?? 0,
      ok: report.ok,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lastJson(output: string, what: string): Measurement {
  const line = output.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Measurement;
  } catch {
    throw new Error(`${what} printed no result: ${output.slice(-2000)}`);
  }
}

function measureOurs(file: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--ours', file], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`ours on ${file} exited with ${code}: ${out.slice(-2000)}`));
      else {
        try {
          resolve(lastJson(out, 'ours'));
        } catch (err) {
          reject(err as Error);
        }
      }
    });
  });
}

function measurePandas(python: string, file: string, format: 'csv' | 'parquet'): Measurement {
  const r = spawnSync(python, ['-c', PANDAS, file, format, FRAUD_FEATURE_SPEC.label.column], {
    encoding: 'utf8',
    timeout: CHILD_TIMEOUT_MS,
  });
  if (r.status !== 0) throw new Error(`pandas on ${file} failed: ${r.stderr.slice(-2000)}`);
  return lastJson(r.stdout, 'pandas');
}

/** The cached CSV and Parquet files of the benchmark dataset, generated on first use. */
async function datasets(): Promise<{ csv: string; parquet: string }> {
  mkdirSync(CACHE, { recursive: true });
  const csv = path.join(CACHE, `fraud-${ROWS}-seed${SEED}.csv`);
  const parquet = csv.replace(/\.csv$/, '.parquet');
  if (!existsSync(csv)) {
    console.log(`generating ${ROWS} rows into ${csv} (first run only)`);
    await writeCsv(csv, generateFraudDataset({ rows: ROWS, seed: SEED }));
  }
  if (!existsSync(parquet)) {
    console.log(`writing ${parquet} (typed columns, as DuckDB infers them from the CSV)`);
    const tmp = `${parquet}.tmp-${process.pid}`;
    const db = await openEngine();
    try {
      await db.run(
        `COPY (SELECT * FROM read_csv(${sqlString(csv)}, header = true)) TO ${sqlString(tmp)} (FORMAT parquet)`,
      );
    } finally {
      db.close();
    }
    renameSync(tmp, parquet);
  }
  return { csv, parquet };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const best = (ms: Measurement[]): Measurement =>
  ms.reduce((a, b) => (b.seconds < a.seconds ? b : a), ms[0] as Measurement);

async function main(): Promise<void> {
  const python = ensurePythonEnv((line) => console.log(line));
  const files = await datasets();
  const runs: Record<string, Measurement[]> = {
    ours_csv: [],
    pandas_csv: [],
    ours_parquet: [],
    pandas_parquet: [],
  };
  const record = (key: string, m: Measurement): void => {
    runs[key]?.push(m);
    console.log(
      `${key}: ${m.seconds.toFixed(2)} s (cpu ${Number(m.cpu_s).toFixed(2)} s), ${m.rows} rows, ` +
        `peak ${m.peak_rss_mb.toFixed(0)} MB`,
    );
  };
  for (let round = 0; round < ROUNDS; round += 1) {
    record('ours_csv', await measureOurs(files.csv));
    record('pandas_csv', measurePandas(python, files.csv, 'csv'));
    record('ours_parquet', await measureOurs(files.parquet));
    record('pandas_parquet', measurePandas(python, files.parquet, 'parquet'));
  }
  const b = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, best(v)])) as Record<
    string,
    Measurement
  >;
  const s = (k: string): number => (b[k] as Measurement).seconds;
  const peak = (prefix: string): number =>
    Math.max(
      ...Object.entries(runs).flatMap(([k, v]) => (k.startsWith(prefix) ? v.map((m) => m.peak_rss_mb) : [])),
    );
  const rowsLabel = ROWS === 1_000_000 ? '1m' : String(ROWS);
  console.log(
    JSON.stringify({
      rows: ROWS,
      rounds: ROUNDS,
      [`ours_${rowsLabel}_csv_s`]: round3(s('ours_csv')),
      [`ours_${rowsLabel}_csv_validate_s`]: round3(Number(b.ours_csv?.validate_s)),
      [`pandas_${rowsLabel}_csv_s`]: round3(s('pandas_csv')),
      ours_csv_cpu_s: round3(Number(b.ours_csv?.cpu_s)),
      pandas_csv_cpu_s: round3(Number(b.pandas_csv?.cpu_s)),
      speedup_csv: round3(s('pandas_csv') / s('ours_csv')),
      [`ours_${rowsLabel}_parquet_s`]: round3(s('ours_parquet')),
      [`ours_${rowsLabel}_parquet_validate_s`]: round3(Number(b.ours_parquet?.validate_s)),
      [`pandas_${rowsLabel}_parquet_s`]: round3(s('pandas_parquet')),
      ours_parquet_cpu_s: round3(Number(b.ours_parquet?.cpu_s)),
      pandas_parquet_cpu_s: round3(Number(b.pandas_parquet?.cpu_s)),
      speedup_parquet: round3(s('pandas_parquet') / s('ours_parquet')),
      peak_rss_mb: Math.round(peak('ours')),
      pandas_peak_rss_mb: Math.round(peak('pandas')),
      cores: os.cpus().length,
      load_avg_1m: round3(os.loadavg()[0] ?? 0),
    }),
  );
}

const oursAt = process.argv.indexOf('--ours');
const job = oursAt >= 0 ? runOurs(process.argv[oursAt + 1] ?? '') : main();
job.catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
