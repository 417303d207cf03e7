/**
 * Supervised child processes for the local stack. Each server runs in its own process group, so
 * stopping it also stops whatever it forked (MLflow's uvicorn workers, for instance), and every
 * group still running is killed when this process exits or receives SIGINT / SIGTERM: no orphans.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** How long a server gets to exit after SIGTERM before its group is killed outright. */
export const STOP_GRACE_MS = 5_000;

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Give every server the grace period to shut down cleanly (Temporal closes its SQLite file),
      // then kill what is left; exit with the conventional code for the signal.
      const children = [...live];
      for (const child of children) killGroup(child, 'SIGTERM');
      const exits = children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve();
            else child.once('exit', () => resolve());
          }),
      );
      const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS));
      void Promise.race([Promise.all(exits), grace]).finally(() => {
        for (const child of children) killGroup(child, 'SIGKILL');
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    });
  }
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited; never rejects. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts `cmd` in a new process group with its output appended to `logFile`. */
export function startManaged(
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): ManagedProcess {
  installExitHooks();
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  // The server writes straight to its log file: no pipe through this process, so a busy or blocked
  // event loop here can never stall the server on a full pipe.
  const logFd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
    child.once('error', () => {
      live.delete(child);
      resolve(null);
    });
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const pid = child.pid;
  return {
    name,
    pid,
    logFile: opts.logFile,
    exited,
    async stop() {
      if (!live.has(child)) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
      // Forked children that ignored SIGTERM go with the group.
      killGroup(child, 'SIGKILL');
    },
  };
}

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not allocate a port'));
        return;
      }
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns true, the process exits, or `timeoutMs` passes. */
export async function waitUntilHealthy(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void proc.exited.then((c) => {
    exitCode = c;
  });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(
        `${proc.name} exited with code ${exitCode} before becoming healthy; see ${proc.logFile}`,
      );
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${proc.name} did not become healthy within ${timeoutMs} ms; see ${proc.logFile}`);
}
