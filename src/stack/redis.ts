/**
 * Redis for the gateway's shared rate limits: Debian's `redis-server`, installed with apt-get when it
 * is missing and this runs as root (as CI does), and started on a free 127.0.0.1 port with no
 * persistence, in its own process group, by the same process helpers as the rest of the stack.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { MissingPrerequisiteError, type Logger } from './provision';
import { freePort, startManaged, waitUntilHealthy, type ManagedProcess } from './process';

/** The Debian package providing the server. */
export const REDIS_PACKAGE = 'redis-server';
/** How long a fresh Redis may take to answer PING. */
export const REDIS_START_TIMEOUT_MS = 20_000;

const defaultLog: Logger = (line) => console.log(`[provision] ${line}`);

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = r.stdout?.trim();
  return r.status === 0 && out ? out : undefined;
}

/** The redis-server binary: `$REDIS_SERVER`, else on PATH, else installed with apt-get (root only). */
export function ensureRedisServer(log: Logger = defaultLog): string {
  const fromEnv = process.env.REDIS_SERVER;
  if (fromEnv) return fromEnv;
  const found = which('redis-server');
  if (found) return found;
  const apt = which('apt-get');
  if (!apt || process.getuid?.() !== 0) {
    throw new MissingPrerequisiteError(
      'redis-server is required for the gateway tests: install it (`apt-get install redis-server`) or set REDIS_SERVER',
    );
  }
  log('installing redis-server with apt-get (first run only)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', REDIS_PACKAGE],
  ]) {
    const r = spawnSync(apt, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0)
      throw new MissingPrerequisiteError(`apt-get ${args.join(' ')} failed: install redis-server by hand`);
  }
  const installed = which('redis-server');
  if (!installed)
    throw new MissingPrerequisiteError('redis-server is still not on PATH after apt-get install');
  return installed;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(1000);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      s.destroy();
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

export interface RunningRedis {
  url: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export async function startRedis(opts: { stateDir: string; binary?: string }): Promise<RunningRedis> {
  const binary = opts.binary ?? ensureRedisServer();
  const port = await freePort();
  const proc = startManaged(
    'redis',
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      opts.stateDir,
      '--protected-mode',
      'yes',
    ],
    { logFile: path.join(opts.stateDir, 'redis.log') },
  );
  await waitUntilHealthy(proc, () => ping(port), REDIS_START_TIMEOUT_MS);
  return { url: `redis://127.0.0.1:${port}`, port, process: proc, stop: () => proc.stop() };
}
