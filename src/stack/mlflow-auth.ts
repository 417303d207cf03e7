/**
 * Least-privilege registry access for the local MLflow: its basic-auth app
 * (`mlflow server --app-name basic-auth`, the `mlflow[auth]` extra pinned in
 * deploy/stack/requirements.txt) with one identity per component.
 *
 * How "each component only what it needs" maps onto MLflow's permission model, whose units are
 * experiments (their runs, logged models and artifacts inherit the experiment's grant) and
 * registered models (their versions and aliases inherit the model's grant); the server's
 * `default_permission` is NO_PERMISSIONS, so an identity sees nothing it was not granted:
 *
 * | identity   | model's training experiment                      | registered model                      |
 * | ---------- | ------------------------------------------------ | ------------------------------------- |
 * | `trainer`  | EDIT: log params, metrics, artifacts to its runs | none: no version, no alias, no read   |
 * | `pipeline` | EDIT: create the training run, end it, card      | MANAGE: register, tag, move aliases   |
 * | `gateway`  | READ: download the model's artifacts             | READ: resolve aliases and versions    |
 *
 * "The trainer only its own runs": MLflow grants nothing finer than an experiment, so the trainer
 * is granted the training experiment of the models it trains (`mlops/<model>`) and nothing else;
 * the pipeline creates each run there and hands its id to the job, which never creates a run.
 * Without MLflow workspaces any authenticated user may create a new, empty experiment or registered
 * model (and manages what it created); none of that reaches a resource it was not granted.
 *
 * Secrets: the admin password and the Flask secret key are generated at first start into the file
 * secret store (`mlflow-admin/…`, mode 0600) and reach the server through its environment only; each
 * identity's credentials are stored as `mlflow-<identity>/{MLFLOW_TRACKING_USERNAME,
 * MLFLOW_TRACKING_PASSWORD}` (keys named after the variables, like the job credentials secret), so a
 * component reads them by reference ({@link mlflowAuthFromSecret}) and no value is ever logged,
 * put into a config file or sent through Temporal.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { experimentName } from '../core/contracts/registry';
import {
  MLFLOW_PASSWORD_KEY,
  MLFLOW_USERNAME_KEY,
  MlflowClient,
  mlflowAuthFromSecret,
  type MlflowAuth,
} from '../mlflow';
import { MlflowAlreadyExistsError, mlflowErrorFromNetwork, mlflowErrorFromResponse } from '../mlflow/errors';
import type { SecretRef, SecretStore, WritableSecretStore } from '../ports/secret-store';
import {
  startMlflowServer,
  type MlflowEndpoint,
  type MlflowServerAuth,
  type RunningServer,
} from './launcher';
import { PROJECT_ROOT } from './paths';

/** The auth config template shipped with the project (no secret in it). */
export const MLFLOW_AUTH_CONFIG_TEMPLATE = path.join(
  PROJECT_ROOT,
  'deploy',
  'stack',
  'mlflow-basic-auth.ini',
);
/** The admin user the template names (`admin_username`); it only provisions the identities below. */
export const MLFLOW_ADMIN_USERNAME = 'mlops-admin';
/** Secret holding the admin password and the server's Flask secret key. */
export const MLFLOW_ADMIN_SECRET = 'mlflow-admin';
/** Random bytes in every generated password or key (192 bits, base64url). */
export const MLFLOW_SECRET_BYTES = 24;
/** Admin API calls are small; the same bound as the client's metadata calls. */
const ADMIN_CALL_TIMEOUT_MS = 30_000;

/** The three registry identities. */
export const MlflowIdentity = { trainer: 'trainer', pipeline: 'pipeline', gateway: 'gateway' } as const;
export type MlflowIdentity = (typeof MlflowIdentity)[keyof typeof MlflowIdentity];
export const MLFLOW_IDENTITIES: readonly MlflowIdentity[] = Object.values(MlflowIdentity);

/** MLflow's grantable permission levels (resource-level grants). */
export type MlflowPermission = 'READ' | 'USE' | 'EDIT' | 'MANAGE';

/** Each identity's grants on one model's training experiment and registered model (see the table above). */
export const IDENTITY_GRANTS: Record<
  MlflowIdentity,
  { experiment?: MlflowPermission; registeredModel?: MlflowPermission }
> = {
  trainer: { experiment: 'EDIT' },
  pipeline: { experiment: 'EDIT', registeredModel: 'MANAGE' },
  gateway: { experiment: 'READ', registeredModel: 'READ' },
};

/** The secret holding an identity's credentials. */
export const identitySecret = (identity: MlflowIdentity): string => `mlflow-${identity}`;
/** Keys of an identity's credentials secret: the variables MLflow's own clients read. */
export const USERNAME_KEY = MLFLOW_USERNAME_KEY;
export const PASSWORD_KEY = MLFLOW_PASSWORD_KEY;
export { mlflowAuthFromSecret };

const adminRef = (key: 'password' | 'flask-secret-key'): SecretRef => ({ secret: MLFLOW_ADMIN_SECRET, key });

function generateSecret(): string {
  return randomBytes(MLFLOW_SECRET_BYTES).toString('base64url');
}

/** The stored value, or a new random one stored first (so a restarted stack keeps its users). */
async function ensureSecret(store: WritableSecretStore, ref: SecretRef): Promise<string> {
  const existing = await store.get(ref);
  if (existing !== undefined && existing !== '') return existing;
  const value = generateSecret();
  await store.put(ref, value);
  return value;
}

/**
 * Writes the server's auth config (the shipped template with its user database under `stateDir`)
 * and returns what the launcher needs; the admin password and the Flask key come from the store,
 * generated there on first use.
 */
export async function prepareMlflowAuth(
  stateDir: string,
  store: WritableSecretStore,
): Promise<MlflowServerAuth> {
  const dir = path.resolve(stateDir);
  mkdirSync(dir, { recursive: true });
  const template = readFileSync(MLFLOW_AUTH_CONFIG_TEMPLATE, 'utf8');
  const databaseUri = `sqlite:///${path.join(dir, 'basic_auth.sqlite')}`;
  const config = template.replace(/^database_uri\s*=.*$/m, `database_uri = ${databaseUri}`);
  if (!config.includes(databaseUri) || !/^admin_username = mlops-admin$/m.test(config)) {
    throw new Error(
      `${MLFLOW_AUTH_CONFIG_TEMPLATE} must set database_uri and admin_username = ${MLFLOW_ADMIN_USERNAME}`,
    );
  }
  const configPath = path.join(dir, 'basic_auth.ini');
  writeFileSync(configPath, config);
  return {
    configPath,
    adminPassword: await ensureSecret(store, adminRef('password')),
    flaskSecretKey: await ensureSecret(store, adminRef('flask-secret-key')),
  };
}

/** The admin's credentials, by reference. */
export async function mlflowAdminAuth(store: SecretStore): Promise<MlflowAuth> {
  const password = await store.get(adminRef('password'));
  if (!password) throw new Error(`secret ${MLFLOW_ADMIN_SECRET}/password is missing: start the server first`);
  return { kind: 'basic', username: MLFLOW_ADMIN_USERNAME, password };
}

/** One call to the auth app's admin REST API; failures are MLflow errors that carry no credential. */
async function adminCall(
  trackingUri: string,
  admin: MlflowAuth,
  method: 'POST' | 'PATCH',
  apiPath: string,
  body: Record<string, string>,
): Promise<void> {
  if (admin.kind !== 'basic') throw new Error('the MLflow admin API needs basic credentials');
  const endpoint = `${method} ${apiPath}`;
  const authorization = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  let res: Response;
  try {
    res = await fetch(`${trackingUri}${apiPath}`, {
      method,
      headers: { Authorization: authorization, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
    });
  } catch (err) {
    throw mlflowErrorFromNetwork(endpoint, err, ADMIN_CALL_TIMEOUT_MS);
  }
  const text = await res.text();
  if (!res.ok) throw mlflowErrorFromResponse(endpoint, res.status, text);
}

/** Creates the user, or sets its password to the stored one when it exists (idempotent). */
async function ensureUser(trackingUri: string, admin: MlflowAuth, username: string, password: string) {
  try {
    await adminCall(trackingUri, admin, 'POST', '/api/2.0/mlflow/users/create', { username, password });
  } catch (err) {
    if (!(err instanceof MlflowAlreadyExistsError)) throw err;
    await adminCall(trackingUri, admin, 'PATCH', '/api/2.0/mlflow/users/update-password', {
      username,
      password,
    });
  }
}

/** Grants `permission` on one resource, replacing an earlier grant of another level (idempotent). */
async function grant(
  trackingUri: string,
  admin: MlflowAuth,
  g: {
    username: string;
    resourceType: 'experiment' | 'registered_model';
    resourceId: string;
    permission: MlflowPermission;
  },
) {
  const body = { username: g.username, resource_type: g.resourceType, resource_id: g.resourceId };
  try {
    await adminCall(trackingUri, admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
      ...body,
      permission: g.permission,
    });
  } catch (err) {
    if (!(err instanceof MlflowAlreadyExistsError)) throw err;
    await adminCall(trackingUri, admin, 'POST', '/api/3.0/mlflow/users/permissions/revoke', body);
    await adminCall(trackingUri, admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
      ...body,
      permission: g.permission,
    });
  }
}

export interface ProvisionedIdentities {
  /** The secret of each identity's credentials (read them with {@link mlflowAuthFromSecret}). */
  secrets: Record<MlflowIdentity, string>;
  /** Training experiment id of each model, created by the admin and granted as in {@link IDENTITY_GRANTS}. */
  experiments: Record<string, string>;
}

/**
 * Creates the trainer, pipeline and gateway users (passwords generated into the store) and grants
 * each of them {@link IDENTITY_GRANTS} on every model in `models`: its training experiment and its
 * registered model, both created here by the admin (a new model is provisioned before its first run).
 * Idempotent: run it again with more models, or after a restart.
 */
export async function provisionMlflowIdentities(opts: {
  trackingUri: string;
  store: WritableSecretStore;
  models: readonly string[];
}): Promise<ProvisionedIdentities> {
  const admin = await mlflowAdminAuth(opts.store);
  const adminClient = new MlflowClient({ trackingUri: opts.trackingUri, auth: admin });
  const experiments: Record<string, string> = {};
  for (const model of opts.models) {
    experiments[model] = await adminClient.getOrCreateExperiment(experimentName(model));
    // The registered model exists before its first version: MLflow answers 403, not 404, for a
    // resource it cannot place, so a granted read of a missing model would look like a refusal.
    await adminClient.ensureRegisteredModel(model);
  }
  const secrets = {} as Record<MlflowIdentity, string>;
  for (const identity of MLFLOW_IDENTITIES) {
    const secret = identitySecret(identity);
    await opts.store.put({ secret, key: USERNAME_KEY }, identity);
    const password = await ensureSecret(opts.store, { secret, key: PASSWORD_KEY });
    await ensureUser(opts.trackingUri, admin, identity, password);
    const grants = IDENTITY_GRANTS[identity];
    for (const model of opts.models) {
      if (grants.experiment) {
        await grant(opts.trackingUri, admin, {
          username: identity,
          resourceType: 'experiment',
          resourceId: experiments[model]!,
          permission: grants.experiment,
        });
      }
      if (grants.registeredModel) {
        await grant(opts.trackingUri, admin, {
          username: identity,
          resourceType: 'registered_model',
          resourceId: model,
          permission: grants.registeredModel,
        });
      }
    }
    secrets[identity] = secret;
  }
  return { secrets, experiments };
}

/** How many times the auth server is started on a fresh port when another process took its port first. */
export const MLFLOW_AUTH_PORT_ATTEMPTS = 3;

/**
 * True when `trackingUri` is the auth app that knows this stack's admin: a server that took the
 * port before ours bound answers the launcher's health check too, but not this.
 */
async function answersAsOurAdmin(trackingUri: string, auth: MlflowServerAuth): Promise<boolean> {
  try {
    const header = `Basic ${Buffer.from(`${MLFLOW_ADMIN_USERNAME}:${auth.adminPassword}`).toString('base64')}`;
    const res = await fetch(`${trackingUri}/api/2.0/mlflow/users/get?username=${MLFLOW_ADMIN_USERNAME}`, {
      headers: { Authorization: header },
      signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
    });
    await res.text();
    return res.ok;
  } catch {
    return false;
  }
}

/** Starts the auth server, again on a fresh port (up to {@link MLFLOW_AUTH_PORT_ATTEMPTS}) when its port was lost. */
async function startOwnAuthServer(
  stateDir: string,
  auth: MlflowServerAuth,
): Promise<RunningServer<MlflowEndpoint>> {
  for (let attempt = 1; ; attempt++) {
    let failure: unknown;
    try {
      const server = await startMlflowServer({ stateDir, auth });
      if (await answersAsOurAdmin(server.endpoint.trackingUri, auth)) return server;
      await server.stop();
      failure = new Error(
        `the basic-auth MLflow on ${server.endpoint.trackingUri} does not answer as this stack's admin`,
      );
    } catch (err) {
      failure = err;
    }
    const log = path.join(path.resolve(stateDir), 'mlflow.log');
    const lostPort = existsSync(log) && readFileSync(log, 'utf8').includes('Address already in use');
    if (!lostPort || attempt >= MLFLOW_AUTH_PORT_ATTEMPTS) throw failure;
    renameSync(log, `${log}.attempt-${attempt}`);
  }
}

/**
 * Starts the local MLflow with the basic-auth app and provisions the identities for `models`. The
 * server's state and the file secret store live under `stateDir`. Refuses a server given by
 * MLFLOW_TRACKING_URI (it is not this stack's to configure).
 */
export async function startAuthMlflowServer(opts: {
  stateDir: string;
  store: WritableSecretStore;
  models: readonly string[];
}): Promise<{ server: RunningServer<MlflowEndpoint>; identities: ProvisionedIdentities }> {
  if (process.env.MLFLOW_TRACKING_URI) {
    throw new Error('MLFLOW_TRACKING_URI is set: the basic-auth MLflow is started by the stack, unset it');
  }
  const auth = await prepareMlflowAuth(opts.stateDir, opts.store);
  const server = await startOwnAuthServer(opts.stateDir, auth);
  try {
    const identities = await provisionMlflowIdentities({
      trackingUri: server.endpoint.trackingUri,
      store: opts.store,
      models: opts.models,
    });
    return { server, identities };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
