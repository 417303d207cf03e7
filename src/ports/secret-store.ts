/**
 * The secret-store port: signing keys, registry credentials and API-key hashes come from here,
 * never from code, workflow input or history. Implementations: the worker's environment and files
 * under the state folder (embedded default), Kubernetes Secrets and OpenBao/Vault KV (later).
 */

export interface SecretRef {
  /** Secret name (a Kubernetes Secret, a KV path). */
  secret: string;
  /** Key inside it. */
  key: string;
}

export interface SecretStore {
  readonly kind: string;
  /** The value, or undefined when the secret or key does not exist. */
  get(ref: SecretRef): Promise<string | undefined>;
}
