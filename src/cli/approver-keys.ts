/**
 * `tsx src/cli/approver-keys.ts --out-dir DIR --approver alice [--force]`: generates an Ed25519 key pair for an
 * approver.
 *
 * Rules:
 * - Writes `DIR/<approver>.ed25519.key` (PKCS#8 PEM, mode 0600) and `DIR/<approver>.ed25519.pub` (SPKI PEM);
 *   DIR is created with mode 0700 if missing. Existing files are never overwritten unless `--force` is given.
 * - Prints only public material: the public key PEM and an approver entry to paste into the model's approval
 *   policy. The private key is never printed.
 * - Exit status: 0 written, 2 usage or I/O error.
 */
import { createPublicKey } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApproverIdSchema } from '../core/contracts/approval';
import { parseOrThrow } from '../core/contracts/errors';
import {
  generateApproverKeyPair,
  publicKeyFingerprint,
  rawPublicKeyBase64,
} from '../security/approval-signing';

/** Suffix of the private key file. */
export const PRIVATE_KEY_SUFFIX = '.ed25519.key';
/** Suffix of the public key file. */
export const PUBLIC_KEY_SUFFIX = '.ed25519.pub';
/** Private keys are readable by their owner only. */
export const PRIVATE_KEY_FILE_MODE = 0o600;
/** Public keys are public. */
export const PUBLIC_KEY_FILE_MODE = 0o644;
/** A newly created key folder is private to its owner. */
export const KEY_DIR_MODE = 0o700;

const USAGE = 'usage: approver-keys --out-dir <dir> --approver <id> [--force]';

export interface WrittenKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  publicKeyPem: string;
  /** Base64 of the raw 32-byte public key (the compact form a policy may hold instead of PEM). */
  publicKeyRaw: string;
  keyId: string;
}

function writeNew(path: string, content: string, mode: number, force: boolean): void {
  if (force) {
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode);
}

/** Generates and writes a key pair for `approver` under `outDir`. */
export function writeApproverKeyPair(outDir: string, approver: string, force = false): WrittenKeyPair {
  const id = parseOrThrow(ApproverIdSchema, approver, 'approver');
  mkdirSync(outDir, { recursive: true, mode: KEY_DIR_MODE });
  const { publicKeyPem, privateKeyPem } = generateApproverKeyPair();
  const privateKeyPath = join(outDir, `${id}${PRIVATE_KEY_SUFFIX}`);
  const publicKeyPath = join(outDir, `${id}${PUBLIC_KEY_SUFFIX}`);
  if (!force) {
    for (const p of [privateKeyPath, publicKeyPath]) {
      if (existsSync(p)) throw Object.assign(new Error(`${p} already exists`), { code: 'EEXIST' });
    }
  }
  writeNew(privateKeyPath, privateKeyPem, PRIVATE_KEY_FILE_MODE, force);
  writeNew(publicKeyPath, publicKeyPem, PUBLIC_KEY_FILE_MODE, force);
  const pub = createPublicKey(publicKeyPem);
  return {
    privateKeyPath,
    publicKeyPath,
    publicKeyPem,
    publicKeyRaw: rawPublicKeyBase64(pub),
    keyId: publicKeyFingerprint(pub),
  };
}

/** Runs the CLI; returns the exit status. */
export function main(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        'out-dir': { type: 'string' },
        approver: { type: 'string' },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (values['out-dir'] === undefined || values.approver === undefined) {
    console.error(`--out-dir and --approver are required\n${USAGE}`);
    return 2;
  }
  try {
    const k = writeApproverKeyPair(values['out-dir'], values.approver, values.force === true);
    console.log(`private key: ${k.privateKeyPath} (mode 0600; keep it secret, sign with --key-file)`);
    console.log(`public key:  ${k.publicKeyPath} (key id ${k.keyId})`);
    console.log('');
    console.log(k.publicKeyPem.trimEnd());
    console.log('');
    console.log('approver entry for the approval policy:');
    console.log(JSON.stringify({ id: values.approver.trim(), roles: [], publicKey: k.publicKeyRaw }));
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EEXIST' ? ' (a key already exists; pass --force to replace it)' : '';
    console.error(`approver-keys failed: ${(err as Error).message}${hint}`);
    return 2;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
