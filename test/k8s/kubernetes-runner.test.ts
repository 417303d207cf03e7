/**
 * The Kubernetes job runner against a real API server, controller manager, scheduler and Kueue,
 * with KWOK simulating the GPU nodes (the only double: no GPU or container runtime runs here).
 * Every runner uses the worker ServiceAccount's own token, so the deployed Role is what is tested.
 */
import * as k8s from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decideJobFailure } from '../../src/core/policy/job-failures';
import {
  KUEUE_QUEUE_LABEL,
  TRAINER_CONTAINER,
  createKubernetesJobRunner,
  deterministicJobName,
  kubernetesRunnerConfigFromEnv,
} from '../../src/jobs/kubernetes-runner';
import { JobOwnershipError, JobSpecError } from '../../src/jobs/types';
import { PROJECT_ROOT } from '../../src/stack/paths';
import { SIMULATED_TRAINER_LOG } from './setup';
import {
  FAST_PODS,
  TRAINING_NAMESPACE,
  gpuSpec,
  kubeConfig,
  runFor,
  waitForStatus,
  workerKubeConfig,
  workerRunner,
} from './helpers';

/** Admission, scheduling and KWOK's simulated run of one pod: seconds; generous for a loaded machine. */
const RUN_MS = 60_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f().catch(() => undefined);
});

async function track(name: string): Promise<void> {
  const runner = await workerRunner();
  cleanup.push(() => runner.delete(name));
}

describe('a GPU training Job queued through Kueue', () => {
  it('is created suspended and hardened, admitted by Kueue, runs on a simulated GPU node and succeeds', async () => {
    const runner = await workerRunner();
    const spec = gpuSpec('retrain-fraud');
    await track(spec.name);
    const phases = new Set<string>();
    const { created, status } = await runner.submit(spec);
    expect(created).toBe(true);
    expect(['pending', 'running', 'succeeded']).toContain(status.phase);

    const admin = kubeConfig().makeApiClient(k8s.BatchV1Api);
    const job = await admin.readNamespacedJob({ name: spec.name, namespace: TRAINING_NAMESPACE });
    expect(job.metadata?.labels?.[KUEUE_QUEUE_LABEL]).toBe('training');
    const pod = job.spec?.template.spec;
    const c = pod?.containers.find((x) => x.name === TRAINER_CONTAINER);
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(c?.env?.find((e) => e.name === 'MLFLOW_TRACKING_TOKEN')).toEqual({
      name: 'MLFLOW_TRACKING_TOKEN',
      valueFrom: { secretKeyRef: { name: 'mlflow-credentials', key: 'token' } },
    });
    expect(c?.resources?.limits?.['nvidia.com/gpu']).toBe('1');
    expect(job.spec?.podFailurePolicy?.rules.map((r) => r.action)).toEqual(['Ignore', 'FailJob']);

    const done = await waitForStatus(
      runner,
      spec.name,
      (s) => s?.phase === 'succeeded',
      RUN_MS,
      (s) => {
        if (s) phases.add(s.phase);
      },
    );
    expect(done?.queue?.admitted).toBe(true);
    expect(done?.queue?.conditions.map((x) => x.type)).toEqual(
      expect.arrayContaining(['QuotaReserved', 'Admitted']),
    );
    expect(done?.pods?.[0]?.node).toMatch(/^gpu-\d$/);
    expect(decideJobFailure(done ?? { phase: 'failed' })).toEqual({ action: 'done' });
  });

  it('submitting the same spec again adopts the Job (no second one); another owner is refused', async () => {
    const runner = await workerRunner();
    const spec = gpuSpec('retrain-adopt');
    await track(spec.name);
    const first = await runner.submit(spec);
    // A new runner, as a restarted worker would build it.
    const again = await (await workerRunner()).submit(spec);
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.status.name).toBe(spec.name);
    const list = await kubeConfig()
      .makeApiClient(k8s.BatchV1Api)
      .listNamespacedJob({ namespace: TRAINING_NAMESPACE, labelSelector: 'mlops.io/owner=retrain-adopt' });
    expect(list.items).toHaveLength(1);
    await expect(
      runner.submit({ ...spec, labels: { ...spec.labels, 'mlops.io/owner': 'retrain-other' } }),
    ).rejects.toBeInstanceOf(JobOwnershipError);
  });

  it('a worker killed mid-wait: the next one re-attaches to the same Job (no second Job)', async () => {
    const spec = gpuSpec('retrain-crash', { env: { MLOPS_SEED: '11' } });
    await track(spec.name);
    // A worker process that submits, reports the Job's uid, then waits on it until it is killed.
    const script = `
      const { createKubernetesJobRunner } = require(${JSON.stringify(path.join(PROJECT_ROOT, 'src/jobs/kubernetes-runner.ts'))});
      const k8s = require('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      kc.loadFromString(process.env.TEST_KUBECONFIG);
      const runner = createKubernetesJobRunner(JSON.parse(process.env.TEST_RUNNER_CONFIG), { kubeConfig: kc });
      runner.submit(JSON.parse(process.env.TEST_SPEC)).then(async (r) => {
        console.log('submitted ' + r.created);
        for (;;) { await runner.status(r.status.name); await new Promise((x) => setTimeout(x, 200)); }
      });`;
    // One process in its own group (tsx as a loader: its CLI would fork the script as a child that
    // survives a kill of the parent).
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      detached: true,
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        TEST_KUBECONFIG: (await workerKubeConfig()).exportConfig(),
        TEST_RUNNER_CONFIG: JSON.stringify({
          namespace: TRAINING_NAMESPACE,
          kueue: { queueName: 'training' },
          template: {
            podAnnotations: runFor('1h'),
            tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }],
          },
        }),
        TEST_SPEC: JSON.stringify(spec),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const submitted = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('submitted')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`worker exited early (${code}): ${out}`)));
    });
    expect(submitted).toBe('submitted true');
    const batch = kubeConfig().makeApiClient(k8s.BatchV1Api);
    const uid = (await batch.readNamespacedJob({ name: spec.name, namespace: TRAINING_NAMESPACE })).metadata
      ?.uid;
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    await exited;
    const runner = await workerRunner({ template: { podAnnotations: runFor('1h') } });
    const again = await runner.submit(spec);
    expect(again.created).toBe(false);
    const after = await batch.readNamespacedJob({ name: spec.name, namespace: TRAINING_NAMESPACE });
    expect(after.metadata?.uid).toBe(uid);
    const list = await batch.listNamespacedJob({
      namespace: TRAINING_NAMESPACE,
      labelSelector: 'mlops.io/owner=retrain-crash',
    });
    expect(list.items).toHaveLength(1);
  });

  it('the worker ConfigMap’s variables configure the runner; a malformed one is named', () => {
    const config = kubernetesRunnerConfigFromEnv({
      MLOPS_K8S_NAMESPACE: 'mlops-training',
      MLOPS_K8S_QUEUE: 'training',
      MLOPS_K8S_QUEUE_TIMEOUT_SECONDS: '600',
      MLOPS_K8S_SERVICE_ACCOUNT: 'mlops-trainer',
      MLOPS_K8S_PRIORITY_CLASS: 'mlops-training',
      MLOPS_K8S_NODE_SELECTOR: '{"mlops.io/pool":"gpu"}',
      MLOPS_K8S_TOLERATIONS: '[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]',
      MLOPS_K8S_IMAGE_PULL_SECRETS: 'registry-a, registry-b',
    });
    expect(config).toEqual({
      namespace: 'mlops-training',
      kueue: { queueName: 'training' },
      queueTimeoutSeconds: 600,
      template: {
        serviceAccountName: 'mlops-trainer',
        priorityClassName: 'mlops-training',
        nodeSelector: { 'mlops.io/pool': 'gpu' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        imagePullSecrets: ['registry-a', 'registry-b'],
      },
    });
    expect(() => kubernetesRunnerConfigFromEnv({})).toThrow(/MLOPS_K8S_NAMESPACE is required/);
    expect(() =>
      kubernetesRunnerConfigFromEnv({ MLOPS_K8S_NAMESPACE: 'x', MLOPS_K8S_QUEUE_TIMEOUT_SECONDS: '1h' }),
    ).toThrow(/MLOPS_K8S_QUEUE_TIMEOUT_SECONDS/);
    expect(() =>
      kubernetesRunnerConfigFromEnv({ MLOPS_K8S_NAMESPACE: 'x', MLOPS_K8S_TOLERATIONS: '{' }),
    ).toThrow(/MLOPS_K8S_TOLERATIONS: must be JSON/);
    expect(() =>
      createKubernetesJobRunner({ namespace: 'Not_A_Namespace' }, { kubeConfig: new k8s.KubeConfig() }),
    ).toThrow(/kubernetes runner config: namespace/);
  });

  it('deterministic names: the same workflow and stage give the same DNS label, within 63 characters', () => {
    expect(deterministicJobName('retrain-fraud', 'train')).toBe('retrain-fraud-train');
    const long = deterministicJobName(`retrain-${'x'.repeat(80)}`, 'train');
    expect(long).toHaveLength(63);
    expect(long).toBe(deterministicJobName(`retrain-${'x'.repeat(80)}`, 'train'));
    expect(long).not.toBe(deterministicJobName(`retrain-${'x'.repeat(81)}`, 'train'));
    expect(deterministicJobName('Retrain_Fraud:2026', 'train')).toMatch(
      /^retrain-fraud-2026-train-[0-9a-f]{10}$/,
    );
  });

  it('a spec refused before or by the API server is a JobSpecError naming the field', async () => {
    const runner = await workerRunner();
    const refusal = (spec: ReturnType<typeof gpuSpec>) =>
      runner.submit(spec).then(
        () => undefined,
        (e: unknown) => e,
      );
    const quantity = await refusal(gpuSpec('retrain-invalid', { resources: { gpus: 1, cpu: 'lots' } }));
    expect(quantity).toBeInstanceOf(JobSpecError);
    expect(String(quantity)).toContain('resources.cpu "lots"');
    // The API server's own validation (an env var name it refuses): HTTP 422, its field path kept.
    const envSpec = gpuSpec('retrain-invalid-env', { env: { 'A=B': 'x' } });
    await track(envSpec.name);
    const env = await refusal(envSpec);
    expect(env).toBeInstanceOf(JobSpecError);
    expect(String(env)).toMatch(/HTTP 422.*env\[0\]\.name/);
  });
});

describe('failure classes', () => {
  it('more GPUs than the queue holds: queued with Kueue’s reason, then failed at the queue timeout', async () => {
    const runner = await workerRunner({ queueTimeoutSeconds: 8 });
    const spec = gpuSpec('retrain-noquota', { resources: { gpus: 8, cpu: '2', memory: '4Gi' } });
    await track(spec.name);
    await runner.submit(spec);
    const queued = await waitForStatus(
      runner,
      spec.name,
      (s) => s?.reason === 'queued' && (s.queue?.conditions.some((c) => c.type === 'QuotaReserved') ?? false),
      RUN_MS,
    );
    expect(queued?.phase).toBe('pending');
    expect(queued?.message).toMatch(/nvidia\.com\/gpu/);
    expect(decideJobFailure(queued ?? { phase: 'failed' }).action).toBe('wait');
    const failed = await waitForStatus(runner, spec.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(failed?.reason).toBe('queued');
    expect(failed?.message).toMatch(/not admitted .*queue timeout 8 s.*nvidia\.com\/gpu/);
    const action = decideJobFailure(failed ?? { phase: 'failed' });
    expect(action.action).toBe('fail');
  });

  it('an image that cannot be pulled fails non-retryably with the kubelet’s message', async () => {
    const runner = await workerRunner({
      imagePullGraceSeconds: 0,
      template: {
        podLabels: { 'mlops.test/simulate': 'image-pull' },
        podAnnotations: { ...FAST_PODS, 'pod-create.stage.kwok.x-k8s.io/weight': '0' },
      },
    });
    const spec = gpuSpec('retrain-pull', { image: 'registry.example.com/mlops/no-such-trainer:v0' });
    await track(spec.name);
    await runner.submit(spec);
    const failed = await waitForStatus(runner, spec.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(failed?.reason).toBe('image-pull');
    expect(failed?.message).toContain('no-such-trainer:v0');
    expect(failed?.message).toContain('ErrImagePull');
    const action = decideJobFailure(failed ?? { phase: 'failed' });
    expect(action).toMatchObject({ action: 'fail', hint: expect.stringMatching(/image/) });
  });

  it('a Job past its activeDeadlineSeconds is failed deadline-exceeded, and the table does not retrain', async () => {
    const runner = await workerRunner({
      template: { podAnnotations: runFor('1h') },
    });
    const spec = gpuSpec('retrain-deadline', { activeDeadlineSeconds: 3 });
    await track(spec.name);
    await runner.submit(spec);
    const failed = await waitForStatus(runner, spec.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(failed?.reason).toBe('deadline-exceeded');
    expect(decideJobFailure(failed ?? { phase: 'failed' }).action).toBe('fail');
  });

  it('an OOM-killed trainer fails non-retryably with a resource hint; a non-zero exit fails with its code', async () => {
    const chaos = (exitCode: string, reason: string) =>
      workerRunner({
        template: {
          podLabels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' },
          podAnnotations: {
            ...FAST_PODS,
            'pod-complete.stage.kwok.x-k8s.io/weight': '0',
            'pod-container-running-failed.stage.kwok.x-k8s.io/delay': '500ms',
            'pod-container-running-failed.stage.kwok.x-k8s.io/jitter-delay': '500ms',
            'pod-container-running-failed.stage.kwok.x-k8s.io/exit-code': exitCode,
            'pod-container-running-failed.stage.kwok.x-k8s.io/reason': reason,
            'pod-container-running-failed.stage.kwok.x-k8s.io/message': `simulated ${reason}`,
          },
        },
      });
    const oomRunner = await chaos('137', 'OOMKilled');
    const oom = gpuSpec('retrain-oom');
    await track(oom.name);
    await oomRunner.submit(oom);
    const oomFailed = await waitForStatus(oomRunner, oom.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(oomFailed?.reason).toBe('oom-killed');
    expect(oomFailed?.exitCode).toBe(137);
    expect(decideJobFailure(oomFailed ?? { phase: 'failed' })).toMatchObject({
      action: 'fail',
      hint: expect.stringMatching(/memory/),
    });

    const exitRunner = await chaos('3', 'Error');
    const bad = gpuSpec('retrain-exit');
    await track(bad.name);
    await exitRunner.submit(bad);
    const exitFailed = await waitForStatus(exitRunner, bad.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(exitFailed).toMatchObject({ reason: 'exit-code', exitCode: 3 });
    expect(exitFailed?.message).toContain('simulated Error');
    // The pod log through the API server's pods/log (KWOK answers as the kubelet), tail only.
    const logs = await exitRunner.logs(bad.name, 2);
    expect(logs.trim().split('\n')).toEqual(SIMULATED_TRAINER_LOG.slice(-2));
    // podFailurePolicy FailJob: one pod, no retry of a trainer that failed on its own.
    expect(exitFailed?.pods).toHaveLength(1);
  });
});

describe('without Kueue (Jobs go straight to the scheduler)', () => {
  it('not enough nvidia.com/gpu on any node: unschedulable with the scheduler’s reason, then failed at the queue timeout', async () => {
    const runner = await workerRunner({ kueue: undefined, queueTimeoutSeconds: 8 });
    const spec = gpuSpec('retrain-nogpu', { resources: { gpus: 16, cpu: '2', memory: '4Gi' } });
    await track(spec.name);
    await runner.submit(spec);
    const waiting = await waitForStatus(runner, spec.name, (s) => s?.reason === 'unschedulable', RUN_MS);
    expect(waiting?.phase).toBe('pending');
    expect(waiting?.message).toMatch(/Insufficient nvidia\.com\/gpu/);
    expect(decideJobFailure(waiting ?? { phase: 'failed' }).action).toBe('wait');
    const failed = await waitForStatus(runner, spec.name, (s) => s?.phase === 'failed', RUN_MS);
    expect(failed?.reason).toBe('unschedulable');
    expect(failed?.message).toMatch(/queue timeout 8 s.*Insufficient nvidia\.com\/gpu/);
    expect(decideJobFailure(failed ?? { phase: 'failed' }).action).toBe('fail');
  });

  it('an evicted pod is a disruption: the podFailurePolicy ignores it and the Job runs a new pod', async () => {
    const runner = await workerRunner({ kueue: undefined, template: { podAnnotations: runFor('1h') } });
    const spec = gpuSpec('retrain-evict');
    await track(spec.name);
    await runner.submit(spec);
    const running = await waitForStatus(runner, spec.name, (s) => s?.phase === 'running', RUN_MS);
    const pod = running?.pods?.[0]?.name ?? '';
    const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedPodEviction({
      name: pod,
      namespace: TRAINING_NAMESPACE,
      body: {
        apiVersion: 'policy/v1',
        kind: 'Eviction',
        metadata: { name: pod, namespace: TRAINING_NAMESPACE },
      },
    });
    const resumed = await waitForStatus(
      runner,
      spec.name,
      (s) => s?.phase === 'running' && !(s.pods ?? []).some((p) => p.name === pod),
      2 * RUN_MS,
    );
    expect(resumed?.pods).toHaveLength(1);
    const job = await kubeConfig()
      .makeApiClient(k8s.BatchV1Api)
      .readNamespacedJob({ name: spec.name, namespace: TRAINING_NAMESPACE });
    expect(job.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True') ?? false).toBe(
      false,
    );
    // Ignored by the podFailurePolicy: the evicted pod did not count against backoffLimit.
    expect(job.status?.failed ?? 0).toBe(0);
  });
});

describe('preemption, cancellation and garbage collection', () => {
  it('a lower-priority training preempted by an urgent one is requeued by Kueue and completes after it', async () => {
    const slow = await workerRunner({
      template: { podAnnotations: runFor('15s') },
    });
    const urgent = await workerRunner({ template: { priorityClassName: 'mlops-training-urgent' } });
    const low = gpuSpec('retrain-low', { resources: { gpus: 4, cpu: '2', memory: '4Gi' } });
    const high = gpuSpec('retrain-urgent', { resources: { gpus: 4, cpu: '2', memory: '4Gi' } });
    await track(low.name);
    await track(high.name);
    await slow.submit(low);
    await waitForStatus(slow, low.name, (s) => s?.phase === 'running', RUN_MS);
    await urgent.submit(high);
    const preempted = await waitForStatus(slow, low.name, (s) => s?.reason === 'preempted', RUN_MS);
    expect(preempted?.phase).toBe('pending');
    expect(preempted?.queue?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Evicted', status: 'True', reason: 'Preempted' }),
      ]),
    );
    expect(decideJobFailure(preempted ?? { phase: 'failed' }).action).toBe('wait');
    await waitForStatus(urgent, high.name, (s) => s?.phase === 'succeeded', RUN_MS);
    const resumed = await waitForStatus(slow, low.name, (s) => s?.phase === 'succeeded', 2 * RUN_MS);
    expect(resumed?.queue?.admitted).toBe(true);
  });

  it('delete removes the Job and its pods (foreground) and is idempotent', async () => {
    const runner = await workerRunner({
      template: { podAnnotations: runFor('1h') },
    });
    const spec = gpuSpec('retrain-cancel');
    await runner.submit(spec);
    await waitForStatus(runner, spec.name, (s) => s?.phase === 'running', RUN_MS);
    await runner.delete(spec.name);
    expect(await runner.status(spec.name)).toBeUndefined();
    const pods = await kubeConfig()
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedPod({
        namespace: TRAINING_NAMESPACE,
        labelSelector: `batch.kubernetes.io/job-name=${spec.name}`,
      });
    expect(pods.items).toHaveLength(0);
    await runner.delete(spec.name);
  });

  it('the label garbage collector deletes only the Jobs of finished owners', async () => {
    const runner = await workerRunner();
    const finished = gpuSpec('retrain-gc-done');
    const running = gpuSpec('retrain-gc-live');
    await track(running.name);
    await runner.submit(finished);
    await runner.submit(running);
    const deleted = await runner.collectGarbage(async (owner) => owner === 'retrain-gc-done');
    expect(deleted).toEqual([finished.name]);
    expect(await runner.status(finished.name)).toBeUndefined();
    expect(await runner.status(running.name)).toBeDefined();
  });
});
