import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApprovalPolicySchema, SubmitApprovalSchema } from '../../src/core/contracts/approval';
import {
  checkApprovalAttempt,
  createApprovalState,
  parseApprovalAttempt,
} from '../../src/core/policy/approval';
import {
  UsageError,
  buildApprovalRequest,
  formatTemporalCommand,
  parseApproveArgs,
  shellQuote,
} from '../../src/cli/approve';
import { generateApproverKeyPair, verifyApprovalSignature } from '../../src/security/approval-signing';

const ROOT = resolve(__dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'approve-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const keys = generateApproverKeyPair();

describe('parseApproveArgs', () => {
  it('defaults: approve via update, workflow id from the model', () => {
    expect(parseApproveArgs(['--model', 'fraud', '--approver', 'alice'])).toEqual({
      workflowId: 'retrain-fraud',
      approver: 'alice',
      decision: 'approve',
      via: 'update',
      printCommand: false,
      help: false,
    });
  });

  it('reads every option', () => {
    expect(
      parseApproveArgs([
        '--workflow-id',
        'retrain-x',
        '--approver',
        'bob',
        '--reject',
        '--reason',
        'too slow',
        '--version',
        '7',
        '--key-env',
        'BOB_KEY',
        '--via',
        'signal',
        '--profile',
        'prod',
      ]),
    ).toEqual({
      workflowId: 'retrain-x',
      approver: 'bob',
      decision: 'reject',
      reason: 'too slow',
      version: '7',
      key: { env: 'BOB_KEY' },
      via: 'signal',
      profile: 'prod',
      printCommand: false,
      help: false,
    });
    expect(parseApproveArgs(['--model', 'm', '--approver', 'a', '--key-file', '/k']).key).toEqual({
      file: '/k',
    });
    // --print-command prints the signal form unless --via says otherwise.
    expect(parseApproveArgs(['--model', 'm', '--approver', 'a', '--print-command']).via).toBe('signal');
  });

  it.each([
    [['--approver', 'a'], /--model \(or --workflow-id\) is required/],
    [['--model', 'm'], /--approver is required/],
    [['--model', 'm', '--workflow-id', 'w', '--approver', 'a'], /not both/],
    [['--model', 'm', '--approver', 'a', '--reject'], /--reject needs --reason/],
    [['--model', 'm', '--approver', 'a', '--reason', 'x'], /--reason goes with --reject/],
    [
      ['--model', 'm', '--approver', 'a', '--reject', '--reason', 'r', '--comment', 'c'],
      /--comment goes with/,
    ],
    [['--model', 'm', '--approver', 'a', '--key-file', 'f', '--key-env', 'E'], /--key-file or --key-env/],
    [['--model', 'm', '--approver', 'a', '--via', 'email'], /--via must be update or signal/],
    [['--model', 'm', '--approver', 'a', '--bogus'], /bogus/],
  ])('%j -> UsageError', (argv, message) => {
    expect(() => parseApproveArgs(argv)).toThrow(UsageError);
    expect(() => parseApproveArgs(argv)).toThrow(message);
  });
});

describe('buildApprovalRequest', () => {
  const policy = ApprovalPolicySchema.parse({
    requireSignature: true,
    approvers: [{ id: 'alice', roles: ['ml-lead'], publicKey: keys.publicKeyPem }],
  });

  it('builds an unsigned approval', () => {
    const r = buildApprovalRequest({
      workflowId: 'retrain-fraud',
      decision: 'approve',
      approver: 'alice',
      modelVersion: '3',
      comment: 'ship it',
    });
    expect(r.signalName).toBe('approve');
    expect(r.payload).toEqual({ approver: 'alice', modelVersion: '3', comment: 'ship it' });
    expect(r.updateArg).toEqual({
      decision: 'approve',
      approver: 'alice',
      modelVersion: '3',
      comment: 'ship it',
    });
  });

  it('builds a signed approval that the workflow-side policy and the verifier accept', () => {
    const nowIso = '2026-11-26T12:00:00.000Z';
    const r = buildApprovalRequest({
      workflowId: 'retrain-fraud',
      decision: 'approve',
      approver: 'alice',
      modelVersion: '3',
      privateKey: keys.privateKeyPem,
      issuedAt: nowIso,
    });
    const sig = r.payload.signature;
    expect(sig).toMatchObject({ alg: 'ed25519', issuedAt: nowIso });
    if (sig === undefined) return;
    // What the workflow would do with the signal payload:
    const parsed = parseApprovalAttempt('approve', r.payload);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const state = createApprovalState({ modelVersion: '3', initiator: 'dave', policy });
    expect(checkApprovalAttempt({ state, policy, attempt: parsed.attempt, nowIso })).toEqual({
      accepted: true,
      signature: 'pending-verification',
    });
    // What the verification activity would do:
    const fields = {
      workflowId: 'retrain-fraud',
      modelVersion: '3',
      decision: 'approve' as const,
      approver: 'alice',
    };
    expect(verifyApprovalSignature(fields, sig, keys.publicKeyPem)).toBe(true);
    // The signature does not carry over to another workflow or version.
    expect(verifyApprovalSignature({ ...fields, workflowId: 'retrain-other' }, sig, keys.publicKeyPem)).toBe(
      false,
    );
    expect(verifyApprovalSignature({ ...fields, modelVersion: '4' }, sig, keys.publicKeyPem)).toBe(false);
    expect(SubmitApprovalSchema.parse(r.updateArg)).toEqual({ decision: 'approve', ...r.payload });
  });

  it('builds a signed rejection', () => {
    const r = buildApprovalRequest({
      workflowId: 'retrain-fraud',
      decision: 'reject',
      approver: 'alice',
      modelVersion: '3',
      reason: 'drift in segment B',
      privateKey: keys.privateKeyPem,
    });
    expect(r.signalName).toBe('reject');
    expect(r.payload).toMatchObject({ approver: 'alice', reason: 'drift in segment B', modelVersion: '3' });
    const fields = {
      workflowId: 'retrain-fraud',
      modelVersion: '3',
      decision: 'reject' as const,
      approver: 'alice',
    };
    expect(
      verifyApprovalSignature(
        fields,
        r.payload.signature ?? { alg: 'ed25519', issuedAt: '', value: '' },
        keys.publicKeyPem,
      ),
    ).toBe(true);
    expect(
      verifyApprovalSignature(
        { ...fields, decision: 'approve' },
        r.payload.signature ?? { alg: 'ed25519', issuedAt: '', value: '' },
        keys.publicKeyPem,
      ),
    ).toBe(false);
  });

  it('refuses to sign without a version and names bad fields', () => {
    expect(() =>
      buildApprovalRequest({
        workflowId: 'retrain-fraud',
        decision: 'approve',
        approver: 'alice',
        privateKey: keys.privateKeyPem,
      }),
    ).toThrow(/signing needs the model version/);
    expect(() =>
      buildApprovalRequest({ workflowId: 'w', decision: 'approve', approver: 'alice smith' }),
    ).toThrow(/^approve payload: approver: may contain only/);
    expect(() =>
      buildApprovalRequest({ workflowId: 'w', decision: 'reject', approver: 'alice', reason: ' ' }),
    ).toThrow(/^reject payload: reason: must not be empty/);
  });
});

describe('formatTemporalCommand', () => {
  it('prints a shell-safe signal command whose --input round-trips through the shell', () => {
    const r = buildApprovalRequest({
      workflowId: 'retrain-fraud',
      decision: 'approve',
      approver: 'alice',
      modelVersion: '3',
      comment: `it's "fine" $(rm -rf /) \`x\``,
    });
    const cmd = formatTemporalCommand(r, 'retrain-fraud', 'signal');
    expect(
      cmd.startsWith('temporal workflow signal --workflow-id retrain-fraud --name approve --input '),
    ).toBe(true);
    // Let a real shell parse it: replace the program with printf to see the --input argument.
    const out = spawnSync('bash', ['-c', `set -- ${cmd.slice('temporal '.length)}; printf %s "$8"`], {
      encoding: 'utf8',
    });
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(r.payload);
  });

  it('prints the update form with the decision', () => {
    const r = buildApprovalRequest({ workflowId: 'w', decision: 'reject', approver: 'bob', reason: 'no' });
    expect(formatTemporalCommand(r, 'retrain-fraud', 'update')).toBe(
      `temporal workflow update execute --workflow-id retrain-fraud --name submitApproval --input ` +
        `'{"approver":"bob","reason":"no","decision":"reject"}'`,
    );
  });

  it('shellQuote leaves safe words alone', () => {
    expect(shellQuote('retrain-fraud')).toBe('retrain-fraud');
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('approve CLI process', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['src/cli/approve.ts', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });

  it('--print-command signs with a key file and prints a command, without connecting', () => {
    const keyFile = join(tmp, 'alice.key');
    writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });
    const r = run([
      '--model',
      'fraud',
      '--approver',
      'alice',
      '--version',
      '3',
      '--key-file',
      keyFile,
      '--print-command',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = /--input '(.*)'\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    const payload = JSON.parse(m?.[1] ?? '{}') as {
      signature: { alg: 'ed25519'; issuedAt: string; value: string };
    };
    const fields = {
      workflowId: 'retrain-fraud',
      modelVersion: '3',
      decision: 'approve' as const,
      approver: 'alice',
    };
    expect(verifyApprovalSignature(fields, payload.signature, keys.publicKeyPem)).toBe(true);
    expect(r.stdout).not.toContain('PRIVATE KEY');
  }, 30_000);

  it('exits 2 with usage for bad arguments and for a missing key variable', () => {
    const bad = run(['--model', 'fraud']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--approver is required\nusage: approve/);
    const noKey = run(
      ['--model', 'fraud', '--approver', 'alice', '--key-env', 'NO_SUCH_VAR_X', '--print-command'],
      {
        NO_SUCH_VAR_X: '',
      },
    );
    expect(noKey.status).toBe(2);
    expect(noKey.stderr).toMatch(/environment variable NO_SUCH_VAR_X is not set/);
  }, 30_000);
});
