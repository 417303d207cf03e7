/**
 * Training activity: runs the trainer as a job through the `JobRunner` interface and waits for it,
 * heartbeating progress. Idempotent: the MLflow run and the job are found by a name derived from
 * the workflow execution, so a retried activity adopts what an earlier attempt started instead of
 * training twice. Cancellation deletes the job.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { FeatureSpec } from '../src/core/contracts/feature-spec';
import {
  MODEL_ARTIFACT_PATH,
  type DatasetSnapshot,
  type TrainingOptions,
  type TrainingResult,
  type Trigger,
} from '../src/core/contracts/retraining';
import { parseDuration } from '../src/core/contracts/approval';
import { OWNER_LABEL, type JobRunner, type JobSpec } from '../src/jobs/types';
import type { MlflowClient, Run } from '../src/mlflow';
import { FailureTypes, mapped, owningWorkflow } from './errors';

/** How often the activity polls the job and heartbeats. */
export const JOB_POLL_INTERVAL_MS = 2_000;
/** Log lines of a failed trainer carried in the failure (and so shown in the Temporal UI). */
export const FAILURE_LOG_LINES = 25;
/** MLflow run tag holding the job name: how a retry finds the run of an earlier attempt. */
export const JOB_NAME_TAG = 'mlops.job_name';

export interface TrainingActivityConfig {
  mlflow: MlflowClient;
  jobs: JobRunner;
  /** Tracking URI as seen from inside the job (may differ from the worker's in a cluster). */
  jobTrackingUri?: string;
}

/** Deterministic job name for one workflow execution: the Kubernetes Job name, too. */
export function trainingJobName(model: string, workflowId: string, runId: string): string {
  const suffix = createHash('sha256').update(`${workflowId}/${runId}`).digest('hex').slice(0, 10);
  return `train-${model}`.slice(0, 63 - 11) + `-${suffix}`;
}

/** Experiment holding the training runs of a model. */
export const experimentName = (model: string): string => `mlops/${model}`;

const numericMetrics = (run: Run): Record<string, number> => ({ ...run.data.metrics });

export function createTrainingActivities(cfg: TrainingActivityConfig) {
  const { mlflow, jobs } = cfg;
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
      const experimentId = await mapped(() => mlflow.getOrCreateExperiment(experimentName(input.model)));

      // Adopt the run of an earlier attempt if there is one.
      const found = await mapped(() =>
        mlflow.searchRuns({
          experimentIds: [experimentId],
          filter: `tags.\`${JOB_NAME_TAG}\` = '${jobName}'`,
        }),
      );
      let run = found.runs[0];
      if (run && run.info.status === 'FINISHED') {
        return { runId: run.info.runId, experimentId, jobName, adopted: true, metrics: numericMetrics(run) };
      }
      if (!run) {
        run = await mapped(() =>
          mlflow.createRun({
            experimentId,
            runName: jobName,
            tags: {
              [JOB_NAME_TAG]: jobName,
              'mlops.workflow_id': workflowId,
              'mlops.workflow_run_id': wfRunId,
              'mlops.dataset_sha256': input.snapshot.sha256,
              'mlops.trigger': input.trigger.kind,
              'mlops.feature_spec': `${input.spec.name}@${input.spec.version}`,
            },
          }),
        );
      }
      const mlflowRunId = run.info.runId;

      const spec: JobSpec = {
        name: jobName,
        image: input.training.image,
        env: {
          MLFLOW_TRACKING_URI: cfg.jobTrackingUri ?? mlflow.trackingUri,
          MLFLOW_RUN_ID: mlflowRunId,
          MLOPS_DATASET_URI: pathToFileURL(input.snapshot.snapshotPath).href,
          MLOPS_DATASET_PATH: input.snapshot.snapshotPath,
          MLOPS_DATASET_SHA256: input.snapshot.sha256,
          MLOPS_FEATURE_SPEC: JSON.stringify(input.spec),
          MLOPS_ARTIFACT_PATH: MODEL_ARTIFACT_PATH,
          MLOPS_SEED: String(input.training.seed),
          MLOPS_HYPERPARAMS: JSON.stringify(input.training.hyperparams),
          MLOPS_BACKEND: input.training.backend,
        },
        secretEnv: {
          MLFLOW_TRACKING_USERNAME: { secret: 'mlflow-credentials', key: 'MLFLOW_TRACKING_USERNAME' },
          MLFLOW_TRACKING_PASSWORD: { secret: 'mlflow-credentials', key: 'MLFLOW_TRACKING_PASSWORD' },
          MLFLOW_TRACKING_TOKEN: { secret: 'mlflow-credentials', key: 'MLFLOW_TRACKING_TOKEN' },
        },
        resources: input.training.gpus > 0 ? { gpus: input.training.gpus } : undefined,
        labels: { [OWNER_LABEL]: jobName, 'mlops.io/model': input.model, 'mlops.io/stage': 'train' },
        activeDeadlineSeconds: Math.ceil(parseDuration(input.training.timeout) / 1000),
      };

      let submitted = await mapped(() => jobs.submit(spec));
      if (
        !submitted.created &&
        submitted.status.phase === 'failed' &&
        submitted.status.exitCode === undefined
      ) {
        // The earlier attempt's job was lost (its worker died with it): start it again.
        await jobs.delete(jobName);
        submitted = await mapped(() => jobs.submit(spec));
      }
      const started = Date.now();
      for (;;) {
        const status = await jobs.status(jobName);
        if (!status) {
          throw ApplicationFailure.retryable(
            `job ${jobName} disappeared while running`,
            FailureTypes.TrainingFailed,
          );
        }
        ctx.heartbeat({ jobName, phase: status.phase, elapsedMs: Date.now() - started });
        if (status.phase === 'succeeded') break;
        if (status.phase === 'failed') {
          const tail = await jobs.logs(jobName, FAILURE_LOG_LINES);
          await mapped(() => mlflow.updateRun({ runId: mlflowRunId, status: 'FAILED', endTime: Date.now() }));
          throw ApplicationFailure.create({
            type: FailureTypes.TrainingFailed,
            nonRetryable: true,
            message: `trainer job ${jobName} failed (${status.message ?? 'no message'}); last log lines:\n${tail}`,
            details: [{ jobName, exitCode: status.exitCode ?? null, logTail: tail }],
          });
        }
        try {
          await ctx.sleep(JOB_POLL_INTERVAL_MS);
        } catch (err) {
          if (err instanceof CancelledFailure) {
            await jobs.delete(jobName);
            await mlflow
              .updateRun({ runId: mlflowRunId, status: 'KILLED', endTime: Date.now() })
              .catch(() => {});
          }
          throw err;
        }
      }

      const files = await mapped(() => mlflow.listArtifacts(mlflowRunId, MODEL_ARTIFACT_PATH));
      if (!files.some((f) => f.path.endsWith('model.onnx'))) {
        const tail = await jobs.logs(jobName, FAILURE_LOG_LINES);
        await mapped(() => mlflow.updateRun({ runId: mlflowRunId, status: 'FAILED', endTime: Date.now() }));
        throw ApplicationFailure.nonRetryable(
          `trainer job ${jobName} exited 0 but logged no ${MODEL_ARTIFACT_PATH}/model.onnx; last log lines:\n${tail}`,
          FailureTypes.TrainingFailed,
        );
      }
      await mapped(() => mlflow.updateRun({ runId: mlflowRunId, status: 'FINISHED', endTime: Date.now() }));
      const finished = await mapped(() => mlflow.getRun(mlflowRunId));
      return { runId: mlflowRunId, experimentId, jobName, adopted: false, metrics: numericMetrics(finished) };
    },
  };
}
