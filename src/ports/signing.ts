/**
 * The signer/verifier port for signed statements about models: an in-toto Statement wrapped in a
 * DSSE envelope inside a Sigstore bundle (v0.3), the format OpenSSF model signing writes.
 *
 * Two statements are signed per version: the model signature (predicate
 * `https://model_signing/signature/v1.0`, every file's digest) and the evidence binding (model
 * digest, card, gate verdict, approvals, dataset hashes). Implementations live in src/security:
 * key-based (EC P-256 from the secret store) today. Keyless signing (a Fulcio certificate for an
 * OIDC identity, a Rekor entry) needs the public Sigstore services, out of reach offline; it plugs
 * in here as another `kind` whose verifier checks a certificate identity instead of a key.
 */

/** An in-toto v1 Statement (https://in-toto.io/Statement/v1). */
export interface InTotoStatement {
  _type: 'https://in-toto.io/Statement/v1';
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** A Sigstore bundle as JSON (media type `application/vnd.dev.sigstore.bundle.v0.3+json`). */
export type SigstoreBundleJson = Record<string, unknown>;

/** Who signed: the key hint (sha256 of the PEM public key, as model_signing records it) or a certificate identity. */
export interface SignerIdentity {
  kind: 'key' | 'keyless';
  id: string;
}

export interface StatementSigner {
  readonly kind: SignerIdentity['kind'];
  /** The identity the bundles of this signer carry. */
  identity(): Promise<SignerIdentity>;
  /** Signs `statement` into a bundle. Key material is read when needed and never returned. */
  signStatement(statement: InTotoStatement): Promise<SigstoreBundleJson>;
}

export interface StatementVerifier {
  readonly kind: SignerIdentity['kind'];
  /**
   * Verifies the bundle's envelope (signature, trusted signer) offline and returns the statement it
   * carries. Throws `ModelSignatureError` (src/security/model-signing.ts) on any failure. It proves
   * who signed what; that the statement matches the files is the caller's check.
   */
  verifyStatement(bundle: unknown): Promise<{ statement: InTotoStatement; signer: SignerIdentity }>;
}
