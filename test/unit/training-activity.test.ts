/**
 * The training activity on the real local job runner and the in-memory registry: a job killed at
 * its deadline is failed, not trained again, also when a retried attempt finds it afterwards; a
 * lost job is resubmitted. The activity runs in the SDK's MockActivityEnvironment.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTrainingActivities, trainingJobName } from '../../activities/training';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { FailureType } from '../../src/core/contracts/failures';
import { JobReason } from '../../src/core/contracts/jobs';
import { TrainingOptionsSchema } from '../../src/core/contracts/retraining';
import { LocalProcessRunner } from '../../src/jobs';
import { MemoryModelRegistry } from '../../src/registry';
import { tempDir } from '../helpers/env';

const WORKFLOW = { workflowId: 'retrain-deadline', runId: 'run-1' };

function setup(images: Record<string, string[]>) {
  const root = tempDir('jobs');
  const jobs = new LocalProcessRunner({ root, images });
  const registry = new MemoryModelRegistry();
  const acts = createTrainingActivities({ registry, jobs, pollIntervalMs: 50 });
  const env = new MockActivityEnvironment({ workflowExecution: WORKFLOW });
  const input = {
    model: 'deadline',
    snapshot: { sourceUri: 'file:///x.csv', snapshotPath: '/x.csv', sha256: 'a'.repeat(64), bytes: 1 },
    spec: FRAUD_FEATURE_SPEC,
    training: TrainingOptionsSchema.parse({ image: 'test/sleeper', timeout: '1s' }),
    trigger: { kind: 'manual' as const },
  };
  return {
    root,
    jobs,
    registry,
    acts,
    env,
    input,
    name: trainingJobName('deadline', WORKFLOW.workflowId, WORKFLOW.runId),
  };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('trainCandidate and the job failure table', () => {
  it('fails a job killed at its deadline (no exit code) without resubmitting it', async () => {
    const { jobs, acts, env, input, name } = setup({ 'test/sleeper': ['sleep', '30'] });
    const f = await failureOf(env.run(acts.trainCandidate, input));
    expect(f.type).toBe(FailureType.TrainingFailed);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/deadline-exceeded/);
    expect(f.message).toMatch(/raise training.timeout/);
    const status = await jobs.status(name);
    expect(status).toMatchObject({ phase: 'failed', reason: JobReason.deadlineExceeded });
    expect(status?.exitCode).toBeUndefined();
  }, 20_000);

  it('a retried attempt that finds the deadline-killed job fails it too, and trains nothing again', async () => {
    const { root, jobs, acts, env, input, name } = setup({ 'test/sleeper': ['sleep', '30'] });
    await failureOf(env.run(acts.trainCandidate, input));
    const startedAt = JSON.parse(readFileSync(path.join(root, name, 'status.json'), 'utf8')).startedAt;
    const retry = await failureOf(
      new MockActivityEnvironment({ workflowExecution: WORKFLOW }).run(acts.trainCandidate, input),
    );
    expect(retry.type).toBe(FailureType.TrainingFailed);
    expect((await jobs.status(name))?.startedAt).toBe(startedAt);
  }, 20_000);

  it('fails with the exit code and the log tail when the trainer exits non-zero', async () => {
    const { acts, env, input } = setup({
      'test/sleeper': ['sh', '-c', 'echo "fatal: bad data" >&2; exit 3'],
    });
    const f = await failureOf(
      env.run(acts.trainCandidate, { ...input, training: { ...input.training, timeout: '1m' } }),
    );
    expect(f.message).toMatch(/trainer exited with code 3/);
    expect(f.message).toMatch(/fatal: bad data/);
  }, 20_000);
});
