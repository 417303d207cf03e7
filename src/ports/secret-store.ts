/**
 * The secret-store port: signing keys, registry credentials and API-key hashes come from here,
 * never from code, workflow input or history. Workflows and configuration carry only a
 * {@link SecretRef}; the value is read inside the activity or process that needs it.
 * Implementations (src/secrets): files under the state folder and the environment (development),
 * Kubernetes Secrets, OpenBao/Vault KV v2.
 */

export interface SecretRef {
  /** Secret name (a Kubernetes Secret, a KV path, a folder under the file store). */
  secret: string;
  /** Key inside it. */
  key: string;
}

export interface SecretStore {
  readonly kind: string;
  /** The value, or undefined when the secret or key does not exist. */
  get(ref: SecretRef): Promise<string | undefined>;
}

/** A store that can also write (key provisioning in the demo and tests). */
export interface WritableSecretStore extends SecretStore {
  put(ref: SecretRef, value: string): Promise<void>;
}
