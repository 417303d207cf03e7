/**
 * retrainingPipeline end to end on the Kubernetes job runner: the layer's real control plane (API
 * server, controller manager, scheduler, Kueue, KWOK GPU nodes), the run's real Temporal dev server
 * and real MLflow, and workers built by the production factory (in this process, or the real
 * `workers/main.ts` entry point as separate processes, configured only by `MLOPS_K8S_*`). Every
 * runner uses the worker ServiceAccount's own token, so the deployed Role is what is exercised.
 *
 * TEST DOUBLE: KWOK runs no container and no GPU node can run here, so `runJobContainers`
 * (kwok-container.ts) runs the trainer Job's container command on this machine once its pod is
 * bound to a simulated GPU node and Running, and writes the pod's terminal status from the
 * process's exit code. The trainer it runs is the real reference trainer (deploy/trainer/train.py,
 * scikit-learn on CPU, or its PyTorch path on Debian's CPU torch), which logs its ONNX model into
 * the real MLflow run the Job names. The Jobs read their dataset from the layer's real S3 server,
 * where the runner stages each snapshot: never from a path of the worker's disk.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  Client,
  Connection,
  QueryNotRegisteredError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { bundleWorkflowCode } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { trainingJobName } from '../../activities/training';
import { FailureType } from '../../src/core/contracts/failures';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import {
  statusQuery,
  type PipelineResult,
  type PipelineStatus,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import type { WorkerConfig } from '../../src/config';
import { OWNER_LABEL } from '../../src/jobs/types';
import { PROJECT_ROOT, TRAINER_SCRIPT, VENV_PYTHON } from '../../src/stack/paths';
import { createFileSecretStore } from '../../src/secrets/local';
import { ensureReferenceEnv } from '../../src/stack/provision';
import {
  mlflowClient,
  runWorker,
  tempDir,
  testWorkerConfig,
  uniqueModel,
  writeDataset,
  type RunningWorker,
} from '../helpers/env';
import {
  FAST_PODS,
  TRAINING_NAMESPACE,
  kubeConfig,
  objectStoreDatasets,
  runFor,
  workerKubeConfig,
  workerRunner,
} from './helpers';
import { DATASET_BUCKET, DATASET_SECRET } from './setup';
import { runJobContainers, type KwokContainers } from './kwok-container';

/** A pipeline on a loaded machine: snapshot, validation, admission, the trainer, registration. */
const PIPELINE_MS = 150_000;
/** Poll interval of the tests' own status checks. */
const POLL_MS = 250;
/** Activity poll interval of the in-process workers (the production default is 2 s). */
const JOB_POLL_MS = 250;
/** Queue timeout of the "no quota" worker: long enough to be seen queued, short for a test. */
const SHORT_QUEUE_TIMEOUT_S = 10;
/** How long the slow trainer image sleeps before training (so it can be preempted, cancelled, timed out). */
const SLOW_TRAINER_SLEEP_S = 15;

/** The held trainer starts training only once this file exists (the test creates it). */
const RELEASE_FILE = path.join(os.tmpdir(), `mlops-k8s-release-${process.pid}`);

/** The reference trainer, started after `seconds` of sleep. */
const sleepThenTrain = (seconds: number): string[] => [
  'sh',
  '-c',
  `sleep ${seconds} && exec "$0" "$@"`,
  VENV_PYTHON,
  TRAINER_SCRIPT,
];

/** Epochs of the preempted torch training: long enough (a checkpoint upload each) to be preempted mid-way. */
const TORCH_EPOCHS = 300;
/** The torch training is preempted once it has logged this epoch (so checkpoints exist). */
const TORCH_PREEMPT_AFTER_EPOCH = 10;

/** Images the stand-in runs: the reference trainer, and the same one starting after a pause. */
const IMAGES: Record<string, string[]> = {
  // The PyTorch path: the same trainer on Debian's CPU torch (the `torch` reference environment).
  'test/torch-trainer': [ensureReferenceEnv('torch'), TRAINER_SCRIPT],
  'mlops/reference-trainer': [VENV_PYTHON, TRAINER_SCRIPT],
  'test/slow-trainer': sleepThenTrain(SLOW_TRAINER_SLEEP_S),
  // Waits for the test's go-ahead: outlasts a dead worker's heartbeat timeout on any machine load.
  'test/held-trainer': [
    'sh',
    '-c',
    `while [ ! -e ${RELEASE_FILE} ]; do sleep 0.2; done; exec "$0" "$@"`,
    VENV_PYTHON,
    TRAINER_SCRIPT,
  ],
};

let client: Client;
let connection: Connection;
let dataset: string;
let stateDir: string;
const workers: RunningWorker[] = [];
/** Task queues of the in-process workers: `main` (default settings), `short` (short queue timeout, image-pull pods). */
const queues = { main: '', short: '' };

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
  stateDir = tempDir('k8s-pipeline');
  dataset = await writeDataset(tempDir('k8s-data'), 'fraud.csv', { rows: 2000, seed: 5 });
  // One workflow bundle for both in-process workers.
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: path.join(PROJECT_ROOT, 'workflows') });
  const native = await NativeConnection.connect({ address: inject('temporalAddress') });
  const start = async (
    name: keyof typeof queues,
    jobs: Awaited<ReturnType<typeof workerRunner>>,
  ): Promise<void> => {
    const config: WorkerConfig = { ...testWorkerConfig(stateDir), taskQueue: `k8s-${name}-${process.pid}` };
    queues[name] = config.taskQueue;
    workers.push(
      await runWorker({
        connection: native,
        config,
        ports: { jobs },
        jobPollIntervalMs: JOB_POLL_MS,
        // Cancellation reaches an activity in the answer to a heartbeat, which the SDK throttles to
        // 0.8 x its heartbeat timeout (48 s) by default; 1 s lets the cancel test finish in seconds.
        workerOptions: { workflowsPath: undefined, workflowBundle, maxHeartbeatThrottleInterval: '1s' },
      }),
    );
  };
  await start(
    'main',
    await workerRunner({ datasets: objectStoreDatasets(), template: { podAnnotations: runFor('1h') } }),
  );
  await start(
    'short',
    await workerRunner({
      datasets: objectStoreDatasets(),
      queueTimeoutSeconds: SHORT_QUEUE_TIMEOUT_S,
      imagePullGraceSeconds: 0,
      template: {
        podLabels: { 'mlops.test/simulate': 'image-pull' },
        podAnnotations: { ...FAST_PODS, 'pod-create.stage.kwok.x-k8s.io/weight': '0' },
      },
    }),
  );
}, 300_000);

afterAll(async () => {
  for (const w of workers) await w.stop();
  await connection?.close();
  for (const dir of [stateDir, dataset && path.dirname(dataset)]) {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

function input(
  model: string,
  training: Partial<NonNullable<RetrainingInput['training']>> = {},
): RetrainingInput {
  return {
    model,
    dataset: { uri: pathToFileURL(dataset).href },
    trigger: { kind: 'manual', by: 'k8s-test' },
    featureSpec: FRAUD_FEATURE_SPEC,
    training: { backend: 'sklearn', gpus: 1, ...training } as RetrainingInput['training'],
  };
}

interface Started {
  handle: WorkflowHandle;
  jobName: string;
  containers: KwokContainers;
}

/** Starts a pipeline on `taskQueue` and the container stand-in for its (deterministic) Job name. */
async function startPipeline(
  taskQueue: string,
  model: string,
  over: Partial<RetrainingInput> = {},
): Promise<Started> {
  const workflowId = `retrain-${model}`;
  const handle = await client.workflow.start('retrainingPipeline', {
    taskQueue,
    workflowId,
    args: [{ ...input(model), ...over }],
  });
  const jobName = trainingJobName(model, workflowId, handle.firstExecutionRunId);
  return { handle, jobName, containers: runJobContainers(jobName, IMAGES) };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = PIPELINE_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

const batch = () => kubeConfig().makeApiClient(k8s.BatchV1Api);

async function jobsOwnedBy(jobName: string): Promise<k8s.V1Job[]> {
  const list = await batch().listNamespacedJob({
    namespace: TRAINING_NAMESPACE,
    labelSelector: `${OWNER_LABEL}=${jobName}`,
  });
  return list.items;
}

async function readJob(jobName: string): Promise<k8s.V1Job | undefined> {
  return batch()
    .readNamespacedJob({ name: jobName, namespace: TRAINING_NAMESPACE })
    .catch(() => undefined);
}

async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

/**
 * How often the pipeline's history scheduled its training activity, the attempt that ended it and
 * the identity (`pid@host`) of the worker that ran that attempt.
 */
async function trainingAttempts(
  handle: WorkflowHandle,
): Promise<{ scheduled: number; lastAttempt: number; identity?: string }> {
  const ids = new Set<string>();
  let lastAttempt = 0;
  let identity: string | undefined;
  for (const e of (await handle.fetchHistory()).events ?? []) {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainCandidate') {
      ids.add(String(e.eventId));
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started && ids.has(String(started.scheduledEventId))) {
      lastAttempt = started.attempt ?? 0;
      identity = started.identity ?? undefined;
    }
  }
  return { scheduled: ids.size, lastAttempt, ...(identity ? { identity } : {}) };
}

/** The pipeline's status; undefined until its first workflow task has registered the query. */
async function statusOf(handle: WorkflowHandle): Promise<PipelineStatus | undefined> {
  try {
    return await handle.query(statusQuery);
  } catch (err) {
    if (err instanceof QueryNotRegisteredError) return undefined;
    throw err;
  }
}

async function cleanup(s: Started): Promise<void> {
  // A pipeline left running (a failed assertion) would resubmit its deleted Job and hold GPU quota.
  await s.handle.terminate('test cleanup').catch(() => undefined);
  await s.containers.stop();
  await (await workerRunner()).delete(s.jobName).catch(() => undefined);
}

describe('retrainingPipeline on Kubernetes Jobs', () => {
  it('a GPU Job admitted by Kueue runs on a simulated GPU node, completes, and the pipeline registers the model', async () => {
    const model = uniqueModel('k8s');
    const s = await startPipeline(queues.main, model);
    try {
      // While it trains, `status` shows the Job as the training activity reports it.
      const seen = await until('status.job running', async () => {
        const st = await statusOf(s.handle);
        return st?.job?.phase === 'running' ? st : undefined;
      });
      expect(seen.stage).toBe('training');
      expect(seen.job?.jobName).toBe(s.jobName);
      const result = (await s.handle.result()) as PipelineResult;
      expect(result.outcome).toBe('registered');
      const version = result.status.candidate?.version;
      expect(version).toBeDefined();
      expect(result.status.training?.jobName).toBe(s.jobName);

      // The Job: admitted by Kueue through the queue label, on a GPU node, complete.
      const job = await readJob(s.jobName);
      expect(job?.metadata?.labels?.['kueue.x-k8s.io/queue-name']).toBe('training');
      expect(job?.status?.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True');
      expect(job?.spec?.template.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('1');
      // The dataset: the snapshot staged in S3 by content hash, credentials by Secret reference only.
      const env = job?.spec?.template.spec?.containers[0]?.env ?? [];
      const sha = env.find((e) => e.name === 'MLOPS_DATASET_SHA256')?.value ?? '';
      expect(env.find((e) => e.name === 'MLOPS_DATASET_URI')?.value).toBe(
        `s3://${DATASET_BUCKET}/mlops/snapshots/${sha}.csv`,
      );
      expect(env.map((e) => e.name)).not.toContain('MLOPS_DATASET_PATH');
      expect(env.find((e) => e.name === 'AWS_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef).toEqual({
        name: DATASET_SECRET,
        key: 'AWS_SECRET_ACCESS_KEY',
      });
      expect(JSON.stringify(job)).not.toContain(inject('kubeS3SecretAccessKey'));
      expect(s.containers.runs[0]?.output.join('\n')).toContain(`trainer: fetching s3://${DATASET_BUCKET}/`);
      const custom = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
      const workloads = (await custom.listNamespacedCustomObject({
        group: 'kueue.x-k8s.io',
        version: 'v1beta2',
        namespace: TRAINING_NAMESPACE,
        plural: 'workloads',
      })) as {
        items: {
          metadata: { ownerReferences?: { name: string }[] };
          status?: { conditions?: { type: string; status: string }[] };
        }[];
      };
      const wl = workloads.items.find((w) => w.metadata.ownerReferences?.some((o) => o.name === s.jobName));
      expect(wl?.status?.conditions).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'Admitted', status: 'True' })]),
      );
      expect(s.containers.runs).toHaveLength(1);
      expect(s.containers.runs[0]).toMatchObject({
        end: 'exited',
        exitCode: 0,
        node: expect.stringMatching(/^gpu-\d$/),
      });

      // The model the trainer logged from that pod is the registered version.
      const byAlias = await mlflowClient().getModelVersionByAlias(model, 'challenger');
      expect(byAlias.version).toBe(version);
      expect(byAlias.runId).toBe(result.status.training?.runId);
    } finally {
      await cleanup(s);
    }
  });

  it('no GPU quota: `status` shows the Job queued with Kueue’s reason, then the pipeline fails at the queue timeout', async () => {
    const model = uniqueModel('k8s-noquota');
    const s = await startPipeline(queues.short, model, {
      training: { backend: 'sklearn', gpus: 8 } as RetrainingInput['training'],
    });
    try {
      const queued = await until('status.job queued', async () => {
        const st = await statusOf(s.handle);
        return st?.job?.reason === 'queued' && /nvidia\.com\/gpu/.test(st.job.message ?? '') ? st : undefined;
      });
      expect(queued.stage).toBe('training');
      expect(queued.job?.phase).toBe('pending');
      const f = await failureOf(s.handle);
      expect(f.type).toBe(FailureType.TrainingFailed);
      expect(f.message).toMatch(
        new RegExp(`not admitted .*queue timeout ${SHORT_QUEUE_TIMEOUT_S} s.*nvidia\\.com/gpu`, 's'),
      );
      const final = await s.handle.query(statusQuery);
      expect(final.stage).toBe('failed');
      expect(final.candidate).toBeUndefined();
      expect(s.containers.runs).toHaveLength(0);
    } finally {
      await cleanup(s);
    }
  });

  it('an image that cannot be pulled fails the pipeline at once, without retrying the training', async () => {
    const model = uniqueModel('k8s-pull');
    const s = await startPipeline(queues.short, model, {
      training: {
        backend: 'sklearn',
        gpus: 1,
        image: 'registry.example.com/mlops/no-such-trainer:v0',
      } as RetrainingInput['training'],
    });
    try {
      const f = await failureOf(s.handle);
      expect(f.type).toBe(FailureType.TrainingFailed);
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/ErrImagePull/);
      expect(f.message).toContain('no-such-trainer:v0');
      expect(await trainingAttempts(s.handle)).toMatchObject({ scheduled: 1, lastAttempt: 1 });
      expect(await jobsOwnedBy(s.jobName)).toHaveLength(1);
    } finally {
      await cleanup(s);
    }
  });

  it('a Job past its deadline fails the pipeline and is not retrained', async () => {
    const model = uniqueModel('k8s-deadline');
    const s = await startPipeline(queues.main, model, {
      training: {
        backend: 'sklearn',
        gpus: 1,
        image: 'test/slow-trainer:v1',
        timeout: '4s',
      } as RetrainingInput['training'],
    });
    try {
      const f = await failureOf(s.handle);
      expect(f.type).toBe(FailureType.TrainingFailed);
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/deadline/i);
      expect(await trainingAttempts(s.handle)).toMatchObject({ scheduled: 1, lastAttempt: 1 });
      // One Job, one pod run (killed by the deadline), nothing registered.
      expect(await jobsOwnedBy(s.jobName)).toHaveLength(1);
      await until(
        'the pod killed',
        async () => (s.containers.runs[0]?.end === 'killed' ? true : undefined),
        30_000,
      );
      expect(s.containers.runs).toHaveLength(1);
      const st = await s.handle.query(statusQuery);
      expect(st.candidate).toBeUndefined();
      expect(st.job?.reason).toBe('deadline-exceeded');
    } finally {
      await cleanup(s);
    }
  });

  it('a training preempted by an urgent Job is requeued, runs again, and the pipeline completes', async () => {
    const model = uniqueModel('k8s-preempt');
    const s = await startPipeline(queues.main, model, {
      training: { backend: 'sklearn', gpus: 4, image: 'test/slow-trainer:v1' } as RetrainingInput['training'],
    });
    const urgent = await workerRunner({
      template: { priorityClassName: 'mlops-training-urgent', podAnnotations: runFor('3s') },
    });
    const urgentName = `${s.jobName.slice(0, 50)}-urgent`;
    try {
      await until('first pod started', async () => (s.containers.runs.length > 0 ? true : undefined));
      const uid = (await readJob(s.jobName))?.metadata?.uid;
      await urgent.submit({
        name: urgentName,
        image: 'mlops/reference-trainer:urgent',
        env: {},
        resources: { gpus: 4, cpu: '2', memory: '4Gi' },
        labels: { [OWNER_LABEL]: urgentName, 'mlops.io/model': model, 'mlops.io/stage': 'train' },
      });
      const preempted = await until('status.job preempted', async () => {
        const st = await statusOf(s.handle);
        return st?.job?.reason === 'preempted' ? st : undefined;
      });
      expect(preempted.job?.message).toMatch(/Kueue.*requeued/);
      const result = (await s.handle.result()) as PipelineResult;
      expect(result.outcome).toBe('registered');
      // The first pod was killed by the preemption; the same Job ran a second pod to the end.
      expect(s.containers.runs.map((r) => r.end)).toEqual(['killed', 'exited']);
      expect(s.containers.runs[1]?.exitCode).toBe(0);
      const jobs = await jobsOwnedBy(s.jobName);
      expect(jobs.map((j) => j.metadata?.uid)).toEqual([uid]);
      expect((await urgent.status(urgentName))?.phase).toBe('succeeded');
    } finally {
      await cleanup(s);
      await urgent.delete(urgentName).catch(() => undefined);
    }
  });

  it('a PyTorch training preempted mid-way resumes from its last checkpoint, and the pipeline registers the model', async () => {
    const model = uniqueModel('k8s-torch');
    const s = await startPipeline(queues.main, model, {
      training: {
        backend: 'torch',
        gpus: 4,
        image: 'test/torch-trainer:v1',
        hyperparams: { epochs: TORCH_EPOCHS, hidden_units: 16 },
      } as RetrainingInput['training'],
    });
    const urgent = await workerRunner({
      template: { priorityClassName: 'mlops-training-urgent', podAnnotations: runFor('3s') },
    });
    const urgentName = `${s.jobName.slice(0, 50)}-urgent`;
    try {
      const mark = `epoch ${TORCH_PREEMPT_AFTER_EPOCH}/${TORCH_EPOCHS}`;
      await until('the first pod trained some epochs', async () =>
        s.containers.runs[0]?.output.some((l) => l.includes(mark)) ? true : undefined,
      );
      await urgent.submit({
        name: urgentName,
        image: 'mlops/reference-trainer:urgent',
        env: {},
        resources: { gpus: 4, cpu: '2', memory: '4Gi' },
        labels: { [OWNER_LABEL]: urgentName, 'mlops.io/model': model, 'mlops.io/stage': 'train' },
      });
      const result = (await s.handle.result()) as PipelineResult;
      expect(result.outcome).toBe('registered');
      expect(s.containers.runs.map((r) => r.end)).toEqual(['killed', 'exited']);
      // The second pod downloaded the first one's checkpoint and went on from it.
      const second = s.containers.runs[1]?.output.join('\n') ?? '';
      const resumedAt = Number(/resuming from the checkpoint of epoch (\d+)\//.exec(second)?.[1] ?? 0);
      expect(resumedAt, second).toBeGreaterThanOrEqual(TORCH_PREEMPT_AFTER_EPOCH - 1);
      expect(resumedAt).toBeLessThan(TORCH_EPOCHS);
      const runId = result.status.training?.runId ?? '';
      const run = await mlflowClient().getRun(runId);
      expect(run.data.metrics.resumed_from_epoch).toBe(resumedAt);
      expect(run.data.params).toMatchObject({ backend: 'torch', epochs: String(TORCH_EPOCHS) });
      const byAlias = await mlflowClient().getModelVersionByAlias(model, 'challenger');
      expect(byAlias.runId).toBe(runId);
    } finally {
      await cleanup(s);
      await urgent.delete(urgentName).catch(() => undefined);
    }
  });

  it('cancelling the pipeline deletes its Job (foreground: the Job and its pods are gone)', async () => {
    const model = uniqueModel('k8s-cancel');
    const s = await startPipeline(queues.main, model, {
      training: { backend: 'sklearn', gpus: 1, image: 'test/slow-trainer:v1' } as RetrainingInput['training'],
    });
    try {
      await until('pod started', async () => (s.containers.runs.length > 0 ? true : undefined));
      await s.handle.cancel();
      const err = await s.handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      await until('Job deleted', async () => ((await readJob(s.jobName)) ? undefined : true), 30_000);
      const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
      const pods = await core.listNamespacedPod({
        namespace: TRAINING_NAMESPACE,
        labelSelector: `batch.kubernetes.io/job-name=${s.jobName}`,
      });
      expect(pods.items).toHaveLength(0);
      expect(s.containers.runs[0]?.end).toBe('killed');
    } finally {
      await cleanup(s);
    }
  });
});

describe('worker processes (workers/main.ts, configured by MLOPS_K8S_*)', () => {
  const t0 = Date.now();
  /** Progress of this long test in the log (seconds since the file began). */
  const step = (what: string) =>
    console.log(`[k8s worker-kill] +${Math.round((Date.now() - t0) / 1000)} s ${what}`);
  /** What the worker processes printed (shown when the test fails). */
  const output: string[] = [];

  function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  /** Starts the real worker entry point; resolves once it polls its task queue. */
  async function startWorkerProcess(
    env: NodeJS.ProcessEnv,
  ): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
    // One process (tsx as a loader, not its CLI, which would fork the worker as a child that a kill
    // of the parent leaves running), in its own process group so a kill takes all of it.
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer) => {
        out += d.toString();
        output.push(d.toString());
        output.splice(0, Math.max(0, output.length - 200));
        if (out.includes('worker polling task queue')) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`worker exited early (${code}): ${out.slice(-2000)}`)));
    });
    return { child, exited };
  }

  it('a worker killed mid-wait: a new worker process re-attaches to the same Job (no second Job) and the pipeline completes', async () => {
    const kubeconfig = path.join(stateDir, 'worker-kubeconfig.yaml');
    writeFileSync(kubeconfig, (await workerKubeConfig()).exportConfig(), { mode: 0o600 });
    const taskQueue = `k8s-proc-${process.pid}`;
    const env: NodeJS.ProcessEnv = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      MLFLOW_TRACKING_URI: inject('mlflowTrackingUri'),
      MLOPS_STATE_DIR: path.join(stateDir, 'proc'),
      MLOPS_TASK_QUEUE: taskQueue,
      MLOPS_JOB_RUNNER: 'kubernetes',
      MLOPS_K8S_NAMESPACE: TRAINING_NAMESPACE,
      MLOPS_K8S_KUBECONFIG: kubeconfig,
      MLOPS_K8S_QUEUE: 'training',
      MLOPS_K8S_SERVICE_ACCOUNT: 'mlops-trainer',
      MLOPS_K8S_PRIORITY_CLASS: 'mlops-training',
      MLOPS_K8S_NODE_SELECTOR: '{"mlops.io/pool":"gpu"}',
      MLOPS_K8S_TOLERATIONS: '[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]',
      MLOPS_K8S_POD_ANNOTATIONS: JSON.stringify(runFor('1h')),
      // Snapshots staged in the layer's S3 server with the worker's own connector and secret store.
      MLOPS_K8S_DATASET_BUCKET: DATASET_BUCKET,
      MLOPS_K8S_DATASET_SECRET: DATASET_SECRET,
      MLOPS_S3_ENDPOINT: inject('kubeS3Endpoint'),
    };
    // The worker's file secret store (the default, `<state>/secrets`) holds its S3 credentials.
    const secrets = createFileSecretStore(path.join(stateDir, 'proc', 'secrets'));
    await secrets.put({ secret: 's3', key: 'access-key-id' }, inject('kubeS3AccessKeyId'));
    await secrets.put({ secret: 's3', key: 'secret-access-key' }, inject('kubeS3SecretAccessKey'));
    let first: Awaited<ReturnType<typeof startWorkerProcess>> | undefined;
    let second: Awaited<ReturnType<typeof startWorkerProcess>> | undefined;
    let s: Started | undefined;
    rmSync(RELEASE_FILE, { force: true });
    try {
      first = await startWorkerProcess(env);
      step('first worker polling');
      const model = uniqueModel('k8s-crash');
      s = await startPipeline(taskQueue, model, {
        training: {
          backend: 'sklearn',
          gpus: 1,
          image: 'test/held-trainer:v1',
        } as RetrainingInput['training'],
      });
      const started = s;
      // Mid-wait: the Job's pod runs the (held) trainer and the worker's activity polls it.
      await until('pod started', async () => (started.containers.runs.length > 0 ? true : undefined));
      step(`pod ${started.containers.runs[0]?.pod ?? ''} runs on ${started.containers.runs[0]?.node ?? ''}`);
      const uid = (await readJob(started.jobName))?.metadata?.uid;
      expect(uid).toBeDefined();
      killGroup(first.child, 'SIGKILL');
      await first.exited;
      first = undefined;
      const killedAt = new Date().toISOString();
      step('first worker killed');
      second = await startWorkerProcess(env);
      step('second worker polling');
      // The retried activity (after the heartbeat timeout) polls the same Job while it still runs.
      const reattached = await until('the new worker reports the running Job', async () => {
        const st = await statusOf(started.handle);
        return st?.job && st.job.at > killedAt && st.job.phase === 'running' ? st : undefined;
      });
      expect(reattached.job?.jobName).toBe(started.jobName);
      expect(started.containers.runs[0]?.end).toBeUndefined();
      step('second worker polls the same Job; releasing the trainer');
      writeFileSync(RELEASE_FILE, '');
      const result = (await started.handle.result()) as PipelineResult;
      expect(result.outcome).toBe('registered');
      step('pipeline registered');
      const jobs = await jobsOwnedBy(started.jobName);
      expect(jobs.map((j) => j.metadata?.uid)).toEqual([uid]);
      expect(started.containers.runs).toHaveLength(1);
      // One activity, retried once after the dead worker's heartbeat timeout, finished by the new process.
      const attempts = await trainingAttempts(started.handle);
      expect(attempts).toMatchObject({ scheduled: 1, lastAttempt: 2 });
      expect(attempts.identity).toMatch(new RegExp(`^${second.child.pid ?? -1}@`));
    } catch (err) {
      console.log(`[k8s worker-kill] worker output:\n${output.join('').slice(-6000)}`);
      throw err;
    } finally {
      rmSync(RELEASE_FILE, { force: true });
      if (first) killGroup(first.child, 'SIGKILL');
      if (second) killGroup(second.child, 'SIGTERM');
      await second?.exited;
      if (s) await cleanup(s);
    }
  }, 540_000);
});
