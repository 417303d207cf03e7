/**
 * bench:drift: 1M reference and 1M current rows of 20 numeric and 5 categorical features (seeded,
 * with ties, nulls and a few drifted features), and on the same data in one run: this project's full
 * drift report (KS with p-value, Wasserstein-1, PSI, chi-square, Jensen-Shannon, L-infinity, the
 * corrected alarm), scipy's per-feature loop (ks_2samp + wasserstein_distance; chi2_contingency +
 * jensenshannon) and Evidently's DataDriftPreset, with CPU seconds and peak memory of each; then one
 * 10k-row window against the stored reference profile, and the false-alarm experiment. The last line
 * is one JSON object.
 *
 * Usage: npm run bench:drift [-- --rows N] [--no-evidently]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import {
  buildReferenceProfile,
  ReferenceProfileSchema,
  summariseWindow,
  type ColumnarData,
} from '../../src/core/stats/drift-profile';
import { createSeededRandom } from '../../src/core/stats/random';
import { runFalseAlarmExperiment } from '../../src/drift/experiment';
import { fullDriftReport, windowDrift } from '../../src/drift/report';
import { windowSeed } from '../../src/drift/seeds';
import { ensureReferenceEnv } from '../../src/stack/provision';

/** Rows per side (the 1M). */
const DEFAULT_ROWS = 1_000_000;
/** Rows of the window timed against the stored profile. */
const WINDOW_ROWS = 10_000;
/** Repetitions of the window timing (the median is reported). */
const WINDOW_REPEATS = 21;
/** Numeric and categorical feature counts of the benchmark table. */
const NUMERIC = 20;
const CATEGORICAL = 5;
/** Longest a reference tool may run before the benchmark reports it as timed out. */
const REFERENCE_TIMEOUT_MS = 30 * 60_000;

const args = process.argv.slice(2);
const rows = Number(args[args.indexOf('--rows') + 1] ?? DEFAULT_ROWS) || DEFAULT_ROWS;
const withEvidently = !args.includes('--no-evidently');

function normal(r: ReturnType<typeof createSeededRandom>): number {
  const u = 1 - r.nextFloat();
  const v = r.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function poisson(r: ReturnType<typeof createSeededRandom>, lambda: number): number {
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= r.nextFloat();
  } while (p > l);
  return k - 1;
}

interface Table {
  data: ColumnarData;
  codes: Record<string, Uint8Array>;
}

const categories: Record<string, string[]> = {};
for (let c = 0; c < CATEGORICAL; c++)
  categories[`cat_${c}`] = Array.from({ length: 3 + c * 4 }, (_, i) => `c${c}_${i}`);

/** One side of the table; `drift` shifts numeric features 0-3 and categorical 0. */
function makeTable(side: number, n: number, drift: number): Table {
  const numeric: ColumnarData['numeric'] = {};
  for (let f = 0; f < NUMERIC; f++) {
    const r = createSeededRandom(windowSeed(side, f));
    const col = new Float64Array(n);
    const shift = f < 4 ? drift : 0;
    for (let i = 0; i < n; i++) {
      const kind = f % 4;
      col[i] =
        kind === 0
          ? normal(r) + shift
          : kind === 1
            ? Math.exp(0.5 * normal(r) + shift)
            : kind === 2
              ? poisson(r, 3 + shift)
              : r.nextFloat() * 10 + shift;
      if (f % 5 === 4 && r.nextFloat() < 0.01) col[i] = Number.NaN;
    }
    numeric[`num_${f}`] = col;
  }
  const categorical: ColumnarData['categorical'] = {};
  const codes: Record<string, Uint8Array> = {};
  for (let c = 0; c < CATEGORICAL; c++) {
    const name = `cat_${c}`;
    const names = categories[name]!;
    const r = createSeededRandom(windowSeed(side, 100 + c));
    const weights = names.map((_, i) => 1 / (i + 1 + (c === 0 ? drift * 20 * (i === 0 ? 1 : 0) : 0)));
    const total = weights.reduce((s, w) => s + w, 0);
    const cum = weights.map(
      (
        (s) => (w: number) =>
          (s += w / total)
      )(0),
    );
    const col = new Array<string | null>(n);
    const code = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const u = r.nextFloat();
      let k = cum.findIndex((x) => u < x);
      if (k < 0) k = names.length - 1;
      if (c === 4 && r.nextFloat() < 0.005) {
        col[i] = null;
        code[i] = 255;
      } else {
        col[i] = names[k]!;
        code[i] = k;
      }
    }
    categorical[name] = col;
    codes[name] = code;
  }
  return { data: { rows: n, numeric, categorical }, codes };
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

const ReferenceOutput = z.object({
  wall_s: z.number(),
  cpu_s: z.number(),
  peak_rss_mb: z.number(),
  results: z.record(z.string(), z.record(z.string(), z.number())).optional(),
});

function runReference(
  python: string,
  mode: string,
  dir: string,
): Promise<z.infer<typeof ReferenceOutput> | { timedOut: true }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(__dirname, 'drift_reference.py'), mode, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ timedOut: true });
    }, REFERENCE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${mode} failed (${code}): ${err.slice(-2000)}`));
      const last = out.trim().split('\n').pop() ?? '';
      resolve(ReferenceOutput.parse(JSON.parse(last)));
    });
  });
}

async function main(): Promise<void> {
  const load = os.loadavg()[0]!.toFixed(1);
  console.log(
    `bench:drift: ${rows} reference + ${rows} current rows, ${NUMERIC} numeric + ${CATEGORICAL} categorical; load average ${load} on ${os.cpus().length} CPUs`,
  );
  const t0 = Date.now();
  const ref = makeTable(1, rows, 0);
  const cur = makeTable(2, rows, 0.02);
  console.log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-drift-'));
  try {
    writeFileSync(
      path.join(dir, 'meta.json'),
      JSON.stringify({
        numeric: Object.keys(ref.data.numeric),
        categorical: Object.keys(ref.data.categorical),
        categories,
      }),
    );
    for (const [side, t] of [
      ['ref', ref],
      ['cur', cur],
    ] as const) {
      for (const [name, col] of Object.entries(t.data.numeric))
        writeFileSync(path.join(dir, `${side}-${name}.bin`), col);
      for (const [name, code] of Object.entries(t.codes))
        writeFileSync(path.join(dir, `${side}-${name}.bin`), code);
    }

    // Ours: the full report on raw columns.
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const ours = fullDriftReport(ref.data, cur.data);
    const oursWall = (performance.now() - w0) / 1000;
    const oursCpu = cpuSeconds(c0);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(
      `ours: ${oursWall.toFixed(2)} s wall, ${oursCpu.toFixed(2)} s CPU; verdict ${ours.verdict.status} (${ours.verdict.drifted.join(', ')}); peak RSS ${(peak / 2 ** 20).toFixed(0)} MB (${((peak - rssBefore) / 2 ** 20).toFixed(0)} MB above the loaded data)`,
    );

    // The window against a stored profile.
    const p0 = performance.now();
    const profile = buildReferenceProfile(ref.data, { seed: 1 });
    const profileBuild = (performance.now() - p0) / 1000;
    const profileFile = path.join(dir, 'profile.json');
    writeFileSync(profileFile, JSON.stringify(profile));
    const l0 = performance.now();
    const stored = ReferenceProfileSchema.parse(JSON.parse(readFileSync(profileFile, 'utf8')));
    const profileLoadMs = performance.now() - l0;
    // Windows tile the current table and wrap around when it is shorter than all of them: with fewer
    // than WINDOW_ROWS * WINDOW_REPEATS rows, later slices would otherwise be empty and time nothing.
    const windowStart = (i: number): number => (i * WINDOW_ROWS) % Math.max(1, rows - WINDOW_ROWS + 1);
    const slice = (start: number): ColumnarData => ({
      rows: Math.min(WINDOW_ROWS, rows),
      numeric: Object.fromEntries(
        Object.entries(cur.data.numeric).map(([k, v]) => [k, v.subarray(start, start + WINDOW_ROWS)]),
      ),
      categorical: Object.fromEntries(
        Object.entries(cur.data.categorical).map(([k, v]) => [k, v.slice(start, start + WINDOW_ROWS)]),
      ),
    });
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < WINDOW_REPEATS; i++) {
      const data = slice(windowStart(i));
      if (Object.values(data.numeric).some((c) => c.length !== Math.min(WINDOW_ROWS, rows)))
        throw new Error(`window ${i} is not ${WINDOW_ROWS} rows`);
      const s = performance.now();
      const c = process.cpuUsage();
      windowDrift(stored, summariseWindow(stored, data));
      cpuTimes.push(cpuSeconds(c) * 1000);
      times.push(performance.now() - s);
    }
    cpuTimes.sort((a, b) => a - b);
    const windowCpuMs = cpuTimes[Math.floor(cpuTimes.length / 2)]!;
    times.sort((a, b) => a - b);
    const windowMs = times[Math.floor(times.length / 2)]!;
    console.log(
      `profile: built in ${profileBuild.toFixed(2)} s, ${(JSON.stringify(profile).length / 1024).toFixed(0)} KiB, loaded in ${profileLoadMs.toFixed(1)} ms; one ${WINDOW_ROWS}-row window: median ${windowMs.toFixed(2)} ms wall, ${windowCpuMs.toFixed(2)} ms CPU (min ${times[0]!.toFixed(2)}, max ${times[times.length - 1]!.toFixed(2)})`,
    );

    // scipy's loop, then Evidently.
    const scipy = await runReference(ensureReferenceEnv('drift'), 'scipy', dir);
    let parity = 'n/a';
    if (!('timedOut' in scipy)) {
      let worstP = 0;
      let worstD = 0;
      for (const f of ours.features) {
        const r = scipy.results?.[f.feature];
        if (!r) continue;
        if (f.kind === 'numeric') {
          worstD = Math.max(
            worstD,
            Math.abs(f.statistic - r.ks_d!),
            Math.abs(f.stats.wasserstein! - r.wasserstein!) / Math.max(1, r.wasserstein!),
          );
          worstP = Math.max(worstP, Math.abs(f.pValue - r.ks_p!) / Math.max(1e-12, r.ks_p!));
        } else {
          worstD = Math.max(
            worstD,
            Math.abs(f.statistic - r.chi2!) / Math.max(1, r.chi2!),
            Math.abs(f.distance - r.jensen_shannon!),
          );
          worstP = Math.max(worstP, Math.abs(f.pValue - r.chi2_p!) / Math.max(1e-12, r.chi2_p!));
        }
      }
      parity = `largest statistic difference ${worstD.toExponential(2)}, largest relative p difference ${worstP.toExponential(2)}`;
      console.log(
        `scipy: ${scipy.wall_s.toFixed(2)} s wall, ${scipy.cpu_s.toFixed(2)} s CPU, peak RSS ${scipy.peak_rss_mb.toFixed(0)} MB; parity with ours: ${parity}`,
      );
    }
    const evidently = withEvidently
      ? await runReference(ensureReferenceEnv('evidently'), 'evidently', dir)
      : undefined;
    if (evidently && !('timedOut' in evidently))
      console.log(
        `evidently DataDriftPreset: ${evidently.wall_s.toFixed(2)} s wall, ${evidently.cpu_s.toFixed(2)} s CPU, peak RSS ${evidently.peak_rss_mb.toFixed(0)} MB`,
      );

    const fa = runFalseAlarmExperiment();
    console.log(
      `false alarms: ${fa.falseAlarms}/${fa.windows} drift-free windows (${(100 * fa.falseAlarmRate).toFixed(1)}%, configured ${100 * fa.alpha}%); detected ${fa.detections}/${fa.windows} drifted windows (${(100 * fa.detectionRate).toFixed(1)}%)`,
    );

    const scipyS = 'timedOut' in scipy ? null : scipy.wall_s;
    const evidentlyS = !evidently || 'timedOut' in evidently ? null : evidently.wall_s;
    const result = {
      rows,
      numeric: NUMERIC,
      categorical: CATEGORICAL,
      ours_s: Number(oursWall.toFixed(3)),
      ours_cpu_s: Number(oursCpu.toFixed(3)),
      scipy_s: scipyS === null ? null : Number(scipyS.toFixed(3)),
      scipy_cpu_s: 'timedOut' in scipy ? null : Number(scipy.cpu_s.toFixed(3)),
      evidently_s: evidentlyS === null ? null : Number(evidentlyS.toFixed(3)),
      evidently_cpu_s: !evidently || 'timedOut' in evidently ? null : Number(evidently.cpu_s.toFixed(3)),
      speedup_vs_scipy: scipyS === null ? null : Number((scipyS / oursWall).toFixed(1)),
      speedup_vs_evidently: evidentlyS === null ? null : Number((evidentlyS / oursWall).toFixed(1)),
      window_ms: Number(windowMs.toFixed(3)),
      window_cpu_ms: Number(windowCpuMs.toFixed(3)),
      profile_build_s: Number(profileBuild.toFixed(3)),
      ours_peak_rss_mb: Math.round(peak / 2 ** 20),
      scipy_peak_rss_mb: 'timedOut' in scipy ? null : Math.round(scipy.peak_rss_mb),
      evidently_peak_rss_mb: !evidently || 'timedOut' in evidently ? null : Math.round(evidently.peak_rss_mb),
      false_alarm_rate: fa.falseAlarmRate,
      detection_rate: fa.detectionRate,
      load_average: Number(load),
    };
    console.log(JSON.stringify(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
