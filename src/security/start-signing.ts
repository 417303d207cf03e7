/**
 * Signed start requests: the initiator of a pipeline proves who they are with an Ed25519 signature
 * (the same keys as approvals) over the RFC 8785 canonical JSON of
 * `{ context, workflowId, model, dataset, initiator, issuedAt }`. The context string
 * {@link START_SIGNATURE_CONTEXT} keeps these signatures apart from approval signatures made with
 * the same key, and binding the workflow id, model and dataset URI means a signature cannot start
 * another pipeline.
 *
 * Node-only; workflows verify through an activity. Never throws for a bad signature or key.
 */
import canonicalize from 'canonicalize';
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { ApprovalSignature } from '../core/contracts/approval';
import { ED25519_SIGNATURE_BYTES, parseApproverPublicKey, publicKeyFingerprint } from './approval-signing';

/** Domain-separation tag inside every signed start request. */
export const START_SIGNATURE_CONTEXT = 'mlops-start/v1';

export interface StartSignedFields {
  workflowId: string;
  model: string;
  dataset: string;
  initiator: string;
  issuedAt: string;
}

export function canonicalStartPayload(f: StartSignedFields): string {
  const out = canonicalize({
    context: START_SIGNATURE_CONTEXT,
    workflowId: f.workflowId,
    model: f.model,
    dataset: f.dataset,
    initiator: f.initiator,
    issuedAt: f.issuedAt,
  });
  if (out === undefined) throw new Error('start payload could not be canonicalised');
  return out;
}

/** Signs a start request with an Ed25519 private key. */
export function signStart(
  fields: Omit<StartSignedFields, 'issuedAt'> & { issuedAt?: string },
  privateKey: KeyObject,
): ApprovalSignature {
  const issuedAt = fields.issuedAt ?? new Date().toISOString();
  const value = sign(null, Buffer.from(canonicalStartPayload({ ...fields, issuedAt }), 'utf8'), privateKey);
  return {
    alg: 'ed25519',
    keyId: publicKeyFingerprint(createPublicKey(privateKey)),
    issuedAt,
    value: value.toString('base64'),
  };
}

/** True when `signature` is `publicKey`'s signature over the start request. */
export function verifyStartSignature(
  fields: Omit<StartSignedFields, 'issuedAt'>,
  signature: Pick<ApprovalSignature, 'alg' | 'issuedAt' | 'value'>,
  publicKey: string,
): boolean {
  if (signature.alg !== 'ed25519') return false;
  const key = parseApproverPublicKey(publicKey);
  const sig = Buffer.from(signature.value, 'base64');
  if (!key || sig.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    const data = Buffer.from(canonicalStartPayload({ ...fields, issuedAt: signature.issuedAt }), 'utf8');
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}
