/**
 * The development secret stores on the real file system and environment: values by reference,
 * owner-only files, names that could leave the store refused, and a signer that reads its key from
 * the store at signing time (rotation needs no restart).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chainSecretStores,
  createEnvSecretStore,
  createFileSecretStore,
  envSecretName,
} from '../../src/secrets/local';
import { signModelFiles, verifyModelFiles, createKeyVerifier } from '../../src/security/model-signing';
import { createModelTrust, ensureSigningKey, DEFAULT_SIGNING_KEY_REF } from '../../src/security/model-trust';

const root = mkdtempSync(path.join(tmpdir(), 'mlops-secrets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('secret stores', () => {
  it('file store: put and get by reference, mode 0600, missing is undefined, escapes refused', async () => {
    const store = createFileSecretStore(root);
    await store.put({ secret: 'mlflow', key: 'password' }, 's3cr3t');
    expect(await store.get({ secret: 'mlflow', key: 'password' })).toBe('s3cr3t');
    expect(statSync(path.join(root, 'mlflow', 'password')).mode & 0o777).toBe(0o600);
    expect(await store.get({ secret: 'mlflow', key: 'absent' })).toBeUndefined();
    await expect(store.get({ secret: '..', key: 'passwd' })).rejects.toThrow(/not a valid name/);
    await expect(store.get({ secret: 'a/b', key: 'c' })).rejects.toThrow(/not a valid name/);
  });

  it('env store: MLOPS_SECRET_<SECRET>_<KEY>, one-line PEMs unfolded; a chain asks each store in turn', async () => {
    const name = envSecretName({ secret: 'model-signing', key: 'private.pem' });
    expect(name).toBe('MLOPS_SECRET_MODEL_SIGNING_PRIVATE_PEM');
    const env = createEnvSecretStore({ [name]: 'line1\\nline2' });
    expect(await env.get({ secret: 'model-signing', key: 'private.pem' })).toBe('line1\nline2');
    const chain = chainSecretStores(env, createFileSecretStore(root));
    expect(await chain.get({ secret: 'mlflow', key: 'password' })).toBe('s3cr3t');
    expect(chain.kind).toBe('env+file');
  });

  it('the signer reads its key from the store each time: a rotated key signs the next bundle', async () => {
    const store = createFileSecretStore(path.join(root, 'keys'));
    const first = await ensureSigningKey(store);
    expect(await ensureSigningKey(store)).toBe(first);
    const trust = createModelTrust({ store });
    const files = [{ path: 'model.onnx', content: Buffer.from('x') }];
    const a = await signModelFiles(files, trust.signer!, { name: 'm/v1' });
    await verifyModelFiles(files, a.bundle, createKeyVerifier([first]));
    await store.put(
      DEFAULT_SIGNING_KEY_REF,
      (await import('../../src/security/model-signing')).generateSigningKeyPair().privateKeyPem,
    );
    const b = await signModelFiles(files, trust.signer!, { name: 'm/v1' });
    await expect(verifyModelFiles(files, b.bundle, createKeyVerifier([first]))).rejects.toThrow(
      /unknown key/,
    );
  });
});
