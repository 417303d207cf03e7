import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApprovalPolicySchema } from '../../src/core/contracts/approval';
import {
  APPROVAL_SIGNATURE_CONTEXT,
  ApprovalSigningError,
  canonicalApprovalPayload,
  generateApproverKeyPair,
  loadPrivateKey,
  publicKeyFingerprint,
  rawPublicKeyBase64,
  signApproval,
  verifyApprovalSignature,
} from '../../src/security/approval-signing';
import type { ApprovalSignedFields } from '../../src/security/approval-signing';
import { writeApproverKeyPair } from '../../src/cli/approver-keys';

const alice = generateApproverKeyPair();
const mallory = generateApproverKeyPair();
const issuedAt = '2026-11-26T12:00:00.000Z';
const fields: ApprovalSignedFields = {
  workflowId: 'retrain-fraud',
  modelVersion: '3',
  decision: 'approve',
  approver: 'alice',
  issuedAt,
};
const tmp = mkdtempSync(join(tmpdir(), 'approval-signing-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('canonicalApprovalPayload', () => {
  it('is RFC 8785 canonical JSON with the context tag, independent of key order', () => {
    const reordered = {
      issuedAt,
      approver: 'alice',
      decision: 'approve',
      modelVersion: '3',
      workflowId: 'retrain-fraud',
    } as const;
    const a = canonicalApprovalPayload(fields);
    expect(canonicalApprovalPayload(reordered)).toBe(a);
    expect(a).toBe(
      `{"approver":"alice","context":"${APPROVAL_SIGNATURE_CONTEXT}","decision":"approve",` +
        `"issuedAt":"${issuedAt}","modelVersion":"3","workflowId":"retrain-fraud"}`,
    );
  });

  it('throws a field-naming error for programmer errors', () => {
    expect(() => canonicalApprovalPayload({ ...fields, decision: 'maybe' as 'approve' })).toThrow(
      /approval signature fields: decision: /,
    );
    expect(() => canonicalApprovalPayload({ ...fields, issuedAt: 'now' })).toThrow(ApprovalSigningError);
  });
});

describe('sign / verify', () => {
  const sig = signApproval(fields, alice.privateKeyPem);

  it('round trip with PEM and raw base64 public keys', () => {
    expect(sig.alg).toBe('ed25519');
    expect(sig.issuedAt).toBe(issuedAt);
    expect(Buffer.from(sig.value, 'base64')).toHaveLength(64);
    expect(sig.keyId).toBe(publicKeyFingerprint(createPublicKey(alice.publicKeyPem)));
    expect(verifyApprovalSignature(fields, sig, alice.publicKeyPem)).toBe(true);
    const raw = rawPublicKeyBase64(createPublicKey(alice.publicKeyPem));
    expect(Buffer.from(raw, 'base64')).toHaveLength(32);
    expect(verifyApprovalSignature(fields, sig, raw)).toBe(true);
    // The fields may omit issuedAt: it is taken from the signature.
    const { issuedAt: _ignored, ...withoutIssuedAt } = fields;
    expect(verifyApprovalSignature(withoutIssuedAt, sig, alice.publicKeyPem)).toBe(true);
  });

  it('signs with a KeyObject and defaults issuedAt to now', () => {
    const before = Date.now();
    const { issuedAt: _i, ...rest } = fields;
    const s = signApproval(rest, createPrivateKey(alice.privateKeyPem), { keyId: 'alice-2026' });
    expect(s.keyId).toBe('alice-2026');
    expect(Date.parse(s.issuedAt)).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(s.issuedAt)).toBeLessThanOrEqual(Date.now() + 1);
    expect(verifyApprovalSignature(rest, s, alice.publicKeyPem)).toBe(true);
  });

  it.each([
    ['modelVersion', { modelVersion: '4' }],
    ['decision', { decision: 'reject' as const }],
    ['approver', { approver: 'bob' }],
    ['workflowId', { workflowId: 'retrain-other' }],
  ])('a tampered %s fails', (_name, change) => {
    expect(
      verifyApprovalSignature({ ...fields, ...change, issuedAt: undefined }, sig, alice.publicKeyPem),
    ).toBe(false);
  });

  it('a tampered issuedAt fails (in the signature or disagreeing with the fields)', () => {
    expect(
      verifyApprovalSignature(fields, { ...sig, issuedAt: '2026-11-26T12:00:01.000Z' }, alice.publicKeyPem),
    ).toBe(false);
    expect(
      verifyApprovalSignature({ ...fields, issuedAt: '2026-11-26T12:00:01.000Z' }, sig, alice.publicKeyPem),
    ).toBe(false);
  });

  it('a flipped signature bit fails', () => {
    const bytes = Buffer.from(sig.value, 'base64');
    bytes[10] = (bytes[10] ?? 0) ^ 0x01;
    expect(
      verifyApprovalSignature(fields, { ...sig, value: bytes.toString('base64') }, alice.publicKeyPem),
    ).toBe(false);
  });

  it('the wrong key fails', () => {
    expect(verifyApprovalSignature(fields, sig, mallory.publicKeyPem)).toBe(false);
    const forged = signApproval(fields, mallory.privateKeyPem);
    expect(verifyApprovalSignature(fields, forged, alice.publicKeyPem)).toBe(false);
  });

  it.each([
    ['garbage base64 value', { value: '!!!not-base64!!!' }, undefined],
    ['short signature', { value: Buffer.alloc(10).toString('base64') }, undefined],
    ['empty signature', { value: '' }, undefined],
    ['wrong algorithm', { alg: 'rsa' as 'ed25519' }, undefined],
    ['unparsable issuedAt', { issuedAt: 'yesterday' }, undefined],
    ['malformed PEM', {}, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
    ['raw key of wrong length', {}, Buffer.alloc(31).toString('base64')],
    ['not a key at all', {}, 'hello'],
    ['a private key registered as public', {}, alice.privateKeyPem],
    [
      'an RSA public key',
      {},
      generateKeyPairSync('rsa', { modulusLength: 1024 })
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString(),
    ],
  ])('%s -> false, no throw', (_name, sigChange, key) => {
    const s = { ...sig, ...sigChange };
    expect(verifyApprovalSignature({ ...fields, issuedAt: undefined }, s, key ?? alice.publicKeyPem)).toBe(
      false,
    );
  });

  it('refuses to sign with a non-Ed25519 or unreadable key, without quoting it', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(() => signApproval(fields, rsa)).toThrow(/must be an Ed25519 private key/);
    expect(() => signApproval(fields, 'SECRET-MATERIAL')).toThrow(/^private key is not a readable PEM/);
    try {
      signApproval(fields, 'SECRET-MATERIAL');
    } catch (err) {
      expect((err as Error).message).not.toContain('SECRET-MATERIAL');
    }
  });

  it('generated public keys pass the policy schema in both forms', () => {
    const raw = rawPublicKeyBase64(createPublicKey(alice.publicKeyPem));
    const p = ApprovalPolicySchema.parse({
      requireSignature: true,
      approvers: [
        { id: 'alice', publicKey: alice.publicKeyPem },
        { id: 'bob', publicKey: raw },
      ],
    });
    expect(p.approvers[1]?.publicKey).toBe(raw);
  });
});

describe('loadPrivateKey', () => {
  it('loads from a file and from an env var (also with escaped newlines)', () => {
    const file = join(tmp, 'alice.key');
    writeFileSync(file, alice.privateKeyPem, { mode: 0o600 });
    const fromFile = loadPrivateKey({ file });
    expect(fromFile.asymmetricKeyType).toBe('ed25519');
    const s = signApproval(fields, fromFile);
    expect(verifyApprovalSignature(fields, s, alice.publicKeyPem)).toBe(true);

    const env = { APPROVER_KEY: alice.privateKeyPem, ONE_LINE: alice.privateKeyPem.replace(/\n/g, '\\n') };
    for (const name of ['APPROVER_KEY', 'ONE_LINE']) {
      const k = loadPrivateKey({ env: name }, env);
      expect(verifyApprovalSignature(fields, signApproval(fields, k), alice.publicKeyPem)).toBe(true);
    }
  });

  it('names the source, never the content, on failure', () => {
    expect(() => loadPrivateKey({ env: 'NOPE' }, {})).toThrow('environment variable NOPE is not set');
    expect(() => loadPrivateKey({ file: join(tmp, 'missing.key') })).toThrow(
      /cannot read key file .*missing\.key \(ENOENT\)/,
    );
    const bad = join(tmp, 'bad.key');
    writeFileSync(bad, 'TOP-SECRET-BYTES');
    try {
      loadPrivateKey({ file: bad });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/key file .*bad\.key: private key is not a readable PEM/);
      expect((err as Error).message).not.toContain('TOP-SECRET');
    }
    const pub = join(tmp, 'pub.key');
    writeFileSync(pub, alice.publicKeyPem);
    expect(() => loadPrivateKey({ file: pub })).toThrow(ApprovalSigningError);
  });
});

describe('approver-keys', () => {
  it('writes a 0600 private key and a matching public key, and never overwrites silently', () => {
    const dir = join(tmp, 'keys');
    const k = writeApproverKeyPair(dir, 'alice');
    expect(statSync(k.privateKeyPath).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const priv = loadPrivateKey({ file: k.privateKeyPath });
    const s = signApproval(fields, priv);
    expect(verifyApprovalSignature(fields, s, readFileSync(k.publicKeyPath, 'utf8'))).toBe(true);
    expect(verifyApprovalSignature(fields, s, k.publicKeyRaw)).toBe(true);
    expect(() => writeApproverKeyPair(dir, 'alice')).toThrow(/already exists/);
    chmodSync(k.privateKeyPath, 0o644);
    const again = writeApproverKeyPair(dir, 'alice', true);
    expect(statSync(again.privateKeyPath).mode & 0o777).toBe(0o600);
    expect(again.publicKeyRaw).not.toBe(k.publicKeyRaw);
  });

  it('refuses approver ids that could escape the folder', () => {
    expect(() => writeApproverKeyPair(join(tmp, 'keys2'), '../evil')).toThrow(/approver: .*may contain only/);
  });
});
