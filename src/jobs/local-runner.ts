/**
 * Local process runner: the same job contract as Kubernetes Jobs, carried out by child processes
 * on this machine. Each job has a folder `<root>/<name>/` holding `spec.json`, `status.json` and
 * `output.log`, so a retried activity (even from a restarted worker) adopts the job it already
 * started instead of running a second one. A job whose recorded process has vanished without a
 * final status is marked failed ("lost"), as Kubernetes would report a vanished pod.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import {
  assertValidJobName,
  JobOwnershipError,
  JobSpecError,
  OWNER_LABEL,
  type JobRunner,
  type JobSpec,
  type JobStatus,
} from './types';
import { JobReason } from '../core/contracts/jobs';

/** Environment variables a local job inherits from the worker besides its own spec. */
export const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'PYTHONUNBUFFERED'] as const;

interface StatusFile extends JobStatus {
  pid?: number;
  /** When the job's deadline passes: enforced by a timer, and by `status()` after a worker restart. */
  deadlineAt?: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface LocalRunnerOptions {
  /** Folder holding one sub-folder per job. */
  root: string;
  /** Image name (without tag) -> local command line. */
  images: Record<string, string[]>;
  /** Where secretEnv references are resolved: by default the worker's environment, keyed by `key`. */
  secrets?: (ref: { secret: string; key: string }) => string | undefined;
}

export class LocalProcessRunner implements JobRunner {
  readonly kind = 'local';
  private readonly children = new Map<string, Promise<void>>();

  constructor(private readonly opts: LocalRunnerOptions) {}

  private dir(name: string): string {
    return path.join(this.opts.root, name);
  }

  private readStatus(name: string): StatusFile | undefined {
    const f = path.join(this.dir(name), 'status.json');
    if (!existsSync(f)) return undefined;
    return JSON.parse(readFileSync(f, 'utf8')) as StatusFile;
  }

  private writeStatus(name: string, status: StatusFile): void {
    const f = path.join(this.dir(name), 'status.json');
    writeFileSync(`${f}.tmp`, JSON.stringify(status, null, 2));
    // rename is atomic: readers never see a half-written status
    renameSync(`${f}.tmp`, f);
  }

  private command(image: string): string[] {
    const base = image.replace(/[:@].*$/, '');
    const cmd = this.opts.images[base] ?? this.opts.images[image];
    if (!cmd || cmd.length === 0) {
      throw new JobSpecError(
        `the local runner has no command for image "${image}" (known: ${Object.keys(this.opts.images).join(', ') || 'none'})`,
      );
    }
    return cmd;
  }

  async submit(spec: JobSpec): Promise<{ created: boolean; status: JobStatus }> {
    assertValidJobName(spec.name);
    const existing = await this.status(spec.name);
    if (existing) {
      if (existing.labels[OWNER_LABEL] !== spec.labels[OWNER_LABEL]) {
        throw new JobOwnershipError(
          `job ${spec.name} exists but is owned by "${existing.labels[OWNER_LABEL] ?? 'nobody'}", not "${spec.labels[OWNER_LABEL] ?? 'nobody'}"`,
        );
      }
      return { created: false, status: existing };
    }
    const [cmd, ...args] = this.command(spec.image);
    const env: Record<string, string> = {};
    for (const k of INHERITED_ENV) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    Object.assign(env, spec.env, { PYTHONUNBUFFERED: '1' });
    const resolve = this.opts.secrets ?? ((ref) => process.env[ref.key]);
    for (const [envName, ref] of Object.entries(spec.secretEnv ?? {})) {
      const value = resolve(ref);
      if (value !== undefined) env[envName] = value;
    }
    const dir = this.dir(spec.name);
    mkdirSync(dir, { recursive: true });
    // The spec is kept for inspection without secrets: secretEnv holds references only.
    writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec, null, 2));
    const logPath = path.join(dir, 'output.log');
    const fd = openSync(logPath, 'a');
    const child = spawn(cmd as string, args, { env, cwd: dir, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    const startedAt = new Date().toISOString();
    const status: StatusFile = {
      name: spec.name,
      phase: 'running',
      startedAt,
      labels: spec.labels,
      pid: child.pid,
      deadlineAt: spec.activeDeadlineSeconds
        ? new Date(Date.now() + spec.activeDeadlineSeconds * 1000).toISOString()
        : undefined,
    };
    this.writeStatus(spec.name, status);
    let timer: NodeJS.Timeout | undefined;
    let deadlineHit = false;
    if (spec.activeDeadlineSeconds) {
      timer = setTimeout(() => {
        deadlineHit = true;
        if (child.pid) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }, spec.activeDeadlineSeconds * 1000);
      timer.unref();
    }
    const done = new Promise<void>((resolveDone) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (timer) clearTimeout(timer);
        const current = this.readStatus(spec.name);
        if (current && current.phase !== 'running') return resolveDone(); // deleted or finalised
        const ok = code === 0;
        const reason: JobReason = error
          ? JobReason.invalidSpec
          : deadlineHit
            ? JobReason.deadlineExceeded
            : code !== null
              ? JobReason.exitCode
              : JobReason.lost;
        this.writeStatus(spec.name, {
          ...status,
          pid: undefined,
          phase: ok ? 'succeeded' : 'failed',
          reason,
          exitCode: code ?? undefined,
          message: error
            ? `could not start ${cmd}: ${error.message}`
            : ok
              ? 'completed'
              : deadlineHit
                ? `killed at its deadline of ${spec.activeDeadlineSeconds}s`
                : signal
                  ? `killed by ${signal}`
                  : `exited with code ${code}`,
          finishedAt: new Date().toISOString(),
        });
        resolveDone();
      };
      child.once('exit', (code, signal) => finish(code, signal));
      child.once('error', (err) => finish(null, null, err));
    });
    this.children.set(spec.name, done);
    void done.finally(() => this.children.delete(spec.name));
    return { created: true, status: this.stripPid(status) };
  }

  private stripPid(s: StatusFile): JobStatus {
    const { pid: _pid, deadlineAt: _deadline, ...rest } = s;
    return rest;
  }

  async status(name: string): Promise<JobStatus | undefined> {
    const s = this.readStatus(name);
    if (!s) return undefined;
    if (
      s.phase === 'running' &&
      !this.children.has(name) &&
      s.pid !== undefined &&
      isAlive(s.pid) &&
      s.deadlineAt !== undefined &&
      Date.now() > Date.parse(s.deadlineAt)
    ) {
      // A job adopted after a worker restart has no timer here: enforce its deadline now.
      try {
        process.kill(-s.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      const killed: StatusFile = {
        ...s,
        pid: undefined,
        phase: 'failed',
        reason: JobReason.deadlineExceeded,
        message: `killed at its deadline (${s.deadlineAt})`,
        finishedAt: new Date().toISOString(),
      };
      this.writeStatus(name, killed);
      return this.stripPid(killed);
    }
    if (s.phase === 'running' && !this.children.has(name) && (s.pid === undefined || !isAlive(s.pid))) {
      const lost: StatusFile = {
        ...s,
        pid: undefined,
        phase: 'failed',
        reason: JobReason.lost,
        message: 'job process vanished without reporting a result (lost)',
        finishedAt: new Date().toISOString(),
      };
      this.writeStatus(name, lost);
      return this.stripPid(lost);
    }
    return this.stripPid(s);
  }

  async logs(name: string, tailLines: number): Promise<string> {
    const f = path.join(this.dir(name), 'output.log');
    if (!existsSync(f)) return '';
    const handle = await open(f, 'r');
    try {
      const { size } = await handle.stat();
      // Read at most the last 256 KiB: enough for any sensible tail.
      const len = Math.min(size, 256 * 1024);
      const buf = Buffer.alloc(len);
      await handle.read(buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return lines.slice(-tailLines).join('\n');
    } finally {
      await handle.close();
    }
  }

  async delete(name: string): Promise<void> {
    const s = this.readStatus(name);
    if (!s) return;
    if (s.phase === 'running' && s.pid !== undefined && isAlive(s.pid)) {
      this.writeStatus(name, {
        ...s,
        phase: 'failed',
        reason: JobReason.deleted,
        message: 'deleted',
        finishedAt: new Date().toISOString(),
      });
      try {
        process.kill(-s.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await this.children.get(name);
    }
    rmSync(this.dir(name), { recursive: true, force: true });
  }
}
