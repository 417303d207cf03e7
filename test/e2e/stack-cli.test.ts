/**
 * `npm run stack` as a user runs it: the CLI starts a real Temporal dev server (with its UI) and a
 * real MLflow server on free ports of 127.0.0.1, prints where they are, and on Ctrl-C stops all of
 * it. Ctrl-C in a terminal sends SIGINT to the whole foreground process group (tsx and the node it
 * runs), so the CLI is spawned as the leader of its own group and the group gets the SIGINT. Every
 * process of the stack's tree is recorded from /proc beforehand and must be gone afterwards.
 */
import { Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MLFLOW_WORKERS } from '../../src/stack/launcher';
import { PROJECT_ROOT } from '../../src/stack/paths';

/** Both servers start concurrently; MLflow's first-start migrations dominate. */
const STARTUP_TIMEOUT_MS = 180_000;
/** Ctrl-C must end the CLI promptly: it signals its servers and exits without waiting on them. */
const EXIT_TIMEOUT_MS = 20_000;
/** Killed servers may take a moment to be reaped once their parent has exited. */
const GONE_GRACE_MS = 5_000;

const TSX_CLI = createRequire(path.join(PROJECT_ROOT, 'package.json')).resolve('tsx/cli');
const STACK_CLI = path.join(PROJECT_ROOT, 'src', 'cli', 'stack.ts');

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  /** Clock ticks since boot: with the pid, identifies the process even if the pid is reused. */
  startTime: string;
  cmdline: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after `pid (comm) `; comm may hold spaces or parentheses, so split after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return {
      pid,
      state: f[0] ?? '',
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      startTime: f[19] ?? '',
      cmdline,
    };
  } catch {
    return undefined;
  }
}

/** Every live process whose parent chain leads to `root` (root included). */
function processTree(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => readProc(Number(e)))
    .filter((p): p is ProcInfo => p !== undefined);
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]?.pid ?? -1) ?? []));
  return tree;
}

/** Not gone: the same process (pid and start time, so not a reused pid), running or still a zombie. */
function notGone(p: ProcInfo): ProcInfo | undefined {
  const now = readProc(p.pid);
  return now !== undefined && now.startTime === p.startTime ? now : undefined;
}

function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The errno of `kill(pid, 0)`, or 'alive' when it succeeds. */
function signalZero(pid: number): string {
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function portOf(url: string): number {
  return Number(new URL(url.includes('://') ? url : `tcp://${url}`).port);
}

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-stack-cli-'));
let cli: ChildProcess | undefined;
let recorded: ProcInfo[] = [];

afterAll(() => {
  // Only after a failure is anything left: take down what this test started, by pid.
  const ownGroup = readProc(process.pid)?.pgid;
  if (cli?.pid !== undefined && cli.exitCode === null && cli.signalCode === null) {
    try {
      process.kill(-cli.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const p of recorded) {
    const now = notGone(p);
    if (now === undefined || now.state === 'Z') continue;
    try {
      process.kill(p.pgid !== ownGroup && p.pgid === p.pid ? -p.pid : p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
});

describe.skipIf(!existsSync('/proc/self/stat'))('npm run stack', () => {
  it('starts Temporal and MLflow, prints where they are, and Ctrl-C leaves no process behind', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, MLOPS_STATE_DIR: stateDir };
    delete env.MLFLOW_TRACKING_URI;
    const child = spawn(process.execPath, [TSX_CLI, STACK_CLI], {
      cwd: PROJECT_ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cli = child;
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not start the stack CLI');

    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );

    // The last line the CLI prints once both servers are healthy.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no "Ctrl-C stops everything." within ${STARTUP_TIMEOUT_MS} ms:\n${stdout}${stderr}`),
          ),
        STARTUP_TIMEOUT_MS,
      );
      const check = (): void => {
        if (stdout.includes('Ctrl-C stops everything.')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`stack CLI exited (${code ?? signal}) before it was ready:\n${stdout}${stderr}`));
      });
    });

    const temporalAddress = /^Temporal address : (127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
    const temporalUi = /^Temporal UI {6}: (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
    const mlflowUi = /^MLflow UI {8}: (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
    expect(temporalAddress, stdout).toBeDefined();
    expect(temporalUi, stdout).toBeDefined();
    expect(mlflowUi, stdout).toBeDefined();
    if (!temporalAddress || !temporalUi || !mlflowUi) return;
    const ports = [portOf(temporalAddress), portOf(temporalUi), portOf(mlflowUi)];
    expect(new Set(ports).size).toBe(3);

    // Each answers.
    const health = await fetch(`${mlflowUi}/health`);
    expect(health.status).toBe(200);
    const ui = await fetch(`${temporalUi}/`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    } finally {
      await connection.close();
    }

    // State lives under MLOPS_STATE_DIR.
    expect(existsSync(path.join(stateDir, 'local', 'temporal', 'temporal.sqlite'))).toBe(true);
    expect(existsSync(path.join(stateDir, 'local', 'mlflow', 'mlflow.sqlite'))).toBe(true);

    // The whole tree: tsx, the node it runs, the Temporal dev server, MLflow and its uvicorn workers.
    recorded = processTree(pid);
    const listing = recorded.map((p) => `${p.pid} ${p.cmdline}`).join('\n');
    const temporal = recorded.find(
      (p) => p.cmdline.includes('server start-dev') && p.cmdline.includes(stateDir),
    );
    const mlflow = recorded.find((p) => /\bmlflow server\b/.test(p.cmdline) && p.cmdline.includes(stateDir));
    expect(temporal, listing).toBeDefined();
    expect(mlflow, listing).toBeDefined();
    // MLflow runs in a group of its own, with uvicorn and its workers under it.
    const mlflowGroup = recorded.filter((p) => p.pgid === mlflow?.pid);
    expect(mlflowGroup.length, listing).toBeGreaterThanOrEqual(2 + MLFLOW_WORKERS);
    expect(recorded.length, listing).toBeGreaterThanOrEqual(4 + MLFLOW_WORKERS);

    // Ctrl-C.
    process.kill(-pid, 'SIGINT');
    const exit = await Promise.race([
      exited,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), EXIT_TIMEOUT_MS)),
    ]);
    expect(exit, `stack CLI still running ${EXIT_TIMEOUT_MS} ms after SIGINT`).toBeDefined();
    // The CLI's SIGINT handler exits with 128 + SIGINT, as a shell reports an interrupted command.
    expect(exit?.code ?? exit?.signal, stderr).toBe(130);

    const deadline = Date.now() + GONE_GRACE_MS;
    const survivors = (): string[] =>
      recorded.flatMap((p) => {
        const now = notGone(p);
        return now ? [`${p.pid} [${now.state}] ${p.cmdline}`] : [];
      });
    while (survivors().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(survivors()).toEqual([]);
    for (const p of recorded) expect(signalZero(p.pid), `${p.pid} ${p.cmdline}`).toBe('ESRCH');
    for (const port of ports) expect(await acceptsTcp(port), `port ${port}`).toBe(false);
  });
});
