/**
 * Prometheus for the canary tests' KPI source: Debian's `prometheus` package, installed with apt-get
 * when it is missing and this runs as root (as CI does; measured cold: about 18 s with the
 * `apt-get update`), or, where apt is impossible and Go is there, the pinned
 * `github.com/prometheus/prometheus` module built once under `nice` into the per-user cache keyed
 * by version. Started on a free 127.0.0.1 port with a throw-away TSDB, scraping the given targets
 * every second, in its own process group, by the same process helpers as the rest of the stack.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TOOLS_DIR } from './paths';
import { buildIntoPlace, MissingPrerequisiteError, run, which, type Logger } from './provision';
import { freePort, startManaged, waitUntilHealthy, type ManagedProcess } from './process';

/** The Debian package providing the server. */
export const PROMETHEUS_PACKAGE = 'prometheus';
/** The Go module and version built when apt is impossible (the module tags v0.x of release 2.x). */
export const PROMETHEUS_MODULE = 'github.com/prometheus/prometheus/cmd/prometheus';
export const PROMETHEUS_MODULE_VERSION = 'v0.54.1';
/** The built server: `<tools>/prometheus-<version>/prometheus`. */
export const PROMETHEUS_BUILD_BIN = path.join(
  TOOLS_DIR,
  `prometheus-${PROMETHEUS_MODULE_VERSION}`,
  'prometheus',
);
/** How long a fresh Prometheus may take to answer /-/ready. */
export const PROMETHEUS_START_TIMEOUT_MS = 30_000;
/** Scrape and evaluation interval of the test Prometheus: a KPI snapshot lags at most this. */
export const PROMETHEUS_SCRAPE_INTERVAL = '1s';

const defaultLog: Logger = (line) => console.log(`[provision] ${line}`);

function aptInstall(log: Logger): string | undefined {
  const apt = which('apt-get');
  if (!apt || process.getuid?.() !== 0) return undefined;
  log('installing prometheus with apt-get (first run only, about 20 s)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', PROMETHEUS_PACKAGE],
  ]) {
    const r = spawnSync(apt, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) return undefined;
  }
  return which('prometheus');
}

function goBuild(log: Logger): string | undefined {
  const go = which('go');
  if (!go) return undefined;
  const dir = path.dirname(PROMETHEUS_BUILD_BIN);
  log(`building Prometheus ${PROMETHEUS_MODULE_VERSION} with go install into ${dir} (first run only)`);
  buildIntoPlace(
    dir,
    () => existsSync(PROMETHEUS_BUILD_BIN),
    (tmp) =>
      run(
        'nice',
        ['-n', '10', go, 'install', `${PROMETHEUS_MODULE}@${PROMETHEUS_MODULE_VERSION}`],
        { ...process.env, CGO_ENABLED: '0', GOBIN: tmp, GOFLAGS: '-buildvcs=false' },
        'go install of Prometheus',
      ),
    log,
  );
  return PROMETHEUS_BUILD_BIN;
}

/**
 * The prometheus binary: `$PROMETHEUS_BIN`, else on PATH, else the cached Go build, else installed
 * with apt-get (root only), else built from the Go module.
 */
export function ensurePrometheus(log: Logger = defaultLog): string {
  const fromEnv = process.env.PROMETHEUS_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new MissingPrerequisiteError(`PROMETHEUS_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = which('prometheus') ?? (existsSync(PROMETHEUS_BUILD_BIN) ? PROMETHEUS_BUILD_BIN : undefined);
  if (found) return found;
  const installed = aptInstall(log) ?? goBuild(log);
  if (!installed) {
    throw new MissingPrerequisiteError(
      'prometheus is required for the KPI-source tests: install it (`apt-get install prometheus`), install Go to build it, or set PROMETHEUS_BIN',
    );
  }
  return installed;
}

export interface RunningPrometheus {
  url: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Starts Prometheus scraping `targets` (`host:port`, path /metrics) every second. */
export async function startPrometheus(opts: {
  stateDir: string;
  targets: readonly string[];
  binary?: string;
}): Promise<RunningPrometheus> {
  const binary = opts.binary ?? ensurePrometheus();
  mkdirSync(opts.stateDir, { recursive: true });
  const config = path.join(opts.stateDir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${PROMETHEUS_SCRAPE_INTERVAL}`,
      `  evaluation_interval: ${PROMETHEUS_SCRAPE_INTERVAL}`,
      'scrape_configs:',
      '  - job_name: gateway',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${opts.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startManaged(
    'prometheus',
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(opts.stateDir, 'tsdb')}`,
      '--storage.tsdb.retention.time=2h',
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { logFile: path.join(opts.stateDir, 'prometheus.log') },
  );
  await waitUntilHealthy(proc, () => ready(url), PROMETHEUS_START_TIMEOUT_MS);
  return { url, port, process: proc, stop: () => proc.stop() };
}
