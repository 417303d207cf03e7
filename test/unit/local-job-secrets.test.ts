import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { localJobSecrets } from '../../src/jobs';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const stateDir = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'job-secrets-'));
  dirs.push(d);
  return d;
};
const ref = (key: string) => ({ secret: 'mlflow-credentials', key });
// The worker's own identity: what a job must not inherit once its secret is configured.
const workerEnv = { MLFLOW_TRACKING_USERNAME: 'pipeline', MLFLOW_TRACKING_PASSWORD: 'pipeline-pw' };

describe('localJobSecrets: a local job gets its secret, not the worker identity', () => {
  it('reads the file store and never falls back to the worker for a secret the store holds', () => {
    const state = stateDir();
    mkdirSync(path.join(state, 'secrets', 'mlflow-credentials'), { recursive: true });
    writeFileSync(path.join(state, 'secrets', 'mlflow-credentials', 'MLFLOW_TRACKING_USERNAME'), 'trainer');
    writeFileSync(
      path.join(state, 'secrets', 'mlflow-credentials', 'MLFLOW_TRACKING_PASSWORD'),
      'trainer-pw',
    );
    const resolve = localJobSecrets(workerEnv, state);
    expect(resolve(ref('MLFLOW_TRACKING_USERNAME'))).toBe('trainer');
    expect(resolve(ref('MLFLOW_TRACKING_PASSWORD'))).toBe('trainer-pw');
    // The secret exists but holds no token: the job gets none, not the worker's.
    expect(resolve(ref('MLFLOW_TRACKING_TOKEN'))).toBeUndefined();
  });

  it('honours MLOPS_SECRETS_DIR', () => {
    const root = stateDir();
    mkdirSync(path.join(root, 'mlflow-credentials'));
    writeFileSync(path.join(root, 'mlflow-credentials', 'MLFLOW_TRACKING_PASSWORD'), 'trainer-pw');
    const resolve = localJobSecrets({ ...workerEnv, MLOPS_SECRETS_DIR: root }, stateDir());
    expect(resolve(ref('MLFLOW_TRACKING_PASSWORD'))).toBe('trainer-pw');
    expect(resolve(ref('MLFLOW_TRACKING_USERNAME'))).toBeUndefined();
  });

  it('reads the environment store, and a secret present there is not mixed with the worker identity', () => {
    const env = {
      ...workerEnv,
      MLOPS_SECRET_STORE: 'env',
      MLOPS_SECRET_MLFLOW_CREDENTIALS_MLFLOW_TRACKING_PASSWORD: 'trainer-pw',
    };
    const resolve = localJobSecrets(env, stateDir());
    expect(resolve(ref('MLFLOW_TRACKING_PASSWORD'))).toBe('trainer-pw');
    expect(resolve(ref('MLFLOW_TRACKING_USERNAME'))).toBeUndefined();
  });

  it('falls back to the worker variable only when no store holds the secret (development stack)', () => {
    const resolve = localJobSecrets(workerEnv, stateDir());
    expect(resolve(ref('MLFLOW_TRACKING_PASSWORD'))).toBe('pipeline-pw');
    expect(
      localJobSecrets(
        { ...workerEnv, MLOPS_SECRET_STORE: 'env' },
        stateDir(),
      )(ref('MLFLOW_TRACKING_USERNAME')),
    ).toBe('pipeline');
  });

  it('refuses a reference that would escape the store', () => {
    const resolve = localJobSecrets(workerEnv, stateDir());
    expect(() => resolve({ secret: '../etc', key: 'passwd' })).toThrow(/not a valid name/);
  });
});
