/**
 * The local stack launcher shared by `npm run stack`, `npm run demo` and the test suites: a real
 * Temporal dev server and a real MLflow tracking server on free ports of 127.0.0.1, each waited on
 * until healthy and stopped (with everything it forked) on `stop()` or process exit.
 */
import { Connection } from '@temporalio/client';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { freePort, startManaged, waitUntilHealthy, type ManagedProcess } from './process';
import { ensurePythonEnv, ensureTemporalCli } from './provision';
import { VENV_DIR } from './paths';

/** Temporal's dev server needs a few seconds; a cold SQLite file a few more. */
export const TEMPORAL_START_TIMEOUT_MS = 60_000;
/** How many times the dev server is started on fresh ports when one was taken before it bound. */
export const TEMPORAL_PORT_ATTEMPTS = 3;
/** MLflow 3 runs its database migrations on first start: allow for a slow machine. */
export const MLFLOW_START_TIMEOUT_MS = 120_000;
/** Uvicorn workers for the local MLflow server: two keep a 2-core machine responsive. */
export const MLFLOW_WORKERS = 2;

export interface TemporalEndpoint {
  address: string;
  namespace: string;
  uiUrl?: string;
  cli: string;
}

export interface RunningServer<T> {
  endpoint: T;
  process?: ManagedProcess;
  stop(): Promise<void>;
}

export async function startTemporalDevServer(opts: {
  stateDir: string;
  /** Persist workflow history in a SQLite file under stateDir (the demo); tests use memory. */
  persistent?: boolean;
  ui?: boolean;
  namespace?: string;
}): Promise<RunningServer<TemporalEndpoint>> {
  // A free port can be taken by another process between the probe and the server's bind (a busy CI
  // machine starting several stacks): such a start is retried on fresh ports, anything else is not.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTemporalDevServerOnce(opts);
    } catch (err) {
      const log = path.join(opts.stateDir, 'temporal.log');
      const lostPort = existsSync(log) && readFileSync(log, 'utf8').includes('address already in use');
      if (!lostPort || attempt >= TEMPORAL_PORT_ATTEMPTS) throw err;
      renameSync(log, `${log}.attempt-${attempt}`);
    }
  }
}

async function startTemporalDevServerOnce(opts: {
  stateDir: string;
  persistent?: boolean;
  ui?: boolean;
  namespace?: string;
}): Promise<RunningServer<TemporalEndpoint>> {
  const cli = ensureTemporalCli();
  const port = await freePort();
  const uiPort = opts.ui ? await freePort() : undefined;
  const namespace = opts.namespace ?? 'default';
  mkdirSync(opts.stateDir, { recursive: true });
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (opts.persistent) args.push('--db-filename', path.join(opts.stateDir, 'temporal.sqlite'));
  if (namespace !== 'default') args.push('--namespace', namespace);
  const proc = startManaged('temporal dev server', cli, args, {
    logFile: path.join(opts.stateDir, 'temporal.log'),
  });
  const address = `127.0.0.1:${port}`;
  await waitUntilHealthy(
    proc,
    async () => {
      const conn = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return true;
      } finally {
        await conn.close();
      }
    },
    TEMPORAL_START_TIMEOUT_MS,
  );
  return {
    endpoint: { address, namespace, uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined, cli },
    process: proc,
    stop: () => proc.stop(),
  };
}

export interface MlflowEndpoint {
  trackingUri: string;
  /** True when the server was started here rather than given by MLFLOW_TRACKING_URI. */
  managed: boolean;
}

/** An S3 artifact root for MLflow (the stack's S3 server): the server writes artifacts there through boto3. */
export interface MlflowS3Artifacts {
  /** `s3://<bucket>/<prefix>`; the bucket must exist. */
  destination: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The basic-auth app (`--app-name basic-auth`), prepared by `prepareMlflowAuth` in ./mlflow-auth. */
export interface MlflowServerAuth {
  /** The auth config ini (MLFLOW_AUTH_CONFIG_PATH). */
  configPath: string;
  /** Bootstraps the admin user on first start (MLFLOW_AUTH_ADMIN_PASSWORD); read from the secret store. */
  adminPassword: string;
  /** Static Flask secret for the app's CSRF protection across workers (MLFLOW_FLASK_SERVER_SECRET_KEY). */
  flaskSecretKey: string;
}

export async function startMlflowServer(opts: {
  stateDir: string;
  /** Artifacts on S3 instead of the local folder (clients still go through the server's artifact proxy). */
  s3Artifacts?: MlflowS3Artifacts;
  /** Run the basic-auth app; every client then needs its own credentials. */
  auth?: MlflowServerAuth;
}): Promise<RunningServer<MlflowEndpoint>> {
  const given = process.env.MLFLOW_TRACKING_URI;
  if (given) {
    return { endpoint: { trackingUri: given.replace(/\/+$/, ''), managed: false }, stop: async () => {} };
  }
  ensurePythonEnv();
  const port = await freePort();
  const dir = path.resolve(opts.stateDir);
  mkdirSync(path.join(dir, 'mlartifacts'), { recursive: true });
  const mlflowBin = path.join(VENV_DIR, 'bin', 'mlflow');
  const proc = startManaged(
    'mlflow server',
    mlflowBin,
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      String(MLFLOW_WORKERS),
      '--backend-store-uri',
      `sqlite:///${path.join(dir, 'mlflow.sqlite')}`,
      '--artifacts-destination',
      opts.s3Artifacts?.destination ?? path.join(dir, 'mlartifacts'),
      '--serve-artifacts',
      ...(opts.auth ? ['--app-name', 'basic-auth'] : []),
    ],
    {
      // The server's background job runner is for GenAI features this project does not use.
      env: {
        ...process.env,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
        ...(opts.auth && {
          MLFLOW_AUTH_CONFIG_PATH: opts.auth.configPath,
          MLFLOW_AUTH_ADMIN_PASSWORD: opts.auth.adminPassword,
          MLFLOW_FLASK_SERVER_SECRET_KEY: opts.auth.flaskSecretKey,
        }),
        ...(opts.s3Artifacts && {
          MLFLOW_S3_ENDPOINT_URL: opts.s3Artifacts.endpoint,
          AWS_ACCESS_KEY_ID: opts.s3Artifacts.accessKeyId,
          AWS_SECRET_ACCESS_KEY: opts.s3Artifacts.secretAccessKey,
          AWS_DEFAULT_REGION: 'us-east-1',
          // S3-compatible servers take plain payloads; botocore's default streaming checksums they may not.
          AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
          AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
        }),
      },
      logFile: path.join(dir, 'mlflow.log'),
    },
  );
  const trackingUri = `http://127.0.0.1:${port}`;
  await waitUntilHealthy(
    proc,
    async () => (await fetch(`${trackingUri}/health`, { signal: AbortSignal.timeout(2_000) })).ok,
    MLFLOW_START_TIMEOUT_MS,
  );
  return { endpoint: { trackingUri, managed: true }, process: proc, stop: () => proc.stop() };
}

export interface Stack {
  temporal: TemporalEndpoint;
  mlflow: MlflowEndpoint;
  stateDir: string;
  stop(): Promise<void>;
}

/** Starts both servers concurrently; if either fails, the other is stopped before rethrowing. */
export async function startStack(opts: {
  stateDir: string;
  persistent?: boolean;
  ui?: boolean;
}): Promise<Stack> {
  const [t, m] = await Promise.allSettled([
    startTemporalDevServer({
      stateDir: path.join(opts.stateDir, 'temporal'),
      persistent: opts.persistent,
      ui: opts.ui,
    }),
    startMlflowServer({ stateDir: path.join(opts.stateDir, 'mlflow') }),
  ]);
  if (t.status === 'rejected' || m.status === 'rejected') {
    if (t.status === 'fulfilled') await t.value.stop();
    if (m.status === 'fulfilled') await m.value.stop();
    throw t.status === 'rejected' ? t.reason : (m as PromiseRejectedResult).reason;
  }
  return {
    temporal: t.value.endpoint,
    mlflow: m.value.endpoint,
    stateDir: opts.stateDir,
    async stop() {
      await Promise.all([t.value.stop(), m.value.stop()]);
    },
  };
}
