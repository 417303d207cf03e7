/**
 * The job-runner factory: the runner a worker's configuration names. `local` (the embedded
 * default) runs each job as a process on the worker's machine, mapping the reference trainer image
 * to the reference trainer script in the local stack's Python environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkSecretRef, envSecretName } from '../secrets/local';
import type { WorkerConfig } from '../config';
import { TRAINER_SCRIPT, VENV_PYTHON } from '../stack/paths';
import { kubernetesRunnerFromEnv } from './kubernetes-runner';
import { LocalProcessRunner } from './local-runner';
import type { JobRunner } from './types';

export { LocalProcessRunner } from './local-runner';
export * from './types';

/** Image name the local runner maps to the reference trainer script (any tag). */
export const REFERENCE_TRAINER_IMAGE = 'mlops/reference-trainer';

/** The local runner's built-in images: the reference trainer in the local stack's venv. */
export function referenceTrainerImages(): Record<string, string[]> {
  return { [REFERENCE_TRAINER_IMAGE]: [VENV_PYTHON, TRAINER_SCRIPT] };
}

/**
 * The runner the configuration names: `local` processes (embedded default) or `kubernetes` Jobs,
 * whose settings come from the `MLOPS_K8S_*` environment (see README, "Kubernetes").
 */
export function createJobRunner(
  config: Pick<WorkerConfig, 'jobRunner' | 'jobsDir' | 'localImages'> &
    Partial<Pick<WorkerConfig, 'stateDir'>>,
  env: NodeJS.ProcessEnv = process.env,
): JobRunner {
  switch (config.jobRunner) {
    case 'local':
      return new LocalProcessRunner({
        root: config.jobsDir,
        images: { ...referenceTrainerImages(), ...config.localImages },
        secrets: localJobSecrets(env, config.stateDir ?? path.dirname(config.jobsDir)),
      });
    case 'kubernetes':
      return kubernetesRunnerFromEnv(env, config.stateDir ?? path.dirname(config.jobsDir));
  }
}

/**
 * Where the local runner finds a job's secret references (`secretEnv`), the way a Kubernetes Job finds
 * its Secret: the worker's secret store first (`MLOPS_SECRET_<SECRET>_<KEY>` when
 * `MLOPS_SECRET_STORE=env`, else the file `<MLOPS_SECRETS_DIR or <state>/secrets>/<secret>/<key>`).
 * So a trainer gets its own registry identity (for example `mlflow-credentials/MLFLOW_TRACKING_PASSWORD`
 * holding the trainer's password), never the worker's. Only a secret the store does not hold at all
 * falls back to the worker's own variable of the same name (the development stack without auth).
 */
export function localJobSecrets(
  env: NodeJS.ProcessEnv,
  stateDir: string,
): (ref: { secret: string; key: string }) => string | undefined {
  const root = env.MLOPS_SECRETS_DIR ?? path.join(stateDir, 'secrets');
  return (ref) => {
    checkSecretRef(ref);
    if (env.MLOPS_SECRET_STORE === 'env') {
      const v = env[envSecretName(ref)];
      if (v !== undefined) return v;
      const prefix = envSecretName({ secret: ref.secret, key: 'X' }).slice(0, -1);
      if (Object.keys(env).some((k) => k.startsWith(prefix))) return undefined;
    } else {
      const folder = path.join(root, ref.secret);
      if (existsSync(folder)) {
        const file = path.join(folder, ref.key);
        return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
      }
    }
    return env[ref.key];
  };
}
