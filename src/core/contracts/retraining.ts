/**
 * The public contract of the `retrainingPipeline` workflow family: task queue, workflow type and id
 * scheme, input schema, status shape, and the signal / query / update definitions. Clients, the
 * worker, tests and docs all import this module, so the names cannot drift.
 *
 * Sandbox-safe: loaded inside the workflow bundle. Imports only zod, @temporalio/workflow's
 * definition helpers and other contracts.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { FeatureSpecSchema, type DatasetProfile, type ValidationReport } from './feature-spec';
import { CanaryPolicySchema, KpiGuardPolicySchema, type KpiGuardWindow } from './canary';
import { StagingPolicySchema, type StagingMeasurement, type StagingVerdict } from './staging';
import type { KpiBreach } from './gateway';
import { JOB_PROGRESS_SIGNAL, type JobProgress } from './jobs';
import { FRAUD_FEATURE_SPEC } from './fraud';
import type {
  ApprovalState,
  ApprovePayloadInput,
  RejectPayloadInput,
  SubmitApprovalInput,
  SubmitApprovalResult,
} from './approval';
import { ApprovalMessageName, ApprovalSignatureSchema } from './approval';
import { DurationSchema, ModelNameSchema, Sha256HexSchema } from './primitives';
import type { Comparison, GateDecision, GateVerdict, ModelEvaluation } from './gate';
import type { EvaluationSummary } from './evaluation';
import type { ModelPolicy } from './model-policy';

/** Default task queue of every workflow and activity of the control plane. */
export const DEFAULT_TASK_QUEUE = 'mlops';

export const WORKFLOW_TYPES = {
  retrainingPipeline: 'retrainingPipeline',
  canaryRollout: 'canaryRollout',
  driftMonitor: 'driftMonitor',
  newDataCheck: 'newDataCheck',
} as const;

/** One pipeline per model at a time: the id is derived from the model name. */
export const retrainWorkflowId = (model: string): string => `retrain-${model}`;

export { MODEL_NAME_PATTERN } from './primitives';

/** Image the local and Kubernetes job runners run when the input names none. */
export const DEFAULT_TRAINER_IMAGE = 'mlops/reference-trainer:latest';
/** Reference trainer backend: scikit-learn on CPU; `torch` uses CUDA when the node has a GPU. */
export const DEFAULT_TRAINER_BACKEND = 'sklearn';
/** Seed for the reference trainer when none is given: training is reproducible by default. */
export const DEFAULT_TRAINING_SEED = 42;
/** A training Job that runs longer than this is failed and cleaned up. */
export const DEFAULT_TRAINING_TIMEOUT = '2h';
export { Aliases, MODEL_ARTIFACT_PATH } from './registry';

export const DatasetRefSchema = z
  .object({
    /** file:// URI or a local path (object-storage URIs come with their own data connector). */
    uri: z.string().min(1),
    /** When given, the snapshot must hash to exactly this value or the pipeline is rejected. */
    sha256: Sha256HexSchema.optional(),
  })
  .strict();
export type DatasetRef = z.infer<typeof DatasetRefSchema>;

export const TriggerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('manual'), by: z.string().min(1).optional() }).strict(),
  z.object({ kind: z.literal('schedule'), scheduleId: z.string().min(1).optional() }).strict(),
  z
    .object({
      kind: z.literal('drift'),
      metric: z.string().min(1).optional(),
      score: z.number().optional(),
      report: z.string().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('kpi-drop'),
      metric: z.string().min(1),
      value: z.number(),
      threshold: z.number(),
      report: z.string().optional(),
    })
    .strict(),
  z.object({ kind: z.literal('new-data'), batch: z.string().optional() }).strict(),
]);
export type Trigger = z.infer<typeof TriggerSchema>;

export const TrainingOptionsSchema = z
  .object({
    image: z.string().min(1).default(DEFAULT_TRAINER_IMAGE),
    backend: z.enum(['sklearn', 'torch']).default(DEFAULT_TRAINER_BACKEND),
    seed: z.number().int().nonnegative().default(DEFAULT_TRAINING_SEED),
    hyperparams: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    gpus: z.number().int().nonnegative().default(0),
    /** A duration such as `2h` or `1h30m` (see parseDuration). */
    timeout: DurationSchema.default(DEFAULT_TRAINING_TIMEOUT),
  })
  .strict();
export type TrainingOptions = z.infer<typeof TrainingOptionsSchema>;

/** Most history events of one run's approval wait before it continues as new (Temporal warns at 10,240). */
export const APPROVAL_HISTORY_EVENTS_LIMIT = 8000;
/** Lowest `approvalHistoryLimit` an input may ask for (tests use a low one; below it a run would do nothing but continue). */
export const APPROVAL_HISTORY_EVENTS_MIN = 100;
/** History bytes of one run's approval wait before it continues as new (Temporal warns at 10 MB). */
export const APPROVAL_HISTORY_BYTES_LIMIT = 8 * 1024 * 1024;

// A carried object: produced by this workflow's own continue-as-new, so only its presence is checked.
const carried = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), `must be the carried ${what}`);

/**
 * What a run carries into its continuation while it waits for approval (continue-as-new when its
 * history grows too long): the status so far, the results of the stages already run (so none of
 * them runs again), the policy the run was judged under, and the approval wait itself: its state
 * (approvals, attempts), refusal count and absolute deadline. No secret is in it: policies hold
 * public keys only. Accepted only by a run that Temporal started as a continuation.
 */
export const ApprovalResumeSchema = z.strictObject({
  stage: z.literal('awaiting-approval'),
  /** The run that continued into this one, and how many continuations came before. */
  continuedFrom: z.string().min(1),
  continuations: z.number().int().positive(),
  status: carried<PipelineStatus>('status'),
  policy: carried<ModelPolicy>('policy'),
  registered: carried<RegisteredVersion>('registered version'),
  snapshot: carried<DatasetSnapshot>('dataset snapshot'),
  report: carried<ValidationReport>('validation report'),
  profile: carried<DatasetProfile>('dataset profile').optional(),
  summary: carried<EvaluationSummary>('evaluation summary'),
  verdict: carried<GateVerdict>('gate verdict'),
  approval: z.strictObject({
    state: carried<ApprovalState>('approval state'),
    refusals: z.number().int().nonnegative(),
    /** Workflow time (ms since the epoch) at which the wait expires. */
    deadlineMs: z.number().int().positive(),
  }),
});
export type ApprovalResume = z.output<typeof ApprovalResumeSchema>;

export const RetrainingInputSchema = z
  .object({
    model: ModelNameSchema,
    dataset: DatasetRefSchema,
    /**
     * The frozen holdout both champion and challenger are scored on. Without one the pipeline
     * stops after registration (outcome `registered`).
     */
    holdout: DatasetRefSchema.optional(),
    /**
     * When given, an approved version goes through `canaryRollout` (a child workflow, id
     * `canary-<model>-v<version>`) with this policy before the registry aliases move; a rollback
     * ends the pipeline `rolled-back` with `champion` untouched. Needs a worker with the gateway.
     */
    canary: CanaryPolicySchema.optional(),
    /**
     * When given, an approved version is first loaded on the router's staging route (admin
     * principals only) and probed with holdout rows: schema, latency SLO and serving parity with the
     * evaluation's per-example scores. A failure ends the pipeline `rejected-staging` with traffic
     * and aliases untouched. Needs a holdout and a worker with the gateway. `{}` takes every default.
     */
    staging: StagingPolicySchema.optional(),
    /**
     * With `canary`: after promotion the new champion's KPIs are watched for `window`, judged every
     * `interval`; a failed window or a `kpiBreach` signal restores `previous-champion` in traffic and
     * registry and ends the pipeline `rolled-back`. `{}` takes every default.
     */
    kpiGuard: KpiGuardPolicySchema.optional(),
    trigger: TriggerSchema,
    /** Who started the pipeline; with four-eyes approval this person may not approve it. */
    initiator: z.string().min(1).optional(),
    /**
     * The initiator's Ed25519 signature over the start request (`npm run approve -- --sign-start`,
     * src/security/start-signing.ts); proves `initiator` against the model policy's keys.
     */
    startSignature: ApprovalSignatureSchema.optional(),
    /** Feature spec of the dataset; built-in for known models (see BUILTIN_FEATURE_SPECS). */
    featureSpec: FeatureSpecSchema.optional(),
    training: TrainingOptionsSchema.default(TrainingOptionsSchema.parse({})),
    /** Version of the code that built this model (git sha or release), recorded as a tag. */
    codeVersion: z.string().min(1).optional(),
    /**
     * History events after which the approval wait continues as new (also when Temporal suggests
     * it, or past {@link APPROVAL_HISTORY_BYTES_LIMIT}); lower than the default only (tests).
     */
    approvalHistoryLimit: z
      .number()
      .int()
      .min(APPROVAL_HISTORY_EVENTS_MIN)
      .max(APPROVAL_HISTORY_EVENTS_LIMIT)
      .optional(),
    /** Set by the pipeline's own continue-as-new only: where the continued run resumes. */
    resume: ApprovalResumeSchema.optional(),
  })
  .strict()
  .refine((i) => i.staging === undefined || i.holdout !== undefined, {
    path: ['staging'],
    message: 'needs a holdout: serving parity compares with the evaluation of the holdout',
  })
  .refine((i) => i.kpiGuard === undefined || i.canary !== undefined, {
    path: ['kpiGuard'],
    message: 'needs a canary policy: the guard watches the model the canary put behind the router',
  });
export type RetrainingInput = z.input<typeof RetrainingInputSchema>;
export type ParsedRetrainingInput = z.output<typeof RetrainingInputSchema>;

/** Feature specs shipped with the project, by model name. */
export const BUILTIN_FEATURE_SPECS: Readonly<Record<string, z.output<typeof FeatureSpecSchema>>> = {
  fraud: FRAUD_FEATURE_SPEC,
};

export const PIPELINE_STAGES = [
  'starting',
  'snapshotting',
  'validating',
  'training',
  'registering',
  'evaluating',
  'gating',
  'awaiting-approval',
  'staging',
  'canary',
  'promoting',
  'kpi-guard',
  'completed',
  'rejected-data',
  'rejected',
  'rejected-staging',
  'expired',
  'rolled-back',
  'failed',
] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** Stages a pipeline never leaves. */
export const TERMINAL_STAGES: readonly PipelineStage[] = [
  'completed',
  'rejected-data',
  'rejected',
  'rejected-staging',
  'expired',
  'rolled-back',
  'failed',
];

/** How a pipeline ended. */
export type PipelineOutcome =
  | 'registered'
  | 'promoted'
  | 'rejected-data'
  | 'rejected'
  | 'expired'
  | 'not-promoted'
  | 'rolled-back'
  | 'rejected-staging';

export interface DatasetSnapshot {
  sourceUri: string;
  /** Content-addressed copy the trainer reads: immutable for the life of the pipeline. */
  snapshotPath: string;
  sha256: string;
  bytes: number;
}

export interface TrainingResult {
  runId: string;
  experimentId: string;
  jobName: string;
  /** True when this attempt found a finished run from an earlier attempt and adopted it. */
  adopted: boolean;
  metrics: Record<string, number>;
}

export interface RegisteredVersion {
  name: string;
  version: string;
  runId: string;
  source: string;
  manifestSha256: string;
  files: number;
}

export interface Decision {
  stage: PipelineStage;
  decision: string;
  reason: string;
  at: string;
}

export interface PipelineStatus {
  workflowId: string;
  model: string;
  stage: PipelineStage;
  trigger: Trigger;
  dataset?: { sha256: string; rows?: number; snapshotPath: string };
  validation?: { ok: boolean; failedChecks: string[] };
  training?: { runId: string; jobName: string };
  /** The training job as its activity last reported it (queued for admission, running, why it failed). */
  job?: JobProgress;
  candidate?: { version: string; runId: string; alias?: string };
  champion?: { version: string };
  evaluation?: {
    primaryMetric: string;
    holdoutSha256: string;
    holdoutRows: number;
    challenger: ModelEvaluation;
    champion?: { version: string; evaluation: ModelEvaluation };
    comparison?: Comparison;
  };
  gate?: { decision: GateDecision; reasons: string[] };
  /** Present from the approval stage on: attempts (refused ones too), approvals, outcome. */
  approval?: ApprovalState & {
    eligibleApprovers: string[];
    requiredRoles?: string[];
    timeout: string;
    /** When the wait expires (workflow time, ISO); set once it starts, kept across continue-as-new. */
    deadline?: string;
  };
  modelCard?: string;
  /** Present from the staging stage on: what the staging probe measured and how it was judged. */
  staging?: { measurement?: StagingMeasurement; verdict?: StagingVerdict };
  /** Present from the canary stage on: the child rollout and how it ended. */
  canary?: { workflowId: string; outcome?: string; reason?: string };
  /** Present from the kpiGuard stage on: the watched champion, its windows, how the guard ended. */
  kpiGuard?: {
    version: string;
    /** The version a breach restores (traffic and registry). */
    restoreTo?: string;
    windows: KpiGuardWindow[];
    breach?: KpiBreach;
    outcome?: 'passed' | 'rolled-back';
    reason?: string;
  };
  decisions: Decision[];
  error?: string;
}

export interface PipelineResult {
  outcome: PipelineOutcome;
  status: PipelineStatus;
  validation?: ValidationReport;
  profile?: DatasetProfile;
}

/** Signal `jobProgress`, sent by the training activity: the job's phase, reason and message. */
export const jobProgressSignal = defineSignal<[JobProgress]>(JOB_PROGRESS_SIGNAL);

/** Query `status`: the current stage, candidate and champion, decisions so far with reasons. */
export const statusQuery = defineQuery<PipelineStatus>(ApprovalMessageName.statusQuery);

/** Signal `approve {approver, comment?, modelVersion?, signature?}`: fire-and-forget approval. */
export const approveSignal = defineSignal<[ApprovePayloadInput]>(ApprovalMessageName.approveSignal);
/** Signal `reject {approver, reason, modelVersion?, signature?}`. */
export const rejectSignal = defineSignal<[RejectPayloadInput]>(ApprovalMessageName.rejectSignal);
/**
 * Update `submitApproval {decision, approver, ...}`: the caller learns at once whether the attempt
 * was accepted. Malformed payloads are refused by the validator; policy refusals are recorded in
 * `status` and the audit log, then returned to the caller as an `ApprovalRefused` failure.
 */
export const submitApprovalUpdate = defineUpdate<SubmitApprovalResult, [SubmitApprovalInput]>(
  ApprovalMessageName.submitUpdate,
);
