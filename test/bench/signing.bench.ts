/**
 * `npm run bench:signing`: signing and verifying a model folder of at least 2 GB in several files,
 * this project's signer against OpenSSF `model_signing` (reference venv `signing`), in one run, on
 * the same folder, with the same EC P-256 key.
 *
 * - Ours: `signModelFolder` / `verifyModelFolder` (parallel sha256 on worker threads, one per core,
 *   8 MiB reads; verification is the envelope through @sigstore/verify plus every digest recomputed).
 * - model_signing: `model_signing sign key` / `verify key` as a user runs them (CLI, interpreter
 *   start included: about a second, stated in the output as `model_signing_startup_s`).
 * - ROUNDS interleaved rounds after one warm-up read (so both sides read from the page cache); the
 *   best wall time of each is kept, since neighbours on a shared machine only ever slow a round.
 * - Each side verifies the other's bundle once too (interop at size).
 * - CPU seconds of each side too (ours: the whole process, hash workers included; model_signing:
 *   the CLI child's user + system time, read with bash's `times`), with the best round's GB per
 *   CPU-second: on a shared machine neighbours stretch wall time but hardly the work done.
 * - The JSON also carries one thread's in-memory sha256 speed and the load average: on a shared
 *   machine they say how far from its ceiling a figure is.
 *
 * The generated folder is removed at the end, also on failure. The last line is one JSON object.
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { digestFolder } from '../../src/security/model-hashing';
import {
  createKeySigner,
  createKeyVerifier,
  generateSigningKeyPair,
  signModelFolder,
  verifyModelFolder,
} from '../../src/security/model-signing';
import { ensureReferenceEnv } from '../../src/stack/provision';

const run = promisify(execFile);

/** Total bytes of the generated model: at least the 2 GB the issue asks for. */
const TOTAL_BYTES = Number(process.env.BENCH_SIGNING_BYTES ?? 2_200_000_000);
/** Files the model is split into (weights shards plus small metadata files). */
const SHARDS = Number(process.env.BENCH_SIGNING_SHARDS ?? 8);
/** Interleaved rounds; each side keeps its best. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Block written repeatedly (with a varying prefix) to fill the shards quickly. */
const BLOCK_BYTES = 64 * 1024 * 1024;
/** Longest one model_signing call may take. */
const CHILD_TIMEOUT_MS = 600_000;

const GB = 1e9;
/** Bytes hashed in memory once to measure one thread's sha256 speed (the ceiling per core). */
const PROBE_BYTES = 256 * 1024 * 1024;

function generate(dir: string): number {
  mkdirSync(path.join(dir, 'weights'), { recursive: true });
  const block = randomBytes(BLOCK_BYTES);
  const per = Math.ceil(TOTAL_BYTES / SHARDS);
  let total = 0;
  for (let i = 0; i < SHARDS; i++) {
    const fd = openSync(path.join(dir, 'weights', `shard-${String(i).padStart(3, '0')}.bin`), 'w');
    let left = per;
    let n = 0;
    while (left > 0) {
      block.writeUInt32LE(i * 1_000_003 + n++, 0);
      const len = Math.min(left, block.length);
      writeSync(fd, block, 0, len);
      left -= len;
    }
    closeSync(fd);
    total += per;
  }
  const meta = { name: 'bench', shards: SHARDS };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(meta));
  writeFileSync(path.join(dir, 'input_schema.json'), '{"features":[]}');
  return total + Buffer.byteLength(JSON.stringify(meta)) + 15;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; cpu: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, value };
}

/** Children's user + system seconds from bash's `times` (its second line: `0m1.234s 0m0.056s`). */
function childCpuSeconds(stdout: string): number {
  const lines = stdout.trim().split('\n');
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1] ?? '');
  if (!m) throw new Error(`no CPU times in model_signing output: ${stdout.slice(-200)}`);
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

async function main(): Promise<void> {
  const python = ensureReferenceEnv('signing');
  const cli = path.join(path.dirname(python), 'model_signing');
  const work = mkdtempSync(path.join(os.tmpdir(), 'mlops-bench-signing-'));
  try {
    const model = path.join(work, 'model');
    const bytes = generate(model);
    const keys = generateSigningKeyPair();
    const keyFile = path.join(work, 'key.pem');
    const pubFile = path.join(work, 'pub.pem');
    writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });
    writeFileSync(pubFile, keys.publicKeyPem);
    const signer = createKeySigner(async () => keys.privateKeyPem);
    const verifier = createKeyVerifier([keys.publicKeyPem]);
    const oursSig = path.join(work, 'ours.sig');
    const theirsSig = path.join(work, 'theirs.sig');
    const ms = (args: string[]) => run(cli, args, { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 24 });
    // The same call under bash, which prints the child's CPU times after it (`times`).
    const msTimed = (args: string[]) =>
      run('bash', ['-c', '"$0" "$@" >&2 && times', cli, ...args], {
        timeout: CHILD_TIMEOUT_MS,
        maxBuffer: 1 << 24,
      });

    await digestFolder(model); // warm-up: the page cache holds the folder for both sides alike
    const startup = await timed(() => run(python, ['-c', 'import model_signing']));
    const best = { oursSign: Infinity, oursVerify: Infinity, msSign: Infinity, msVerify: Infinity };
    const cpu = { oursSign: Infinity, oursVerify: Infinity, msSign: Infinity, msVerify: Infinity };
    for (let r = 0; r < ROUNDS; r++) {
      const s = await timed(() => signModelFolder(model, signer, { name: 'model' }));
      writeFileSync(oursSig, JSON.stringify(s.value.bundle));
      best.oursSign = Math.min(best.oursSign, s.s);
      cpu.oursSign = Math.min(cpu.oursSign, s.cpu);
      const m = await timed(() =>
        msTimed(['sign', 'key', model, '--private_key', keyFile, '--signature', theirsSig]),
      );
      best.msSign = Math.min(best.msSign, m.s);
      const mCpu = childCpuSeconds(m.value.stdout);
      cpu.msSign = Math.min(cpu.msSign, mCpu);
      const v = await timed(() => verifyModelFolder(model, readFileSync(oursSig, 'utf8'), verifier));
      best.oursVerify = Math.min(best.oursVerify, v.s);
      cpu.oursVerify = Math.min(cpu.oursVerify, v.cpu);
      const mv = await timed(() =>
        msTimed(['verify', 'key', model, '--signature', theirsSig, '--public_key', pubFile]),
      );
      if (!/Verification succeeded/.test(mv.value.stderr))
        throw new Error(`model_signing did not verify its own bundle: ${mv.value.stderr.slice(-500)}`);
      best.msVerify = Math.min(best.msVerify, mv.s);
      const mvCpu = childCpuSeconds(mv.value.stdout);
      cpu.msVerify = Math.min(cpu.msVerify, mvCpu);
      console.log(
        `round ${r + 1} (load ${os.loadavg()[0]!.toFixed(1)}): ours sign ${s.s.toFixed(2)} s (${s.cpu.toFixed(2)} s CPU), verify ${v.s.toFixed(2)} s (${v.cpu.toFixed(2)} s CPU); model_signing sign ${m.s.toFixed(2)} s (${mCpu.toFixed(2)} s CPU), verify ${mv.s.toFixed(2)} s (${mvCpu.toFixed(2)} s CPU)`,
      );
    }
    // Interop at size: each side accepts the other's bundle.
    const cross = await ms(['verify', 'key', model, '--signature', oursSig, '--public_key', pubFile]);
    const crossOk = /Verification succeeded/.test(cross.stdout + cross.stderr);
    await verifyModelFolder(model, readFileSync(theirsSig, 'utf8'), verifier);

    // The ceiling on this machine now: one thread's sha256 over memory, times the cores, and the load.
    const probe = Buffer.alloc(PROBE_BYTES, 1);
    const p0 = process.hrtime.bigint();
    createHash('sha256').update(probe).digest();
    const coreGbps = PROBE_BYTES / GB / (Number(process.hrtime.bigint() - p0) / 1e9);
    const gbps = (s: number) => Number((bytes / GB / s).toFixed(3));
    const result = {
      bytes,
      files: SHARDS + 2,
      cores: os.availableParallelism(),
      rounds: ROUNDS,
      ours_sign_s: Number(best.oursSign.toFixed(3)),
      ours_verify_s: Number(best.oursVerify.toFixed(3)),
      model_signing_sign_s: Number(best.msSign.toFixed(3)),
      model_signing_verify_s: Number(best.msVerify.toFixed(3)),
      model_signing_startup_s: Number(startup.s.toFixed(3)),
      ours_sign_gbps: gbps(best.oursSign),
      ours_verify_gbps: gbps(best.oursVerify),
      model_signing_sign_gbps: gbps(best.msSign),
      model_signing_verify_gbps: gbps(best.msVerify),
      ours_verify_cpu_s: Number(cpu.oursVerify.toFixed(3)),
      model_signing_verify_cpu_s: Number(cpu.msVerify.toFixed(3)),
      ours_sign_cpu_s: Number(cpu.oursSign.toFixed(3)),
      model_signing_sign_cpu_s: Number(cpu.msSign.toFixed(3)),
      ours_verify_gb_per_cpu_s: gbps(cpu.oursVerify),
      model_signing_verify_gb_per_cpu_s: gbps(cpu.msVerify),
      sha256_one_thread_gbps: Number(coreGbps.toFixed(3)),
      load_average_1m: Number(os.loadavg()[0]?.toFixed(2)),
      verify_speedup: Number((best.msVerify / best.oursVerify).toFixed(2)),
      model_signing_accepts_ours: crossOk,
      ours_accepts_model_signing: true,
    };
    console.log(JSON.stringify(result));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
