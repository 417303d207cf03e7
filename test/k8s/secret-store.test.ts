/**
 * The Kubernetes Secrets secret store against the test cluster's real kube-apiserver: a Secret
 * created with the admin token is read back by key, a missing Secret or key is undefined, and a
 * reference that would leave the store's naming rules is refused before any request.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesSecretStore } from '../../src/secrets/kubernetes';
import { generateSigningKeyPair } from '../../src/security/model-signing';
import { kubeConfig } from './helpers';

const NAMESPACE = 'mlops-secret-store-test';
const pem = generateSigningKeyPair().privateKeyPem;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch(() => undefined);
  await core.createNamespacedSecret({
    namespace: NAMESPACE,
    body: {
      metadata: { name: 'model-signing' },
      data: { 'private.pem': Buffer.from(pem).toString('base64') },
    },
  });
});

afterAll(async () => {
  await core?.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
});

describe('Kubernetes secret store', () => {
  it('reads a key of a Secret, and answers undefined for a missing Secret or key', async () => {
    const store = createKubernetesSecretStore({ namespace: NAMESPACE, kubeConfig: kubeConfig() });
    expect(await store.get({ secret: 'model-signing', key: 'private.pem' })).toBe(pem);
    expect(await store.get({ secret: 'model-signing', key: 'other' })).toBeUndefined();
    expect(await store.get({ secret: 'absent', key: 'private.pem' })).toBeUndefined();
    await expect(store.get({ secret: '../kube-system', key: 'x' })).rejects.toThrow(/not a valid name/);
  });
});
