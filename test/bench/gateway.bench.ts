/**
 * `npm run bench:gateway`: the gateway with every protection on against a bare onnxruntime-node HTTP
 * server, in one run, on the same model (the reference trainer's with its default hyperparameters, as
 * the demo trains it, served from a real MLflow started here), the same load generators and the same core count (one worker per core for both).
 *
 * - Throughput at saturation (best of ROUNDS interleaved rounds, each starting with the next server): autocannon, CONNECTIONS keep-alive connections for SATURATION_S seconds
 *   (after a WARMUP_S warm-up), for the bare server, the gateway, the gateway with redaction off, and
 *   the gateway with batching off (`maxBatch: 1`, one inference call per request as the bare server
 *   makes them; `gateway_unbatched_rps`), which shows what the protections cost apart from what
 *   batching saves.
 * - Latency at half the bare server's saturation load: a paced open-schedule generator (each request
 *   timed with performance.now(), microsecond resolution; autocannon's histogram has whole
 *   milliseconds), p50 and p99, for the bare server and the gateway.
 *
 * "Every protection on" is: API-key auth, rate limiting (memory buckets in the cluster primary; a
 * limit high enough not to refuse), feature-spec validation, OOD screening, PII redaction, pino access
 * log to a file, inference log, metrics, KPI window; inference batching is on, as by default
 * (src/gateway/batching.ts). The last line printed is one JSON object.
 */
import autocannon from 'autocannon';
import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { coreCount, hashApiKey } from '../../src/gateway';
import { MlflowClient } from '../../src/mlflow';
import { ensurePythonEnv } from '../../src/stack/provision';
import { startMlflowServer } from '../../src/stack/launcher';
import {
  fraudFeatures,
  REFERENCE_HYPERPARAMS,
  registerModelFiles,
  trainedModelFiles,
} from '../gateway/fixtures';

/** Seconds of load per saturation measurement. */
const SATURATION_S = Number(process.env.BENCH_SATURATION_S ?? 8);
/** Seconds of discarded load before each measurement (JIT, connection setup). */
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);
/** Seconds per latency measurement. */
const LATENCY_S = Number(process.env.BENCH_LATENCY_S ?? 8);
/** Interleaved measurement rounds; each server keeps its best. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** Keep-alive connections of the load generators. */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** Distinct feature vectors cycled through, so no cache can help either server. */
const DISTINCT_BODIES = 64;
/** Bench targets from the issue. */
const TARGET_THROUGHPUT_RATIO = 0.85;
const TARGET_ADDED_P50_MS = 1;
const TARGET_ADDED_P99_MS = 3;
const TARGET_REDACTION_COST = 0.2;

const API_KEY = 'bench-key-0123456789abcdef';

interface Target {
  url: string;
  headers: Record<string, string>;
  /** Root of the server's process tree, for CPU accounting. */
  pid?: number;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) used so far by a process and all its descendants (Linux /proc). */
function treeCpuSeconds(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / USER_HZ;
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children ? children.split(' ') : []) visit(Number(c));
    } catch {
      // a process that exited meanwhile
    }
  };
  visit(pid);
  return total;
}

const bodies = fraudFeatures(DISTINCT_BODIES, 2026).map((features) => JSON.stringify({ features }));

async function saturate(t: Target): Promise<{ rps: number; errors: number; cpuUsPerRequest?: number }> {
  const run = (duration: number) => {
    let i = 0;
    return autocannon({
      url: t.url,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...t.headers },
      connections: CONNECTIONS,
      duration,
      requests: [{ setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }) }],
    });
  };
  await run(WARMUP_S);
  const cpu0 = t.pid ? treeCpuSeconds(t.pid) : 0;
  const r = await run(SATURATION_S);
  const cpu = t.pid ? treeCpuSeconds(t.pid) - cpu0 : 0;
  return {
    rps: Math.round(r.requests.average),
    errors: r.errors + r.non2xx + r.timeouts,
    cpuUsPerRequest: t.pid && r.requests.total > 0 ? Math.round((cpu * 1e6) / r.requests.total) : undefined,
  };
}

/** Paced load at `rate` requests/s over CONNECTIONS lanes; latency of each request from its send. */
async function paced(
  t: Target,
  rate: number,
  seconds: number,
): Promise<{ p50: number; p99: number; errors: number; sent: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const url = new URL(t.url);
  const send = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...t.headers,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now() + 50;
  const lane = async (k: number) => {
    for (let i = k; i < total; i += CONNECTIONS) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t0 = performance.now();
      const status = await send(bodies[i % bodies.length] as string).catch(() => 0);
      const ms = performance.now() - t0;
      if (status === 200) latencies.push(ms);
      else errors++;
    }
  };
  // Warm-up at the same rate, discarded.
  await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, k) => (k < 4 ? send(bodies[k] as string) : undefined)),
  );
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, k) => lane(k)));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), errors, sent: total };
}

function startBare(
  modelDir: string,
  workers: number,
): Promise<{ url: string; pid: number; close(): Promise<void> }> {
  const child = fork(path.join(__dirname, 'gateway-bare.ts'), [], {
    env: { ...process.env, BARE_MODEL_DIR: modelDir, BARE_WORKERS: String(workers) },
    execArgv: ['--import', 'tsx', ...profiling()],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
    child.once('message', (url) =>
      resolve({
        url: `${String(url)}/predict`,
        pid: child.pid as number,
        close: () =>
          new Promise((r) => {
            child.removeAllListeners('exit');
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      }),
    );
  });
}

/**
 * Starts the gateway through its own entry point (`workers/gateway.ts`, as `npm run gateway` does) in a
 * process tree of its own, like the bare server: the bench's load generator shares no event loop with it.
 */
function startGatewayProcessTree(
  config: unknown,
  file: string,
): Promise<{ url: string; pid: number; close(): Promise<void> }> {
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ...profiling(), path.join(__dirname, '..', '..', 'workers', 'gateway.ts')],
    {
      env: { ...process.env, MLOPS_GATEWAY_CONFIG: file },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${out}`)));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /gateway listening on (\S+)/.exec(out);
      if (m) {
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({
          url: m[1] as string,
          pid: child.pid as number,
          close: () =>
            new Promise((r) => {
              child.removeAllListeners('exit');
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
  });
}

/** BENCH_PROFILE_DIR: write V8 CPU profiles of every server process there (for finding hot spots). */
const profiling = (): string[] =>
  process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];

const round = (x: number, d = 3): number => Number(x.toFixed(d));

async function main(): Promise<void> {
  const workers = Number(process.env.BENCH_WORKERS ?? coreCount());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-bench-gateway-'));
  console.log(`[bench] ${workers} worker(s) per server, ${CONNECTIONS} connections, state in ${dir}`);
  const python = ensurePythonEnv();
  const mlflowServer = await startMlflowServer({ stateDir: path.join(dir, 'mlflow') });
  const servers: Array<{ close(): Promise<void> }> = [];
  try {
    const mlflow = new MlflowClient({ trackingUri: mlflowServer.endpoint.trackingUri });
    const files = await trainedModelFiles(mlflow, python, 31, REFERENCE_HYPERPARAMS);
    const model = 'fraud';
    const { version } = await registerModelFiles(mlflow, model, files);
    await mlflow.setAlias(model, 'champion', version);
    const modelDir = path.join(dir, 'model');
    mkdirSync(modelDir);
    for (const f of files) writeFileSync(path.join(modelDir, path.basename(f.path)), f.content);

    const gatewayOptions = (redaction: boolean, maxBatch?: number) => ({
      port: 0,
      workers,
      mlflowTrackingUri: mlflowServer.endpoint.trackingUri,
      models: [{ name: model, ood: 'flag' as const }],
      apiKeys: [{ principal: 'bench', sha256: hashApiKey(API_KEY), roles: ['predict' as const] }],
      rateLimit: { ratePerSecond: 1e9, burst: 1e9 },
      redaction,
      ...(maxBatch !== undefined ? { maxBatch } : {}),
      host: '127.0.0.1',
      accessLog: path.join(dir, `access-${redaction ? 'on' : 'off'}-${maxBatch ?? 'default'}.log`),
      inferenceLogDir: path.join(dir, `inference-${redaction ? 'on' : 'off'}-${maxBatch ?? 'default'}`),
    });
    const auth = { authorization: `Bearer ${API_KEY}` };

    // All three servers stay up (an idle one costs nothing) and are measured in interleaved rounds; each
    // keeps its best round, so a burst of load from elsewhere on a shared machine hurts no one server alone.
    const bare = await startBare(modelDir, workers);
    const on = await startGatewayProcessTree(gatewayOptions(true), path.join(dir, 'gateway-on.json'));
    const off = await startGatewayProcessTree(gatewayOptions(false), path.join(dir, 'gateway-off.json'));
    // The same gateway with one inference call per request, as the bare server makes them: what the
    // protections cost apart from what batching saves.
    const unbatched = await startGatewayProcessTree(
      gatewayOptions(true, 1),
      path.join(dir, 'gateway-unbatched.json'),
    );
    servers.push(bare, on, off, unbatched);
    const targets = {
      bare: { url: bare.url, headers: {}, pid: bare.pid },
      gateway: { url: `${on.url}/v1/models/${model}/predict`, headers: auth, pid: on.pid },
      redaction_off: { url: `${off.url}/v1/models/${model}/predict`, headers: auth, pid: off.pid },
      unbatched: { url: `${unbatched.url}/v1/models/${model}/predict`, headers: auth, pid: unbatched.pid },
    };
    type Sat = Awaited<ReturnType<typeof saturate>>;
    const best: Record<keyof typeof targets, Sat | undefined> = {
      bare: undefined,
      gateway: undefined,
      redaction_off: undefined,
      unbatched: undefined,
    };
    const names = Object.keys(targets) as Array<keyof typeof targets>;
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round starts with the next server, so none is always measured right after the same one.
      const order = names.map((_, i) => names[(i + round - 1) % names.length] as keyof typeof targets);
      for (const name of order) {
        const r = await saturate(targets[name]);
        console.log(
          `[bench] round ${round} ${name} saturation: ${r.rps} req/s, ${r.cpuUsPerRequest} CPU-us/request (${r.errors} errors)`,
        );
        if (!best[name] || r.rps > (best[name] as Sat).rps) best[name] = r;
      }
    }
    const bareSat = best.bare as Sat;
    const gwSat = best.gateway as Sat;
    const offSat = best.redaction_off as Sat;
    const unbatchedSat = best.unbatched as Sat;

    const rate = Math.max(1, Math.round(bareSat.rps / 2));
    type Lat = Awaited<ReturnType<typeof paced>>;
    let bareLat: Lat | undefined;
    let gwLat: Lat | undefined;
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which server goes first, as in the saturation rounds.
      const measureLatency = async (name: 'bare' | 'gateway'): Promise<Lat> => {
        const r = await paced(targets[name], rate, LATENCY_S);
        console.log(
          `[bench] round ${round} ${name} at ${rate} req/s: p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms (${r.errors} errors)`,
        );
        return r;
      };
      let b: Lat;
      let g: Lat;
      if (round % 2 === 1) {
        b = await measureLatency('bare');
        g = await measureLatency('gateway');
      } else {
        g = await measureLatency('gateway');
        b = await measureLatency('bare');
      }
      if (!bareLat || b.p50 + b.p99 < bareLat.p50 + bareLat.p99) bareLat = b;
      if (!gwLat || g.p50 + g.p99 < gwLat.p50 + gwLat.p99) gwLat = g;
    }
    bareLat = bareLat as Lat;
    gwLat = gwLat as Lat;

    const ratio = gwSat.rps / bareSat.rps;
    const addedP50 = gwLat.p50 - bareLat.p50;
    const addedP99 = gwLat.p99 - bareLat.p99;
    const redactionCost = 1 - gwSat.rps / offSat.rps;
    const result = {
      workers,
      connections: CONNECTIONS,
      half_load_rps: rate,
      bare_rps: bareSat.rps,
      gateway_rps: gwSat.rps,
      redaction_off_rps: offSat.rps,
      gateway_unbatched_rps: unbatchedSat.rps,
      bare_p50_ms: round(bareLat.p50),
      gateway_p50_ms: round(gwLat.p50),
      bare_p99_ms: round(bareLat.p99),
      gateway_p99_ms: round(gwLat.p99),
      throughput_ratio: round(ratio),
      added_p50_ms: round(addedP50),
      added_p99_ms: round(addedP99),
      redaction_cost: round(redactionCost),
      unbatched_throughput_ratio: round(unbatchedSat.rps / bareSat.rps),
      bare_cpu_us_per_request: bareSat.cpuUsPerRequest,
      gateway_cpu_us_per_request: gwSat.cpuUsPerRequest,
      redaction_off_cpu_us_per_request: offSat.cpuUsPerRequest,
      unbatched_cpu_us_per_request: unbatchedSat.cpuUsPerRequest,
      errors:
        bareSat.errors + gwSat.errors + offSat.errors + unbatchedSat.errors + bareLat.errors + gwLat.errors,
      targets_met: {
        throughput: ratio >= TARGET_THROUGHPUT_RATIO,
        p50: addedP50 <= TARGET_ADDED_P50_MS,
        p99: addedP99 <= TARGET_ADDED_P99_MS,
        redaction: redactionCost <= TARGET_REDACTION_COST,
      },
    };
    console.log(JSON.stringify(result));
  } finally {
    for (const server of servers) await server.close();
    await mlflowServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench:gateway: ${err.stack ?? err.message}`);
  process.exit(1);
});
