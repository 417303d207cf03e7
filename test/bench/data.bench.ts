/**
 * `npm run bench:data`: this project's data plane against what a user would write in a notebook, in one run,
 * on the same files: the reference workload (seed 7) at 1M and 10M rows, each as CSV and as Parquet, generated
 * by the workload generator (streamed; the Parquet files converted by the engine) and cached under the OS temp
 * folder, with the generation times printed on first use.
 *
 * - Ours: `snapshotDataset` (copy + sha256 into a fresh snapshot store) then `validateDataset` (DuckDB profile
 *   with the drift reference and the row fingerprints, + `judgeDataset`), the two activities the pipeline
 *   runs, in a child process of their own.
 * - Pandas (the provisioned venv's): `read_csv` / `read_parquet`, `describe(include='all')`, null rates,
 *   `duplicated().sum()` and the label rate, timed after `import pandas`, in a child process of its own.
 * - Interleaved rounds (BENCH_ROUNDS at 1M, BENCH_ROUNDS_10M at 10M), best wall time of each (with its CPU
 *   seconds: on a shared machine the wall time depends on the neighbours); peak RSS is each child's own maximum.
 * - Below 10M rows, ours once more with the engine on one thread (`MLOPS_DATA_ENGINE_THREADS=1`, pandas' one
 *   core): `thread_scaling_*` is that time over the best time on every core.
 *
 * The last line printed is one JSON object with every time in seconds, the ratios, peak memory and the targets
 * (3x pandas on 1M CSV and on 10M Parquet, 10M rows within 2 GB).
 */
import { spawnSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDataActivities } from '../../activities/data';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { ensurePythonEnv } from '../../src/stack/provision';
import { fraudCsvToParquet, writeFraudCsv } from '../../src/workload/generator';

/** Dataset sizes: the two the issue measures (BENCH_DATA_ROWS, comma-separated, overrides). */
const SIZES = (process.env.BENCH_DATA_ROWS ?? '1000000,10000000').split(',').map(Number);
/** Seed of the generated dataset (the CLI's default). */
const SEED = 7;
/** Interleaved rounds at 1M rows; each side keeps its best. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Rounds at 10M rows (each takes minutes on a shared 2-core machine). */
const ROUNDS_10M = Number(process.env.BENCH_ROUNDS_10M ?? 1);
/** Longest a single measurement may take before the bench gives up on it. */
const CHILD_TIMEOUT_MS = 900_000;
/** The memory target at 10M rows, in MB. */
const TARGET_PEAK_RSS_MB = 2048;
/** The speed target: this many times faster than pandas. */
const TARGET_SPEEDUP = 3;
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

function measureOurs(file: string, env: Record<string, string> = {}): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--ours', file], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      env: { ...process.env, ...env },
    });
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

/** The cached CSV and Parquet files of one size, generated on first use (generation timed). */
async function datasets(
  rows: number,
): Promise<{ csv: string; parquet: string; generated: Record<string, number> }> {
  mkdirSync(CACHE, { recursive: true });
  const csv = path.join(CACHE, `fraud-${rows}-seed${SEED}.csv`);
  const parquet = csv.replace(/\.csv$/, '.parquet');
  const generated: Record<string, number> = {};
  if (!existsSync(csv)) {
    console.log(`generating ${rows} rows into ${csv} (first run only)`);
    const t = performance.now();
    await writeFraudCsv(csv, { rows, seed: SEED });
    generated.csv = (performance.now() - t) / 1000;
    console.log(`  ${generated.csv.toFixed(1)} s`);
  }
  if (!existsSync(parquet)) {
    console.log(`converting it into ${parquet} (typed columns)`);
    const t = performance.now();
    await fraudCsvToParquet(csv, parquet);
    generated.parquet = (performance.now() - t) / 1000;
    console.log(`  ${generated.parquet.toFixed(1)} s`);
  }
  return { csv, parquet, generated };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const best = (ms: Measurement[]): Measurement =>
  ms.reduce((a, b) => (b.seconds < a.seconds ? b : a), ms[0] as Measurement);

const label = (rows: number): string =>
  rows % 1_000_000 === 0 ? `${rows / 1_000_000}m` : rows % 1000 === 0 ? `${rows / 1000}k` : String(rows);

async function main(): Promise<void> {
  const python = ensurePythonEnv((line) => console.log(line));
  const out: Record<string, number | boolean | string> = {};
  const oursPeaks: number[] = [];
  const pandasPeaks: number[] = [];
  for (const rows of SIZES) {
    const files = await datasets(rows);
    const l = label(rows);
    for (const [k, v] of Object.entries(files.generated)) out[`generate_${l}_${k}_s`] = round3(v);
    const runs: Record<string, Measurement[]> = {
      ours_csv: [],
      pandas_csv: [],
      ours_parquet: [],
      pandas_parquet: [],
    };
    const record = (key: string, m: Measurement): void => {
      runs[key]?.push(m);
      (key.startsWith('ours') ? oursPeaks : pandasPeaks).push(m.peak_rss_mb);
      out[`${key.replace('_', `_${l}_`)}_peak_rss_mb`] = Math.max(
        Number(out[`${key.replace('_', `_${l}_`)}_peak_rss_mb`] ?? 0),
        Math.round(m.peak_rss_mb),
      );
      console.log(
        `${l} ${key}: ${m.seconds.toFixed(2)} s (cpu ${Number(m.cpu_s).toFixed(2)} s), ${m.rows} rows, ` +
          `peak ${m.peak_rss_mb.toFixed(0)} MB`,
      );
    };
    const rounds = rows >= 10_000_000 ? ROUNDS_10M : ROUNDS;
    for (let round = 0; round < rounds; round += 1) {
      record('ours_csv', await measureOurs(files.csv));
      record('pandas_csv', measurePandas(python, files.csv, 'csv'));
      record('ours_parquet', await measureOurs(files.parquet));
      record('pandas_parquet', measurePandas(python, files.parquet, 'parquet'));
    }
    const b = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, best(v)])) as Record<
      string,
      Measurement
    >;
    for (const fmt of ['csv', 'parquet'] as const) {
      const ours = b[`ours_${fmt}`] as Measurement;
      const pandas = b[`pandas_${fmt}`] as Measurement;
      out[`ours_${l}_${fmt}_s`] = round3(ours.seconds);
      out[`ours_${l}_${fmt}_snapshot_s`] = round3(Number(ours.snapshot_s));
      out[`ours_${l}_${fmt}_validate_s`] = round3(Number(ours.validate_s));
      out[`ours_${l}_${fmt}_cpu_s`] = round3(Number(ours.cpu_s));
      out[`pandas_${l}_${fmt}_s`] = round3(pandas.seconds);
      out[`pandas_${l}_${fmt}_cpu_s`] = round3(Number(pandas.cpu_s));
      out[`speedup_${l}_${fmt}`] = round3(pandas.seconds / ours.seconds);
    }
    out[`rounds_${l}`] = rounds;
    if (rows < 10_000_000) {
      // The engine on one thread (pandas runs on one): how our time scales with the cores we are given.
      for (const fmt of ['csv', 'parquet'] as const) {
        const one = await measureOurs(fmt === 'csv' ? files.csv : files.parquet, {
          MLOPS_DATA_ENGINE_THREADS: '1',
        });
        console.log(
          `${l} ours_${fmt} on 1 engine thread: ${one.seconds.toFixed(2)} s (cpu ${Number(one.cpu_s).toFixed(2)} s)`,
        );
        out[`ours_${l}_${fmt}_1thread_s`] = round3(one.seconds);
        out[`thread_scaling_${l}_${fmt}`] = round3(one.seconds / Number(out[`ours_${l}_${fmt}_s`]));
      }
    }
  }
  out.peak_rss_mb = Math.round(Math.max(...oursPeaks));
  out.pandas_peak_rss_mb = Math.round(Math.max(...pandasPeaks));
  const targets: Record<string, boolean> = {};
  if (out.speedup_1m_csv !== undefined) targets.csv_1m_3x = Number(out.speedup_1m_csv) >= TARGET_SPEEDUP;
  if (out.speedup_10m_parquet !== undefined) {
    targets.parquet_10m_3x = Number(out.speedup_10m_parquet) >= TARGET_SPEEDUP;
    targets.memory_10m_2gb =
      Math.max(Number(out.ours_10m_csv_peak_rss_mb ?? 0), Number(out.ours_10m_parquet_peak_rss_mb ?? 0)) <=
      TARGET_PEAK_RSS_MB;
  }
  console.log(
    JSON.stringify({
      sizes: SIZES,
      ...out,
      targets_met: targets,
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
