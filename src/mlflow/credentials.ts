/**
 * MLflow credentials by reference: a secret in the secret store whose keys are the variables
 * MLflow's own clients read, so one secret serves this client, a Kubernetes Secret mounted as a
 * job's environment, and the Python trainer alike. Values are never logged; errors name the
 * secret, never a value.
 */
import type { SecretStore } from '../ports/secret-store';
import type { MlflowAuth } from './client';

/** Key of the username in a credentials secret. */
export const MLFLOW_USERNAME_KEY = 'MLFLOW_TRACKING_USERNAME';
/** Key of the password in a credentials secret. */
export const MLFLOW_PASSWORD_KEY = 'MLFLOW_TRACKING_PASSWORD';

/**
 * Basic credentials from `<secret>/MLFLOW_TRACKING_USERNAME` and `<secret>/MLFLOW_TRACKING_PASSWORD`;
 * undefined when the secret holds neither, an error when it holds only one.
 */
export async function mlflowAuthFromSecret(
  store: SecretStore,
  secret: string,
): Promise<MlflowAuth | undefined> {
  const [username, password] = await Promise.all([
    store.get({ secret, key: MLFLOW_USERNAME_KEY }),
    store.get({ secret, key: MLFLOW_PASSWORD_KEY }),
  ]);
  if (username === undefined && password === undefined) return undefined;
  if (!username || !password) {
    throw new Error(
      `MLflow credentials secret ${secret} must hold both ${MLFLOW_USERNAME_KEY} and ${MLFLOW_PASSWORD_KEY}`,
    );
  }
  return { kind: 'basic', username, password };
}
