/**
 * Helpers of the explain layer: the reference Python tools (shap, fairlearn, scikit-learn) from the `explain`
 * reference venv (deploy/stack/reference/explain.txt), fed JSON on stdin and answering JSON on stdout.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureReferenceEnv } from '../../src/stack/provision';

/** Folder of the reference scripts. */
export const REFERENCE_DIR = path.join(__dirname, 'reference');

/** Runs `reference/<script>` with `input` as JSON on stdin; returns its stdout parsed as JSON. */
export function runReference<T>(script: string, input: unknown, args: string[] = [], timeoutMs = 600_000): T {
  const python = ensureReferenceEnv('explain');
  const r = spawnSync(python, [path.join(REFERENCE_DIR, script), ...args], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: timeoutMs,
  });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}: ${r.stderr.slice(-4000)}`);
  return JSON.parse(r.stdout) as T;
}
