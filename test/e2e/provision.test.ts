/**
 * `npm run provision` with a prerequisite missing fails with exit code 1 and one line on stderr
 * that says what to install (run as a child process on a PATH holding only `node` and `sh`, with an
 * empty tools folder), and the cached tools of a provisioned checkout are returned without work.
 *
 * provisionAll runs its steps in order (Temporal CLI, Python venv, time-skipping test server), so
 * each later step is reached by satisfying the earlier ones: TEMPORAL_CLI names an existing file,
 * and the tools folder's versioned venv folder links to the provisioned venv of the cache.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PROJECT_ROOT, TEMPORAL_CLI_DIR, TEST_SERVER_DIR, VENV_DIR } from '../../src/stack/paths';
import { ensurePythonEnv, ensureTemporalCli } from '../../src/stack/provision';

/** A tsx start-up plus the provisioning checks; generous for a loaded machine. */
const CLI_TIMEOUT_MS = 30_000;

const TSX_CLI = createRequire(path.join(PROJECT_ROOT, 'package.json')).resolve('tsx/cli');
const PROVISION_CLI = path.join(PROJECT_ROOT, 'src', 'cli', 'provision.ts');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlops-provision-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A PATH folder with `node` and `sh` only: no go, temporal, python3, java or mvn. */
const binDir = path.join(tmp, 'bin');
mkdirSync(binDir);
symlinkSync(process.execPath, path.join(binDir, 'node'));
// provision.ts looks commands up with `sh -c 'command -v …'`, starting `sh` from PATH.
symlinkSync('/bin/sh', path.join(binDir, 'sh'));

/** An existing stand-in for the Temporal CLI: the Temporal step only checks that it exists. */
const fakeTemporal = path.join(tmp, 'temporal');
writeFileSync(fakeTemporal, '#!/bin/sh\nexit 0\n', { mode: 0o755 });

let dirs = 0;
function emptyToolsDir(): string {
  const dir = path.join(tmp, `tools-${dirs++}`);
  mkdirSync(dir);
  return dir;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the provision CLI with only `env` plus HOME and, unless `env` gives one, PATH = binDir. */
function provision(env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [TSX_CLI, PROVISION_CLI],
      {
        cwd: PROJECT_ROOT,
        env: { PATH: binDir, HOME: tmp, ...env },
        timeout: CLI_TIMEOUT_MS,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The whole of stderr must be the one `missing prerequisite:` line. */
function onlyLine(r: Result): string {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  const line = lines[0] ?? '';
  expect(line).toMatch(/^missing prerequisite: /);
  return line;
}

describe('npm run provision with a prerequisite missing', () => {
  it('no temporal and no go: names Go and the TEMPORAL_CLI alternative', async () => {
    const tools = emptyToolsDir();
    const line = onlyLine(await provision({ MLOPS_TOOLS_DIR: tools }));
    expect(line).toMatch(/\bGo\b/);
    expect(line).toContain('install Go');
    expect(line).toContain('set TEMPORAL_CLI');
    // Failed before doing anything: the tools folder is still empty.
    expect(existsSync(path.join(tools, path.basename(TEMPORAL_CLI_DIR)))).toBe(false);
  });

  it('no sh on PATH (commands are looked up through it): names the shell', async () => {
    const nodeOnly = path.join(tmp, 'node-only');
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    const line = onlyLine(await provision({ MLOPS_TOOLS_DIR: emptyToolsDir(), PATH: nodeOnly }));
    expect(line).toMatch(/^missing prerequisite: a POSIX shell \(sh\) is required on PATH \(.*ENOENT\)$/);
  });

  it('TEMPORAL_CLI naming a missing file: says so', async () => {
    const missing = path.join(tmp, 'no-such-temporal');
    const line = onlyLine(await provision({ MLOPS_TOOLS_DIR: emptyToolsDir(), TEMPORAL_CLI: missing }));
    expect(line).toBe(`missing prerequisite: TEMPORAL_CLI=${missing} does not exist`);
  });

  it('Temporal CLI given, no python3 and no venv: names Python with venv and how to point at one', async () => {
    const tools = emptyToolsDir();
    const line = onlyLine(await provision({ MLOPS_TOOLS_DIR: tools, TEMPORAL_CLI: fakeTemporal }));
    expect(line).toContain('Python 3.10+ with venv');
    expect(line).toContain('apt-get install python3 python3-venv');
    expect(line).toContain('MLOPS_BOOTSTRAP_PYTHON');
    expect(existsSync(path.join(tools, path.basename(VENV_DIR)))).toBe(false);
  });

  it('Temporal CLI and venv present, no java: names Java, Maven and TEMPORAL_TEST_SERVER', async () => {
    expect(existsSync(VENV_DIR), `the cached venv (${VENV_DIR}): run npm run provision`).toBe(true);
    const tools = emptyToolsDir();
    symlinkSync(VENV_DIR, path.join(tools, path.basename(VENV_DIR)));
    const line = onlyLine(await provision({ MLOPS_TOOLS_DIR: tools, TEMPORAL_CLI: fakeTemporal }));
    expect(line).toContain('Java 11+ and Maven');
    expect(line).toContain('TEMPORAL_TEST_SERVER');
    expect(existsSync(path.join(tools, path.basename(TEST_SERVER_DIR)))).toBe(false);
  });

  it('TEMPORAL_TEST_SERVER naming a file that is not executable: says so', async () => {
    const tools = emptyToolsDir();
    symlinkSync(VENV_DIR, path.join(tools, path.basename(VENV_DIR)));
    const notExecutable = path.join(tmp, 'test-server.txt');
    writeFileSync(notExecutable, 'not a program\n', { mode: 0o644 });
    const line = onlyLine(
      await provision({
        MLOPS_TOOLS_DIR: tools,
        TEMPORAL_CLI: fakeTemporal,
        TEMPORAL_TEST_SERVER: notExecutable,
      }),
    );
    expect(line).toBe(
      `missing prerequisite: TEMPORAL_TEST_SERVER=${notExecutable} is not an existing executable`,
    );
  });
});

describe('where the tools cache is', () => {
  /** TOOLS_DIR and VENV_DIR as a fresh process computes them from `env` alone. */
  function toolsDir(env: Record<string, string>): Promise<string> {
    const paths = path.join(PROJECT_ROOT, 'src', 'stack', 'paths.ts');
    const script = `const p = require(${JSON.stringify(paths)}); console.log(p.TOOLS_DIR + '\\n' + p.VENV_DIR);`;
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [TSX_CLI, '-e', script],
        { cwd: PROJECT_ROOT, env: { PATH: binDir, ...env }, timeout: CLI_TIMEOUT_MS, encoding: 'utf8' },
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
      );
    });
  }

  it('is per user and outside the clone, keyed by version; MLOPS_CACHE_DIR and MLOPS_TOOLS_DIR override it', async () => {
    const [home, venv] = (await toolsDir({ HOME: tmp })).split('\n');
    expect(home).toBe(path.join(tmp, '.cache', 'mlops-control-plane'));
    expect(path.dirname(venv ?? '')).toBe(home);
    expect(path.basename(venv ?? '')).toMatch(/^venv-[0-9a-f]{16}$/);
    const xdg = path.join(tmp, 'xdg');
    expect((await toolsDir({ HOME: tmp, XDG_CACHE_HOME: xdg })).split('\n')[0]).toBe(
      path.join(xdg, 'mlops-control-plane'),
    );
    const cache = path.join(tmp, 'cache');
    expect((await toolsDir({ HOME: tmp, XDG_CACHE_HOME: xdg, MLOPS_CACHE_DIR: cache })).split('\n')[0]).toBe(
      cache,
    );
    const tools = path.join(tmp, 'tools');
    expect(
      (await toolsDir({ HOME: tmp, MLOPS_CACHE_DIR: cache, MLOPS_TOOLS_DIR: tools })).split('\n')[0],
    ).toBe(tools);
  });
});

describe('cached tools of a provisioned checkout', () => {
  it('ensureTemporalCli and ensurePythonEnv return existing paths and do no work', () => {
    const log = vi.fn<(line: string) => void>();
    const temporal = ensureTemporalCli(log);
    const python = ensurePythonEnv(log);
    expect(existsSync(temporal), temporal).toBe(true);
    expect(existsSync(python), python).toBe(true);
    // A second call answers the same from the cache.
    expect(ensureTemporalCli(log)).toBe(temporal);
    expect(ensurePythonEnv(log)).toBe(python);
    expect(log).not.toHaveBeenCalled();
  });
});
