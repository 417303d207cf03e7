/**
 * Where the local stack keeps its tools and state. Everything lives under the project root in
 * git-ignored folders, so a clean clone provisions itself and a second run reuses the cache.
 */
import path from 'node:path';

/** The project root (this file lives in src/stack/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Built or installed tools: the Temporal CLI, the Python venv for MLflow and the reference trainer. */
export const TOOLS_DIR = process.env.MLOPS_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools');

/** Runtime state of the demo stack (databases, artifacts, datasets, audit log). */
export const STATE_DIR = process.env.MLOPS_STATE_DIR ?? path.join(PROJECT_ROOT, '.state');

/** Pinned Temporal CLI: the newest tag whose go.mod has no `replace` directives, so `go install` works. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/** The Python environment shared by the MLflow server and the reference trainer. */
export const VENV_DIR = path.join(TOOLS_DIR, 'venv');
export const VENV_PYTHON = path.join(VENV_DIR, 'bin', 'python');

/** Requirements of that environment: the trainer's pins plus the MLflow server. */
export const TRAINER_REQUIREMENTS = path.join(PROJECT_ROOT, 'deploy', 'trainer', 'requirements.txt');
export const STACK_REQUIREMENTS = path.join(PROJECT_ROOT, 'deploy', 'stack', 'requirements.txt');

/** The reference trainer script run by the local job runner. */
export const TRAINER_SCRIPT = path.join(PROJECT_ROOT, 'deploy', 'trainer', 'train.py');

/** Maven project that declares the time-skipping test server (a JVM program on Maven Central). */
export const TEST_SERVER_POM = path.join(PROJECT_ROOT, 'deploy', 'stack', 'test-server', 'pom.xml');

/** The fetched test server: its jars in `lib/`, a wrapper script, and the stamp of the pom it came from. */
export const TEST_SERVER_DIR = path.join(TOOLS_DIR, 'temporal-test-server');
export const TEST_SERVER_LIB = path.join(TEST_SERVER_DIR, 'lib');
export const TEST_SERVER_WRAPPER = path.join(TEST_SERVER_DIR, 'temporal-test-server');
export const TEST_SERVER_STAMP = path.join(TEST_SERVER_DIR, '.pom.sha256');
