/**
 * `retrainingPipeline`: from a dataset to a registered challenger (and, in later stages, through
 * evaluation, approval and canary to champion). The workflow only sequences activities and carries
 * out verdicts computed by pure functions; it holds its state as plain JSON and answers `status`.
 *
 * Stages: snapshot -> validate -> train -> register (+ alias `challenger`) -> [evaluate -> gate ->
 * approval -> canary -> promote]. Each later stage slots in after registration.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { formatZodError } from '../src/contracts/errors';
import {
  BUILTIN_FEATURE_SPECS,
  RetrainingInputSchema,
  statusQuery,
  type PipelineResult,
  type PipelineStage,
  type PipelineStatus,
  type RetrainingInput,
} from '../src/contracts/retraining';
import { parseDuration } from '../src/contracts/approval';

/** Alias given to a freshly registered candidate. */
export const CHALLENGER_ALIAS = 'challenger';
/** Extra time the training activity gets beyond the job's own deadline (scheduling, upload). */
const TRAINING_SLACK_MS = 10 * 60_000;

/** Retries for calls to outside systems: backoff up to a minute, for as long as an hour. */
const OUTSIDE_RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const io = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  scheduleToCloseTimeout: '1h',
  retry: OUTSIDE_RETRY,
});

const now = (): string => new Date().toISOString(); // workflow time: deterministic in the sandbox

function failureType(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? undefined;
  return undefined;
}

export async function retrainingPipeline(rawInput: RetrainingInput): Promise<PipelineResult> {
  const parsed = RetrainingInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: ${formatZodError(parsed.error)}`,
      'InvalidInput',
    );
  }
  const input = parsed.data;
  const spec = input.featureSpec ?? BUILTIN_FEATURE_SPECS[input.model];
  if (!spec) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: featureSpec: required for model "${input.model}" (no built-in spec)`,
      'InvalidInput',
    );
  }
  const { workflowId } = workflowInfo();
  const status: PipelineStatus = {
    workflowId,
    model: input.model,
    stage: 'starting',
    trigger: input.trigger,
    decisions: [],
  };
  setHandler(statusQuery, () => status);
  const enter = (stage: PipelineStage) => {
    status.stage = stage;
  };
  const decide = (decision: string, reason: string) => {
    status.decisions.push({ stage: status.stage, decision, reason, at: now() });
  };

  // 1. Snapshot: content hash of the dataset, copied to immutable storage.
  enter('snapshotting');
  let snapshot;
  try {
    snapshot = await io.snapshotDataset({ dataset: input.dataset });
  } catch (err) {
    const type = failureType(err);
    if (type === 'DatasetUnreadable' || type === 'DatasetIntegrity') {
      const message = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
      decide('rejected', message);
      enter('rejected-data');
      status.error = message;
      return {
        outcome: 'rejected-data',
        status,
        validation: {
          ok: false,
          checks: [
            { check: type === 'DatasetIntegrity' ? 'integrity' : 'readable', passed: false, observed: message, threshold: 'readable, matching sha256', message },
          ],
        },
      };
    }
    throw err;
  }
  status.dataset = { sha256: snapshot.sha256, snapshotPath: snapshot.snapshotPath };

  // 2. Validate: schema, quality and a poisoning screen. A failure ends the pipeline, no retries.
  enter('validating');
  const { report, profile } = await io.validateDataset({ snapshotPath: snapshot.snapshotPath, spec });
  status.dataset.rows = profile?.rows;
  const failedChecks = report.checks.filter((c) => !c.passed);
  status.validation = { ok: report.ok, failedChecks: failedChecks.map((c) => c.message) };
  if (!report.ok) {
    decide('rejected', `dataset failed ${failedChecks.length} check(s): ${failedChecks.map((c) => c.check).join(', ')}`);
    enter('rejected-data');
    return { outcome: 'rejected-data', status, validation: report, profile };
  }
  decide('accepted', `dataset passed ${report.checks.length} checks`);

  // 3. Train: the trainer runs as a job; the activity heartbeats while it waits.
  enter('training');
  const trainer = proxyActivities<Activities>({
    startToCloseTimeout: parseDuration(input.training.timeout) + TRAINING_SLACK_MS,
    heartbeatTimeout: '1m',
    retry: { ...OUTSIDE_RETRY, maximumAttempts: 3 },
  });
  let training;
  try {
    training = await trainer.trainCandidate({
      model: input.model,
      snapshot,
      spec,
      training: input.training,
      trigger: input.trigger,
    });
  } catch (err) {
    const message = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
    decide('failed', message);
    enter('failed');
    status.error = message;
    throw err;
  }
  status.training = { runId: training.runId, jobName: training.jobName };

  // 4. Register the version with provenance tags and a digest manifest; alias it `challenger`.
  enter('registering');
  const registered = await io.registerModelVersion({
    model: input.model,
    runId: training.runId,
    datasetSha256: snapshot.sha256,
    datasetRows: profile?.rows,
    trigger: input.trigger,
    featureSpec: `${spec.name}@${spec.version}`,
    codeVersion: input.codeVersion,
  });
  await io.setModelAlias({ model: input.model, alias: CHALLENGER_ALIAS, version: registered.version });
  status.candidate = { version: registered.version, runId: registered.runId, alias: CHALLENGER_ALIAS };
  decide('registered', `version ${registered.version} registered with ${registered.files} digested file(s)`);

  enter('completed');
  return { outcome: 'registered', status, validation: report, profile };
}
