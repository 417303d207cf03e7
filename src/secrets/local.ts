/**
 * Development secret stores: files under the state folder (`<root>/<secret>/<key>`, mode 0600) and
 * the process environment (`MLOPS_SECRET_<SECRET>_<KEY>`, upper-cased, non-alphanumerics as `_`).
 *
 * Rules: names are validated before they touch a path (no `..`, no separators beyond one level), so
 * a reference can never read outside the store; values are never logged and errors name the
 * reference, never the value.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SecretRef, SecretStore, WritableSecretStore } from '../ports/secret-store';

/** Secret and key names: letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Prefix of environment variables read by {@link createEnvSecretStore}. */
export const ENV_SECRET_PREFIX = 'MLOPS_SECRET_';
/** File mode of secrets written by the file store: owner read/write only. */
export const SECRET_FILE_MODE = 0o600;

/** A secret reference names something no store may read. */
export class SecretRefError extends Error {
  override readonly name = 'SecretRefError';
}

export function checkSecretRef(ref: SecretRef): SecretRef {
  for (const [field, value] of [
    ['secret', ref.secret],
    ['key', ref.key],
  ] as const) {
    if (typeof value !== 'string' || !SECRET_NAME.test(value) || value.includes('..'))
      throw new SecretRefError(`secret reference ${field} ${JSON.stringify(value)} is not a valid name`);
  }
  return ref;
}

/** Files under `root`: `<root>/<secret>/<key>`. */
export function createFileSecretStore(root: string): WritableSecretStore {
  const file = (ref: SecretRef) => {
    checkSecretRef(ref);
    return path.join(root, ref.secret, ref.key);
  };
  return {
    kind: 'file',
    async get(ref) {
      try {
        return await readFile(file(ref), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async put(ref, value) {
      const target = file(ref);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      const tmp = `${target}.${process.pid}.tmp`;
      await writeFile(tmp, value, { mode: SECRET_FILE_MODE });
      await rename(tmp, target);
    },
  };
}

/** The environment variable holding `ref`. */
export const envSecretName = (ref: SecretRef): string =>
  `${ENV_SECRET_PREFIX}${checkSecretRef(ref).secret}_${ref.key}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');

/** Values from the environment (literal `\n` in a one-line value becomes a newline, as env files need). */
export function createEnvSecretStore(env: NodeJS.ProcessEnv = process.env): SecretStore {
  return {
    kind: 'env',
    async get(ref) {
      const value = env[envSecretName(ref)];
      if (value === undefined) return undefined;
      return value.includes('\\n') && !value.includes('\n') ? value.replace(/\\n/g, '\n') : value;
    },
  };
}

/** The first store that has the secret answers. */
export function chainSecretStores(...stores: SecretStore[]): SecretStore {
  return {
    kind: stores.map((s) => s.kind).join('+'),
    async get(ref) {
      for (const s of stores) {
        const v = await s.get(ref);
        if (v !== undefined) return v;
      }
      return undefined;
    },
  };
}
