/**
 * deploy/k8s against the real API server: every manifest, and every kustomization as `kubectl
 * kustomize` renders it (the worker's local and production overlays, the Kueue queues, the KServe
 * RBAC, the gateway), passes a server-side dry run (schema, admission, Pod Security "restricted"
 * of the namespaces), and the
 * worker's ServiceAccount gets exactly what its Role grants: Jobs, pods and logs, Kueue Workloads in
 * the training namespace, and a 403 on Secrets, on pods/exec and in every other namespace.
 */
import * as k8s from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKubernetesJobRunner, kubernetesRunnerConfigFromEnv } from '../../src/jobs/kubernetes-runner';
import { s3ConnectorFromEnv } from '../../src/data/sources';
import type { SecretRef } from '../../src/ports/secret-store';
import { envSecretName } from '../../src/secrets/local';
import { loadManifests } from '../../src/stack/kube-cluster';
import { ensureKubeTools } from '../../src/stack/kube-tools';
import { PROJECT_ROOT } from '../../src/stack/paths';
import {
  TRAINING_NAMESPACE,
  WORKER_NAMESPACE,
  gpuSpec,
  kubeConfig,
  workerKubeConfig,
  workerRunner,
} from './helpers';

const K8S_DIR = path.join(PROJECT_ROOT, 'deploy', 'k8s');

/** The files a kustomization lists under `resources:` (plain files; folders are other kustomizations). */
function kustomizationFiles(dir: string): string[] {
  const k = loadManifests(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'))[0] as unknown as {
    resources?: string[];
  };
  return (k.resources ?? []).filter((r) => r.endsWith('.yaml')).map((r) => path.join(dir, r));
}

/** The HTTP status of a raw request with the config's token, trusting the cluster CA. */
function rawStatus(kc: k8s.KubeConfig, method: string, urlPath: string): Promise<number> {
  const cluster = kc.getCurrentCluster();
  const ca = Buffer.from(cluster?.caData ?? '', 'base64').toString('utf8');
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${cluster?.server ?? ''}${urlPath}`,
      { method, ca, headers: { Authorization: `Bearer ${kc.getCurrentUser()?.token ?? ''}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function statusCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  return p.then(
    () => 200,
    (err: unknown) => statusCode(err) ?? -1,
  );
}

describe('deploy/k8s manifests', () => {
  const files = [
    ...kustomizationFiles(path.join(K8S_DIR, 'worker', 'base')),
    ...kustomizationFiles(path.join(K8S_DIR, 'kueue')),
    ...readdirSync(K8S_DIR)
      .filter((f) => /^trainer-job.*\.yaml$/.test(f))
      .map((f) => path.join(K8S_DIR, f)),
  ];

  it('lists every manifest of the base, the Kueue queues and the trainer Job template', () => {
    const names = files.map((f) => path.relative(K8S_DIR, f));
    expect(names).toEqual(
      expect.arrayContaining([
        'worker/base/deployment.yaml',
        'worker/base/role.yaml',
        'kueue/cluster-queue.yaml',
        'trainer-job.yaml',
      ]),
    );
  });

  it('the worker ConfigMap configures a valid Kubernetes runner for the training namespace', () => {
    const [cm] = loadManifests(
      readFileSync(path.join(K8S_DIR, 'worker', 'base', 'configmap.yaml'), 'utf8'),
    ) as k8s.V1ConfigMap[];
    const config = kubernetesRunnerConfigFromEnv(cm?.data ?? {});
    const runner = createKubernetesJobRunner(config, { kubeConfig: kubeConfig() });
    expect(runner.namespace).toBe(TRAINING_NAMESPACE);
    const job = runner.buildJob(gpuSpec('retrain-configmap'));
    expect(job.metadata?.labels?.['kueue.x-k8s.io/queue-name']).toBe('training');
    expect(job.spec?.template.spec?.serviceAccountName).toBe('mlops-trainer');
    expect(job.spec?.template.spec?.nodeSelector).toEqual({ 'mlops.io/pool': 'gpu' });
  });

  it('every object passes a server-side dry run (create or update, nothing persisted)', async () => {
    const client = k8s.KubernetesObjectApi.makeApiClient(kubeConfig());
    const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
    const before = (await core.listNamespacedConfigMap({ namespace: WORKER_NAMESPACE })).items.length;
    let count = 0;
    for (const file of files) {
      for (const obj of loadManifests(readFileSync(file, 'utf8'))) {
        await expect(
          client.patch(obj, undefined, 'All', 'mlops-dry-run', true, k8s.PatchStrategy.ServerSideApply),
          `${path.relative(K8S_DIR, file)}: ${obj.kind}/${obj.metadata?.name ?? ''}`,
        ).resolves.toMatchObject({ kind: obj.kind });
        count += 1;
      }
    }
    expect(count).toBeGreaterThanOrEqual(15);
    // Dry run: the worker's ConfigMap was not created.
    expect((await core.listNamespacedConfigMap({ namespace: WORKER_NAMESPACE })).items.length).toBe(before);
  });

  it('a Job that breaks Pod Security "restricted" is refused by the training namespace (dry run)', async () => {
    const runner = await workerRunner();
    const job = runner.buildJob(gpuSpec('retrain-psa'));
    const c = job.spec?.template.spec?.containers[0];
    if (c) c.securityContext = { ...c.securityContext, allowPrivilegeEscalation: true };
    const batch = kubeConfig().makeApiClient(k8s.BatchV1Api);
    // Pod Security checks Job templates with a warning; the pods themselves would be refused.
    const warned = await batch
      .createNamespacedJob({ namespace: TRAINING_NAMESPACE, body: job, dryRun: 'All' })
      .then(
        () => 'accepted',
        (err: unknown) => String(err),
      );
    expect(warned).toBe('accepted');
    const pod: k8s.V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'psa-probe', namespace: TRAINING_NAMESPACE },
      spec: job.spec?.template.spec ?? { containers: [] },
    };
    const code = await codeOf(
      kubeConfig()
        .makeApiClient(k8s.CoreV1Api)
        .createNamespacedPod({ namespace: TRAINING_NAMESPACE, body: pod, dryRun: 'All' }),
    );
    expect(code).toBe(403);
    // The runner's own pod template passes.
    const hardened = runner.buildJob(gpuSpec('retrain-psa-ok')).spec?.template.spec;
    const ok = await codeOf(
      kubeConfig()
        .makeApiClient(k8s.CoreV1Api)
        .createNamespacedPod({
          namespace: TRAINING_NAMESPACE,
          body: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'psa-ok' },
            spec: hardened ?? { containers: [] },
          },
          dryRun: 'All',
        }),
    );
    expect(ok).toBe(200);
  });
});

describe('kustomize renderings of deploy/k8s (overlays and the gateway)', () => {
  /** Kustomizations rendered by the project-built `kubectl kustomize`; each object must pass a dry run. */
  const RENDERED = ['worker/overlays/local', 'worker/overlays/production', 'kueue', 'kserve', 'gateway'];

  function render(dir: string): k8s.KubernetesObject[] {
    const r = spawnSync(ensureKubeTools().kubectl, ['kustomize', path.join(K8S_DIR, dir)], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr}`);
    return loadManifests(r.stdout);
  }

  it('the overlays change what they say (replicas, digest-pinned image, zone spread, Temporal address)', () => {
    const deployment = (objs: k8s.KubernetesObject[]) =>
      objs.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'mlops-worker') as k8s.V1Deployment;
    const config = (objs: k8s.KubernetesObject[]) =>
      objs.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'mlops-worker') as k8s.V1ConfigMap;
    const local = render('worker/overlays/local');
    const prod = render('worker/overlays/production');
    expect(deployment(local).spec?.replicas).toBe(1);
    expect(config(local).data?.TEMPORAL_ADDRESS).toBe('host.local:7233');
    expect(deployment(prod).spec?.replicas).toBe(3);
    expect(deployment(prod).spec?.template.spec?.containers[0]?.image).toMatch(
      /^registry\.example\.com\/mlops\/control-plane-worker@sha256:[0-9a-f]{64}$/,
    );
    expect(deployment(prod).spec?.template.spec?.topologySpreadConstraints?.[0]?.topologyKey).toBe(
      'topology.kubernetes.io/zone',
    );
    // Production stages snapshots in its object store, with the worker's S3 credentials from the Secret.
    const prodEnv = config(prod).data ?? {};
    expect(kubernetesRunnerConfigFromEnv(prodEnv).datasets?.objectStore).toMatchObject({
      bucket: 'mlops-datasets',
      prefix: 'snapshots',
      credentialsSecret: 'mlops-training-datasets',
      endpoint: 'https://s3.example.internal',
    });
    const connector = s3ConnectorFromEnv(prodEnv, os.tmpdir());
    expect(connector?.secrets.kind).toBe('env');
    const fromSecret = (deployment(prod).spec?.template.spec?.containers[0]?.env ?? []).filter(
      (e) => e.valueFrom?.secretKeyRef?.name === 'mlops-worker',
    );
    for (const ref of [connector?.config.accessKeyId, connector?.config.secretAccessKey]) {
      expect(fromSecret.map((e) => e.name)).toContain(envSecretName(ref as SecretRef));
    }
    // Both overlays carry the Kueue queues the worker submits to.
    for (const objs of [local, prod]) {
      expect(objs.map((o) => o.kind)).toEqual(expect.arrayContaining(['ClusterQueue', 'LocalQueue', 'Role']));
    }
  });

  it('every rendered object passes a server-side dry run', async () => {
    const client = k8s.KubernetesObjectApi.makeApiClient(kubeConfig());
    for (const dir of RENDERED) {
      const objs = render(dir);
      expect(objs.length, dir).toBeGreaterThan(0);
      for (const obj of objs) {
        await expect(
          client.patch(obj, undefined, 'All', 'mlops-dry-run', true, k8s.PatchStrategy.ServerSideApply),
          `${dir}: ${obj.kind}/${obj.metadata?.name ?? ''}`,
        ).resolves.toMatchObject({ kind: obj.kind });
      }
    }
    // The gateway's Deployment is among them (its own manifests, rendered as they would be applied).
    expect(render('gateway').map((o) => o.kind)).toEqual(
      expect.arrayContaining(['Deployment', 'Service', 'HorizontalPodAutoscaler', 'NetworkPolicy']),
    );
  });
});

describe('the worker ServiceAccount (least privilege)', () => {
  it('may run Jobs, read pods and Kueue Workloads in the training namespace', async () => {
    const kc = await workerKubeConfig();
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const runner = await workerRunner();
    const job = runner.buildJob(gpuSpec('retrain-rbac'));
    expect(
      await codeOf(batch.createNamespacedJob({ namespace: TRAINING_NAMESPACE, body: job, dryRun: 'All' })),
    ).toBe(200);
    expect(await codeOf(batch.listNamespacedJob({ namespace: TRAINING_NAMESPACE }))).toBe(200);
    expect(await codeOf(core.listNamespacedPod({ namespace: TRAINING_NAMESPACE }))).toBe(200);
    expect(
      await codeOf(
        custom.listNamespacedCustomObject({
          group: 'kueue.x-k8s.io',
          version: 'v1beta2',
          namespace: TRAINING_NAMESPACE,
          plural: 'workloads',
        }),
      ),
    ).toBe(200);
  });

  it('is refused (403) on Secrets, on pods/exec, on patching Jobs and in other namespaces', async () => {
    const kc = await workerKubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    expect(await codeOf(core.listNamespacedSecret({ namespace: TRAINING_NAMESPACE }))).toBe(403);
    expect(
      await codeOf(core.readNamespacedSecret({ name: 'mlflow-credentials', namespace: TRAINING_NAMESPACE })),
    ).toBe(403);
    expect(await codeOf(core.listNamespacedSecret({ namespace: WORKER_NAMESPACE }))).toBe(403);
    // pods/exec is a create on the subresource: ask the API server's authorizer about it.
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const review = await authz.createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: {
            namespace: TRAINING_NAMESPACE,
            verb: 'create',
            resource: 'pods',
            subresource: 'exec',
          },
        },
      },
    });
    expect(review.status?.allowed).toBe(false);
    // And the real request: an exec POST is refused by the authorizer before it reaches any pod.
    expect(
      await rawStatus(
        kc,
        'POST',
        `/api/v1/namespaces/${TRAINING_NAMESPACE}/pods/any/exec?command=sh&stdout=true`,
      ),
    ).toBe(403);
    expect(await codeOf(batch.listNamespacedJob({ namespace: 'default' }))).toBe(403);
    expect(await codeOf(core.listNamespacedPod({ namespace: 'kube-system' }))).toBe(403);
    expect(
      await codeOf(
        batch.patchNamespacedJob(
          {
            name: 'any',
            namespace: TRAINING_NAMESPACE,
            body: [{ op: 'replace', path: '/spec/suspend', value: false }],
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        ),
      ),
    ).toBe(403);
    expect(
      await codeOf(
        core.createNamespacedPod({
          namespace: TRAINING_NAMESPACE,
          body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } },
          dryRun: 'All',
        }),
      ),
    ).toBe(403);
  });
});
