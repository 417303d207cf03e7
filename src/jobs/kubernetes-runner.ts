/**
 * Kubernetes job runner: the job contract carried out as `batch/v1` Jobs on a cluster, optionally
 * queued through Kueue. Built by {@link createKubernetesJobRunner} from a validated configuration.
 *
 * - **Idempotent submit**: the Job is named by the caller's deterministic name
 *   ({@link deterministicJobName}); "already exists" is adopted only when the existing Job carries
 *   the same owner label, never a second Job. A Job still being deleted is waited out first.
 * - **Hardened pods**: non-root, seccomp RuntimeDefault, read-only root filesystem with emptyDir
 *   scratch and /tmp, every capability dropped, no privilege escalation, no ServiceAccount token
 *   unless configured, no service links; env from plain values or Secret/ConfigMap references only.
 * - **podFailurePolicy**: disruptions (preemption, eviction, drain) are ignored, so the Job
 *   controller recreates the pod; a non-zero exit of the trainer fails the Job at once.
 * - **Honest status**: Job conditions, the Kueue Workload's conditions and the pods' states are
 *   mapped to a phase and a {@link JobReason} that the job failure table acts on: image pull errors
 *   and invalid specs (after a short grace), OOM kills with the container's message, deadlines,
 *   preemptions (Kueue requeues the Job), and waiting for quota or a node, which turns into a
 *   failure once the queue timeout has passed since the Job was created.
 * - **Cancellation and GC**: delete is foreground (the pods go before the Job) and waits until the
 *   Job is gone; {@link KubernetesJobRunner.collectGarbage} removes Jobs of finished owners.
 * - **Datasets the pod can reach**: a snapshot on the worker's disk is staged in the object store
 *   or mounted from a shared volume, as configured (`datasets`, see dataset-placement.ts); with
 *   neither, the Job is refused (`DatasetNotReachableError`) instead of handed a worker path.
 */
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { JobReason } from '../core/contracts/jobs';
import { s3ConnectorFromEnv } from '../data/sources';
import {
  createS3SnapshotStager,
  DatasetPlacementConfig,
  mountDataset,
  stageDataset,
  type SnapshotStager,
} from './dataset-placement';
import {
  assertValidJobName,
  JobOwnershipError,
  JobSpecError,
  OWNER_LABEL,
  type JobRunner,
  type JobSpec,
  type JobStatus,
} from './types';

/** Label on every Job this runner creates: the garbage collector lists Jobs by it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'mlops-control-plane';
/** Kueue's queue label: a Job carrying it is admitted by Kueue (created suspended). */
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
/** Annotation holding a digest of the submitted spec (what an adopted Job was created from). */
export const SPEC_DIGEST_ANNOTATION = 'mlops.io/spec-sha256';
/** Name of the trainer container; the podFailurePolicy's exit-code rule names it. */
export const TRAINER_CONTAINER = 'trainer';
/** Kueue's API group and the version this runner reads Workloads with. */
const KUEUE_GROUP = 'kueue.x-k8s.io';
const KUEUE_VERSION = 'v1beta2';
/** Label Kueue puts on a Workload naming the uid of the Job it stands for. */
const KUEUE_JOB_UID_LABEL = 'kueue.x-k8s.io/job-uid';

/** How long a Job may wait for queue admission or a node before it fails (a GPU queue can be long). */
export const DEFAULT_QUEUE_TIMEOUT_SECONDS = 24 * 3600;
/** How long image pull errors may last before the Job fails (a registry hiccup heals itself). */
export const DEFAULT_IMAGE_PULL_GRACE_SECONDS = 120;
/** Finished Jobs are removed by Kubernetes after this long (the activity reads them well before). */
export const DEFAULT_TTL_SECONDS_AFTER_FINISHED = 24 * 3600;
/** Pod failures not matched by the podFailurePolicy (no exit code) retried this many times. */
export const DEFAULT_BACKOFF_LIMIT = 3;
/** UID and GID the trainer runs as (the reference image's non-root user). */
export const DEFAULT_RUN_AS_USER = 10001;
/** Size caps of the writable scratch and /tmp emptyDirs. */
export const DEFAULT_SCRATCH_SIZE = '20Gi';
export const DEFAULT_TMP_SIZE = '2Gi';
/** Mount point of the scratch volume (checkpoints before upload, caches). */
export const SCRATCH_MOUNT = '/scratch';
/** How long `delete` waits for a foreground deletion to finish. */
export const DELETE_WAIT_MS = 120_000;
/** Poll interval while waiting for a Job to disappear. */
const DELETE_POLL_MS = 250;
/** Container waiting reasons that mean the image cannot be pulled or named. */
const IMAGE_PULL_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
]);
/** Waiting reasons that cannot heal without a new spec (immediately fatal). */
const IMAGE_FATAL_REASONS = new Set(['InvalidImageName', 'ErrImageNeverPull']);
/** Waiting reasons of a spec the kubelet cannot run (missing Secret or ConfigMap key, bad config). */
const INVALID_SPEC_REASONS = new Set(['CreateContainerConfigError', 'CreateContainerError']);

const labelValue = z
  .string()
  .max(63)
  .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, 'must be a Kubernetes label value');
/** Kubernetes' own quantity syntax (what the API server accepts for cpu, memory, sizes). */
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const quantity = z.string().regex(QUANTITY, 'must be a Kubernetes quantity (for example 500m, 2, 8Gi)');

const Toleration = z.object({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

/** The runner's configuration (validated; errors name the field). */
export const KubernetesRunnerConfig = z.object({
  /** Namespace the training Jobs run in (the worker's Role is scoped to it). */
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/),
  /** A kubeconfig file; without it the in-cluster ServiceAccount, else the default loading rules. */
  kubeconfig: z.string().min(1).optional(),
  /** Kueue admission: the LocalQueue in `namespace`. Absent: Jobs go straight to the scheduler. */
  kueue: z.object({ queueName: labelValue.min(1) }).optional(),
  queueTimeoutSeconds: z.number().int().positive().default(DEFAULT_QUEUE_TIMEOUT_SECONDS),
  imagePullGraceSeconds: z.number().int().nonnegative().default(DEFAULT_IMAGE_PULL_GRACE_SECONDS),
  /** How a snapshot on the worker's disk reaches the pod (object store or shared volume); none: refused. */
  datasets: DatasetPlacementConfig.prefault({}),
  /** The pod template's fixed part: where GPU pods may run and as whom. */
  template: z
    .object({
      serviceAccountName: z.string().min(1).optional(),
      /** Mount the ServiceAccount token only when the trainer calls the Kubernetes API. */
      automountServiceAccountToken: z.boolean().default(false),
      priorityClassName: z.string().min(1).optional(),
      nodeSelector: z.record(z.string(), z.string()).default({}),
      tolerations: z.array(Toleration).default([]),
      /** A `V1Affinity` object, passed through as is. */
      affinity: z.record(z.string(), z.unknown()).optional(),
      imagePullSecrets: z.array(z.string().min(1)).default([]),
      /** ConfigMaps whose keys all become environment variables (non-secret settings). */
      envFromConfigMaps: z.array(z.string().min(1)).default([]),
      podLabels: z.record(z.string(), labelValue).default({}),
      podAnnotations: z.record(z.string(), z.string()).default({}),
      runAsUser: z.number().int().positive().default(DEFAULT_RUN_AS_USER),
      backoffLimit: z.number().int().nonnegative().default(DEFAULT_BACKOFF_LIMIT),
      ttlSecondsAfterFinished: z.number().int().nonnegative().default(DEFAULT_TTL_SECONDS_AFTER_FINISHED),
      scratchSize: quantity.default(DEFAULT_SCRATCH_SIZE),
      tmpSize: quantity.default(DEFAULT_TMP_SIZE),
      /** Defaults for specs that name no cpu/memory. */
      defaultCpu: quantity.default('2'),
      defaultMemory: quantity.default('8Gi'),
    })
    .prefault({}),
});
export type KubernetesRunnerConfig = z.input<typeof KubernetesRunnerConfig>;
type Config = z.output<typeof KubernetesRunnerConfig>;

/** A Kueue Workload condition as reported in status and heartbeats. */
export interface QueueCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/**
 * The port's status plus what only a cluster knows: the Kueue Workload's conditions and the pods'
 * states. Extra fields are plain JSON, so they travel in heartbeats and the pipeline's `status`.
 */
export interface KubernetesJobStatus extends JobStatus {
  queue?: { name: string; workload?: string; admitted: boolean; conditions: QueueCondition[] };
  pods?: { name: string; phase: string; node?: string; reason?: string }[];
}

/** A run's extra values that the port's JobSpec does not carry (optional). */
export interface KubernetesJobSpec extends JobSpec {
  /** Arguments of the trainer's entrypoint. */
  args?: string[];
  /** Annotations linking the Job to model, version and workflow (free text, unlike labels). */
  annotations?: Record<string, string>;
}

const MAX_NAME = 63;
/** Hex digits of the hash suffix that keeps truncated names distinct. */
const NAME_HASH_CHARS = 10;

/**
 * A DNS-1123 label (at most 63 characters) derived only from the workflow id and the stage, so a
 * retried activity or a restarted worker computes the same Job name. Long or odd ids keep a
 * readable prefix and a hash of the full input.
 */
export function deterministicJobName(workflowId: string, stage: string): string {
  const raw = `${workflowId}-${stage}`;
  const clean = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  if (clean === raw && clean.length <= MAX_NAME && clean.length > 0) return clean;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, NAME_HASH_CHARS);
  const prefix = clean.slice(0, MAX_NAME - NAME_HASH_CHARS - 1).replace(/-+$/, '');
  return prefix ? `${prefix}-${hash}` : `job-${hash}`;
}

function apiCode(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  return undefined;
}

function apiMessage(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        const parsed = z.object({ message: z.string() }).safeParse(JSON.parse(body));
        if (parsed.success) return parsed.data.message;
      } catch {
        return body.slice(0, 500);
      }
      return body.slice(0, 500);
    }
    const parsed = z.object({ message: z.string() }).safeParse(body);
    if (parsed.success) return parsed.data.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function digestOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

const WorkloadCondition = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});
const Workload = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({ active: z.boolean().optional(), queueName: z.string().optional() }).optional(),
  status: z.object({ conditions: z.array(WorkloadCondition).optional() }).optional(),
});
type Workload = z.infer<typeof Workload>;

export class KubernetesJobRunner implements JobRunner {
  readonly kind = 'kubernetes';
  private readonly batch: k8s.BatchV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(
    private readonly config: Config,
    kubeConfig: k8s.KubeConfig,
    private readonly now: () => number = Date.now,
    /** Uploads snapshots for `datasets.objectStore` (the worker's credentials). */
    private readonly stager?: SnapshotStager,
  ) {
    this.batch = kubeConfig.makeApiClient(k8s.BatchV1Api);
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  get namespace(): string {
    return this.config.namespace;
  }

  /**
   * The Job this runner would create for `spec` (exported for tests and server-side dry runs). A
   * dataset on the worker's disk must lie on the configured shared volume (else
   * `DatasetNotReachableError`); `submit` stages it in the object store first when one is configured.
   */
  buildJob(given: KubernetesJobSpec): k8s.V1Job {
    assertValidJobName(given.name);
    const { spec, mount } = mountDataset(given, this.config.datasets);
    const owner = spec.labels[OWNER_LABEL];
    if (!owner)
      throw new JobSpecError(`job ${spec.name}: labels.${OWNER_LABEL} (the owning workflow) is required`);
    for (const [k, v] of Object.entries(spec.labels)) {
      const r = labelValue.safeParse(v);
      if (!r.success)
        throw new JobSpecError(`job ${spec.name}: labels.${k}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    }
    for (const key of ['cpu', 'memory'] as const) {
      const v = spec.resources?.[key];
      if (v !== undefined && !QUANTITY.test(v)) {
        throw new JobSpecError(
          `job ${spec.name}: resources.${key} "${v}" is not a Kubernetes quantity (for example 500m, 2, 8Gi)`,
        );
      }
    }
    const gpuCount = spec.resources?.gpus;
    if (gpuCount !== undefined && !(Number.isInteger(gpuCount) && gpuCount >= 0)) {
      throw new JobSpecError(`job ${spec.name}: resources.gpus must be a whole number >= 0, got ${gpuCount}`);
    }
    const t = this.config.template;
    const labels: Record<string, string> = {
      ...spec.labels,
      [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
      ...(this.config.kueue ? { [KUEUE_QUEUE_LABEL]: this.config.kueue.queueName } : {}),
    };
    const env: k8s.V1EnvVar[] = [
      ...Object.entries(spec.env).map(([name, value]) => ({ name, value })),
      ...Object.entries(spec.secretEnv ?? {}).map(([name, ref]) => ({
        name,
        valueFrom: { secretKeyRef: { name: ref.secret, key: ref.key } },
      })),
      { name: 'TMPDIR', value: '/tmp' },
      { name: 'HOME', value: SCRATCH_MOUNT },
      { name: 'MLOPS_SCRATCH_DIR', value: SCRATCH_MOUNT },
    ];
    const gpus = spec.resources?.gpus ?? 0;
    const requests: Record<string, string> = {
      cpu: spec.resources?.cpu ?? t.defaultCpu,
      memory: spec.resources?.memory ?? t.defaultMemory,
    };
    const limits: Record<string, string> = { memory: requests.memory ?? t.defaultMemory };
    if (gpus > 0) {
      requests['nvidia.com/gpu'] = String(gpus);
      limits['nvidia.com/gpu'] = String(gpus);
    }
    const specDigest = digestOf({
      image: spec.image,
      env: spec.env,
      secretEnv: spec.secretEnv,
      resources: spec.resources,
      args: spec.args,
    });
    const pod: k8s.V1PodTemplateSpec = {
      metadata: {
        labels: { ...t.podLabels, ...spec.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { ...t.podAnnotations },
      },
      spec: {
        restartPolicy: 'Never',
        ...(t.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
        automountServiceAccountToken: t.automountServiceAccountToken,
        enableServiceLinks: false,
        ...(t.priorityClassName ? { priorityClassName: t.priorityClassName } : {}),
        nodeSelector: t.nodeSelector,
        tolerations: t.tolerations,
        ...(t.affinity ? { affinity: t.affinity as k8s.V1Affinity } : {}),
        imagePullSecrets: t.imagePullSecrets.map((name) => ({ name })),
        securityContext: {
          runAsNonRoot: true,
          runAsUser: t.runAsUser,
          runAsGroup: t.runAsUser,
          fsGroup: t.runAsUser,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: TRAINER_CONTAINER,
            image: spec.image,
            ...(spec.args ? { args: spec.args } : {}),
            env,
            envFrom: t.envFromConfigMaps.map((name) => ({ configMapRef: { name } })),
            resources: { requests, limits },
            // The tail of the log becomes the termination message when the trainer wrote none.
            terminationMessagePolicy: 'FallbackToLogsOnError',
            securityContext: {
              allowPrivilegeEscalation: false,
              privileged: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ['ALL'] },
              seccompProfile: { type: 'RuntimeDefault' },
            },
            volumeMounts: [
              { name: 'scratch', mountPath: SCRATCH_MOUNT },
              { name: 'tmp', mountPath: '/tmp' },
              ...(mount ? [mount.mount] : []),
            ],
          },
        ],
        volumes: [
          { name: 'scratch', emptyDir: { sizeLimit: t.scratchSize } },
          { name: 'tmp', emptyDir: { sizeLimit: t.tmpSize } },
          ...(mount ? [mount.volume] : []),
        ],
      },
    };
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: spec.name,
        namespace: this.config.namespace,
        labels,
        annotations: { ...spec.annotations, [SPEC_DIGEST_ANNOTATION]: specDigest },
      },
      spec: {
        // Kueue unsuspends the Job once its Workload is admitted.
        suspend: this.config.kueue !== undefined,
        backoffLimit: t.backoffLimit,
        ...(spec.activeDeadlineSeconds !== undefined
          ? { activeDeadlineSeconds: spec.activeDeadlineSeconds }
          : {}),
        ttlSecondsAfterFinished: t.ttlSecondsAfterFinished,
        podFailurePolicy: {
          rules: [
            // Preemption, eviction, node drain: not the trainer's fault; the pod is recreated.
            { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
            // The trainer ran and failed (bad data, a bug, OOM): retrying the same input cannot help.
            {
              action: 'FailJob',
              onExitCodes: { containerName: TRAINER_CONTAINER, operator: 'NotIn', values: [0] },
            },
          ],
        },
        template: pod,
      },
    };
  }

  async submit(given: KubernetesJobSpec): Promise<{ created: boolean; status: KubernetesJobStatus }> {
    // Content-addressed staging: a retried submit stages nothing new and builds the same Job.
    const spec = await stageDataset(given, this.config.datasets, this.stager);
    const job = this.buildJob(spec);
    const owner = spec.labels[OWNER_LABEL];
    for (;;) {
      try {
        const created = await this.batch.createNamespacedJob({ namespace: this.config.namespace, body: job });
        return { created: true, status: await this.describe(created) };
      } catch (err) {
        const code = apiCode(err);
        if (code === 400 || code === 403 || code === 422) {
          throw new JobSpecError(
            `job ${spec.name} refused by the cluster (HTTP ${code}): ${apiMessage(err)}`,
          );
        }
        if (code !== 409) throw err;
      }
      const existing = await this.readJob(spec.name);
      if (!existing) continue; // deleted between our create and read: create again
      const existingOwner = existing.metadata?.labels?.[OWNER_LABEL];
      if (existingOwner !== owner) {
        throw new JobOwnershipError(
          `job ${spec.name} already exists in ${this.config.namespace} and belongs to ${existingOwner ?? 'no owner'}, not ${owner}`,
        );
      }
      if (existing.metadata?.deletionTimestamp) {
        // A resubmission racing the deletion of the previous attempt: wait until it is gone.
        await this.waitGone(spec.name);
        continue;
      }
      return { created: false, status: await this.describe(existing) };
    }
  }

  async status(name: string): Promise<KubernetesJobStatus | undefined> {
    const job = await this.readJob(name);
    return job ? this.describe(job) : undefined;
  }

  async logs(name: string, tailLines: number): Promise<string> {
    const pods = await this.podsOf(name);
    const pod = pods[pods.length - 1];
    if (!pod?.metadata?.name) return '';
    try {
      return await this.core.readNamespacedPodLog({
        name: pod.metadata.name,
        namespace: this.config.namespace,
        container: TRAINER_CONTAINER,
        tailLines,
      });
    } catch (err) {
      // No kubelet answered (a simulated node, a pod that never started): say so, with what the
      // container's termination message kept of its output.
      const terminated = pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER)?.state
        ?.terminated;
      const kept = terminated?.message ? `\n${terminated.message}` : '';
      return `(pod log of ${pod.metadata.name} unavailable: ${apiMessage(err)})${kept}`;
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({
        name,
        namespace: this.config.namespace,
        propagationPolicy: 'Foreground',
      });
    } catch (err) {
      if (apiCode(err) === 404) return;
      throw err;
    }
    await this.waitGone(name);
  }

  /**
   * Deletes (foreground) every Job this runner manages whose owner has finished, by label: the
   * Jobs a crashed or cancelled workflow could not clean up. `isOwnerFinished` asks the workflow
   * engine. Returns the names deleted.
   */
  async collectGarbage(isOwnerFinished: (owner: string) => Promise<boolean>): Promise<string[]> {
    const list = await this.batch.listNamespacedJob({
      namespace: this.config.namespace,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
    });
    const deleted: string[] = [];
    for (const job of list.items) {
      const name = job.metadata?.name;
      const owner = job.metadata?.labels?.[OWNER_LABEL];
      if (!name || !owner || job.metadata?.deletionTimestamp) continue;
      if (await isOwnerFinished(owner)) {
        await this.delete(name);
        deleted.push(name);
      }
    }
    return deleted;
  }

  private async readJob(name: string): Promise<k8s.V1Job | undefined> {
    try {
      return await this.batch.readNamespacedJob({ name, namespace: this.config.namespace });
    } catch (err) {
      if (apiCode(err) === 404) return undefined;
      throw err;
    }
  }

  private async waitGone(name: string): Promise<void> {
    const deadline = this.now() + DELETE_WAIT_MS;
    while (this.now() < deadline) {
      if (!(await this.readJob(name))) return;
      await new Promise((r) => setTimeout(r, DELETE_POLL_MS));
    }
    throw new Error(`job ${name} still present ${DELETE_WAIT_MS} ms after its deletion`);
  }

  private async podsOf(name: string): Promise<k8s.V1Pod[]> {
    const list = await this.core.listNamespacedPod({
      namespace: this.config.namespace,
      labelSelector: `batch.kubernetes.io/job-name=${name}`,
    });
    return [...list.items].sort(
      (a, b) =>
        (a.metadata?.creationTimestamp?.getTime() ?? 0) - (b.metadata?.creationTimestamp?.getTime() ?? 0),
    );
  }

  private async workloadOf(job: k8s.V1Job): Promise<Workload | undefined> {
    const uid = job.metadata?.uid;
    if (!uid || !this.config.kueue) return undefined;
    const list: unknown = await this.custom.listNamespacedCustomObject({
      group: KUEUE_GROUP,
      version: KUEUE_VERSION,
      namespace: this.config.namespace,
      plural: 'workloads',
      labelSelector: `${KUEUE_JOB_UID_LABEL}=${uid}`,
    });
    const parsed = z.object({ items: z.array(Workload) }).safeParse(list);
    return parsed.success ? parsed.data.items[0] : undefined;
  }

  /** Maps a Job (with its Workload and pods) to the port's status. */
  private async describe(job: k8s.V1Job): Promise<KubernetesJobStatus> {
    const name = job.metadata?.name ?? '';
    const base = {
      name,
      labels: { ...job.metadata?.labels },
      ...(job.status?.startTime ? { startedAt: job.status.startTime.toISOString() } : {}),
      ...(job.status?.completionTime ? { finishedAt: job.status.completionTime.toISOString() } : {}),
    };
    const [pods, workload] = await Promise.all([this.podsOf(name), this.workloadOf(job)]);
    const queue = this.config.kueue
      ? {
          name: this.config.kueue.queueName,
          ...(workload ? { workload: workload.metadata.name } : {}),
          admitted:
            workload?.status?.conditions?.some((c) => c.type === 'Admitted' && c.status === 'True') ?? false,
          conditions: (workload?.status?.conditions ?? []).map((c) => ({
            type: c.type,
            status: c.status,
            ...(c.reason ? { reason: c.reason } : {}),
            ...(c.message ? { message: c.message } : {}),
          })),
        }
      : undefined;
    const podSummary = pods.map((p) => ({
      name: p.metadata?.name ?? '',
      phase: p.status?.phase ?? 'Unknown',
      ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
      ...(p.status?.reason ? { reason: p.status.reason } : {}),
    }));
    const extra = { ...(queue ? { queue } : {}), pods: podSummary };
    const out = (s: Pick<JobStatus, 'phase'> & Partial<JobStatus>): KubernetesJobStatus => ({
      ...base,
      ...s,
      ...extra,
    });

    if (job.metadata?.deletionTimestamp) {
      return out({ phase: 'failed', reason: JobReason.deleted, message: `job ${name} is being deleted` });
    }
    const conds = job.status?.conditions ?? [];
    const cond = (type: string): k8s.V1JobCondition | undefined =>
      conds.find((c) => c.type === type && c.status === 'True');
    if (cond('Complete')) return out({ phase: 'succeeded', exitCode: 0 });
    const failed = cond('Failed');
    if (failed) return out(this.failure(failed, pods));

    const age = (this.now() - (job.metadata?.creationTimestamp?.getTime() ?? this.now())) / 1000;
    const overdue = age > this.config.queueTimeoutSeconds;
    const waited = `after waiting ${Math.round(age)} s (queue timeout ${this.config.queueTimeoutSeconds} s)`;

    if (job.spec?.suspend) {
      const wc = workload?.status?.conditions ?? [];
      const evicted = wc.find((c) => c.type === 'Evicted' && c.status === 'True');
      if (workload?.spec?.active === false) {
        return out({
          phase: 'failed',
          reason: JobReason.evicted,
          message: `Kueue deactivated workload ${workload.metadata.name}${evicted?.message ? `: ${evicted.message}` : ''}`,
        });
      }
      if (evicted) {
        const reason = evicted.reason === 'Preempted' ? JobReason.preempted : JobReason.evicted;
        return out({
          phase: 'pending',
          reason,
          message: `${reason} by Kueue (${evicted.reason ?? 'Evicted'}): ${evicted.message ?? ''}; requeued, resumes from its last checkpoint`,
        });
      }
      const reserved = wc.find((c) => c.type === 'QuotaReserved');
      const why =
        reserved?.status === 'False'
          ? (reserved.message ?? reserved.reason ?? 'pending')
          : workload
            ? 'waiting for admission'
            : 'waiting for Kueue to create its Workload';
      if (overdue) {
        return out({
          phase: 'failed',
          reason: JobReason.queued,
          message: `not admitted by queue ${this.config.kueue?.queueName ?? ''} ${waited}: ${why}`,
        });
      }
      return out({
        phase: 'pending',
        reason: JobReason.queued,
        message: `queued in ${this.config.kueue?.queueName ?? 'the cluster'}: ${why}`,
      });
    }

    // Admitted (or no queue): look at the newest pod.
    const pod = pods[pods.length - 1];
    if (!pod) return out({ phase: 'pending', message: 'no pod yet' });
    const waiting = pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER)?.state?.waiting;
    const podAge = (this.now() - (pod.metadata?.creationTimestamp?.getTime() ?? this.now())) / 1000;
    if (waiting?.reason && IMAGE_PULL_REASONS.has(waiting.reason)) {
      const msg = `image ${job.spec?.template.spec?.containers[0]?.image ?? ''} cannot be pulled (${waiting.reason}): ${waiting.message ?? ''}`;
      if (IMAGE_FATAL_REASONS.has(waiting.reason) || podAge >= this.config.imagePullGraceSeconds) {
        return out({ phase: 'failed', reason: JobReason.imagePull, message: msg });
      }
      return out({ phase: 'pending', reason: JobReason.imagePull, message: msg });
    }
    if (waiting?.reason && INVALID_SPEC_REASONS.has(waiting.reason)) {
      const msg = `pod ${pod.metadata?.name ?? ''} cannot start (${waiting.reason}): ${waiting.message ?? ''}`;
      if (podAge >= this.config.imagePullGraceSeconds)
        return out({ phase: 'failed', reason: JobReason.invalidSpec, message: msg });
      return out({ phase: 'pending', reason: JobReason.invalidSpec, message: msg });
    }
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (pod.status?.phase === 'Pending' && scheduled?.status === 'False') {
      const why = `${scheduled.reason ?? 'Unschedulable'}: ${scheduled.message ?? ''}`;
      if (overdue)
        return out({
          phase: 'failed',
          reason: JobReason.unschedulable,
          message: `no node took pod ${pod.metadata?.name ?? ''} ${waited}: ${why}`,
        });
      return out({ phase: 'pending', reason: JobReason.unschedulable, message: why });
    }
    // A pod that already succeeded counts as running until the Job controller marks it Complete.
    if (pod.status?.phase === 'Running' || pod.status?.phase === 'Succeeded') {
      return out({
        phase: 'running',
        message: `pod ${pod.metadata?.name ?? ''} running on ${pod.spec?.nodeName ?? 'a node'}`,
      });
    }
    return out({
      phase: 'pending',
      message: `pod ${pod.metadata?.name ?? ''} ${pod.status?.phase ?? 'Pending'}`,
    });
  }

  private failure(
    failed: k8s.V1JobCondition,
    pods: k8s.V1Pod[],
  ): Pick<JobStatus, 'phase'> & Partial<JobStatus> {
    if (failed.reason === 'DeadlineExceeded') {
      return {
        phase: 'failed',
        reason: JobReason.deadlineExceeded,
        message: failed.message ?? 'active deadline exceeded',
      };
    }
    // The newest pod whose trainer terminated tells how it ended.
    for (const pod of [...pods].reverse()) {
      const t = pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER)?.state?.terminated;
      if (!t) continue;
      const tail = t.message ? `: ${t.message.trim()}` : '';
      if (t.reason === 'OOMKilled') {
        return {
          phase: 'failed',
          reason: JobReason.oomKilled,
          exitCode: t.exitCode,
          message: `trainer OOMKilled (exit ${t.exitCode})${tail}`,
        };
      }
      return {
        phase: 'failed',
        reason: JobReason.exitCode,
        exitCode: t.exitCode,
        message: `${failed.reason ?? 'Failed'}: trainer exited with code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${tail}`,
      };
    }
    const evicted = pods.some((p) => p.status?.reason === 'Evicted');
    return {
      phase: 'failed',
      reason: evicted ? JobReason.evicted : JobReason.lost,
      message: `${failed.reason ?? 'Failed'}: ${failed.message ?? 'no pod reported an exit code'}`,
    };
  }
}

/** The client configuration: an explicit object (tests), a kubeconfig file, in-cluster, or the default rules. */
function loadKubeConfig(config: Config): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/**
 * Builds the runner from an unvalidated configuration (zod; an error names the field). Pass
 * `kubeConfig` to use an existing client configuration instead of `config.kubeconfig`.
 */
export function createKubernetesJobRunner(
  config: KubernetesRunnerConfig,
  deps: { kubeConfig?: k8s.KubeConfig; now?: () => number; stager?: SnapshotStager } = {},
): KubernetesJobRunner {
  const parsed = KubernetesRunnerConfig.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new JobSpecError(
      `kubernetes runner config: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  if (parsed.data.datasets.objectStore && !deps.stager) {
    throw new JobSpecError('kubernetes runner config: datasets.objectStore needs an uploader (deps.stager)');
  }
  return new KubernetesJobRunner(
    parsed.data,
    deps.kubeConfig ?? loadKubeConfig(parsed.data),
    deps.now,
    deps.stager,
  );
}

/** Environment variables of the worker that configure the runner (deploy/k8s/worker ConfigMap). */
export const KUBERNETES_RUNNER_ENV = {
  namespace: 'MLOPS_K8S_NAMESPACE',
  kubeconfig: 'MLOPS_K8S_KUBECONFIG',
  queue: 'MLOPS_K8S_QUEUE',
  queueTimeoutSeconds: 'MLOPS_K8S_QUEUE_TIMEOUT_SECONDS',
  imagePullGraceSeconds: 'MLOPS_K8S_IMAGE_PULL_GRACE_SECONDS',
  serviceAccount: 'MLOPS_K8S_SERVICE_ACCOUNT',
  priorityClass: 'MLOPS_K8S_PRIORITY_CLASS',
  nodeSelector: 'MLOPS_K8S_NODE_SELECTOR',
  tolerations: 'MLOPS_K8S_TOLERATIONS',
  imagePullSecrets: 'MLOPS_K8S_IMAGE_PULL_SECRETS',
  /** JSON object of pod annotations (autoscaler hints such as safe-to-evict, simulator timings in tests). */
  podAnnotations: 'MLOPS_K8S_POD_ANNOTATIONS',
  /** Object store for snapshots: the bucket (and key prefix) the worker stages them in for the Job. */
  datasetBucket: 'MLOPS_K8S_DATASET_BUCKET',
  datasetPrefix: 'MLOPS_K8S_DATASET_PREFIX',
  /** Secret in the training namespace with the Job's S3 credentials (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). */
  datasetSecret: 'MLOPS_K8S_DATASET_SECRET',
  /** The S3 endpoint as the Job sees it (default: the worker's MLOPS_S3_ENDPOINT). */
  datasetEndpoint: 'MLOPS_K8S_DATASET_S3_ENDPOINT',
  /** Shared volume instead: the PVC, the worker folder it holds, and where the pod mounts it. */
  datasetClaim: 'MLOPS_K8S_DATASET_CLAIM',
  datasetVolumeRoot: 'MLOPS_K8S_DATASET_VOLUME_ROOT',
  datasetVolumeMount: 'MLOPS_K8S_DATASET_VOLUME_MOUNT',
} as const;

/**
 * The runner the worker's environment configures, with the snapshot uploader built from the
 * worker's S3 connector (`MLOPS_S3_*`, credentials from its secret store) when
 * `MLOPS_K8S_DATASET_BUCKET` asks for object-store staging.
 */
export function kubernetesRunnerFromEnv(env: NodeJS.ProcessEnv, stateDir: string): KubernetesJobRunner {
  const config = kubernetesRunnerConfigFromEnv(env);
  if (!config.datasets?.objectStore) return createKubernetesJobRunner(config);
  const connector = s3ConnectorFromEnv(env, stateDir);
  if (!connector) {
    throw new JobSpecError(
      `${KUBERNETES_RUNNER_ENV.datasetBucket} needs the worker's S3 connector (MLOPS_S3_ENDPOINT or MLOPS_S3_ENABLED=1)`,
    );
  }
  return createKubernetesJobRunner(config, { stager: createS3SnapshotStager(connector) });
}

/**
 * The runner's configuration from the worker's environment (names in {@link KUBERNETES_RUNNER_ENV};
 * JSON for the node selector and tolerations, a comma list for pull secrets). Validated by
 * {@link createKubernetesJobRunner}; a malformed value fails here naming the variable.
 */
export function kubernetesRunnerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KubernetesRunnerConfig {
  const E = KUBERNETES_RUNNER_ENV;
  const get = (k: string): string | undefined => {
    const v = env[k]?.trim();
    return v ? v : undefined;
  };
  const int = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new JobSpecError(`${k}: must be a whole number of seconds, got "${v}"`);
    return Number(v);
  };
  const json = (k: string): unknown => {
    const v = get(k);
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw new JobSpecError(`${k}: must be JSON`);
    }
  };
  const namespace = get(E.namespace);
  if (!namespace) throw new JobSpecError(`${E.namespace} is required for MLOPS_JOB_RUNNER=kubernetes`);
  const queue = get(E.queue);
  const nodeSelector = z.record(z.string(), z.string()).optional().safeParse(json(E.nodeSelector));
  if (!nodeSelector.success) throw new JobSpecError(`${E.nodeSelector}: must be a JSON object of strings`);
  const tolerations = z.array(Toleration).optional().safeParse(json(E.tolerations));
  if (!tolerations.success) {
    throw new JobSpecError(
      `${E.tolerations}: ${tolerations.error.issues[0]?.message ?? 'invalid'} (a JSON list of tolerations)`,
    );
  }
  const podAnnotations = z.record(z.string(), z.string()).optional().safeParse(json(E.podAnnotations));
  if (!podAnnotations.success)
    throw new JobSpecError(`${E.podAnnotations}: must be a JSON object of strings`);
  const queueTimeoutSeconds = int(E.queueTimeoutSeconds);
  const imagePullGraceSeconds = int(E.imagePullGraceSeconds);
  const kubeconfig = get(E.kubeconfig);
  const serviceAccountName = get(E.serviceAccount);
  const priorityClassName = get(E.priorityClass);
  const pullSecrets = get(E.imagePullSecrets);
  const bucket = get(E.datasetBucket);
  const claim = get(E.datasetClaim);
  const s3Endpoint = get(E.datasetEndpoint) ?? get('MLOPS_S3_ENDPOINT');
  const s3Region = get('MLOPS_S3_REGION');
  const prefix = get(E.datasetPrefix);
  const volumeRoot = get(E.datasetVolumeRoot);
  const volumeMount = get(E.datasetVolumeMount);
  if (bucket && !get(E.datasetSecret)) {
    throw new JobSpecError(
      `${E.datasetSecret} is required with ${E.datasetBucket} (the Job's S3 credentials)`,
    );
  }
  if (claim && !volumeRoot) {
    throw new JobSpecError(
      `${E.datasetVolumeRoot} is required with ${E.datasetClaim} (the worker folder it holds)`,
    );
  }
  const datasets = {
    ...(bucket
      ? {
          objectStore: {
            bucket,
            credentialsSecret: get(E.datasetSecret) ?? '',
            ...(prefix !== undefined ? { prefix } : {}),
            ...(s3Endpoint ? { endpoint: s3Endpoint } : {}),
            ...(s3Region ? { region: s3Region } : {}),
          },
        }
      : {}),
    ...(claim
      ? {
          sharedVolume: {
            claimName: claim,
            localRoot: volumeRoot ?? '',
            ...(volumeMount ? { mountPath: volumeMount } : {}),
          },
        }
      : {}),
  };
  return {
    namespace,
    ...(bucket || claim ? { datasets } : {}),
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(queue ? { kueue: { queueName: queue } } : {}),
    ...(queueTimeoutSeconds !== undefined ? { queueTimeoutSeconds } : {}),
    ...(imagePullGraceSeconds !== undefined ? { imagePullGraceSeconds } : {}),
    template: {
      ...(serviceAccountName ? { serviceAccountName } : {}),
      ...(priorityClassName ? { priorityClassName } : {}),
      ...(nodeSelector.data ? { nodeSelector: nodeSelector.data } : {}),
      ...(tolerations.data ? { tolerations: tolerations.data } : {}),
      ...(podAnnotations.data ? { podAnnotations: podAnnotations.data } : {}),
      ...(pullSecrets
        ? {
            imagePullSecrets: pullSecrets
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          }
        : {}),
    },
  };
}
