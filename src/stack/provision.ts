/**
 * Idempotent, cached provisioning of the local stack's tools. Each step prints what it does, skips
 * itself when its output is already present and current, and fails with one line naming what to
 * install when a prerequisite is missing. Nothing is downloaded except from the package registries
 * (the Go module proxy for the Temporal CLI, PyPI for MLflow and the trainer, Maven Central for the
 * time-skipping test server).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import {
  STACK_REQUIREMENTS,
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  TEST_SERVER_LIB,
  TEST_SERVER_POM,
  TEST_SERVER_STAMP,
  TEST_SERVER_WRAPPER,
  TOOLS_DIR,
  TRAINER_REQUIREMENTS,
  VENV_DIR,
  VENV_PYTHON,
} from './paths';

/** A prerequisite is missing; the message says what to install. */
export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

export type Logger = (line: string) => void;
const defaultLog: Logger = (line) => console.log(`[provision] ${line}`);

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.error) {
    throw new MissingPrerequisiteError(`a POSIX shell (sh) is required on PATH (${r.error.message})`);
  }
  const out = r.stdout.trim();
  return r.status === 0 && out ? out : undefined;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.error) throw new Error(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} failed with exit code ${r.status}`);
}

/**
 * The Temporal CLI: `$TEMPORAL_CLI`, else `temporal` on PATH, else the pinned version built with
 * `go install` (CGO off) into the tools folder. A second call does no work.
 */
export function ensureTemporalCli(log: Logger = defaultLog): string {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new MissingPrerequisiteError(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  const binDir = path.join(TOOLS_DIR, 'bin');
  const built = path.join(binDir, 'temporal');
  const stamp = path.join(binDir, 'temporal.version');
  if (existsSync(built) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === TEMPORAL_CLI_VERSION) {
    return built;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;
  const go = which('go');
  if (!go) {
    throw new MissingPrerequisiteError(
      'Go is required to build the Temporal CLI: install Go >= 1.23 (https://go.dev/doc/install or `apt-get install golang`), or set TEMPORAL_CLI to an existing temporal binary',
    );
  }
  mkdirSync(binDir, { recursive: true });
  log(
    `building Temporal CLI ${TEMPORAL_CLI_VERSION} with go install into ${binDir} (first run only, a few minutes)`,
  );
  run(
    go,
    ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`],
    { ...process.env, CGO_ENABLED: '0', GOBIN: binDir, GOFLAGS: '-buildvcs=false' },
    'go install of the Temporal CLI',
  );
  writeFileSync(stamp, `${TEMPORAL_CLI_VERSION}\n`);
  log(`Temporal CLI ready: ${built}`);
  return built;
}

function requirementsDigest(): string {
  const h = createHash('sha256');
  for (const f of [STACK_REQUIREMENTS, TRAINER_REQUIREMENTS]) {
    if (existsSync(f)) h.update(readFileSync(f));
  }
  return h.digest('hex');
}

/**
 * The Python environment for the MLflow server and the reference trainer. Recreated only when the
 * pinned requirements change (a digest of them is stamped into the venv).
 */
export function ensurePythonEnv(log: Logger = defaultLog): string {
  const stamp = path.join(VENV_DIR, '.requirements.sha256');
  const digest = requirementsDigest();
  if (existsSync(VENV_PYTHON) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) {
    return VENV_PYTHON;
  }
  const python = process.env.MLOPS_BOOTSTRAP_PYTHON ?? which('python3');
  if (!python) {
    throw new MissingPrerequisiteError(
      'Python 3.10+ with venv is required for MLflow and the reference trainer: install it (`apt-get install python3 python3-venv`) or point MLOPS_BOOTSTRAP_PYTHON at one',
    );
  }
  if (!existsSync(VENV_PYTHON)) {
    log(`creating Python venv in ${VENV_DIR}`);
    const r = spawnSync(python, ['-m', 'venv', VENV_DIR], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new MissingPrerequisiteError(
        `python3 -m venv failed (${r.stderr.trim().split('\n').pop() ?? 'no output'}): install the venv module (\`apt-get install python3-venv\`)`,
      );
    }
  }
  log('installing pinned MLflow and trainer requirements into the venv (first run only, a few minutes)');
  run(
    VENV_PYTHON,
    [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--disable-pip-version-check',
      '-r',
      STACK_REQUIREMENTS,
      '-r',
      TRAINER_REQUIREMENTS,
    ],
    process.env,
    'pip install of MLflow and the trainer requirements',
  );
  writeFileSync(stamp, `${digest}\n`);
  log(`Python venv ready: ${VENV_PYTHON}`);
  return VENV_PYTHON;
}

/** Entry point of the time-skipping test server inside its jar (`io.temporal:temporal-test-server`). */
export const TEST_SERVER_MAIN_CLASS = 'io.temporal.testserver.TestServer';

const TEST_SERVER_PREREQUISITES =
  'Java 11+ and Maven are required for the time-skipping test server: apt-get install default-jdk maven, or set TEMPORAL_TEST_SERVER to an existing test server executable';

/**
 * The wrapper the SDK launches as `<wrapper> <port>` (plus any `extraArgs`). It `exec`s the JVM so
 * the process the SDK kills at teardown is the server itself, not a shell left holding it.
 */
function testServerWrapper(): string {
  const classpath = path.join(TEST_SERVER_LIB, '*').replace(/'/g, `'\\''`);
  return `#!/bin/sh\nexec java -cp '${classpath}' ${TEST_SERVER_MAIN_CLASS} "$@"\n`;
}

function testServerDigest(): string {
  return createHash('sha256').update(readFileSync(TEST_SERVER_POM)).update(testServerWrapper()).digest('hex');
}

/**
 * The time-skipping test server (a JVM program): `$TEMPORAL_TEST_SERVER` if set, else a wrapper
 * script over the jars that Maven copies from Maven Central into the tools folder. Refetched only
 * when the pom (or the wrapper) changes; a second call does no work. Returns the executable's path,
 * for `TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } })`.
 */
export function ensureTimeSkippingServer(log: Logger = defaultLog): string {
  const fromEnv = process.env.TEMPORAL_TEST_SERVER;
  if (fromEnv) {
    try {
      accessSync(fromEnv, constants.X_OK);
    } catch {
      throw new MissingPrerequisiteError(`TEMPORAL_TEST_SERVER=${fromEnv} is not an existing executable`);
    }
    return fromEnv;
  }
  if (!which('java')) throw new MissingPrerequisiteError(TEST_SERVER_PREREQUISITES);
  const digest = testServerDigest();
  if (
    existsSync(TEST_SERVER_WRAPPER) &&
    existsSync(TEST_SERVER_STAMP) &&
    readFileSync(TEST_SERVER_STAMP, 'utf8').trim() === digest
  ) {
    return TEST_SERVER_WRAPPER;
  }
  const mvn = which('mvn');
  if (!mvn) throw new MissingPrerequisiteError(TEST_SERVER_PREREQUISITES);
  // A stale stamp or a half-finished fetch: start from an empty lib/ so no old jar stays on the classpath.
  rmSync(TEST_SERVER_STAMP, { force: true });
  rmSync(TEST_SERVER_LIB, { recursive: true, force: true });
  mkdirSync(TEST_SERVER_LIB, { recursive: true });
  log(
    `fetching the Temporal time-skipping test server from Maven Central into ${TEST_SERVER_LIB} (first run only)`,
  );
  // Maven's output is captured: even with -q and -B it writes bare ANSI resets; errors are replayed.
  const r = spawnSync(
    mvn,
    [
      '-q',
      '-B',
      '-f',
      TEST_SERVER_POM,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${TEST_SERVER_LIB}`,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = stripVTControlCharacters(`${r.stdout ?? ''}${r.stderr ?? ''}`).trim();
  if (output) process.stderr.write(`${output}\n`);
  if (r.error) {
    throw new Error(`mvn fetch of the time-skipping test server could not start: ${r.error.message}`);
  }
  if (r.status !== 0) {
    throw new Error(`mvn fetch of the time-skipping test server failed with exit code ${r.status}`);
  }
  writeFileSync(TEST_SERVER_WRAPPER, testServerWrapper(), { mode: 0o755 });
  chmodSync(TEST_SERVER_WRAPPER, 0o755);
  writeFileSync(TEST_SERVER_STAMP, `${digest}\n`);
  log(`time-skipping test server ready: ${TEST_SERVER_WRAPPER}`);
  return TEST_SERVER_WRAPPER;
}

/** Everything the demo and the tests need. */
export function provisionAll(log: Logger = defaultLog): {
  temporalCli: string;
  python?: string;
  timeSkippingServer: string;
} {
  const temporalCli = ensureTemporalCli(log);
  const python = ensurePythonEnv(log);
  const timeSkippingServer = ensureTimeSkippingServer(log);
  return { temporalCli, python, timeSkippingServer };
}
