/**
 * Model signing compatible with OpenSSF model signing (`model_signing` 1.x, key mode): a Sigstore
 * bundle v0.3 whose DSSE envelope holds an in-toto Statement with predicate
 * `https://model_signing/signature/v1.0`. The predicate lists every file's sha256 (`resources`,
 * sorted by name) and how the folder was serialised; the subject is the model's name with the
 * sha256 over all file digests in that order. Signatures are ECDSA P-256 / SHA-256 (DER) over the
 * DSSE pre-authentication encoding; the bundle's `publicKey.hint` is the sha256 of the signer's PEM
 * public key, exactly as `model_signing sign key` writes it.
 *
 * Rules:
 * - Node-only. Private keys come from a caller-supplied loader (the secret store); they are never
 *   returned, logged or put in an error message.
 * - Envelopes are verified offline with `@sigstore/verify` (no transparency log, no timestamps: key
 *   mode has neither). It checks only the envelope, so {@link verifyModelDigests} recomputes and
 *   compares the file digests itself; both steps are needed and {@link verifyModelFolder} /
 *   {@link verifyModelFiles} always do both.
 * - Every refusal is a {@link ModelSignatureError} with a stable `code` that the activities map onto
 *   the failure taxonomy: `missing`, `malformed`, `untrusted-key`, `bad-signature`, `mismatch`
 *   (changed, added, removed or renamed file) and `wrong-subject` (another model's or version's
 *   signature).
 */
import { bundleFromJSON } from '@sigstore/bundle';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial, type KeyFinderFunc } from '@sigstore/verify';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { formatZodError } from '../core/contracts/errors';
import type {
  InTotoStatement,
  SignerIdentity,
  SigstoreBundleJson,
  StatementSigner,
  StatementVerifier,
} from '../ports/signing';
import { DEFAULT_IGNORE_PATHS, byPath, digestBuffers, digestFolder, type FileDigest } from './model-hashing';

/** in-toto Statement type. */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** Predicate type of an OpenSSF model signature, v1.0. */
export const MODEL_SIGNING_PREDICATE_TYPE = 'https://model_signing/signature/v1.0';
/** Sigstore bundle media type written and accepted. */
export const SIGSTORE_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** File name model_signing gives a signature; never hashed as part of the model. */
export const DEFAULT_SIGNATURE_FILE = 'model.sig';
/** The EC curve of signing keys (P-256, the key mode model_signing verifies with SHA-256). */
export const SIGNING_CURVE = 'prime256v1';

export const ModelSignatureCode = {
  missing: 'missing',
  malformed: 'malformed',
  untrustedKey: 'untrusted-key',
  badSignature: 'bad-signature',
  mismatch: 'mismatch',
  wrongSubject: 'wrong-subject',
} as const;
export type ModelSignatureCode = (typeof ModelSignatureCode)[keyof typeof ModelSignatureCode];

/** A signature is missing, unreadable, untrusted, invalid, or does not match the files. */
export class ModelSignatureError extends Error {
  override readonly name = 'ModelSignatureError';
  constructor(
    readonly code: ModelSignatureCode,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

const ModelSignaturePredicateSchema = z.object({
  serialization: z
    .object({
      method: z.string(),
      hash_type: z.string(),
      allow_symlinks: z.boolean().optional(),
      ignore_paths: z.array(z.string()).optional(),
    })
    .loose(),
  resources: z.array(
    z.object({ name: z.string().min(1), algorithm: z.string(), digest: z.string().regex(HEX64) }),
  ),
});
export type ModelSignaturePredicate = z.infer<typeof ModelSignaturePredicateSchema>;

const StatementSchema = z
  .object({
    _type: z.literal(IN_TOTO_STATEMENT_TYPE),
    subject: z.array(z.object({ name: z.string(), digest: z.record(z.string(), z.string()) })).min(1),
    predicateType: z.string(),
    predicate: z.record(z.string(), z.unknown()),
  })
  .loose();

/** sha256 over the raw bytes of every digest in order: the subject digest of a model signature. */
export function rootDigest(digests: ReadonlyArray<Pick<FileDigest, 'sha256'>>): string {
  const h = createHash('sha256');
  for (const d of digests) h.update(Buffer.from(d.sha256, 'hex'));
  return h.digest('hex');
}

/** The model signature statement for `digests` (sorted here), named `name`. */
export function buildModelStatement(
  name: string,
  digests: readonly FileDigest[],
  ignorePaths: readonly string[] = DEFAULT_IGNORE_PATHS,
): InTotoStatement {
  const sorted = [...digests].sort(byPath);
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name, digest: { sha256: rootDigest(sorted) } }],
    predicateType: MODEL_SIGNING_PREDICATE_TYPE,
    predicate: {
      serialization: {
        method: 'files',
        hash_type: 'sha256',
        allow_symlinks: false,
        ignore_paths: [...ignorePaths],
      },
      resources: sorted.map((d) => ({ name: d.path, algorithm: 'sha256', digest: d.sha256 })),
    },
  };
}

/** DSSE v1 pre-authentication encoding. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

/** The PEM (SPKI) text of a public key, in the one layout both Node and Python's `cryptography` write. */
export function canonicalPublicKeyPem(key: KeyObject | string): string {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  return k.export({ type: 'spki', format: 'pem' }).toString();
}

/** The key hint model_signing records: hex sha256 of the PEM public key text. */
export function publicKeyHint(key: KeyObject | string): string {
  return createHash('sha256').update(canonicalPublicKeyPem(key), 'utf8').digest('hex');
}

function ecP256Private(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      'signing key is not a readable PEM private key',
    );
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== SIGNING_CURVE)
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      'signing key must be an EC P-256 private key',
    );
  return key;
}

/** A fresh P-256 key pair as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: SIGNING_CURVE,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/**
 * A key signer: `loadPrivateKeyPem` is called for every signature (the secret store is the one place
 * the key lives; rotation needs no restart) and its result is dropped after use.
 */
export function createKeySigner(loadPrivateKeyPem: () => Promise<string>): StatementSigner {
  const load = async () => ecP256Private(await loadPrivateKeyPem());
  return {
    kind: 'key',
    async identity(): Promise<SignerIdentity> {
      return { kind: 'key', id: publicKeyHint(createPublicKey(await load())) };
    },
    async signStatement(statement: InTotoStatement): Promise<SigstoreBundleJson> {
      const key = await load();
      const payload = Buffer.from(JSON.stringify(statement, null, 2), 'utf8');
      const sig = sign('sha256', pae(IN_TOTO_PAYLOAD_TYPE, payload), key);
      return {
        mediaType: SIGSTORE_BUNDLE_V03,
        verificationMaterial: { publicKey: { hint: publicKeyHint(createPublicKey(key)) }, tlogEntries: [] },
        dsseEnvelope: {
          payload: payload.toString('base64'),
          payloadType: IN_TOTO_PAYLOAD_TYPE,
          signatures: [{ sig: sig.toString('base64'), keyid: '' }],
        },
      };
    },
  };
}

// Key mode trusts keys, not a Sigstore root: an empty root, no logs, no authorities.
const EMPTY_TRUSTED_ROOT: TrustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot.v0.2+json',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

/** Parses a bundle's JSON (object or text) into a checked v0.3 DSSE bundle, or refuses as `malformed`. */
function parseBundle(raw: unknown): ReturnType<typeof bundleFromJSON> {
  let json: unknown = raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    try {
      json = JSON.parse(raw.toString());
    } catch {
      throw new ModelSignatureError(ModelSignatureCode.malformed, 'signature bundle is not JSON');
    }
  }
  if (typeof json !== 'object' || json === null)
    throw new ModelSignatureError(ModelSignatureCode.malformed, 'signature bundle is not a JSON object');
  const mediaType = (json as { mediaType?: unknown }).mediaType;
  if (mediaType !== SIGSTORE_BUNDLE_V03)
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      `signature bundle media type ${JSON.stringify(mediaType)} is not ${SIGSTORE_BUNDLE_V03}`,
    );
  try {
    const bundle = bundleFromJSON(json);
    if (bundle.content.$case !== 'dsseEnvelope')
      throw new ModelSignatureError(ModelSignatureCode.malformed, 'signature bundle holds no DSSE envelope');
    return bundle;
  } catch (err) {
    if (err instanceof ModelSignatureError) throw err;
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      `signature bundle is invalid: ${(err as Error).message}`,
    );
  }
}

/**
 * A key verifier trusting exactly `trustedPublicKeys` (PEM). A bundle naming any other key hint is
 * refused as `untrusted-key`; a wrong signature as `bad-signature`.
 */
export function createKeyVerifier(trustedPublicKeys: readonly string[]): StatementVerifier {
  const byHint = new Map<string, KeyObject>();
  for (const pem of trustedPublicKeys) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      throw new ModelSignatureError(
        ModelSignatureCode.malformed,
        'a trusted signing key is not a PEM public key',
      );
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== SIGNING_CURVE)
      throw new ModelSignatureError(ModelSignatureCode.malformed, 'trusted signing keys must be EC P-256');
    byHint.set(publicKeyHint(key), key);
  }
  const finder: KeyFinderFunc = (hint) => {
    const key = byHint.get(hint);
    if (!key)
      throw new ModelSignatureError(ModelSignatureCode.untrustedKey, `signed by an unknown key ${hint}`);
    return { publicKey: key, validFor: () => true };
  };
  const verifier = new Verifier(toTrustMaterial(EMPTY_TRUSTED_ROOT, finder), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  return {
    kind: 'key',
    async verifyStatement(raw: unknown) {
      const bundle = parseBundle(raw);
      const material = bundle.verificationMaterial.content;
      if (material.$case !== 'publicKey' || !material.publicKey.hint)
        throw new ModelSignatureError(
          ModelSignatureCode.untrustedKey,
          'signature bundle names no public key hint (keyless bundles need a keyless verifier)',
        );
      const hint = material.publicKey.hint;
      try {
        verifier.verify(toSignedEntity(bundle));
      } catch (err) {
        if (err instanceof ModelSignatureError) throw err;
        throw new ModelSignatureError(
          ModelSignatureCode.badSignature,
          `signature does not verify with key ${hint}: ${(err as Error).message}`,
        );
      }
      if (bundle.content.$case !== 'dsseEnvelope')
        throw new ModelSignatureError(
          ModelSignatureCode.malformed,
          'signature bundle holds no DSSE envelope',
        );
      const env = bundle.content.dsseEnvelope;
      if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE)
        throw new ModelSignatureError(
          ModelSignatureCode.malformed,
          `DSSE payload type ${env.payloadType} is not ${IN_TOTO_PAYLOAD_TYPE}`,
        );
      let json: unknown;
      try {
        json = JSON.parse(env.payload.toString('utf8'));
      } catch {
        throw new ModelSignatureError(ModelSignatureCode.malformed, 'DSSE payload is not JSON');
      }
      const parsed = StatementSchema.safeParse(json);
      if (!parsed.success)
        throw new ModelSignatureError(
          ModelSignatureCode.malformed,
          formatZodError(parsed.error, 'in-toto statement'),
        );
      return { statement: parsed.data as InTotoStatement, signer: { kind: 'key', id: hint } };
    },
  };
}

/** Reads the model-signature predicate of a verified statement, refusing other predicates. */
export function modelSignaturePredicate(statement: InTotoStatement): ModelSignaturePredicate {
  if (statement.predicateType !== MODEL_SIGNING_PREDICATE_TYPE)
    throw new ModelSignatureError(
      ModelSignatureCode.wrongSubject,
      `statement is a ${statement.predicateType}, not a model signature`,
    );
  const parsed = ModelSignaturePredicateSchema.safeParse(statement.predicate);
  if (!parsed.success)
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      formatZodError(parsed.error, 'model signature predicate'),
    );
  const p = parsed.data;
  if (p.serialization.method !== 'files' || p.serialization.hash_type !== 'sha256')
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      `serialization ${p.serialization.method}/${p.serialization.hash_type} is not supported (only files/sha256)`,
    );
  for (const r of p.resources)
    if (r.algorithm !== 'sha256')
      throw new ModelSignatureError(
        ModelSignatureCode.malformed,
        `${r.name}: algorithm ${r.algorithm} is not sha256`,
      );
  return p;
}

/**
 * Compares signed digests with recomputed ones. Lists every changed, added, removed and renamed
 * (same content under another name) file; checks the subject digest and, when given, the name.
 */
export function verifyModelDigests(
  statement: InTotoStatement,
  actual: readonly FileDigest[],
  options: { expectedName?: string } = {},
): { name: string; rootDigest: string; files: number } {
  const predicate = modelSignaturePredicate(statement);
  const subject = statement.subject[0];
  if (!subject || statement.subject.length !== 1)
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      'a model signature names exactly one subject',
    );
  const signedRoot = subject.digest.sha256 ?? '';
  const resources = [...predicate.resources].sort((a, b) => byPath({ path: a.name }, { path: b.name }));
  if (rootDigest(resources.map((r) => ({ sha256: r.digest }))) !== signedRoot)
    throw new ModelSignatureError(
      ModelSignatureCode.malformed,
      'statement is inconsistent: resources do not hash to its subject digest',
    );
  if (options.expectedName !== undefined && subject.name !== options.expectedName)
    throw new ModelSignatureError(
      ModelSignatureCode.wrongSubject,
      `signature is for ${JSON.stringify(subject.name)}, not ${JSON.stringify(options.expectedName)}`,
    );
  const signed = new Map(resources.map((r) => [r.name, r.digest]));
  const seen = new Map(actual.map((f) => [f.path, f.sha256]));
  const problems: string[] = [];
  const added = actual.filter((f) => !signed.has(f.path));
  const removed = resources.filter((r) => !seen.has(r.name));
  for (const f of actual) {
    const want = signed.get(f.path);
    if (want !== undefined && want !== f.sha256)
      problems.push(`${f.path}: changed (sha256 ${f.sha256}, signed ${want})`);
  }
  const renamedFrom = new Set<string>();
  for (const f of added) {
    const from = removed.find((r) => r.digest === f.sha256 && !renamedFrom.has(r.name));
    if (from) {
      renamedFrom.add(from.name);
      problems.push(`${from.name}: renamed to ${f.path}`);
    } else problems.push(`${f.path}: added (not in the signature)`);
  }
  for (const r of removed)
    if (!renamedFrom.has(r.name)) problems.push(`${r.name}: removed (signed, missing)`);
  if (problems.length > 0)
    throw new ModelSignatureError(
      ModelSignatureCode.mismatch,
      `model does not match its signature: ${problems.join('; ')}`,
      problems,
    );
  return { name: subject.name, rootDigest: signedRoot, files: actual.length };
}

/** Signs the files below `dir` (the signature file itself and git paths ignored). */
export async function signModelFolder(
  dir: string,
  signer: StatementSigner,
  options: { name: string; ignorePaths?: readonly string[]; threads?: number },
): Promise<{ bundle: SigstoreBundleJson; statement: InTotoStatement; digests: FileDigest[] }> {
  const ignorePaths = options.ignorePaths ?? [...DEFAULT_IGNORE_PATHS, DEFAULT_SIGNATURE_FILE];
  const digests = await digestFolder(dir, { ignorePaths, threads: options.threads });
  const statement = buildModelStatement(options.name, digests, ignorePaths);
  return { bundle: await signer.signStatement(statement), statement, digests };
}

/** Verifies `bundle` against the files below `dir`: envelope first, then every digest recomputed. */
export async function verifyModelFolder(
  dir: string,
  bundle: unknown,
  verifier: StatementVerifier,
  options: { expectedName?: string; threads?: number } = {},
): Promise<{ signer: SignerIdentity; name: string; rootDigest: string; files: number }> {
  const { statement, signer } = await verifier.verifyStatement(bundle);
  const predicate = modelSignaturePredicate(statement);
  const ignorePaths = [...(predicate.serialization.ignore_paths ?? []), DEFAULT_SIGNATURE_FILE];
  const actual = await digestFolder(dir, { ignorePaths, threads: options.threads });
  return { signer, ...verifyModelDigests(statement, actual, options) };
}

/** Signs in-memory files (paths relative to the model folder). */
export async function signModelFiles(
  files: ReadonlyArray<{ path: string; content: Buffer }>,
  signer: StatementSigner,
  options: { name: string },
): Promise<{ bundle: SigstoreBundleJson; statement: InTotoStatement }> {
  const statement = buildModelStatement(options.name, digestBuffers(files));
  return { bundle: await signer.signStatement(statement), statement };
}

/** Verifies `bundle` against in-memory files: the very bytes a loader is about to use. */
export async function verifyModelFiles(
  files: ReadonlyArray<{ path: string; content: Buffer }>,
  bundle: unknown,
  verifier: StatementVerifier,
  options: { expectedName?: string } = {},
): Promise<{ signer: SignerIdentity; name: string; rootDigest: string; files: number }> {
  const { statement, signer } = await verifier.verifyStatement(bundle);
  return { signer, ...verifyModelDigests(statement, digestBuffers(files), options) };
}
