/**
 * Stages 3-4: train a candidate as a job, then register it as a version with provenance tags and
 * a digest manifest, aliased `challenger`. A failing trainer is a non-retryable TrainingFailed;
 * what is retried is the outside world (the registry unreachable, a lost job), bounded by time.
 */
import { setHandler } from '@temporalio/workflow';
import { parseDuration } from '../../src/core/contracts/approval';
import { AuditEventType } from '../../src/core/contracts/audit';
import type { DatasetProfile } from '../../src/core/contracts/feature-spec';
import { Aliases } from '../../src/core/contracts/registry';
import {
  jobProgressSignal,
  type DatasetSnapshot,
  type RegisteredVersion,
  type TrainingResult,
} from '../../src/core/contracts/retraining';
import { failureOf } from '../shared/failures';
import { registry, training } from './activities';
import type { RetrainingRun } from './context';

export async function trainCandidate(run: RetrainingRun, snapshot: DatasetSnapshot): Promise<TrainingResult> {
  const { journal, input, spec, model } = run;
  journal.enter('training');
  // The training activity reports its job's phase and reason (queued in Kueue, unschedulable, ...).
  setHandler(jobProgressSignal, (progress) => {
    journal.status.job = progress;
  });
  const trainer = training(parseDuration(input.training.timeout));
  let result: TrainingResult;
  try {
    result = await trainer.trainCandidate({
      model,
      snapshot,
      spec,
      training: input.training,
      trigger: input.trigger,
    });
  } catch (err) {
    const f = failureOf(err);
    journal.decide('failed', f.message);
    journal.enter('failed');
    journal.status.error = f.message;
    await journal.audit(AuditEventType.pipelineFailed, { stage: 'training', reason: f.message });
    throw err;
  }
  journal.status.training = { runId: result.runId, jobName: result.jobName };
  return result;
}

export async function registerCandidate(
  run: RetrainingRun,
  snapshot: DatasetSnapshot,
  trained: TrainingResult,
  profile: DatasetProfile | undefined,
): Promise<RegisteredVersion> {
  const { journal, input, spec, model } = run;
  journal.enter('registering');
  const registered = await registry.registerModelVersion({
    model,
    runId: trained.runId,
    datasetSha256: snapshot.sha256,
    datasetRows: profile?.rows,
    trigger: input.trigger,
    featureSpec: `${spec.name}@${spec.version}`,
    codeVersion: input.codeVersion,
  });
  await registry.setModelAlias({ model, alias: Aliases.challenger, version: registered.version });
  journal.status.candidate = {
    version: registered.version,
    runId: registered.runId,
    alias: Aliases.challenger,
  };
  journal.decide(
    'registered',
    `version ${registered.version} registered with ${registered.files} digested file(s)`,
  );
  await journal.audit(
    AuditEventType.modelRegistered,
    {
      runId: registered.runId,
      manifestSha256: registered.manifestSha256,
      files: registered.files,
      metrics: trained.metrics,
    },
    { modelVersion: registered.version },
  );
  return registered;
}
