/**
 * Kubernetes Secrets as a secret store: `{secret, key}` is the Secret `secret` in the configured
 * namespace and the key inside its `data` (base64, decoded here). Read-only, like the worker's RBAC
 * should be: `get` on the named Secrets, nothing else. A missing Secret or key is `undefined`; any
 * other API error (403, unreachable) is thrown with the reference named and no value quoted.
 */
import * as k8s from '@kubernetes/client-node';
import type { SecretRef, SecretStore } from '../ports/secret-store';
import { checkSecretRef } from './local';

export interface KubernetesSecretStoreConfig {
  namespace: string;
  kubeConfig: k8s.KubeConfig;
}

function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const v of [e.code, e.statusCode, e.response?.statusCode]) if (typeof v === 'number') return v;
  return undefined;
}

export function createKubernetesSecretStore(cfg: KubernetesSecretStoreConfig): SecretStore {
  const core = cfg.kubeConfig.makeApiClient(k8s.CoreV1Api);
  return {
    kind: 'kubernetes',
    async get(ref: SecretRef) {
      checkSecretRef(ref);
      let secret: k8s.V1Secret;
      try {
        secret = await core.readNamespacedSecret({ name: ref.secret, namespace: cfg.namespace });
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw new Error(
          `reading Secret ${cfg.namespace}/${ref.secret} failed (HTTP ${statusOf(err) ?? 'error'})`,
        );
      }
      const b64 = secret.data?.[ref.key];
      if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
      return secret.stringData?.[ref.key];
    },
  };
}
