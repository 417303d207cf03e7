/**
 * Vault / OpenBao KV version 2 over its HTTP API: `{secret, key}` is the field `key` of the secret
 * at `<mount>/data/<secret>` (GET `/v1/<mount>/data/<secret>`, answer `data.data`). The token is
 * read from a file or the environment when a request is made (a Vault agent may rotate it) and sent
 * as `X-Vault-Token`; it is never logged. 404 is `undefined`; other failures throw naming the path.
 *
 * Not yet exercised against a real server in the tests: the Go module proxy refuses OpenBao's
 * releases (403 "This module version is not available" for github.com/openbao/openbao/v2@v2.4.1).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { SecretRef, SecretStore } from '../ports/secret-store';
import { checkSecretRef } from './local';

/** How long one KV read may take before it is abandoned. */
export const VAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default KV v2 mount. */
export const DEFAULT_KV_MOUNT = 'secret';

export interface VaultSecretStoreConfig {
  address: string;
  mount?: string;
  /** Where the token comes from: a file (Vault agent sink) or an environment variable. */
  token: { file: string } | { env: string };
  namespace?: string;
}

const KvAnswer = z.object({ data: z.object({ data: z.record(z.string(), z.unknown()) }) });

export function createVaultSecretStore(cfg: VaultSecretStoreConfig): SecretStore {
  const mount = (cfg.mount ?? DEFAULT_KV_MOUNT).replace(/^\/+|\/+$/g, '');
  const base = cfg.address.replace(/\/+$/, '');
  const token = async (): Promise<string> => {
    const t =
      'file' in cfg.token ? (await readFile(cfg.token.file, 'utf8')).trim() : process.env[cfg.token.env];
    if (!t) throw new Error('no Vault token is available');
    return t;
  };
  return {
    kind: 'vault',
    async get(ref: SecretRef) {
      checkSecretRef(ref);
      const url = `${base}/v1/${mount}/data/${encodeURIComponent(ref.secret)}`;
      const headers: Record<string, string> = { 'X-Vault-Token': await token() };
      if (cfg.namespace) headers['X-Vault-Namespace'] = cfg.namespace;
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(VAULT_REQUEST_TIMEOUT_MS) });
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`Vault KV read of ${mount}/${ref.secret} failed: HTTP ${res.status}`);
      const parsed = KvAnswer.safeParse(await res.json());
      if (!parsed.success) throw new Error(`Vault KV answer for ${mount}/${ref.secret} is not KV v2`);
      const v = parsed.data.data.data[ref.key];
      return typeof v === 'string' ? v : undefined;
    },
  };
}
