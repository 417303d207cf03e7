/**
 * TEST DOUBLE for the container runtime of KWOK's simulated GPU nodes. KWOK plays the kubelet but
 * runs no process, and a GPU node cannot run here, so a pipeline-level test needs something to do
 * what the trainer container would do. This stand-in watches the pods of one Job; once a pod is
 * bound to a (simulated) node and Running, it runs the pod's container locally: the command that
 * the container's image maps to (as the local runner's image table does), with the container's
 * environment (literal values, and Secret keys read as the kubelet would), and its `/scratch` and
 * `/tmp` mounts as private folders. When the process exits it writes the pod's terminal status
 * (phase, the container's exit code and reason) the way a kubelet reports it, so the Job
 * controller, the podFailurePolicy and Kueue see a real outcome. A pod being deleted (preemption,
 * cancellation) gets SIGTERM, then SIGKILL after its grace period, as a kubelet would do.
 *
 * The pods must keep KWOK from completing them on its own: give them `runFor('1h')` annotations.
 */
import * as k8s from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TRAINER_CONTAINER } from '../../src/jobs/kubernetes-runner';
import { kubeConfig, TRAINING_NAMESPACE } from './helpers';

/** How often the stand-in looks at the Job's pods. */
const POLL_MS = 250;
/** Grace period before SIGKILL when the pod goes away (the pod's own, bounded for tests). */
const TERMINATION_GRACE_MS = 5_000;
/** Lines of a run's output kept for the test's failure messages. */
const KEPT_LINES = 40;

export interface ContainerRun {
  pod: string;
  node: string;
  exitCode?: number;
  /** `exited` (the process ended by itself) or `killed` (its pod went away first). */
  end?: 'exited' | 'killed';
  output: string[];
}

export interface KwokContainers {
  /** Every container run so far, in start order. */
  runs: ContainerRun[];
  /** Stops watching; kills processes still running. */
  stop(): Promise<void>;
}

function imageName(image: string): string {
  // registry/name:tag@sha256:... -> registry/name
  return image.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[^/:]+$/, '');
}

/**
 * Runs the container of each pod of Job `jobName` locally once the pod runs on a node. `images`
 * maps image names (without tag or digest) to command lines; an unmapped image exits 127.
 */
export function runJobContainers(jobName: string, images: Record<string, string[]>): KwokContainers {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const runs: ContainerRun[] = [];
  const procs = new Map<string, { child: ChildProcess; run: ContainerRun; exited: Promise<void> }>();
  let stopped = false;

  async function resolveEnv(c: k8s.V1Container): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      const ref = e.valueFrom?.secretKeyRef;
      if (ref?.name && ref.key) {
        // The kubelet reads the Secret; the test cluster's has only the keys its MLflow needs.
        const secret = await core
          .readNamespacedSecret({ name: ref.name, namespace: TRAINING_NAMESPACE })
          .catch(() => undefined);
        const raw = secret?.data?.[ref.key];
        if (raw !== undefined) env[e.name] = Buffer.from(raw, 'base64').toString('utf8');
      }
    }
    return env;
  }

  async function writeTerminated(pod: k8s.V1Pod, exitCode: number): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const now = new Date();
    const current = await core.readNamespacedPodStatus({ name, namespace: TRAINING_NAMESPACE });
    if (current.metadata?.deletionTimestamp) return;
    const statuses = (current.status?.containerStatuses ?? []).map((s) => ({
      ...s,
      ready: false,
      started: false,
      state: {
        terminated: {
          exitCode,
          reason: exitCode === 0 ? 'Completed' : 'Error',
          startedAt: s.state?.running?.startedAt ?? now,
          finishedAt: now,
        },
      },
    }));
    const body = {
      status: {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        containerStatuses: statuses,
        conditions: (current.status?.conditions ?? []).map((c) =>
          c.type === 'Ready' || c.type === 'ContainersReady'
            ? { ...c, status: 'False', reason: 'PodCompleted', lastTransitionTime: now }
            : c,
        ),
      },
    };
    await core.patchNamespacedPodStatus(
      { name, namespace: TRAINING_NAMESPACE, body },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  async function start(pod: k8s.V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const container = pod.spec?.containers.find((c) => c.name === TRAINER_CONTAINER);
    if (!container) return;
    const run: ContainerRun = { pod: name, node: pod.spec?.nodeName ?? '', output: [] };
    runs.push(run);
    const scratch = mkdtempSync(path.join(os.tmpdir(), `mlops-kwok-${name}-scratch-`));
    const tmp = mkdtempSync(path.join(os.tmpdir(), `mlops-kwok-${name}-tmp-`));
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(await resolveEnv(container)),
      // The pod's emptyDir mounts, as private folders of this machine.
      HOME: scratch,
      MLOPS_SCRATCH_DIR: scratch,
      TMPDIR: tmp,
    };
    const command = images[imageName(container.image ?? '')];
    const argv = command ? [...command, ...(container.args ?? [])] : ['sh', '-c', 'exit 127'];
    const child = spawn(argv[0] ?? 'false', argv.slice(1), {
      env,
      cwd: scratch,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      run.output.push(...d.toString().split('\n').filter(Boolean));
      run.output.splice(0, Math.max(0, run.output.length - KEPT_LINES));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        procs.delete(name);
        rmSync(scratch, { recursive: true, force: true });
        rmSync(tmp, { recursive: true, force: true });
        if (run.end === 'killed' || stopped) {
          run.exitCode = code ?? 137;
          resolve();
          return;
        }
        run.end = 'exited';
        run.exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 9) : 1);
        writeTerminated(pod, run.exitCode).then(resolve, (err: unknown) => {
          run.output.push(`stand-in: could not write the pod status: ${String(err)}`);
          resolve();
        });
      });
    });
    procs.set(name, { child, run, exited });
  }

  function kill(name: string): void {
    const p = procs.get(name);
    if (!p || p.run.end) return;
    p.run.end = 'killed';
    p.child.kill('SIGTERM');
    setTimeout(() => p.child.kill('SIGKILL'), TERMINATION_GRACE_MS).unref();
  }

  const loop = (async () => {
    const started = new Set<string>();
    while (!stopped) {
      const pods = await core
        .listNamespacedPod({
          namespace: TRAINING_NAMESPACE,
          labelSelector: `batch.kubernetes.io/job-name=${jobName}`,
        })
        .catch(() => undefined);
      if (pods) {
        const live = new Set<string>();
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          if (pod.metadata?.deletionTimestamp) continue;
          live.add(name);
          const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
          if (!started.has(name) && pod.spec?.nodeName && pod.status?.phase === 'Running' && ready) {
            started.add(name);
            await start(pod);
          }
        }
        for (const name of procs.keys()) if (!live.has(name)) kill(name);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();

  return {
    runs,
    async stop() {
      stopped = true;
      await loop;
      for (const name of [...procs.keys()]) kill(name);
      await Promise.all([...procs.values()].map((p) => p.exited));
    },
  };
}
