/**
 * The stack's S3-compatible object store: s3proxy (Apache-2.0, a JVM program on Maven Central) over a
 * filesystem blob store, with its encrypted-blobstore middleware, so every object is AES-encrypted at rest by
 * the server (a raw read of the stored file does not contain the uploaded bytes). Chosen over SeaweedFS by
 * cost: a cold fetch of its jars takes about 8 s, where building SeaweedFS from its Go module would take
 * minutes, and the module proxy serves SeaweedFS only as pseudo-versions.
 *
 * Rules:
 * - Provisioned like the time-skipping test server: `mvn dependency:copy-dependencies` of
 *   deploy/stack/s3proxy/pom.xml into `<tools>/s3proxy-<digest of the pom>/lib`, cached per user; idempotent.
 * - Started on a free 127.0.0.1 port with AWS v2/v4 signature auth; the access key, secret key and the
 *   encryption password and salt are the caller's (from the secret store), written only to a 0600 properties
 *   file in the state folder, never to argv or logs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { PROJECT_ROOT, TOOLS_DIR, contentDigest } from './paths';
import { MissingPrerequisiteError, buildIntoPlace, which, type Logger } from './provision';
import { freePort, startManaged, waitUntilHealthy, type ManagedProcess } from './process';

/** Maven project that declares s3proxy and its runtime dependencies. */
export const S3PROXY_POM = path.join(PROJECT_ROOT, 'deploy', 'stack', 's3proxy', 'pom.xml');
/** The cached s3proxy: `<tools>/s3proxy-<digest of the pom>/lib/*.jar`. */
export const S3PROXY_DIR = path.join(TOOLS_DIR, `s3proxy-${contentDigest([S3PROXY_POM])}`);
const S3PROXY_LIB = path.join(S3PROXY_DIR, 'lib');
/** Entry point inside the s3proxy jar. */
export const S3PROXY_MAIN_CLASS = 'org.gaul.s3proxy.Main';
/** How long a fresh s3proxy may take to answer HTTP (JVM start). */
export const S3_START_TIMEOUT_MS = 60_000;
/** JVM heap of the server: objects stream through it, so a small heap is enough. */
export const S3_JVM_HEAP = '256m';
/** The server's log level (its DEBUG output is very chatty). */
export const S3_LOG_LEVEL = 'warn';

const PREREQUISITES =
  'Java 17+ and Maven are required for the S3 server (s3proxy): apt-get install default-jdk maven';

const defaultLog: Logger = (line) => console.log(`[provision] ${line}`);

const complete = (): boolean =>
  existsSync(S3PROXY_LIB) && readdirSync(S3PROXY_LIB).some((f) => /^s3proxy-.*\.jar$/.test(f));

/** The folder of s3proxy's jars, fetched from Maven Central on first use. */
export function ensureS3Proxy(log: Logger = defaultLog): string {
  if (complete()) return S3PROXY_LIB;
  if (!which('java')) throw new MissingPrerequisiteError(PREREQUISITES);
  const mvn = which('mvn');
  if (!mvn) throw new MissingPrerequisiteError(PREREQUISITES);
  log(`fetching s3proxy from Maven Central into ${S3PROXY_LIB} (first run only)`);
  const started = Date.now();
  buildIntoPlace(
    S3PROXY_DIR,
    complete,
    (tmp) => {
      const lib = path.join(tmp, 'lib');
      mkdirSync(lib);
      const r = spawnSync(
        mvn,
        ['-q', '-B', '-f', S3PROXY_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${lib}`],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const output = stripVTControlCharacters(`${r.stdout ?? ''}${r.stderr ?? ''}`).trim();
      if (output) process.stderr.write(`${output}\n`);
      if (r.error) throw new Error(`mvn fetch of s3proxy could not start: ${r.error.message}`);
      if (r.status !== 0) throw new Error(`mvn fetch of s3proxy failed with exit code ${r.status}`);
    },
    log,
  );
  log(`s3proxy ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${S3PROXY_LIB}`);
  return S3PROXY_LIB;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3ServerOptions {
  /** Folder for the blob store, the properties file and the log. */
  stateDir: string;
  credentials: S3Credentials;
  /** Password and salt of the server-side encryption (AES, key derived by PBKDF2 in the server). */
  encryption: { password: string; salt: string };
}

export interface RunningS3 {
  endpoint: string;
  port: number;
  /** Where the server keeps its objects (one folder per bucket): what a raw read of "the disk" sees. */
  dataDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Fresh random credentials and encryption secrets for a test or demo stack. */
export function randomS3Secrets(): Pick<S3ServerOptions, 'credentials' | 'encryption'> {
  const hex = (n: number): string => randomBytes(n).toString('hex');
  return {
    credentials: { accessKeyId: `mlops${hex(6)}`, secretAccessKey: hex(20) },
    encryption: { password: hex(24), salt: hex(12) },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => (req.destroy(), resolve(false)));
  });
}

/** Starts s3proxy on a free loopback port; resolves once it answers HTTP. */
export async function startS3Server(opts: S3ServerOptions, log: Logger = defaultLog): Promise<RunningS3> {
  const lib = ensureS3Proxy(log);
  const port = await freePort();
  const dataDir = path.join(opts.stateDir, 'blobs');
  mkdirSync(dataDir, { recursive: true });
  const endpoint = `http://127.0.0.1:${port}`;
  const properties = path.join(opts.stateDir, 's3proxy.properties');
  writeFileSync(
    properties,
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${opts.credentials.accessKeyId}`,
      `s3proxy.credential=${opts.credentials.secretAccessKey}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${dataDir}`,
      's3proxy.encrypted-blobstore=true',
      `s3proxy.encrypted-blobstore-password=${opts.encryption.password}`,
      `s3proxy.encrypted-blobstore-salt=${opts.encryption.salt}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const proc = startManaged(
    's3proxy',
    'java',
    [`-Xmx${S3_JVM_HEAP}`, '-cp', path.join(lib, '*'), S3PROXY_MAIN_CLASS, '--properties', properties],
    { logFile: path.join(opts.stateDir, 's3proxy.log'), env: { ...process.env, LOG_LEVEL: S3_LOG_LEVEL } },
  );
  await waitUntilHealthy(proc, () => answers(port), S3_START_TIMEOUT_MS);
  return { endpoint, port, dataDir, process: proc, stop: () => proc.stop() };
}
