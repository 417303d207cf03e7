/**
 * Which model signatures a process trusts, and how it signs: the worker's (and any loader's) one
 * place for signing configuration.
 *
 * - The signing key is an EC P-256 private key in the secret store (`MLOPS_MODEL_SIGNING_KEY_REF`,
 *   default `model-signing/private.pem`), read at signing time; only its reference is configuration.
 *   With the embedded file store the key is created on first use (`MLOPS_MODEL_SIGNING_CREATE_KEY`,
 *   on by default for the file store only).
 * - Trusted keys: the signing key's own public key plus the PEM public keys in
 *   `MLOPS_MODEL_TRUSTED_KEYS` (a file of one or more PEM blocks). A loader that does not sign (the
 *   gateway) trusts only that file.
 * - `MLOPS_MODEL_SIGNATURES`: `require` (default: an unsigned version is refused) or `if-signed`
 *   (legacy registries: an unsigned version passes on its digest manifest alone, a signed one is
 *   verified).
 * - A version's signature lives in its run at {@link MODEL_SIGNATURE_ARTIFACT}, named by the version
 *   tag {@link SecurityTags.signature}; its subject is `<model>/v<version>` ({@link signatureSubject}),
 *   so another model's or version's signature is refused even over identical bytes.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import { FailureType } from '../core/contracts/failures';
import type { SecretRef, SecretStore, WritableSecretStore } from '../ports/secret-store';
import type { StatementSigner, StatementVerifier } from '../ports/signing';
import { createEnvSecretStore, createFileSecretStore } from '../secrets/local';
import {
  ModelSignatureCode,
  ModelSignatureError,
  canonicalPublicKeyPem,
  createKeySigner,
  createKeyVerifier,
  generateSigningKeyPair,
} from './model-signing';
import { createPrivateKey, createPublicKey } from 'node:crypto';

/** Where a version's model signature is stored inside its run (beside, not inside, the model folder). */
export const MODEL_SIGNATURE_ARTIFACT = 'signatures/model.sig';
/** Where a version's evidence statement (card, verdict, approvals, data) is stored inside its run. */
export const EVIDENCE_ARTIFACT = 'signatures/evidence.sig';
/** Default secret reference of the model signing key. */
export const DEFAULT_SIGNING_KEY_REF: SecretRef = { secret: 'model-signing', key: 'private.pem' };

/** Version tags written by the signing steps. */
export const SecurityTags = {
  /** Run-relative path of the model signature bundle. */
  signature: 'mlops.signature',
  /** Key hint (sha256 of the PEM public key) of the signer. */
  signer: 'mlops.signer',
  /** Run-relative path of the evidence bundle. */
  evidence: 'mlops.evidence',
  /** Result of the unsafe-format scan at registration. */
  formatScan: 'mlops.format_scan',
} as const;

export type SignatureMode = 'require' | 'if-signed';

export interface ModelTrust {
  mode: SignatureMode;
  /** Absent in a process that only verifies (the gateway). */
  signer?: StatementSigner;
  verifier: StatementVerifier;
}

/** Subject name of a version's model signature. */
export const signatureSubject = (model: string, version: string): string => `${model}/v${version}`;

/** Failure type of each signature refusal code. */
export const SIGNATURE_FAILURE: Record<ModelSignatureCode, FailureType> = {
  missing: FailureType.ModelSignatureMissing,
  malformed: FailureType.ModelSignatureInvalid,
  'bad-signature': FailureType.ModelSignatureInvalid,
  'untrusted-key': FailureType.ModelSignatureUntrusted,
  mismatch: FailureType.ModelSignatureMismatch,
  'wrong-subject': FailureType.ModelSignatureWrongSubject,
};

/** The non-retryable Temporal failure for a signature refusal. */
export function signatureFailure(err: ModelSignatureError, label: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: SIGNATURE_FAILURE[err.code],
    message: `${label}: ${err.message}`,
    nonRetryable: true,
    details: [{ code: err.code, problems: err.problems }],
  });
}

/** Splits a text holding PEM public keys into blocks. */
export function parsePublicKeyBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)].map(
    (m) => `${m[0]}\n`,
  );
}

/**
 * Returns the PEM private key at `ref`, creating a fresh P-256 key there first when the store is
 * writable and has none. Returns the public key PEM.
 */
export async function ensureSigningKey(
  store: WritableSecretStore,
  ref: SecretRef = DEFAULT_SIGNING_KEY_REF,
): Promise<string> {
  let pem = await store.get(ref);
  if (pem === undefined) {
    pem = generateSigningKeyPair().privateKeyPem;
    await store.put(ref, pem);
  }
  return canonicalPublicKeyPem(createPublicKey(createPrivateKey(pem)));
}

/** A verifier whose trusted keys are resolved on first use (the signing key may not exist yet). */
function lazyVerifier(keys: () => Promise<string[]>): StatementVerifier {
  let built: Promise<StatementVerifier> | undefined;
  return {
    kind: 'key',
    async verifyStatement(bundle) {
      built ??= keys().then((k) => createKeyVerifier(k));
      try {
        return await (await built).verifyStatement(bundle);
      } catch (err) {
        if (!(err instanceof ModelSignatureError)) built = undefined;
        throw err;
      }
    },
  };
}

/** Trust from a signing key in `store` plus extra trusted public keys. */
export function createModelTrust(args: {
  store: SecretStore;
  keyRef?: SecretRef;
  extraTrustedKeys?: readonly string[];
  mode?: SignatureMode;
  /** Create the key in a writable store when it is missing (embedded default). */
  createKey?: boolean;
}): ModelTrust {
  const ref = args.keyRef ?? DEFAULT_SIGNING_KEY_REF;
  const store = args.store;
  const loadKey = async (): Promise<string> => {
    if (args.createKey && 'put' in store) await ensureSigningKey(store as WritableSecretStore, ref);
    const pem = await store.get(ref);
    if (pem === undefined)
      throw new ModelSignatureError(
        ModelSignatureCode.missing,
        `no model signing key at secret ${ref.secret} key ${ref.key} (${store.kind} store)`,
      );
    return pem;
  };
  const signer = createKeySigner(loadKey);
  const verifier = lazyVerifier(async () => {
    const own = await loadKey().then(
      (pem) => [canonicalPublicKeyPem(createPublicKey(createPrivateKey(pem)))],
      () => [] as string[],
    );
    return [...own, ...(args.extraTrustedKeys ?? [])];
  });
  return { mode: args.mode ?? 'require', signer, verifier };
}

/** Trust for a process that only verifies (the gateway): exactly the given public keys. */
export function createVerifyOnlyTrust(
  trustedKeys: readonly string[],
  mode: SignatureMode = 'require',
): ModelTrust {
  return { mode, verifier: createKeyVerifier(trustedKeys) };
}

const SecretRefText = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be <secret>/<key>');

const TrustEnvSchema = z.object({
  /** Which secret store holds the signing key: files under the state folder, or the environment. */
  MLOPS_SECRET_STORE: z.enum(['file', 'env']).default('file'),
  /** Folder of the file secret store (default `<state>/secrets`). */
  MLOPS_SECRETS_DIR: z.string().min(1).optional(),
  MLOPS_MODEL_SIGNING_KEY_REF: SecretRefText.default('model-signing/private.pem'),
  MLOPS_MODEL_TRUSTED_KEYS: z.string().min(1).optional(),
  MLOPS_MODEL_SIGNATURES: z.enum(['require', 'if-signed']).default('require'),
  MLOPS_MODEL_SIGNING_CREATE_KEY: z.enum(['0', '1']).optional(),
});

/** The worker's model trust from its environment (see the module notes). */
export function modelTrustFromEnv(env: NodeJS.ProcessEnv, stateDir: string): ModelTrust {
  const r = TrustEnvSchema.safeParse(env);
  if (!r.success) throw new Error(`invalid signing configuration: ${formatZodError(r.error)}`);
  const e = r.data;
  const [secret = '', key = ''] = e.MLOPS_MODEL_SIGNING_KEY_REF.split('/');
  const store =
    e.MLOPS_SECRET_STORE === 'env'
      ? createEnvSecretStore(env)
      : createFileSecretStore(e.MLOPS_SECRETS_DIR ?? path.join(stateDir, 'secrets'));
  const extra = e.MLOPS_MODEL_TRUSTED_KEYS
    ? parsePublicKeyBlocks(readFileSync(e.MLOPS_MODEL_TRUSTED_KEYS, 'utf8'))
    : [];
  return createModelTrust({
    store,
    keyRef: { secret, key },
    extraTrustedKeys: extra,
    mode: e.MLOPS_MODEL_SIGNATURES,
    createKey: e.MLOPS_MODEL_SIGNING_CREATE_KEY
      ? e.MLOPS_MODEL_SIGNING_CREATE_KEY === '1'
      : e.MLOPS_SECRET_STORE === 'file',
  });
}
