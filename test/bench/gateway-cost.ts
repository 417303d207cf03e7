/**
 * `npx tsx test/bench/gateway-cost.ts [variant...]`: where a gateway request's CPU goes. One serving
 * process per server unless COST_WORKERS says more, the same model and load generator as
 * bench:gateway; for each variant, CPU-us per request of the server's process tree (from /proc, main
 * threads apart) at saturation or at COST_RATE, every server up at once and measured in alternating
 * slices (COST_ROUNDS of COST_MEASURE_S), so load from elsewhere falls on all alike. Variants switch
 * protections off one at a time through the ordinary configuration, so the difference to `full` is
 * that protection's cost:
 *
 *   bare (the bench's bare server), full, no-access-log, no-inference-log, no-redaction, none (all three off)
 *
 * `full:old` runs a built entry point (COST_BUNDLE_OLD, an esbuild bundle of workers/gateway.ts) to
 * compare two builds; COST_PERF_DIR records `perf record -e cpu-clock` per slice, COST_PROFILE_DIR V8
 * CPU profiles, COST_NODE_FLAGS (e.g. --trace-gc) and COST_SERVER_LOG pass flags and keep output.
 *
 * A measuring tool, not a target: bench:gateway judges the gateway with every protection on.
 */
import autocannon from 'autocannon';
import { fork, spawn } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  openSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey } from '../../src/gateway';
import { MlflowClient } from '../../src/mlflow';
import { ensurePythonEnv } from '../../src/stack/provision';
import { startMlflowServer } from '../../src/stack/launcher';
import {
  fraudFeatures,
  REFERENCE_HYPERPARAMS,
  registerModelFiles,
  trainedModelFiles,
} from '../gateway/fixtures';

/** Seconds of measured load per variant and round. */
const MEASURE_S = Number(process.env.COST_MEASURE_S ?? 6);
/** Seconds of discarded load before each measurement. */
const WARMUP_S = Number(process.env.COST_WARMUP_S ?? 2);
/** Seconds of discarded load before each later slice (connections of the new slice). */
const SLICE_WARMUP_S = Number(process.env.COST_SLICE_WARMUP_S ?? 1);
/** Interleaved rounds; each variant reports the median and lowest CPU per request. */
const ROUNDS = Number(process.env.COST_ROUNDS ?? 2);
/** COST_WORKERS: serving processes per server (1: no cluster; bench:gateway uses one per core). */
const WORKERS = Number(process.env.COST_WORKERS ?? 1);
/** Keep-alive connections of the load generator. */
const CONNECTIONS = Number(process.env.COST_CONNECTIONS ?? 16);
/** COST_RATE: paced load at this many requests/s instead of saturation (CPU per request at equal load). */
const RATE = process.env.COST_RATE ? Number(process.env.COST_RATE) : undefined;
/** Clock ticks per second of /proc/<pid>/stat times. */
const USER_HZ = 100;
const API_KEY = 'cost-key-0123456789abcdef';
const VARIANTS = ['bare', 'full', 'no-access-log', 'no-inference-log', 'no-redaction', 'none'] as const;
type Variant = (typeof VARIANTS)[number];
/**
 * A variant may name a built gateway after a colon, `full:old`: the entry point in COST_BUNDLE_OLD
 * (an esbuild bundle of workers/gateway.ts, e.g. of another commit), to compare two builds in one run.
 */
const bundleOf = (label: string | undefined): string | undefined =>
  label === undefined ? process.env.COST_GATEWAY_JS : process.env[`COST_BUNDLE_${label.toUpperCase()}`];

/** CPU seconds of a process tree: `main` the processes' main threads, `other` every other thread. */
function treeCpuSeconds(pid: number): { main: number; other: number } {
  const total = { main: 0, other: 0 };
  const ticks = (file: string): number => {
    const stat = readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  };
  const visit = (p: number) => {
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const t = ticks(`/proc/${p}/task/${tid}/stat`);
        if (Number(tid) === p) total.main += t;
        else total.other += t;
      }
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children ? children.split(' ') : []) visit(Number(c));
    } catch {
      // exited meanwhile
    }
  };
  visit(pid);
  return total;
}

const bodies = fraudFeatures(64, 2026).map((features) => JSON.stringify({ features }));

interface Server {
  url: string;
  pid: number;
  close(): Promise<void>;
}

function waitFor(child: ReturnType<typeof spawn>, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        child.stdout?.removeAllListeners('data');
        // COST_SERVER_LOG: the servers' further output (e.g. --trace-gc lines) appended to this file.
        const logFile = process.env.COST_SERVER_LOG;
        if (logFile) child.stdout?.on('data', (d: Buffer) => appendFileSync(logFile, d));
        else child.stdout?.resume();
        child.removeAllListeners('exit');
        resolve(m[1] as string);
      }
    });
  });
}

const closer = (child: ReturnType<typeof spawn>) => () =>
  new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
  });

/** COST_PROFILE_DIR: V8 CPU profiles of the servers; COST_PERF_DIR: `perf record -e cpu-clock` of them. */
const profiling = (): string[] => [
  ...(process.env.COST_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.COST_PROFILE_DIR}`] : []),
  ...(process.env.COST_PERF_DIR ? ['--perf-basic-prof'] : []),
  // COST_NODE_FLAGS: more flags for the servers (e.g. --trace-gc).
  ...(process.env.COST_NODE_FLAGS ? process.env.COST_NODE_FLAGS.split(' ') : []),
];

/** Process ids of a tree (the root and its descendants). */
function treePids(pid: number): number[] {
  const out = [pid];
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const c of children ? children.split(' ') : []) out.push(...treePids(Number(c)));
  } catch {
    // exited
  }
  return out;
}

async function start(
  variant: Variant,
  bundle: string | undefined,
  label: string | undefined,
  dir: string,
  trackingUri: string,
  modelDir: string,
): Promise<Server> {
  if (variant === 'bare') {
    const child = fork(path.join(__dirname, 'gateway-bare.ts'), [], {
      env: { ...process.env, BARE_MODEL_DIR: modelDir, BARE_WORKERS: String(WORKERS) },
      execArgv: ['--import', 'tsx', ...profiling()],
      stdio: [
        'ignore',
        process.env.COST_SERVER_LOG ? openSync(process.env.COST_SERVER_LOG, 'a') : 'ignore',
        'inherit',
        'ipc',
      ],
    });
    const url = await new Promise<string>((resolve) => child.once('message', (u) => resolve(String(u))));
    return { url: `${url}/predict`, pid: child.pid as number, close: closer(child) };
  }
  const off = (what: string) => variant === 'none' || variant === `no-${what}`;
  const config = {
    port: 0,
    workers: WORKERS,
    host: '127.0.0.1',
    mlflowTrackingUri: trackingUri,
    models: [{ name: 'fraud', ood: 'flag' }],
    apiKeys: [{ principal: 'bench', sha256: hashApiKey(API_KEY), roles: ['predict'] }],
    rateLimit: { ratePerSecond: 1e9, burst: 1e9 },
    redaction: !off('redaction'),
    accessLog: off('access-log') ? 'off' : path.join(dir, `access-${variant}.log`),
    ...(off('inference-log') ? {} : { inferenceLogDir: path.join(dir, `inference-${variant}`) }),
  };
  const file = path.join(dir, `${variant}-${label ?? 'src'}.json`);
  writeFileSync(file, JSON.stringify(config));
  // COST_GATEWAY_JS: a built entry point (npm run build:gateway) instead of the sources through tsx.
  const entry = bundle
    ? [
        ...profiling(),
        ...(label ? (process.env[`COST_FLAGS_${label.toUpperCase()}`]?.split(' ') ?? []) : []),
        bundle,
      ]
    : ['--import', 'tsx', ...profiling(), path.join(__dirname, '..', '..', 'workers', 'gateway.ts')];
  const child = spawn(process.execPath, entry, {
    env: { ...process.env, MLOPS_GATEWAY_CONFIG: file },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await waitFor(child, /gateway listening on (\S+)/);
  return { url: `${url}/v1/models/fraud/predict`, pid: child.pid as number, close: closer(child) };
}

async function measure(
  s: Server,
  auth: boolean,
  label: string,
  warmupS: number,
): Promise<{ rps: number; cpuUs: number; mainUs: number; errors: number }> {
  const run = (duration: number) => {
    let i = 0;
    return autocannon({
      url: s.url,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(auth ? { authorization: `Bearer ${API_KEY}` } : {}),
      },
      connections: CONNECTIONS,
      duration,
      ...(RATE ? { overallRate: RATE } : {}),
      requests: [{ setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }) }],
    });
  };
  if (warmupS > 0) await run(warmupS);
  const perfDir = process.env.COST_PERF_DIR;
  const perf = perfDir
    ? spawn(
        'perf',
        [
          'record',
          '-q',
          '-e',
          'cpu-clock',
          '-F',
          '999',
          '-p',
          treePids(s.pid).join(','),
          '-o',
          path.join(perfDir, `${label}.data`),
          '--',
          'sleep',
          String(MEASURE_S),
        ],
        { stdio: 'inherit' },
      )
    : undefined;
  const c0 = treeCpuSeconds(s.pid);
  const r = await run(MEASURE_S);
  const c1 = treeCpuSeconds(s.pid);
  if (perf) await new Promise((r) => (perf.exitCode !== null ? r(undefined) : perf.once('exit', r)));
  const per = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, r.requests.total));
  return {
    rps: Math.round(r.requests.average),
    cpuUs: per(c1.main + c1.other - c0.main - c0.other),
    mainUs: per(c1.main - c0.main),
    errors: r.errors + r.non2xx + r.timeouts,
  };
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [...VARIANTS];
  for (const w of wanted) {
    const [v, label] = w.split(':') as [Variant, string | undefined];
    if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`);
    if (label !== undefined && !bundleOf(label))
      throw new Error(`COST_BUNDLE_${label.toUpperCase()} is not set`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-gateway-cost-'));
  const python = ensurePythonEnv();
  const mlflowServer = await startMlflowServer({ stateDir: path.join(dir, 'mlflow') });
  try {
    const mlflow = new MlflowClient({ trackingUri: mlflowServer.endpoint.trackingUri });
    const files = await trainedModelFiles(mlflow, python, 31, REFERENCE_HYPERPARAMS);
    const { version } = await registerModelFiles(mlflow, 'fraud', files);
    await mlflow.setAlias('fraud', 'champion', version);
    const modelDir = path.join(dir, 'model');
    mkdirSync(modelDir);
    for (const f of files) writeFileSync(path.join(modelDir, path.basename(f.path)), f.content);
    // Every server stays up (an idle one costs nothing); measurements alternate between them in short
    // slices, so load from elsewhere on a shared machine falls on all of them alike.
    const servers = new Map<string, Server>();
    const all = new Map<string, number[]>();
    try {
      for (const w of wanted) {
        const [v, label] = w.split(':') as [Variant, string | undefined];
        servers.set(
          w,
          await start(v, bundleOf(label), label, dir, mlflowServer.endpoint.trackingUri, modelDir),
        );
      }
      for (let round = 1; round <= ROUNDS; round++) {
        for (const w of wanted) {
          const r = await measure(
            servers.get(w) as Server,
            !w.startsWith('bare'),
            `${w.replace(':', '-')}-${round}`,
            round === 1 ? WARMUP_S : SLICE_WARMUP_S,
          );
          console.log(
            `[cost] round ${round} ${w}: ${r.rps} req/s, ${r.cpuUs} CPU-us/request, ${r.mainUs} on main threads (${r.errors} errors)`,
          );
          all.set(w, [...(all.get(w) ?? []), r.cpuUs]);
        }
      }
    } finally {
      for (const server of servers.values()) await server.close();
    }
    // Per variant: the median and the lowest CPU-us per request over the rounds.
    const summary = Object.fromEntries(
      [...all].map(([w, xs]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        return [w, { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], rounds: xs }];
      }),
    );
    console.log(JSON.stringify(summary));
  } finally {
    await mlflowServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`gateway-cost: ${err.stack ?? err.message}`);
  process.exit(1);
});
