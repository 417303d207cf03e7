/**
 * Signed approvals: Ed25519 signatures over a canonical approval payload.
 *
 * Rules:
 * - Node-only (node:crypto, node:fs). Workflows call {@link verifyApprovalSignature} through an activity.
 * - The signed bytes are the RFC 8785 canonical JSON of `{ context, workflowId, modelVersion, decision, approver,
 *   issuedAt }`; the fixed `context` string separates these signatures from any other use of the same key.
 *   Key order in the input never matters.
 * - {@link verifyApprovalSignature} never throws for a bad signature or a bad key: it answers `false`. It throws
 *   only for programmer errors (the signed fields themselves missing or of the wrong type).
 * - Private keys come only from a file path or an environment variable named by the caller
 *   ({@link loadPrivateKey}); they are never accepted from workflow input, never logged, and error messages
 *   never quote key material.
 * - Only Ed25519 keys are accepted; a private key registered where a public key belongs is refused (answers
 *   `false`), since it means the private key has leaked into configuration.
 */
import canonicalize from 'canonicalize';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ApprovalDecision, ApproverIdSchema, ModelVersionSchema } from '../core/contracts/approval';
import type { ApprovalSignature } from '../core/contracts/approval';
import { formatZodError } from '../core/contracts/errors';

/** Domain-separation tag inside every signed payload (bump the version if the payload shape ever changes). */
export const APPROVAL_SIGNATURE_CONTEXT = 'mlops-approval/v1';
/** Hex characters of the sha256 public-key fingerprint used as `keyId` (64 bits: a label, not a security check). */
export const KEY_ID_HEX_CHARS = 16;
/** Length in bytes of a raw Ed25519 public key. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Length in bytes of an Ed25519 signature. */
export const ED25519_SIGNATURE_BYTES = 64;

/** Thrown for programmer errors and unusable private keys; `name` is stable for the activities layer. */
export class ApprovalSigningError extends Error {
  override readonly name = 'ApprovalSigningError';
}

/** The fields bound by an approval signature. */
export interface ApprovalSignedFields {
  workflowId: string;
  modelVersion: string;
  decision: ApprovalDecision;
  approver: string;
  issuedAt: string;
}

const SignedFieldsSchema = z.object({
  workflowId: z.string().min(1),
  modelVersion: ModelVersionSchema,
  decision: z.enum([ApprovalDecision.approve, ApprovalDecision.reject]),
  approver: ApproverIdSchema,
  issuedAt: z.iso.datetime({ offset: true }),
});

function checkedFields(fields: ApprovalSignedFields): ApprovalSignedFields {
  const parsed = SignedFieldsSchema.safeParse(fields);
  if (!parsed.success)
    throw new ApprovalSigningError(formatZodError(parsed.error, 'approval signature fields'));
  return parsed.data;
}

/** RFC 8785 canonical JSON of the signed fields plus {@link APPROVAL_SIGNATURE_CONTEXT}. */
export function canonicalApprovalPayload(fields: ApprovalSignedFields): string {
  const f = checkedFields(fields);
  const out = canonicalize({
    context: APPROVAL_SIGNATURE_CONTEXT,
    workflowId: f.workflowId,
    modelVersion: f.modelVersion,
    decision: f.decision,
    approver: f.approver,
    issuedAt: f.issuedAt,
  });
  if (out === undefined) throw new ApprovalSigningError('approval payload could not be canonicalised');
  return out;
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict (padded, no whitespace) base64, or returns undefined. */
function decodeBase64Strict(text: string): Buffer | undefined {
  if (typeof text !== 'string' || text.length === 0 || !STRICT_BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function isEd25519(key: KeyObject, type: 'public' | 'private'): boolean {
  return key.type === type && key.asymmetricKeyType === 'ed25519';
}

/**
 * Parses a public key given as a PEM `PUBLIC KEY` block or base64 of the raw 32-byte key. Returns undefined for
 * anything else (including private keys and non-Ed25519 keys).
 */
export function parseApproverPublicKey(publicKey: string): KeyObject | undefined {
  if (typeof publicKey !== 'string') return undefined;
  const text = publicKey.trim();
  try {
    let key: KeyObject;
    if (text.startsWith('-----BEGIN')) {
      if (!/^-----BEGIN PUBLIC KEY-----/.test(text)) return undefined;
      key = createPublicKey({ key: text, format: 'pem' });
    } else {
      const raw = decodeBase64Strict(text);
      if (raw === undefined || raw.length !== ED25519_PUBLIC_KEY_BYTES) return undefined;
      key = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
        format: 'jwk',
      });
    }
    return isEd25519(key, 'public') ? key : undefined;
  } catch {
    return undefined;
  }
}

/** The raw 32-byte public key, base64 (the compact form a policy may register). */
export function rawPublicKeyBase64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new ApprovalSigningError('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** Short fingerprint of an Ed25519 public key: the first {@link KEY_ID_HEX_CHARS} hex chars of sha256(raw key). */
export function publicKeyFingerprint(key: KeyObject): string {
  const raw = Buffer.from(rawPublicKeyBase64(key), 'base64');
  return createHash('sha256').update(raw).digest('hex').slice(0, KEY_ID_HEX_CHARS);
}

function asPrivateKey(privateKey: KeyObject | string): KeyObject {
  let key: KeyObject;
  if (typeof privateKey === 'string') {
    try {
      key = createPrivateKey({ key: privateKey, format: 'pem' });
    } catch {
      throw new ApprovalSigningError('private key is not a readable PEM private key');
    }
  } else {
    key = privateKey;
  }
  if (!isEd25519(key, 'private'))
    throw new ApprovalSigningError('private key must be an Ed25519 private key');
  return key;
}

/**
 * Signs an approval decision. `issuedAt` defaults to now; `keyId` defaults to the key's fingerprint
 * ({@link publicKeyFingerprint}).
 */
export function signApproval(
  fields: Omit<ApprovalSignedFields, 'issuedAt'> & { issuedAt?: string },
  privateKey: KeyObject | string,
  options: { keyId?: string } = {},
): ApprovalSignature {
  const key = asPrivateKey(privateKey);
  const issuedAt = fields.issuedAt ?? new Date().toISOString();
  const data = Buffer.from(canonicalApprovalPayload({ ...fields, issuedAt }), 'utf8');
  const value = sign(null, data, key).toString('base64');
  const keyId = options.keyId ?? publicKeyFingerprint(createPublicKey(key));
  return { alg: 'ed25519', keyId, issuedAt, value };
}

/**
 * Verifies `signature` over `fields` (with `signature.issuedAt`) against `publicKey` (PEM, or base64 of the raw
 * 32-byte key). If `fields.issuedAt` is given it must equal `signature.issuedAt`. Returns false for any bad
 * signature, bad key or mismatch; throws {@link ApprovalSigningError} only when `fields` is unusable.
 */
export function verifyApprovalSignature(
  fields: Omit<ApprovalSignedFields, 'issuedAt'> & { issuedAt?: string },
  signature: Pick<ApprovalSignature, 'alg' | 'issuedAt' | 'value'> & { keyId?: string },
  publicKey: string,
): boolean {
  const base = SignedFieldsSchema.omit({ issuedAt: true }).safeParse(fields);
  if (!base.success) throw new ApprovalSigningError(formatZodError(base.error, 'approval signature fields'));
  if (typeof signature !== 'object' || signature === null) return false;
  if (signature.alg !== 'ed25519' || typeof signature.issuedAt !== 'string') return false;
  if (fields.issuedAt !== undefined && fields.issuedAt !== signature.issuedAt) return false;
  if (!z.iso.datetime({ offset: true }).safeParse(signature.issuedAt).success) return false;
  const sig = decodeBase64Strict(signature.value);
  if (sig === undefined || sig.length !== ED25519_SIGNATURE_BYTES) return false;
  const key = parseApproverPublicKey(publicKey);
  if (key === undefined) return false;
  const data = Buffer.from(canonicalApprovalPayload({ ...base.data, issuedAt: signature.issuedAt }), 'utf8');
  try {
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}

/** A fresh Ed25519 key pair as PEM (SPKI public, PKCS#8 private). */
export function generateApproverKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

/** Where a private key is read from: a file path, or the name of an environment variable holding the PEM. */
export type PrivateKeySource = { file: string } | { env: string };

/**
 * Loads an Ed25519 private key from a PEM file or from an environment variable holding the PEM (literal `\n`
 * sequences, as in a one-line env file, are accepted). Errors name the source, never the key.
 */
export function loadPrivateKey(source: PrivateKeySource, env: NodeJS.ProcessEnv = process.env): KeyObject {
  let pem: string;
  let where: string;
  if ('file' in source) {
    where = `key file ${source.file}`;
    try {
      pem = readFileSync(source.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ApprovalSigningError(`cannot read ${where} (${code})`);
    }
  } else {
    where = `environment variable ${source.env}`;
    const value = env[source.env];
    if (value === undefined || value.trim() === '') throw new ApprovalSigningError(`${where} is not set`);
    pem = value.includes('\\n') && !value.includes('\n') ? value.replace(/\\n/g, '\n') : value;
  }
  try {
    return asPrivateKey(pem);
  } catch (err) {
    throw new ApprovalSigningError(`${where}: ${(err as Error).message}`);
  }
}
