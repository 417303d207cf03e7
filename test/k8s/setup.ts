/**
 * Global setup of the `k8s` layer: one real control plane for the whole layer (etcd,
 * kube-apiserver with TLS, token auth and RBAC, controller-manager, scheduler, KWOK simulating two
 * GPU nodes, Kueue), provisioned from the Go module proxy on first use (cached) and started by the
 * project's own launcher. The training namespace, the worker's ServiceAccount and Role, and the
 * Kueue queues come from deploy/k8s, applied as an operator would.
 *
 * KWOK stands in for the kubelet and the GPUs (no container runs): the one test double of this
 * layer, because real GPUs and a container runtime cannot run here.
 *
 * Datasets reach the Jobs as in production: the stack's real S3 server (s3proxy) with a bucket the
 * runners stage snapshots in and a Secret holding the Jobs' credentials (by reference), and a
 * statically bound PersistentVolumeClaim for the runners configured with a shared volume.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type * as k8s from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { applyObjects, loadManifests, startKubeCluster } from '../../src/stack/kube-cluster';
import { PROJECT_ROOT } from '../../src/stack/paths';
import { randomS3Secrets, startS3Server } from '../../src/stack/s3';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeServer: string;
    kubeCaPem: string;
    kubeAdminToken: string;
    kubeLogDir: string;
    kubeS3Endpoint: string;
    kubeS3AccessKeyId: string;
    kubeS3SecretAccessKey: string;
  }
}

/** Bucket the runners stage snapshots in, and the Secret with the Jobs' S3 credentials. */
export const DATASET_BUCKET = 'mlops-datasets';
export const DATASET_SECRET = 'mlops-dataset-s3';
/** The shared dataset volume: its claim in the training namespace and the folder it stands for. */
export const DATASET_CLAIM = 'mlops-datasets';
export const SHARED_DATASET_ROOT = '/data';

/** Simulated GPU pool: two nodes of four GPUs (the Kueue quota, four GPUs, is the tighter limit). */
export const GPU_NODES = 2;
export const GPUS_PER_NODE = 4;

/** Manifests applied before the tests (the worker Deployment itself is only dry-run). */
const APPLIED = [
  'deploy/k8s/worker/base/namespaces.yaml',
  'deploy/k8s/worker/base/serviceaccounts.yaml',
  'deploy/k8s/worker/base/role.yaml',
  'deploy/k8s/worker/base/rolebinding.yaml',
  'deploy/k8s/kueue/priority-classes.yaml',
  'deploy/k8s/kueue/resource-flavor.yaml',
  'deploy/k8s/kueue/cluster-queue.yaml',
  'deploy/k8s/kueue/local-queue.yaml',
  // The serving namespace: the rendered gateway objects dry-run into it whichever test file runs first.
  'deploy/k8s/kserve/namespace.yaml',
];

/** What KWOK's kubelet API answers for every trainer container's log (pods/log). */
export const SIMULATED_TRAINER_LOG = [
  'trainer: verifying sha256 of the dataset',
  'trainer: epoch 1/40 loss 0.6931',
  'trainer: simulated log line for the tests',
];

/** KWOK ClusterLogs: the trainer containers of the training namespace log SIMULATED_TRAINER_LOG. */
function clusterLogs(stateDir: string): string {
  const logFile = path.join(stateDir, 'trainer.log');
  // The CRI log format a kubelet reads container logs in: time, stream, full-line tag, text.
  const at = new Date().toISOString();
  writeFileSync(logFile, SIMULATED_TRAINER_LOG.map((line) => `${at} stdout F ${line}\n`).join(''));
  const file = path.join(stateDir, 'kwok-cluster-logs.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: kwok.x-k8s.io/v1alpha1',
      'kind: ClusterLogs',
      'metadata:',
      '  name: mlops-training-trainer-logs',
      'spec:',
      '  selector:',
      '    matchNamespaces: [mlops-training]',
      '  logs:',
      '    - containers: [trainer]',
      `      logsFile: ${logFile}`,
      '',
    ].join('\n'),
  );
  return file;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-test-kube-'));
  const started = Date.now();
  const cluster = await startKubeCluster({
    stateDir,
    gpuNodes: Array.from({ length: GPU_NODES }, (_, i) => ({
      name: `gpu-${i}`,
      gpus: GPUS_PER_NODE,
      labels: { 'mlops.io/pool': 'gpu', 'nvidia.com/gpu.present': 'true' },
      taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
    })),
    extraKwokStages: [
      ...['kwok-image-pull.yaml', 'kwok-graceful-termination.yaml'].map((f) =>
        path.join(PROJECT_ROOT, 'test', 'k8s', 'fixtures', f),
      ),
      clusterLogs(stateDir),
    ],
  });
  const admin = cluster.kubeConfig();
  for (const f of APPLIED) {
    await applyObjects(admin, loadManifests(readFileSync(path.join(PROJECT_ROOT, f), 'utf8')));
  }
  const secrets = randomS3Secrets();
  const s3 = await startS3Server({ stateDir: path.join(stateDir, 's3'), ...secrets });
  const bucketClient = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: secrets.credentials,
  });
  await bucketClient.send(new CreateBucketCommand({ Bucket: DATASET_BUCKET }));
  bucketClient.destroy();
  const namespace = 'mlops-training';
  await applyObjects(admin, [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: DATASET_SECRET, namespace },
      stringData: {
        AWS_ACCESS_KEY_ID: secrets.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: secrets.credentials.secretAccessKey,
      },
    } as k8s.KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${namespace}-${DATASET_CLAIM}` },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadOnlyMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        hostPath: { path: SHARED_DATASET_ROOT },
        claimRef: { namespace, name: DATASET_CLAIM },
      },
    } as k8s.KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: DATASET_CLAIM, namespace },
      spec: {
        accessModes: ['ReadOnlyMany'],
        storageClassName: '',
        resources: { requests: { storage: '1Gi' } },
        volumeName: `${namespace}-${DATASET_CLAIM}`,
      },
    } as k8s.KubernetesObject,
  ]);
  console.log(`[test kube] ${cluster.server} ready with ${GPU_NODES} GPU nodes (${Date.now() - started} ms)`);
  project.provide('kubeServer', cluster.server);
  project.provide('kubeCaPem', readFileSync(cluster.caFile, 'utf8'));
  project.provide('kubeAdminToken', cluster.adminToken);
  project.provide('kubeLogDir', cluster.logDir);
  project.provide('kubeS3Endpoint', s3.endpoint);
  project.provide('kubeS3AccessKeyId', secrets.credentials.accessKeyId);
  project.provide('kubeS3SecretAccessKey', secrets.credentials.secretAccessKey);
  return async () => {
    await s3.stop();
    await cluster.stop();
    if (!process.env.MLOPS_KEEP_KUBE_STATE) rmSync(stateDir, { recursive: true, force: true });
  };
}
