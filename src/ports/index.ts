/**
 * The ports: one small interface per outside system, each with a factory chosen by configuration
 * and a fake for fast workflow-logic tests. Activities are built from ports, never from concrete
 * clients.
 *
 * | port             | interface                                   | implementations                                      |
 * | ---------------- | ------------------------------------------- | ---------------------------------------------------- |
 * | job runner       | `JobRunner` (src/jobs/types.ts)             | local processes (default), Kubernetes Jobs; test fake |
 * | model registry   | `ModelRegistry` (./model-registry.ts)       | MLflow (src/registry/mlflow.ts); in-memory fake       |
 * | audit sink       | `AuditSink` (src/audit/sink.ts)             | hash-chained JSONL file; in-memory fake               |
 * | traffic router   | `TrafficRouter` (./traffic-router.ts)       | the inference gateway's admin API                     |
 * | inference log    | `InferenceLog` (./inference-log.ts)         | the gateway's partitioned log files                   |
 * | KPI source       | `KpiSource` (./kpi-source.ts)               | the gateway's metrics, Prometheus                     |
 * | signer/verifier  | `StatementSigner`, `StatementVerifier` (./signing.ts) | EC P-256 keys (src/security/model-signing.ts) |
 * | secret store     | `SecretStore` (./secret-store.ts)           | files under the state folder, env; OpenBao, K8s Secrets |
 */
export type { ArtifactEntry, ModelRegistry, RegistryRun, RegistryVersion } from './model-registry';
export type { JobRunner, JobSpec, JobStatus } from '../jobs/types';
export type { AuditSink } from '../audit/sink';
export type { KpiSource } from './kpi-source';
export type { InTotoStatement, SignerIdentity, StatementSigner, StatementVerifier } from './signing';
export type { SecretStore, SecretRef } from './secret-store';
