/**
 * The model registry's vocabulary: every tag the control plane writes on runs and versions, and
 * the aliases it moves. One place, sandbox-safe, so workflows, activities, the gateway, the demo
 * and the tests read the same names. The registry adapters (src/registry) own how they are stored
 * and searched.
 */

/** Tags on training runs. */
export const RunTags = {
  /** Job name of the training run: how a retried activity finds the run of an earlier attempt. */
  jobName: 'mlops.job_name',
  workflowId: 'mlops.workflow_id',
  workflowRunId: 'mlops.workflow_run_id',
  datasetSha256: 'mlops.dataset_sha256',
  trigger: 'mlops.trigger',
  featureSpec: 'mlops.feature_spec',
  /** The version registered from this run. */
  modelVersion: 'mlops.model_version',
} as const;

/** Tags on model versions. */
export const VersionTags = {
  datasetSha256: 'mlops.dataset_sha256',
  datasetRows: 'mlops.dataset_rows',
  workflowId: 'mlops.workflow_id',
  trigger: 'mlops.trigger',
  codeVersion: 'mlops.code_version',
  /** sha256 of the digest manifest: every use of the version re-verifies against it. */
  manifestSha256: 'mlops.manifest_sha256',
  manifestPath: 'mlops.manifest_path',
  featureSpec: 'mlops.feature_spec',
  holdoutSha256: 'mlops.holdout_sha256',
  /** `runs:/<run>/model_card/model_card.md` of the version's model card. */
  modelCard: 'mlops.model_card',
  /** promoted | not-promoted | rejected | expired. */
  outcome: 'mlops.outcome',
  outcomeReason: 'mlops.outcome_reason',
  approvedBy: 'mlops.approved_by',
  gateVerdict: 'mlops.gate_verdict',
  promotedBy: 'mlops.promoted_by',
  /** Set on an old champion: the version that replaced it. */
  supersededBy: 'mlops.superseded_by',
} as const;

/** Registry aliases the pipeline moves: a new candidate, the serving model, and the one before it. */
export const Aliases = {
  challenger: 'challenger',
  champion: 'champion',
  previousChampion: 'previous-champion',
} as const;
export type Alias = (typeof Aliases)[keyof typeof Aliases];

/** Artifact folder (inside the training run) the trainer writes the model to; versions point here. */
export const MODEL_ARTIFACT_PATH = 'model';

/** Experiment holding the training runs of a model. */
export const experimentName = (model: string): string => `mlops/${model}`;
