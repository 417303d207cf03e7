/**
 * The job-runner factory: the runner a worker's configuration names. `local` (the embedded
 * default) runs each job as a process on the worker's machine, mapping the reference trainer image
 * to the reference trainer script in the local stack's Python environment.
 */
import path from 'node:path';
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
      });
    case 'kubernetes':
      return kubernetesRunnerFromEnv(env, config.stateDir ?? path.dirname(config.jobsDir));
  }
}
