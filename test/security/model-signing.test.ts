/**
 * Model signing against OpenSSF model signing itself: `model_signing verify key` (PyPI
 * model-signing, reference venv deploy/stack/reference/signing.txt) accepts the bundles this project
 * writes, and this project accepts the bundles `model_signing sign key` writes. Then every tamper
 * case is refused with its own code, by us and (where it applies) by model_signing too.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureReferenceEnv } from '../../src/stack/provision';
import { digestFolder } from '../../src/security/model-hashing';
import {
  ModelSignatureCode,
  ModelSignatureError,
  createKeySigner,
  createKeyVerifier,
  generateSigningKeyPair,
  signModelFiles,
  signModelFolder,
  verifyModelFiles,
  verifyModelFolder,
} from '../../src/security/model-signing';

const run = promisify(execFile);
let work: string;
let cli: string;
const keys = generateSigningKeyPair();
const other = generateSigningKeyPair();
const signer = createKeySigner(async () => keys.privateKeyPem);
const verifier = createKeyVerifier([keys.publicKeyPem]);

/** A small model folder: an ONNX-named blob, metadata, a nested file, a file above the inline-hash size. */
function makeModel(dir: string): void {
  mkdirSync(path.join(dir, 'meta'), { recursive: true });
  writeFileSync(path.join(dir, 'model.onnx'), Buffer.alloc(3 * 1024 * 1024, 7));
  writeFileSync(path.join(dir, 'input_schema.json'), '{"features":["amount"]}\n');
  writeFileSync(path.join(dir, 'meta', 'card.md'), '# card\n');
}

async function msVerify(dir: string, sig: string, pub: string): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run(cli, ['verify', 'key', dir, '--signature', sig, '--public_key', pub]);
    return { ok: true, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function refusal(p: Promise<unknown>): Promise<ModelSignatureError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelSignatureError);
  return err as ModelSignatureError;
}

beforeAll(() => {
  cli = path.join(path.dirname(ensureReferenceEnv('signing')), 'model_signing');
  work = mkdtempSync(path.join(tmpdir(), 'mlops-signing-'));
  writeFileSync(path.join(work, 'pub.pem'), keys.publicKeyPem);
  writeFileSync(path.join(work, 'key.pem'), keys.privateKeyPem);
  writeFileSync(path.join(work, 'other-pub.pem'), other.publicKeyPem);
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('interop with model_signing (key mode)', () => {
  it('model_signing verify key accepts our bundle, and refuses it under another key', async () => {
    const dir = path.join(work, 'ours');
    makeModel(dir);
    const { bundle, statement } = await signModelFolder(dir, signer, { name: 'fraud/v1' });
    expect(statement.predicateType).toBe('https://model_signing/signature/v1.0');
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    const sig = path.join(work, 'ours.sig');
    writeFileSync(sig, JSON.stringify(bundle));
    const ok = await msVerify(dir, sig, path.join(work, 'pub.pem'));
    expect(ok.out).toContain('Verification succeeded');
    expect(ok.ok).toBe(true);
    const wrong = await msVerify(dir, sig, path.join(work, 'other-pub.pem'));
    expect(wrong.ok).toBe(false);
    writeFileSync(path.join(dir, 'model.onnx'), Buffer.alloc(3 * 1024 * 1024, 8));
    const tampered = await msVerify(dir, sig, path.join(work, 'pub.pem'));
    expect(tampered.ok).toBe(false);
  });

  it('we accept a bundle model_signing sign key wrote, and refuse it after a changed byte', async () => {
    const dir = path.join(work, 'theirs');
    makeModel(dir);
    const sig = path.join(work, 'theirs.sig');
    await run(cli, ['sign', 'key', dir, '--private_key', path.join(work, 'key.pem'), '--signature', sig]);
    const ok = await verifyModelFolder(dir, readFileSync(sig, 'utf8'), verifier, { expectedName: 'theirs' });
    expect(ok.files).toBe(3);
    expect(ok.signer.kind).toBe('key');
    const bytes = readFileSync(path.join(dir, 'input_schema.json'));
    bytes.writeUInt8(bytes.readUInt8(2) ^ 1, 2);
    writeFileSync(path.join(dir, 'input_schema.json'), bytes);
    const err = await refusal(verifyModelFolder(dir, readFileSync(sig, 'utf8'), verifier));
    expect(err.code).toBe(ModelSignatureCode.mismatch);
    expect(err.problems[0]).toMatch(/^input_schema.json: changed/);
  });

  it('hashes like model_signing: its digests equal ours on the same folder', async () => {
    const dir = path.join(work, 'digests');
    makeModel(dir);
    const sig = path.join(work, 'digests.sig');
    await run(cli, ['sign', 'key', dir, '--private_key', path.join(work, 'key.pem'), '--signature', sig]);
    const payload = JSON.parse(
      Buffer.from(JSON.parse(readFileSync(sig, 'utf8')).dsseEnvelope.payload, 'base64').toString(),
    ) as { predicate: { resources: Array<{ name: string; digest: string }> } };
    const ours = await digestFolder(dir, { threads: 2 });
    expect(payload.predicate.resources.map((r) => [r.name, r.digest])).toEqual(
      ours.map((d) => [d.path, d.sha256]),
    );
  });
});

describe('every tamper case is refused with its own code', () => {
  const files = () => [
    { path: 'model.onnx', content: Buffer.from('onnx-bytes') },
    { path: 'input_schema.json', content: Buffer.from('{}') },
  ];
  const signed = () => signModelFiles(files(), signer, { name: 'fraud/v2' });

  it('accepts the untouched files', async () => {
    const { bundle } = await signed();
    const r = await verifyModelFiles(files(), bundle, verifier, { expectedName: 'fraud/v2' });
    expect(r.files).toBe(2);
  });

  it.each([
    [
      'a changed byte',
      (f: ReturnType<typeof files>) => [{ ...f[0]!, content: Buffer.from('onnx-bytez') }, f[1]!],
      /model.onnx: changed/,
    ],
    [
      'an added file',
      (f: ReturnType<typeof files>) => [...f, { path: 'extra.bin', content: Buffer.from('x') }],
      /extra.bin: added/,
    ],
    ['a removed file', (f: ReturnType<typeof files>) => [f[0]!], /input_schema.json: removed/],
    [
      'a renamed file',
      (f: ReturnType<typeof files>) => [f[0]!, { ...f[1]!, path: 'schema.json' }],
      /input_schema.json: renamed to schema.json/,
    ],
  ])('%s: mismatch', async (_name, mutate, problem) => {
    const { bundle } = await signed();
    const err = await refusal(
      verifyModelFiles(mutate(files()), bundle, verifier, { expectedName: 'fraud/v2' }),
    );
    expect(err.code).toBe(ModelSignatureCode.mismatch);
    expect(err.problems.join('\n')).toMatch(problem);
  });

  it("another model's or an older version's signature: wrong-subject", async () => {
    const { bundle } = await signed();
    const err = await refusal(verifyModelFiles(files(), bundle, verifier, { expectedName: 'fraud/v3' }));
    expect(err.code).toBe(ModelSignatureCode.wrongSubject);
  });

  it('an unknown key: untrusted-key', async () => {
    const stranger = createKeySigner(async () => other.privateKeyPem);
    const { bundle } = await signModelFiles(files(), stranger, { name: 'fraud/v2' });
    const err = await refusal(verifyModelFiles(files(), bundle, verifier));
    expect(err.code).toBe(ModelSignatureCode.untrustedKey);
  });

  it('a trusted hint over a forged signature: bad-signature', async () => {
    const { bundle } = await signed();
    const stranger = createKeySigner(async () => other.privateKeyPem);
    const forged = (await signModelFiles(files(), stranger, { name: 'fraud/v2' })).bundle;
    const env = forged.dsseEnvelope as { signatures: Array<{ sig: string }> };
    const mixed = {
      ...bundle,
      dsseEnvelope: { ...(bundle.dsseEnvelope as object), signatures: env.signatures },
    };
    const err = await refusal(verifyModelFiles(files(), mixed, verifier));
    expect(err.code).toBe(ModelSignatureCode.badSignature);
  });

  it('a payload swapped under a valid signature: bad-signature', async () => {
    const { bundle } = await signed();
    const other2 = (await signModelFiles([files()[0]!], signer, { name: 'fraud/v2' })).bundle;
    const env = bundle.dsseEnvelope as Record<string, unknown>;
    const swapped = {
      ...bundle,
      dsseEnvelope: { ...env, payload: (other2.dsseEnvelope as { payload: string }).payload },
    };
    const err = await refusal(verifyModelFiles([files()[0]!], swapped, verifier));
    expect(err.code).toBe(ModelSignatureCode.badSignature);
  });

  it('garbage and other media types: malformed', async () => {
    expect((await refusal(verifyModelFiles(files(), 'not json', verifier))).code).toBe(
      ModelSignatureCode.malformed,
    );
    const { bundle } = await signed();
    const old = { ...bundle, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1' };
    expect((await refusal(verifyModelFiles(files(), old, verifier))).code).toBe(ModelSignatureCode.malformed);
  });

  it('a symlink in a folder is refused before hashing', async () => {
    const dir = path.join(work, 'link');
    makeModel(dir);
    const { bundle } = await signModelFolder(dir, signer, { name: 'link' });
    cpSync(path.join(dir, 'input_schema.json'), path.join(work, 'outside.json'));
    renameSync(path.join(dir, 'input_schema.json'), path.join(work, 'moved.json'));
    const { symlinkSync } = await import('node:fs');
    symlinkSync(path.join(work, 'outside.json'), path.join(dir, 'input_schema.json'));
    await expect(verifyModelFolder(dir, bundle, verifier)).rejects.toThrow(/symlinks are not allowed/);
  });
});
