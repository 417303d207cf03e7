/**
 * The signer/verifier port for model artifacts: a signature over a version's digest manifest,
 * created at registration and verified at every hop (promotion, serving). Implementations arrive
 * with the supply-chain issue (sigstore bundles, or keys from the secret store).
 */

export interface ArtifactSignature {
  /** Signature scheme, e.g. `ed25519` or `sigstore-bundle`. */
  scheme: string;
  /** Key id or signer identity. */
  keyId: string;
  /** Base64 signature or serialised bundle. */
  value: string;
}

export interface ArtifactSigner {
  readonly kind: string;
  sign(manifestSha256: string): Promise<ArtifactSignature>;
}

export interface ArtifactVerifier {
  readonly kind: string;
  /** Throws when `signature` is not a valid signature of `manifestSha256` by a trusted identity. */
  verify(manifestSha256: string, signature: ArtifactSignature): Promise<void>;
}
