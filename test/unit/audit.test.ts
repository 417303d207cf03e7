import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import canonicalize from 'canonicalize';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuditEventConflictError,
  AuditEventInvalidError,
  AuditLogCorruptError,
  JsonlAuditSink,
  verifyAuditLog,
} from '../../src/audit';
import { acquireFileLock } from '../../src/audit/lock';
import { AUDIT_GENESIS_HASH, auditEventId } from '../../src/core/contracts/audit';
import type { AuditEventInput } from '../../src/core/contracts/audit';

const ROOT = resolve(__dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'audit-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(tmp, `log-${++n}`, 'audit.jsonl');

function event(seq: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    eventId: auditEventId('retrain-fraud', seq),
    type: 'approval.attempt',
    workflowId: 'retrain-fraud',
    model: 'fraud',
    modelVersion: '3',
    actor: 'alice',
    at: `2026-11-26T12:00:${String(seq % 60).padStart(2, '0')}.000Z`,
    details: {
      accepted: seq % 2 === 0,
      reason: `reason number ${seq}`,
      nested: { list: [1, 2.5, 'x'], n: null },
    },
    ...over,
  };
}

async function writeLog(count: number): Promise<string> {
  const path = freshPath();
  const sink = new JsonlAuditSink(path);
  for (let i = 1; i <= count; i++) await sink.append(event(i));
  return path;
}

const readLines = (path: string) => readFileSync(path, 'utf8').split('\n').slice(0, -1);
const writeLines = (path: string, lines: string[]) =>
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));

describe('JsonlAuditSink', () => {
  it('appends a hash chain that verifies', async () => {
    const path = freshPath();
    const sink = new JsonlAuditSink(path);
    const a = await sink.append(event(1));
    const b = await sink.append(event(2, { type: 'gate.verdict', actor: undefined }));
    expect(a.seq).toBe(1);
    expect(a.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(b.seq).toBe(2);
    expect(b.prevHash).toBe(a.hash);
    // The hash is sha256 of the canonical JSON of the entry without `hash`.
    const { hash, ...rest } = a;
    expect(hash).toBe(
      createHash('sha256')
        .update(canonicalize(rest) ?? '')
        .digest('hex'),
    );
    // Each line is the canonical JSON of the whole entry.
    expect(readLines(path)).toEqual([canonicalize(a), canonicalize(b)]);
    expect(await sink.verify()).toEqual({ ok: true, entries: 2, head: { seq: 2, hash: b.hash } });
    const read = [];
    for await (const e of sink.entries()) read.push(e);
    expect(read).toEqual([a, b]);
  });

  it('is idempotent by eventId and refuses the same id with different content', async () => {
    const path = freshPath();
    const sink = new JsonlAuditSink(path);
    const first = await sink.append(event(1));
    await sink.append(event(2));
    const bytes = readFileSync(path);
    // A retry (another sink instance, as after a worker restart) gets the existing entry back.
    expect(await new JsonlAuditSink(path).append(event(1))).toEqual(first);
    expect(await sink.append(event(1))).toEqual(first);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    await expect(sink.append(event(1, { details: { accepted: false } }))).rejects.toThrow(
      AuditEventConflictError,
    );
    await expect(sink.append(event(1, { details: { accepted: false } }))).rejects.toThrow(
      /already recorded on line 1/,
    );
    expect(readFileSync(path).equals(bytes)).toBe(true);
    // Undefined details are dropped as JSON would, so a retry through Temporal's payload converter matches.
    const withUndefined = await sink.append(event(3, { details: { a: 1, b: undefined } }));
    expect(withUndefined.details).toEqual({ a: 1 });
    expect(await sink.append(event(3, { details: { a: 1 } }))).toEqual(withUndefined);
  });

  it('validates events and names the bad field', async () => {
    const sink = new JsonlAuditSink(freshPath());
    await expect(sink.append(event(1, { details: { score: Number.NaN } }))).rejects.toThrow(
      AuditEventInvalidError,
    );
    await expect(sink.append(event(1, { at: 'yesterday' }))).rejects.toThrow(/audit event: at: /);
    await expect(sink.append(event(1, { type: 'Gate Verdict' }))).rejects.toThrow(
      /audit event: type: must be dotted/,
    );
    await expect(sink.append({ ...event(1), extra: 1 } as AuditEventInput)).rejects.toThrow(
      /Unrecognized key/,
    );
  });

  it('concurrent appends (Promise.all of 50) give a gap-free chain', async () => {
    const path = freshPath();
    const sink = new JsonlAuditSink(path);
    const other = new JsonlAuditSink(path); // a second sink on the same file (serialised by the lock file)
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? sink : other).append(event(i + 1))),
    );
    expect(results.map((r) => r.seq).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    const result = await verifyAuditLog(path);
    expect(result.ok).toBe(true);
    expect(result.entries).toBe(50);
    expect(new Set(readLines(path).map((l) => (JSON.parse(l) as { eventId: string }).eventId)).size).toBe(50);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('several processes appending at once give a gap-free chain', async () => {
    const path = freshPath();
    const script = join(tmp, 'append-worker.ts');
    writeFileSync(
      script,
      `import { JsonlAuditSink } from ${JSON.stringify(join(ROOT, 'src/audit'))};
const [path, who] = process.argv.slice(2);
const sink = new JsonlAuditSink(path);
(async () => {
  for (let i = 0; i < 20; i++) {
    await sink.append({ eventId: who + '/' + i, type: 'test.append', workflowId: who, model: 'm',
      at: '2026-11-26T12:00:00.000Z', details: { i } });
  }
})().catch((err) => { console.error(err); process.exit(1); });
`,
    );
    const tsx = join(ROOT, 'node_modules/.bin/tsx');
    const codes = await Promise.all(
      ['p1', 'p2', 'p3', 'p4'].map(
        (who) =>
          new Promise<number | null>((done) => {
            const child = spawn(tsx, [script, path, who], { cwd: ROOT, stdio: 'inherit' });
            child.on('exit', (code) => done(code));
          }),
      ),
    );
    expect(codes).toEqual([0, 0, 0, 0]);
    const result = await verifyAuditLog(path);
    expect(result).toMatchObject({ ok: true, entries: 80 });
  }, 60_000);

  it('reclaims a stale lock file left by a crashed process', async () => {
    const path = freshPath();
    const sink = new JsonlAuditSink(path, { lock: { staleMs: 1_000, acquireTimeoutMs: 5_000 } });
    await sink.append(event(1));
    writeFileSync(`${path}.lock`, 'dead process\n');
    const old = new Date(Date.now() - 10_000);
    utimesSync(`${path}.lock`, old, old);
    await expect(sink.append(event(2))).resolves.toMatchObject({ seq: 2 });
  });

  it('waits for a live lock and gives up after the acquire timeout', async () => {
    const lock = join(tmp, 'held.lock');
    writeFileSync(lock, 'another live holder\n');
    const started = Date.now();
    await expect(acquireFileLock(lock, { acquireTimeoutMs: 300 })).rejects.toThrow(
      /could not acquire .*held\.lock/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(readFileSync(lock, 'utf8')).toBe('another live holder\n');
  });

  it('refuses to append to a log that does not verify (fail closed)', async () => {
    const path = await writeLog(3);
    const lines = readLines(path);
    writeLines(path, [
      lines[0] ?? '',
      (lines[1] ?? '').replace('reason number 2', 'reason number X'),
      lines[2] ?? '',
    ]);
    const before = readFileSync(path);
    const sink = new JsonlAuditSink(path);
    await expect(sink.append(event(4))).rejects.toThrow(AuditLogCorruptError);
    await expect(sink.append(event(4))).rejects.toThrow(
      /broken at line 2 \(seq 2, .*hash mismatch.*; refusing to append$/,
    );
    expect(readFileSync(path).equals(before)).toBe(true);
    // A partial last line left by a crash also stops appends.
    const partial = await writeLog(2);
    writeFileSync(partial, readFileSync(partial).subarray(0, -10));
    await expect(new JsonlAuditSink(partial).append(event(3))).rejects.toThrow(/line 2 .*incomplete/);
  });
});

describe('verifyAuditLog: tampering', () => {
  it('editing any single byte of an entry names that line', async () => {
    const path = await writeLog(5);
    const original = readFileSync(path);
    const lines = readLines(path);
    const start = Buffer.byteLength(`${lines[0]}\n${lines[1]}\n`);
    const length = Buffer.byteLength(lines[2] ?? '');
    const copy = join(tmp, 'one-byte.jsonl');
    for (let i = start; i < start + length; i++) {
      const bytes = Buffer.from(original);
      bytes[i] = (bytes[i] ?? 0) ^ 0x01;
      writeFileSync(copy, bytes);
      const r = await verifyAuditLog(copy);
      expect(r.ok, `byte ${i - start} of line 3`).toBe(false);
      expect(r.firstBroken?.line, `byte ${i - start} of line 3`).toBe(3);
      expect(r.entries).toBe(2);
    }
  });

  it('a flipped character in a details value is a hash mismatch on that line', async () => {
    const path = await writeLog(5);
    const lines = readLines(path);
    lines[3] = (lines[3] ?? '').replace('reason number 4', 'reason number 5');
    writeLines(path, lines);
    expect(await verifyAuditLog(path)).toEqual({
      ok: false,
      entries: 3,
      head: expect.objectContaining({ seq: 3 }) as unknown,
      firstBroken: {
        line: 4,
        seq: 4,
        eventId: 'retrain-fraud/4',
        reason: 'hash mismatch: content does not match its hash',
      },
    });
  });

  it('re-hashing an edited entry still breaks the link of the next line', async () => {
    const path = await writeLog(4);
    const lines = readLines(path);
    const entry = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
    entry.details = { accepted: true, forged: true };
    const { hash: _h, ...rest } = entry;
    entry.hash = createHash('sha256')
      .update(canonicalize(rest) ?? '')
      .digest('hex');
    lines[1] = canonicalize(entry) ?? '';
    writeLines(path, lines);
    const r = await verifyAuditLog(path);
    expect(r.firstBroken).toMatchObject({
      line: 3,
      seq: 3,
      reason: expect.stringMatching(/^prevHash mismatch/),
    });
  });

  it('deleting a line is a seq gap at that position', async () => {
    const path = await writeLog(5);
    const lines = readLines(path);
    lines.splice(2, 1);
    writeLines(path, lines);
    const r = await verifyAuditLog(path);
    expect(r.firstBroken).toEqual({
      line: 3,
      seq: 4,
      eventId: 'retrain-fraud/4',
      reason: 'seq gap: expected seq 3, found 4',
    });
  });

  it('swapping two lines is detected', async () => {
    const path = await writeLog(5);
    const lines = readLines(path);
    [lines[1], lines[3]] = [lines[3] ?? '', lines[1] ?? ''];
    writeLines(path, lines);
    const r = await verifyAuditLog(path);
    expect(r.ok).toBe(false);
    expect(r.firstBroken).toMatchObject({ line: 2, seq: 4, reason: 'seq gap: expected seq 2, found 4' });
  });

  it('a truncated last line (interrupted write) is detected', async () => {
    const path = await writeLog(3);
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, full.length - 40));
    const r = await verifyAuditLog(path);
    expect(r.firstBroken).toMatchObject({
      line: 3,
      reason: expect.stringMatching(/^unparsable line: last line is incomplete/),
    });
    expect(r.entries).toBe(2);
    // Only the final newline missing is still an incomplete write.
    writeFileSync(path, full.subarray(0, full.length - 1));
    expect((await verifyAuditLog(path)).firstBroken).toMatchObject({ line: 3, seq: 3 });
  });

  it('an inserted blank or garbage line is unparsable', async () => {
    const path = await writeLog(3);
    const lines = readLines(path);
    writeLines(path, [lines[0] ?? '', 'not json', lines[1] ?? '']);
    expect((await verifyAuditLog(path)).firstBroken).toEqual({
      line: 2,
      reason: 'unparsable line: not valid JSON',
    });
    writeLines(path, [lines[0] ?? '', '', lines[1] ?? '']);
    expect((await verifyAuditLog(path)).firstBroken).toEqual({
      line: 2,
      reason: 'unparsable line: empty line',
    });
  });

  it('a re-encoded line with the same JSON meaning is detected', async () => {
    const path = await writeLog(3);
    const lines = readLines(path);
    lines[1] = (lines[1] ?? '').replace('"model":"fraud"', '"model": "fraud"');
    writeLines(path, lines);
    expect((await verifyAuditLog(path)).firstBroken).toMatchObject({
      line: 2,
      reason: 'hash mismatch: line is not in canonical form (edited?)',
    });
  });

  it('cutting entries off the end is only detectable with an anchor', async () => {
    const path = await writeLog(4);
    const head = (await verifyAuditLog(path)).head;
    expect(head?.seq).toBe(4);
    writeLines(path, readLines(path).slice(0, 3));
    expect((await verifyAuditLog(path)).ok).toBe(true);
    const r = await verifyAuditLog(path, { anchor: head as { seq: number; hash: string } });
    expect(r.ok).toBe(false);
    expect(r.firstBroken?.reason).toMatch(/anchor names seq 4 \(truncated\?\)/);
  });

  it('a missing file is an empty, valid log', async () => {
    expect(await verifyAuditLog(join(tmp, 'nothing-here.jsonl'))).toEqual({ ok: true, entries: 0 });
  });
});

describe('audit-verify CLI', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync('npx', ['tsx', 'src/cli/audit-verify.ts', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, MLOPS_AUDIT_LOG: '', ...env },
    });

  it('prints OK and exits 0 for an intact log, BROKEN and 1 for a tampered one', async () => {
    const path = await writeLog(5);
    const ok = run([path]);
    expect(ok.stdout.trim()).toBe('audit log OK: 5 entries');
    expect(ok.status).toBe(0);

    const lines = readLines(path);
    lines[2] = (lines[2] ?? '').replace('reason number 3', 'reason number 8');
    writeLines(path, lines);
    const broken = run([path]);
    expect(broken.stdout.trim()).toBe(
      'audit log BROKEN at line 3 (seq 3, event retrain-fraud/3): hash mismatch: content does not match its hash',
    );
    expect(broken.status).toBe(1);

    // Default path from MLOPS_AUDIT_LOG.
    const viaEnv = run([], { MLOPS_AUDIT_LOG: path });
    expect(viaEnv.status).toBe(1);
    expect(viaEnv.stdout).toMatch(/^audit log BROKEN at line 3 /);
  }, 60_000);

  it('exits 2 for a missing file', () => {
    const r = run([join(tmp, 'absent.jsonl')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/audit log not found: .*absent\.jsonl/);
  }, 30_000);
});
