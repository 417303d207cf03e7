/**
 * Idempotent, cached provisioning of the local stack's tools. Each step prints what it does, skips
 * itself when its output is already present and current, and fails with one line naming what to
 * install when a prerequisite is missing. Nothing is downloaded except from the package registries
 * (the Go module proxy for the Temporal CLI, PyPI for MLflow and the trainer, Maven Central for the
 * time-skipping test server). Every tool goes into its own versioned folder of the per-user cache
 * (paths.ts); a folder appears only once complete (built beside it, then renamed), and builds that
 * cannot move (the venv) run under a lock, so clones and CI runs sharing the cache never see half a
 * tool.
 */
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import {
  STACK_REQUIREMENTS,
  TEMPORAL_CLI_BIN,
  TEMPORAL_CLI_DIR,
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  TEST_SERVER_DIR,
  TEST_SERVER_LIB,
  TEST_SERVER_POM,
  TEST_SERVER_WRAPPER,
  TRAINER_REQUIREMENTS,
  VENV_DIR,
  VENV_PYTHON,
  VENV_STAMP,
  REFERENCE_REQUIREMENTS_DIR,
  referenceVenvDir,
} from './paths';

/** A prerequisite is missing; the message says what to install. */
export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

export type Logger = (line: string) => void;
const defaultLog: Logger = (line) => console.log(`[provision] ${line}`);

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.error) {
    throw new MissingPrerequisiteError(`a POSIX shell (sh) is required on PATH (${r.error.message})`);
  }
  const out = r.stdout.trim();
  return r.status === 0 && out ? out : undefined;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string, cwd?: string): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env, cwd });
  if (r.error) throw new Error(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} failed with exit code ${r.status}`);
}

/** How long a provisioning step waits for another process building the same tool. */
const LOCK_WAIT_MS = 60 * 60_000;
/** Poll interval while waiting for that lock. */
const LOCK_POLL_MS = 1_000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding `<target>.lock` (a folder holding the owner's pid), so two processes sharing
 * the cache never build the same tool at once. A lock whose owner died is taken over.
 */
export function withCacheLock<T>(target: string, fn: () => T, log: Logger = defaultLog): T {
  const lock = `${target}.lock`;
  const owner = path.join(lock, 'pid');
  mkdirSync(path.dirname(target), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(owner, `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(existsSync(owner) ? readFileSync(owner, 'utf8') : '', 10);
      if (Number.isInteger(pid) && !processAlive(pid)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${lock} (held by pid ${pid})`);
      if (!told) log(`waiting for another process building ${path.basename(target)} (${lock})`);
      told = true;
      sleepSync(LOCK_POLL_MS);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Builds a tool folder beside `target` with `build(tmpDir)` and renames it into place, so the
 * versioned folder exists only once complete. Under the cache lock: a second process waits, then
 * finds the folder built.
 */
export function buildIntoPlace(
  target: string,
  isComplete: () => boolean,
  build: (tmpDir: string) => void,
  log: Logger = defaultLog,
): void {
  withCacheLock(
    target,
    () => {
      if (isComplete()) return;
      const tmp = `${target}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      try {
        build(tmp);
        rmSync(target, { recursive: true, force: true });
        renameSync(tmp, target);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    log,
  );
}

/**
 * The Temporal CLI: `$TEMPORAL_CLI`, else `temporal` on PATH, else the pinned version built with
 * `go install` (CGO off) into `temporal-cli-<version>/` of the cache. A second call does no work.
 */
export function ensureTemporalCli(log: Logger = defaultLog): string {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new MissingPrerequisiteError(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  if (existsSync(TEMPORAL_CLI_BIN)) return TEMPORAL_CLI_BIN;
  const onPath = which('temporal');
  if (onPath) return onPath;
  const go = which('go');
  if (!go) {
    throw new MissingPrerequisiteError(
      'Go is required to build the Temporal CLI: install Go >= 1.23 (https://go.dev/doc/install or `apt-get install golang`), or set TEMPORAL_CLI to an existing temporal binary',
    );
  }
  log(
    `building Temporal CLI ${TEMPORAL_CLI_VERSION} with go install into ${TEMPORAL_CLI_DIR} (first run only, a few minutes)`,
  );
  buildIntoPlace(
    TEMPORAL_CLI_DIR,
    () => existsSync(TEMPORAL_CLI_BIN),
    (tmp) =>
      run(
        go,
        ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`],
        { ...process.env, CGO_ENABLED: '0', GOBIN: tmp, GOFLAGS: '-buildvcs=false' },
        'go install of the Temporal CLI',
      ),
    log,
  );
  log(`Temporal CLI ready: ${TEMPORAL_CLI_BIN}`);
  return TEMPORAL_CLI_BIN;
}

/**
 * The Python environment for the MLflow server and the reference trainer, in a cache folder named
 * by a digest of the pinned requirements (a change of pins gives a new folder). A venv cannot be
 * moved once built, so it is built in place under the cache lock and stamped complete last.
 */
export function ensurePythonEnv(log: Logger = defaultLog): string {
  if (existsSync(VENV_PYTHON) && existsSync(VENV_STAMP)) return VENV_PYTHON;
  const python = process.env.MLOPS_BOOTSTRAP_PYTHON ?? which('python3');
  if (!python) {
    throw new MissingPrerequisiteError(
      'Python 3.10+ with venv is required for MLflow and the reference trainer: install it (`apt-get install python3 python3-venv`) or point MLOPS_BOOTSTRAP_PYTHON at one',
    );
  }
  withCacheLock(
    VENV_DIR,
    () => {
      if (existsSync(VENV_PYTHON) && existsSync(VENV_STAMP)) return;
      // A half-built venv (a killed pip) is rebuilt from scratch.
      rmSync(VENV_DIR, { recursive: true, force: true });
      log(`creating Python venv in ${VENV_DIR}`);
      const r = spawnSync(python, ['-m', 'venv', VENV_DIR], { encoding: 'utf8' });
      if (r.status !== 0) {
        rmSync(VENV_DIR, { recursive: true, force: true });
        throw new MissingPrerequisiteError(
          `python3 -m venv failed (${r.stderr.trim().split('\n').pop() ?? 'no output'}): install the venv module (\`apt-get install python3-venv\`)`,
        );
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
      writeFileSync(VENV_STAMP, `${new Date().toISOString()}\n`);
    },
    log,
  );
  log(`Python venv ready: ${VENV_PYTHON}`);
  return VENV_PYTHON;
}

/** A reference environment's name: the base name of its requirements file. */
const REFERENCE_NAME = /^[a-z][a-z0-9-]{0,40}$/;

/** The names of every reference environment declared in deploy/stack/reference/. */
export function referenceEnvNames(): string[] {
  if (!existsSync(REFERENCE_REQUIREMENTS_DIR)) return [];
  return readdirSync(REFERENCE_REQUIREMENTS_DIR)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -'.txt'.length))
    .filter((n) => REFERENCE_NAME.test(n))
    .sort();
}

/** The marker line of a reference environment that only a benchmark uses: provision skips it. */
export const BENCH_ONLY_MARKER = '# provision: bench-only';

/** Whether `<name>.txt` carries the bench-only marker (built on first use by its benchmark, not by CI). */
export function isBenchOnly(name: string): boolean {
  const file = path.join(REFERENCE_REQUIREMENTS_DIR, `${name}.txt`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .some((line) => line.trim() === BENCH_ONLY_MARKER);
}

/**
 * The marker line of a reference environment built on Debian's python with Debian packages visible:
 * `# provision: debian-python <package>[=<version>] ...` (for what PyPI only has as huge builds, like
 * a CPU torch). The packages are installed with apt-get when missing (root only, as CI runs), and
 * the venv is made by Debian's python with `--system-site-packages`.
 */
export const DEBIAN_PYTHON_MARKER = '# provision: debian-python';
/** Debian's own python3 (the base of a debian-python reference environment). */
export const DEBIAN_PYTHON = '/usr/bin/python3';
/** How long apt-get waits for another apt/dpkg run to release its lock. */
const APT_LOCK_TIMEOUT_S = 600;

/** The Debian packages named by `<name>.txt`'s debian-python marker, or undefined when it has none. */
export function debianPackagesOf(name: string): string[] | undefined {
  const file = path.join(REFERENCE_REQUIREMENTS_DIR, `${name}.txt`);
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(`${DEBIAN_PYTHON_MARKER} `));
  return line?.slice(DEBIAN_PYTHON_MARKER.length).trim().split(/\s+/).filter(Boolean);
}

/** Installs the Debian packages (`name` or `name=version`) not yet installed at that version. */
export function ensureDebianPackages(packages: readonly string[], log: Logger = defaultLog): void {
  const missing = packages.filter((p) => {
    const [pkg = '', version] = p.split('=');
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg], { encoding: 'utf8' });
    const out = r.status === 0 ? r.stdout.trim() : '';
    return !out.startsWith('install ok installed') || (version !== undefined && !out.endsWith(` ${version}`));
  });
  if (missing.length === 0) return;
  const apt = which('apt-get');
  if (!apt || process.getuid?.() !== 0) {
    throw new MissingPrerequisiteError(
      `Debian packages ${missing.join(' ')} are required: apt-get install --no-install-recommends ${missing.join(' ')} (as root)`,
    );
  }
  log(`installing ${missing.join(' ')} with apt-get (first run only)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', `DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT_S}`];
  run(apt, [...lock, 'update', '-qq'], env, 'apt-get update');
  run(apt, [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...missing], env, 'apt-get install');
}

/**
 * One reference environment (deploy/stack/reference/<name>.txt) as its own venv in the cache, keyed
 * by the digest of its pins, built in place under the cache lock and stamped complete last. Returns
 * its python. Tests and benchmarks call this for the tools they compare with. A file with the
 * debian-python marker gets its Debian packages first and a venv of Debian's python that sees them.
 */
export function ensureReferenceEnv(name: string, log: Logger = defaultLog): string {
  if (!REFERENCE_NAME.test(name))
    throw new Error(`reference environment name ${JSON.stringify(name)} is invalid`);
  const requirements = path.join(REFERENCE_REQUIREMENTS_DIR, `${name}.txt`);
  if (!existsSync(requirements))
    throw new Error(`no reference environment ${name}: ${requirements} is missing`);
  const dir = referenceVenvDir(name);
  const python = path.join(dir, 'bin', 'python');
  const stamp = path.join(dir, '.complete');
  if (existsSync(python) && existsSync(stamp)) return python;
  const debian = debianPackagesOf(name);
  const bootstrap = debian ? DEBIAN_PYTHON : (process.env.MLOPS_BOOTSTRAP_PYTHON ?? which('python3'));
  if (!bootstrap)
    throw new MissingPrerequisiteError('Python 3.10+ with venv is required for the reference tools');
  withCacheLock(
    dir,
    () => {
      if (existsSync(python) && existsSync(stamp)) return;
      rmSync(dir, { recursive: true, force: true });
      if (debian) ensureDebianPackages(debian, log);
      log(`creating reference venv ${name} in ${dir} (first run only)`);
      const venvArgs = debian ? ['-m', 'venv', '--system-site-packages', dir] : ['-m', 'venv', dir];
      run(bootstrap, venvArgs, process.env, `python3 -m venv for the ${name} reference tools`);
      run(
        python,
        ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements],
        process.env,
        `pip install of the ${name} reference tools`,
      );
      writeFileSync(stamp, `${new Date().toISOString()}\n`);
    },
    log,
  );
  return python;
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

/**
 * The time-skipping test server (a JVM program): `$TEMPORAL_TEST_SERVER` if set, else a wrapper
 * script over the jars that Maven copies from Maven Central into a cache folder keyed by the pom.
 * A second call does no work. Returns the executable's path,
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
  const complete = (): boolean =>
    existsSync(TEST_SERVER_WRAPPER) && readFileSync(TEST_SERVER_WRAPPER, 'utf8') === testServerWrapper();
  if (complete()) return TEST_SERVER_WRAPPER;
  const mvn = which('mvn');
  if (!mvn) throw new MissingPrerequisiteError(TEST_SERVER_PREREQUISITES);
  log(
    `fetching the Temporal time-skipping test server from Maven Central into ${TEST_SERVER_LIB} (first run only)`,
  );
  buildIntoPlace(
    TEST_SERVER_DIR,
    complete,
    (tmp) => {
      const lib = path.join(tmp, path.basename(TEST_SERVER_LIB));
      mkdirSync(lib);
      // Maven's output is captured: even with -q and -B it writes bare ANSI resets; errors are replayed.
      const r = spawnSync(
        mvn,
        ['-q', '-B', '-f', TEST_SERVER_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${lib}`],
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
      // The wrapper names the final lib/ folder: the rename moves the whole folder into place.
      const wrapper = path.join(tmp, path.basename(TEST_SERVER_WRAPPER));
      writeFileSync(wrapper, testServerWrapper(), { mode: 0o755 });
      chmodSync(wrapper, 0o755);
    },
    log,
  );
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
  for (const name of referenceEnvNames()) {
    if (!isBenchOnly(name)) ensureReferenceEnv(name, log);
  }
  return { temporalCli, python, timeSkippingServer };
}
