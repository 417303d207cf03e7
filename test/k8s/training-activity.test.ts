/**
 * The training activity (activities/training.ts, the same code the pipeline runs) with the
 * Kubernetes runner on the real control plane: the trainer runs as a Kueue-admitted GPU Job on a
 * simulated node, the heartbeats carry its progress, and cancelling the activity deletes the Job.
 *
 * Test doubles, and why: KWOK runs no container, so `actAsTrainer` does what the trainer container
 * would do while its pod runs (log `model/model.onnx` into the run the Job names); the registry is
 * the in-memory one, since the MLflow side of training is tested against a real MLflow elsewhere.
 * The activity itself runs in the SDK's MockActivityEnvironment.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createTrainingActivities, trainingJobName } from '../../activities/training';
import { FailureType } from '../../src/core/contracts/failures';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { TrainingOptionsSchema, type TrainingResult } from '../../src/core/contracts/retraining';
import { MemoryModelRegistry } from '../../src/registry';
import { TRAINING_NAMESPACE, kubeConfig, runFor, waitForStatus, workerRunner } from './helpers';
import { SIMULATED_TRAINER_LOG } from './setup';

/** Admission, scheduling and the simulated run: seconds; generous for a loaded machine. */
const RUN_MS = 90_000;
/** Poll interval of the activity under test. */
const ACTIVITY_POLL_MS = 250;

function input(model: string) {
  return {
    model,
    snapshot: {
      sourceUri: 'https://data.example.com/fraud/2026-11.csv',
      snapshotPath: '/data/fraud/2026-11.csv',
      sha256: 'b'.repeat(64),
      bytes: 1024,
    },
    spec: FRAUD_FEATURE_SPEC,
    training: TrainingOptionsSchema.parse({
      image: 'mlops/reference-trainer:torch',
      backend: 'torch',
      gpus: 1,
    }),
    trigger: { kind: 'manual' as const },
  };
}

/**
 * The trainer container's side of the contract, for KWOK pods that run nothing: once the Job's pod
 * is Running, log a model into the MLflow run named by the pod's MLFLOW_RUN_ID. Stops with `stop()`.
 */
function actAsTrainer(
  registry: MemoryModelRegistry,
  jobName: string,
): { stop: () => void; done: Promise<string> } {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const pods = await core.listNamespacedPod({
        namespace: TRAINING_NAMESPACE,
        labelSelector: `batch.kubernetes.io/job-name=${jobName}`,
      });
      const running = pods.items.find((p) => p.status?.phase === 'Running');
      const runId = running?.spec?.containers[0]?.env?.find((e) => e.name === 'MLFLOW_RUN_ID')?.value;
      if (runId) {
        await registry.uploadArtifact(runId, 'model/model.onnx', 'simulated onnx bytes');
        return runId;
      }
      await new Promise((r) => setTimeout(r, ACTIVITY_POLL_MS));
    }
    return '';
  })();
  return { stop: () => (stopped = true), done };
}

describe('trainCandidate on Kubernetes', () => {
  it('trains as a Kueue-admitted GPU Job, heartbeats its queue and pod progress, and finishes the run', async () => {
    const registry = new MemoryModelRegistry();
    const jobs = await workerRunner({ template: { podAnnotations: runFor('4s') } });
    const acts = createTrainingActivities({ registry, jobs, pollIntervalMs: ACTIVITY_POLL_MS });
    const workflow = { workflowId: `retrain-k8s-${process.pid}`, runId: 'run-1' };
    const env = new MockActivityEnvironment({ workflowExecution: workflow });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const jobName = trainingJobName('fraud', workflow.workflowId, workflow.runId);
    const trainer = actAsTrainer(registry, jobName);
    try {
      const result = (await env.run(acts.trainCandidate, input('fraud'))) as TrainingResult;
      expect(result.jobName).toBe(jobName);
      expect(await trainer.done).toBe(result.runId);
      expect((await registry.getRun(result.runId)).status).toBe('FINISHED');
      const phases = beats.map((b) => (b as { phase?: string }).phase);
      expect(phases).toContain('running');
      const status = await jobs.status(jobName);
      expect(status?.phase).toBe('succeeded');
      expect(status?.queue?.admitted).toBe(true);
      expect(status?.pods?.[0]?.node).toMatch(/^gpu-\d$/);
    } finally {
      trainer.stop();
      await jobs.delete(jobName);
    }
  });

  it('no GPU quota: the heartbeat says queued, then a non-retryable TrainingFailed names Kueue’s reason', async () => {
    const registry = new MemoryModelRegistry();
    const jobs = await workerRunner({ queueTimeoutSeconds: 6 });
    const acts = createTrainingActivities({ registry, jobs, pollIntervalMs: ACTIVITY_POLL_MS });
    const workflow = { workflowId: `retrain-k8s-noquota-${process.pid}`, runId: 'run-1' };
    const env = new MockActivityEnvironment({ workflowExecution: workflow });
    const beats: { phase?: string; reason?: string }[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d as { phase?: string; reason?: string }));
    const jobName = trainingJobName('fraud', workflow.workflowId, workflow.runId);
    const big = input('fraud');
    big.training = { ...big.training, gpus: 8 };
    try {
      const err = await env.run(acts.trainCandidate, big).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      const f = err as ApplicationFailure;
      expect(f.type).toBe(FailureType.TrainingFailed);
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/queued.*not admitted.*nvidia\.com\/gpu/s);
      expect(beats).toContainEqual(expect.objectContaining({ phase: 'pending', reason: 'queued' }));
    } finally {
      await jobs.delete(jobName);
    }
  });

  it('a trainer that exits non-zero: TrainingFailed with the exit code and the tail of its pod log', async () => {
    const registry = new MemoryModelRegistry();
    const jobs = await workerRunner({
      template: {
        podLabels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' },
        podAnnotations: {
          ...runFor('1h'),
          'pod-complete.stage.kwok.x-k8s.io/weight': '0',
          'pod-container-running-failed.stage.kwok.x-k8s.io/delay': '500ms',
          'pod-container-running-failed.stage.kwok.x-k8s.io/jitter-delay': '500ms',
          'pod-container-running-failed.stage.kwok.x-k8s.io/exit-code': '3',
        },
      },
    });
    const acts = createTrainingActivities({ registry, jobs, pollIntervalMs: ACTIVITY_POLL_MS });
    const workflow = { workflowId: `retrain-k8s-exit-${process.pid}`, runId: 'run-1' };
    const env = new MockActivityEnvironment({ workflowExecution: workflow });
    const jobName = trainingJobName('fraud', workflow.workflowId, workflow.runId);
    try {
      const err = await env.run(acts.trainCandidate, input('fraud')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      const f = err as ApplicationFailure;
      expect(f.type).toBe(FailureType.TrainingFailed);
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/exited with code 3/);
      expect(f.message).toContain(SIMULATED_TRAINER_LOG.at(-1));
    } finally {
      await jobs.delete(jobName);
    }
  });

  it('cancelling the activity (the workflow was cancelled) deletes the Job', async () => {
    const registry = new MemoryModelRegistry();
    const jobs = await workerRunner({ template: { podAnnotations: runFor('1h') } });
    const acts = createTrainingActivities({ registry, jobs, pollIntervalMs: ACTIVITY_POLL_MS });
    const workflow = { workflowId: `retrain-k8s-cancel-${process.pid}`, runId: 'run-1' };
    const env = new MockActivityEnvironment({ workflowExecution: workflow });
    const jobName = trainingJobName('fraud', workflow.workflowId, workflow.runId);
    const run = env.run(acts.trainCandidate, input('fraud')).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitForStatus(jobs, jobName, (s) => s?.phase === 'running', RUN_MS);
    env.cancel();
    expect(await run).toBeInstanceOf(CancelledFailure);
    expect(await jobs.status(jobName)).toBeUndefined();
  });
});
