/**
 * Where the local stack keeps its tools and state. Tools live in a per-user cache outside the
 * clone, each in a folder named by tool and version (or by a digest of what pins it), so a fresh
 * clone, a second checkout and CI on a reused machine share one build; runtime state stays in a
 * git-ignored folder of the clone.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The project root (this file lives in src/stack/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Name of the project's folder inside the user's cache directory. */
const CACHE_FOLDER_NAME = 'mlops-control-plane';

/** The per-user cache: `$MLOPS_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/mlops-control-plane`. */
export const CACHE_DIR =
  process.env.MLOPS_CACHE_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), CACHE_FOLDER_NAME);

/** Built or installed tools, one versioned folder each: `$MLOPS_TOOLS_DIR` overrides the cache. */
export const TOOLS_DIR = process.env.MLOPS_TOOLS_DIR || CACHE_DIR;

/** Runtime state of the demo stack (databases, artifacts, datasets, audit log). */
export const STATE_DIR = process.env.MLOPS_STATE_DIR ?? path.join(PROJECT_ROOT, '.state');

/** Hex digits of a sha256 kept in a versioned folder name: enough to never collide in one cache. */
const DIGEST_CHARS = 16;

/** Short sha256 over the contents of `files` (a missing file counts as empty), for folder names. */
export function contentDigest(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(path.basename(f)).update('\0');
    if (existsSync(f)) h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex').slice(0, DIGEST_CHARS);
}

/** Pinned Temporal CLI: the newest tag whose go.mod has no `replace` directives, so `go install` works. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** The built Temporal CLI: `<tools>/temporal-cli-<version>/temporal`. */
export const TEMPORAL_CLI_DIR = path.join(TOOLS_DIR, `temporal-cli-${TEMPORAL_CLI_VERSION}`);
export const TEMPORAL_CLI_BIN = path.join(TEMPORAL_CLI_DIR, 'temporal');

/** Requirements of the Python environment: the trainer's pins plus the MLflow server. */
export const TRAINER_REQUIREMENTS = path.join(PROJECT_ROOT, 'deploy', 'trainer', 'requirements.txt');
export const STACK_REQUIREMENTS = path.join(PROJECT_ROOT, 'deploy', 'stack', 'requirements.txt');

/** The Python environment shared by the MLflow server and the reference trainer, keyed by its pins. */
export const VENV_DIR = path.join(
  TOOLS_DIR,
  `venv-${contentDigest([STACK_REQUIREMENTS, TRAINER_REQUIREMENTS])}`,
);
export const VENV_PYTHON = path.join(VENV_DIR, 'bin', 'python');
/** Written last by provisioning: the venv is complete (pip finished). */
export const VENV_STAMP = path.join(VENV_DIR, '.complete');

/**
 * Reference environments: one small venv per file in deploy/stack/reference/ (`<name>.txt`), holding
 * the Python tools that tests and benchmarks compare this project with (scipy, shap, fairlearn,
 * model-signing, ...). Each area owns its own file, so changing one pin rebuilds only that venv.
 */
export const REFERENCE_REQUIREMENTS_DIR = path.join(PROJECT_ROOT, 'deploy', 'stack', 'reference');

/** The venv folder of one reference environment, keyed by its name and the digest of its pins. */
export function referenceVenvDir(name: string): string {
  const file = path.join(REFERENCE_REQUIREMENTS_DIR, `${name}.txt`);
  return path.join(TOOLS_DIR, `venv-${name}-${contentDigest([file])}`);
}

/** The reference trainer script run by the local job runner. */
export const TRAINER_SCRIPT = path.join(PROJECT_ROOT, 'deploy', 'trainer', 'train.py');

/** Maven project that declares the time-skipping test server (a JVM program on Maven Central). */
export const TEST_SERVER_POM = path.join(PROJECT_ROOT, 'deploy', 'stack', 'test-server', 'pom.xml');

/** The fetched test server, keyed by its pom: its jars in `lib/` and a wrapper script. */
export const TEST_SERVER_DIR = path.join(
  TOOLS_DIR,
  `temporal-test-server-${contentDigest([TEST_SERVER_POM])}`,
);
export const TEST_SERVER_LIB = path.join(TEST_SERVER_DIR, 'lib');
export const TEST_SERVER_WRAPPER = path.join(TEST_SERVER_DIR, 'temporal-test-server');
