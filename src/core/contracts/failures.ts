/**
 * The one failure taxonomy of the control plane: every `ApplicationFailure.type` that activities
 * and workflows throw, with who throws it and whether a retry can help. Activities map errors onto
 * these in one place (`activities/errors.ts`); workflows read them through one helper
 * (`workflows/shared/failures.ts`) and feed the non-retryable ones to every activity proxy, so a
 * permanent cause is never retried even if a thrower forgot to say so.
 *
 * Sandbox-safe: plain data.
 */

export const FailureType = {
  /** Workflow or activity input failed validation (names the field). Permanent. */
  InvalidInput: 'InvalidInput',
  /** The governance policy of a model is missing or invalid (loadModelPolicy). Permanent. */
  PolicyInvalid: 'PolicyInvalid',
  /** A dataset cannot be read (missing file, unsupported scheme, I/O error) (snapshotDataset). Permanent. */
  DatasetUnreadable: 'DatasetUnreadable',
  /** A dataset hashes to something other than the sha256 its reference pins (snapshotDataset). Permanent. */
  DatasetIntegrity: 'DatasetIntegrity',
  /** A dataset URI names a file outside the worker's dataset roots (symlinks resolved) (snapshotDataset). Permanent. */
  DatasetOutsideRoots: 'DatasetOutsideRoots',
  /** The dataset's store refused the worker's credentials (snapshotDataset, s3://). Permanent until fixed. */
  DatasetAccessDenied: 'DatasetAccessDenied',
  /** The trainer ran and failed, or its job ended for good (deadline, OOM, image pull) (trainCandidate). Permanent. */
  TrainingFailed: 'TrainingFailed',
  /** A job left by an earlier attempt vanished or must be resubmitted (trainCandidate). Retryable. */
  JobInterrupted: 'JobInterrupted',
  /** The job runner refused the spec, or a job of that name belongs to another owner. Permanent. */
  JobSpec: 'JobSpec',
  /** A model artifact fails its digest manifest or cannot be verified (registry, evaluation). Permanent. */
  ArtifactIntegrity: 'ArtifactIntegrity',
  /** A model does not match its feature spec's inputs or outputs (evaluateCandidate). Permanent. */
  ModelContract: 'ModelContract',
  /** The holdout shares rows with the training snapshot (evaluateCandidate). Permanent. */
  HoldoutLeak: 'HoldoutLeak',
  /** The holdout is unusable: wrong columns, unparsable values (evaluateCandidate). Permanent. */
  HoldoutInvalid: 'HoldoutInvalid',
  /** A statistics routine got structurally invalid input: a caller bug (evaluateCandidate). Permanent. */
  StatsInput: 'StatsInput',
  /** An audit event id was reused with different content, or the event is invalid (recordAudit). Permanent. */
  AuditConflict: 'AuditConflict',
  /** The audit log file is corrupt: its hash chain is broken (recordAudit). Permanent. */
  AuditCorrupt: 'AuditCorrupt',
  /** An approval payload is malformed (submitApproval validator). Permanent. */
  InvalidApproval: 'InvalidApproval',
  /** An approval was refused by the policy (submitApproval handler; recorded, never fails the run). Permanent. */
  ApprovalRefused: 'ApprovalRefused',
  /** The model registry refused the credentials (401/403). Permanent until the operator fixes them. */
  RegistryUnauthorized: 'RegistryUnauthorized',
  /** The model registry refused the request as invalid or answered outside its API. Permanent. */
  RegistryRequest: 'RegistryRequest',
  /** The model registry is unreachable or failing (5xx, network). Retryable with backoff. */
  RegistryUnavailable: 'RegistryUnavailable',
  /** A resource the registry should hold is missing (version, alias, artifact). Permanent. */
  RegistryNotFound: 'RegistryNotFound',
  /** The traffic router refused a change (unknown model, bad version, integrity) (traffic activities). Permanent. */
  TrafficRefused: 'TrafficRefused',
  /** The traffic router is unreachable or failing (traffic activities). Retryable with backoff. */
  TrafficUnavailable: 'TrafficUnavailable',
  /** The router's state read back differs from what was set (traffic activities). Retryable. */
  TrafficNotApplied: 'TrafficNotApplied',
  /** A model version carries no signature where one is required (every hop: sign, evaluate, approve, deploy, load). Permanent. */
  ModelSignatureMissing: 'ModelSignatureMissing',
  /** A model signature is malformed or its envelope does not verify (every hop). Permanent. */
  ModelSignatureInvalid: 'ModelSignatureInvalid',
  /** A model signature is by a key nobody trusts (every hop). Permanent. */
  ModelSignatureUntrusted: 'ModelSignatureUntrusted',
  /** A model's files differ from its signature: changed, added, removed or renamed (every hop). Permanent. */
  ModelSignatureMismatch: 'ModelSignatureMismatch',
  /** A valid signature of another model or another version (every hop). Permanent. */
  ModelSignatureWrongSubject: 'ModelSignatureWrongSubject',
  /** A human start without the signed request its model's policy requires, or one that does not verify. Permanent. */
  InitiatorUnproven: 'InitiatorUnproven',
  /** A model file is in an unsafe or disallowed format (pickle, Keras Lambda, ONNX custom op...) (registration, load). Permanent. */
  UnsafeModelFormat: 'UnsafeModelFormat',
  /** The KPI source is unreachable or answered garbage (snapshotKpis). Retryable; the canary counts it as an error. */
  KpiUnavailable: 'KpiUnavailable',
  /** A retraining run refused by its model's lock: another run holds it, or the cool-down (holdModelLock). Permanent for that run. */
  ModelLocked: 'ModelLocked',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failure types that a retry cannot fix: every activity proxy lists them as non-retryable. */
export const NON_RETRYABLE_FAILURE_TYPES: readonly FailureType[] = Object.values(FailureType).filter(
  (t) =>
    t !== FailureType.JobInterrupted &&
    t !== FailureType.RegistryUnavailable &&
    t !== FailureType.TrafficUnavailable &&
    t !== FailureType.TrafficNotApplied &&
    t !== FailureType.KpiUnavailable,
);

export function isFailureType(value: unknown): value is FailureType {
  return typeof value === 'string' && (Object.values(FailureType) as string[]).includes(value);
}
