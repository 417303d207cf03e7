/**
 * Training activity: runs the trainer as a job through the job-runner port and waits for it,
 * heartbeating progress. Idempotent: the registry run and the job are found by a name derived from
 * the workflow execution, so a retried activity adopts what an earlier attempt started instead of
 * training twice. What to do with a job that ended is decided by the pure job failure table
 * (`decideJobFailure`): a lost, evicted or preempted job is resubmitted, one that ran out of its
 * deadline or memory fails for good. Cancellation deletes the job.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { FeatureSpec } from '../src/core/contracts/feature-spec';
import { FailureType } from '../src/core/contracts/failures';
import { JOB_PROGRESS_SIGNAL, JobPhase, JobReason, type JobProgress } from '../src/core/contracts/jobs';
import { parseDuration } from '../src/core/contracts/approval';
import { experimentName, MODEL_ARTIFACT_PATH, RunTags } from '../src/core/contracts/registry';
import type {
  DatasetSnapshot,
  TrainingOptions,
  TrainingResult,
  Trigger,
} from '../src/core/contracts/retraining';
import { decideJobFailure } from '../src/core/policy/job-failures';
import { OWNER_LABEL, type JobRunner, type JobSpec, type JobStatus } from '../src/jobs/types';
import type { ModelRegistry } from '../src/ports/model-registry';
import { mapped, owningWorkflow } from './errors';

/** How often the activity polls the job and heartbeats. */
export const JOB_POLL_INTERVAL_MS = 2_000;
/** Log lines of a failed trainer carried in the failure (and so shown in the Temporal UI). */
export const FAILURE_LOG_LINES = 25;
/** Secret holding the registry credentials that training jobs report with (keys = env var names). */
export const DEFAULT_CREDENTIALS_SECRET = 'mlflow-credentials';
/** Environment variables of the job filled from the credentials secret. */
const CREDENTIAL_KEYS = [
  'MLFLOW_TRACKING_USERNAME',
  'MLFLOW_TRACKING_PASSWORD',
  'MLFLOW_TRACKING_TOKEN',
] as const;

export { experimentName };

export interface TrainingActivityConfig {
  registry: ModelRegistry;
  jobs: JobRunner;
  /** Tracking URI as seen from inside the job (may differ from the worker's in a cluster). */
  jobTrackingUri?: string;
  /** Secret (Kubernetes Secret, or the worker's environment for the local runner) with registry credentials. */
  credentialsSecret?: string;
  /** Poll interval override (tests). */
  pollIntervalMs?: number;
}

/** Deterministic job name for one workflow execution: the Kubernetes Job name, too. */
export function trainingJobName(model: string, workflowId: string, runId: string): string {
  const suffix = createHash('sha256').update(`${workflowId}/${runId}`).digest('hex').slice(0, 10);
  return `train-${model}`.slice(0, 63 - 11) + `-${suffix}`;
}

/** What the activity saw when a job status is missing altogether: it vanished with its runner. */
const VANISHED: Omit<JobStatus, 'name' | 'labels'> = {
  phase: JobPhase.failed,
  reason: JobReason.lost,
  message: 'the job disappeared',
};

export function createTrainingActivities(cfg: TrainingActivityConfig) {
  const { registry, jobs } = cfg;
  const secret = cfg.credentialsSecret ?? DEFAULT_CREDENTIALS_SECRET;
  const pollMs = cfg.pollIntervalMs ?? JOB_POLL_INTERVAL_MS;
  return {
    async trainCandidate(input: {
      model: string;
      snapshot: DatasetSnapshot;
      spec: FeatureSpec;
      training: TrainingOptions;
      trigger: Trigger;
    }): Promise<TrainingResult> {
      const ctx = Context.current();
      const { workflowId, runId: wfRunId } = owningWorkflow(ctx.info);
      const jobName = trainingJobName(input.model, workflowId, wfRunId);
      const experimentId = await mapped(() => registry.ensureExperiment(experimentName(input.model)));

      // Adopt the run of an earlier attempt if there is one.
      let run = await mapped(() => registry.findRunByJobName(experimentId, jobName));
      if (run && run.status === 'FINISHED') {
        return { runId: run.runId, experimentId, jobName, adopted: true, metrics: { ...run.metrics } };
      }
      if (!run) {
        run = await mapped(() =>
          registry.createRun({
            experimentId,
            runName: jobName,
            tags: {
              [RunTags.jobName]: jobName,
              [RunTags.workflowId]: workflowId,
              [RunTags.workflowRunId]: wfRunId,
              [RunTags.datasetSha256]: input.snapshot.sha256,
              [RunTags.trigger]: input.trigger.kind,
              [RunTags.featureSpec]: `${input.spec.name}@${input.spec.version}`,
            },
          }),
        );
      }
      const trainingRunId = run.runId;

      const spec: JobSpec = {
        name: jobName,
        image: input.training.image,
        env: {
          MLFLOW_TRACKING_URI: cfg.jobTrackingUri ?? registry.trackingUri,
          MLFLOW_RUN_ID: trainingRunId,
          MLOPS_DATASET_URI: pathToFileURL(input.snapshot.snapshotPath).href,
          MLOPS_DATASET_PATH: input.snapshot.snapshotPath,
          MLOPS_DATASET_SHA256: input.snapshot.sha256,
          MLOPS_FEATURE_SPEC: JSON.stringify(input.spec),
          MLOPS_ARTIFACT_PATH: MODEL_ARTIFACT_PATH,
          MLOPS_SEED: String(input.training.seed),
          MLOPS_HYPERPARAMS: JSON.stringify(input.training.hyperparams),
          MLOPS_BACKEND: input.training.backend,
        },
        secretEnv: Object.fromEntries(CREDENTIAL_KEYS.map((key) => [key, { secret, key }])),
        resources: input.training.gpus > 0 ? { gpus: input.training.gpus } : undefined,
        labels: { [OWNER_LABEL]: jobName, 'mlops.io/model': input.model, 'mlops.io/stage': 'train' },
        activeDeadlineSeconds: Math.ceil(parseDuration(input.training.timeout) / 1000),
      };

      const fail = async (why: string, status: JobStatus | undefined, hint?: string): Promise<never> => {
        const tail = await jobs.logs(jobName, FAILURE_LOG_LINES);
        await mapped(() => registry.endRun(trainingRunId, 'FAILED'));
        throw ApplicationFailure.create({
          type: FailureType.TrainingFailed,
          nonRetryable: true,
          message: `trainer job ${jobName} failed (${why})${hint ? `; ${hint}` : ''}; last log lines:\n${tail}`,
          details: [
            { jobName, reason: status?.reason ?? null, exitCode: status?.exitCode ?? null, logTail: tail },
          ],
        });
      };

      // Resubmissions survive an activity retry through the heartbeat details.
      const previous = ctx.info.heartbeatDetails as { resubmits?: number } | undefined;
      let resubmits = typeof previous?.resubmits === 'number' ? previous.resubmits : 0;
      await mapped(() => jobs.submit(spec));
      const started = Date.now();
      let reported = '';
      /** Tells the pipeline when the job's phase, reason or message changes (best effort). */
      const report = async (status: JobStatus) => {
        const progress: JobProgress = {
          jobName,
          phase: status.phase,
          reason: status.reason,
          message: status.message,
          resubmits,
          at: new Date().toISOString(),
        };
        const key = `${progress.phase}|${progress.reason ?? ''}|${progress.message ?? ''}|${resubmits}`;
        if (key === reported) return;
        reported = key;
        try {
          await ctx.client.workflow.getHandle(workflowId, wfRunId).signal(JOB_PROGRESS_SIGNAL, progress);
        } catch {
          // No client (a test environment) or the workflow is gone: progress is informational only.
        }
      };
      for (;;) {
        const found = await mapped(() => jobs.status(jobName));
        const status: JobStatus = found ?? { name: jobName, labels: spec.labels, ...VANISHED };
        await report(status);
        ctx.heartbeat({
          jobName,
          phase: status.phase,
          reason: status.reason,
          resubmits,
          elapsedMs: Date.now() - started,
        });
        const action = decideJobFailure(status, resubmits);
        if (action.action === 'done') break;
        if (action.action === 'fail') await fail(action.why, status, action.hint);
        if (action.action === 'resubmit') {
          resubmits += 1;
          await mapped(() => jobs.delete(jobName));
          await mapped(() => jobs.submit(spec));
          ctx.heartbeat({ jobName, phase: JobPhase.pending, resubmits, resubmitted: action.why });
        }
        try {
          await ctx.sleep(pollMs);
        } catch (err) {
          if (err instanceof CancelledFailure) {
            await jobs.delete(jobName);
            await registry.endRun(trainingRunId, 'KILLED').catch(() => {});
          }
          throw err;
        }
      }

      const files = await mapped(() => registry.listArtifacts(trainingRunId, MODEL_ARTIFACT_PATH));
      if (!files.some((f) => f.path.endsWith('model.onnx'))) {
        await fail(`exited 0 but logged no ${MODEL_ARTIFACT_PATH}/model.onnx`, undefined);
      }
      await mapped(() => registry.endRun(trainingRunId, 'FINISHED'));
      const finished = await mapped(() => registry.getRun(trainingRunId));
      return {
        runId: trainingRunId,
        experimentId,
        jobName,
        adopted: false,
        metrics: { ...finished.metrics },
      };
    },
  };
}
