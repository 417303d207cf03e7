/**
 * Shared pieces of the `k8s` layer: clients for the test cluster started by setup.ts, the worker
 * ServiceAccount's own token (every runner in these tests runs with it, so the deployed Role is
 * what is exercised), and bounded polling of a Job's status.
 */
import * as k8s from '@kubernetes/client-node';
import { inject } from 'vitest';
import {
  createKubernetesJobRunner,
  type KubernetesJobRunner,
  type KubernetesJobSpec,
  type KubernetesJobStatus,
  type KubernetesRunnerConfig,
} from '../../src/jobs/kubernetes-runner';
import { createS3SnapshotStager, type SnapshotStager } from '../../src/jobs/dataset-placement';
import { OWNER_LABEL } from '../../src/jobs/types';
import { DATASET_BUCKET, DATASET_CLAIM, DATASET_SECRET, SHARED_DATASET_ROOT } from './setup';

/** The training namespace, worker identity and queue of deploy/k8s. */
export const TRAINING_NAMESPACE = 'mlops-training';
export const WORKER_NAMESPACE = 'mlops';
export const WORKER_SERVICE_ACCOUNT = 'mlops-worker';
export const LOCAL_QUEUE = 'training';
/** Lifetime of the worker token requested for the tests. */
const TOKEN_SECONDS = 3600;
/** Poll interval while waiting for a Job to reach a state. */
const POLL_MS = 250;

/** KWOK stage timings per pod (annotations its general stages read): quick, for a fast test. */
export const FAST_PODS = {
  'pod-create.stage.kwok.x-k8s.io/delay': '100ms',
  'pod-create.stage.kwok.x-k8s.io/jitter-delay': '100ms',
  'pod-ready.stage.kwok.x-k8s.io/delay': '100ms',
  'pod-ready.stage.kwok.x-k8s.io/jitter-delay': '100ms',
  'pod-complete.stage.kwok.x-k8s.io/delay': '500ms',
  'pod-complete.stage.kwok.x-k8s.io/jitter-delay': '100ms',
  'pod-delete.stage.kwok.x-k8s.io/delay': '100ms',
  'pod-delete.stage.kwok.x-k8s.io/jitter-delay': '100ms',
} as const;

/** Pod annotations that keep a KWOK pod running for `d` (a Go duration) before it completes. */
export function runFor(d: string): Record<string, string> {
  // KWOK's jitter is the upper bound of the delay: both set, the delay is exact.
  return {
    ...FAST_PODS,
    'pod-complete.stage.kwok.x-k8s.io/delay': d,
    'pod-complete.stage.kwok.x-k8s.io/jitter-delay': d,
  };
}

export function kubeConfig(token: string = inject('kubeAdminToken')): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'test',
        server: inject('kubeServer'),
        caData: Buffer.from(inject('kubeCaPem')).toString('base64'),
      },
    ],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'user' }],
    currentContext: 'test',
  });
  return kc;
}

let workerToken: string | undefined;

/** A bound token of the worker's ServiceAccount (TokenRequest API, as a projected volume gets one). */
export async function workerKubeConfig(): Promise<k8s.KubeConfig> {
  if (!workerToken) {
    const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
    const tr = await core.createNamespacedServiceAccountToken({
      name: WORKER_SERVICE_ACCOUNT,
      namespace: WORKER_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: TOKEN_SECONDS } },
    });
    workerToken = tr.status?.token;
    if (!workerToken) throw new Error('TokenRequest returned no token');
  }
  return kubeConfig(workerToken);
}

/** Where the shared dataset volume is mounted in the pods of runners configured with it. */
export const SHARED_DATASET_MOUNT = '/datasets';

/** Dataset placement by the layer's shared volume (the claim holding `/data` of the worker). */
export const SHARED_VOLUME_DATASETS: NonNullable<KubernetesRunnerConfig['datasets']> = {
  sharedVolume: { claimName: DATASET_CLAIM, localRoot: SHARED_DATASET_ROOT, mountPath: SHARED_DATASET_MOUNT },
};

/** Dataset placement by staging in the layer's S3 server (the Job reads it as the endpoint says). */
export function objectStoreDatasets(): NonNullable<KubernetesRunnerConfig['datasets']> {
  return {
    objectStore: {
      bucket: DATASET_BUCKET,
      endpoint: inject('kubeS3Endpoint'),
      credentialsSecret: DATASET_SECRET,
    },
  };
}

/** The worker's uploader for staged snapshots, with the S3 server's credentials from a secret store. */
export function datasetStager(): SnapshotStager {
  const values: Record<string, string> = {
    'access-key-id': inject('kubeS3AccessKeyId'),
    'secret-access-key': inject('kubeS3SecretAccessKey'),
  };
  return createS3SnapshotStager({
    config: {
      endpoint: inject('kubeS3Endpoint'),
      accessKeyId: { secret: 's3', key: 'access-key-id' },
      secretAccessKey: { secret: 's3', key: 'secret-access-key' },
    },
    secrets: { kind: 'test', get: async (ref) => values[ref.key] },
  });
}

/**
 * The runner as the worker would build it, with the worker's token; `over` tweaks the config.
 * Datasets default to the shared volume; with `datasets.objectStore` the runner gets the uploader.
 */
export async function workerRunner(over: Partial<KubernetesRunnerConfig> = {}): Promise<KubernetesJobRunner> {
  const datasets = over.datasets ?? SHARED_VOLUME_DATASETS;
  return createKubernetesJobRunner(
    {
      namespace: TRAINING_NAMESPACE,
      kueue: { queueName: LOCAL_QUEUE },
      ...over,
      datasets,
      template: {
        serviceAccountName: 'mlops-trainer',
        priorityClassName: 'mlops-training',
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        podAnnotations: { ...FAST_PODS },
        ...over.template,
      },
    },
    { kubeConfig: await workerKubeConfig(), ...(datasets.objectStore ? { stager: datasetStager() } : {}) },
  );
}

let seq = 0;

/** A job spec owned by `owner` (a workflow id), named uniquely for this test run. */
export function gpuSpec(owner: string, over: Partial<KubernetesJobSpec> = {}): KubernetesJobSpec {
  seq += 1;
  return {
    name: `${owner}-train-${process.pid}-${seq}`.slice(0, 63).replace(/-+$/, ''),
    image: 'registry.example.com/mlops/reference-trainer@sha256:' + 'a'.repeat(64),
    env: { MLOPS_BACKEND: 'torch', MLOPS_SEED: '7' },
    secretEnv: { MLFLOW_TRACKING_TOKEN: { secret: 'mlflow-credentials', key: 'token' } },
    resources: { gpus: 1, cpu: '2', memory: '4Gi' },
    labels: { [OWNER_LABEL]: owner, 'mlops.io/model': 'fraud', 'mlops.io/stage': 'train' },
    annotations: { 'mlops.io/workflow-id': owner },
    ...over,
  };
}

/** Polls the Job's status until `done` holds (returns it) or `timeoutMs` passes (throws with the last one). */
export async function waitForStatus(
  runner: KubernetesJobRunner,
  name: string,
  done: (s: KubernetesJobStatus | undefined) => boolean,
  timeoutMs: number,
  seen?: (s: KubernetesJobStatus | undefined) => void,
): Promise<KubernetesJobStatus | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: KubernetesJobStatus | undefined;
  while (Date.now() < deadline) {
    last = await runner.status(name);
    seen?.(last);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(
    `job ${name}: condition not reached within ${timeoutMs} ms; last status ${JSON.stringify(last)}`,
  );
}
