/** Runs the project-built `temporal` CLI against the test stack's dev server, as a user would. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function temporal(args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(
      inject('temporalCli'),
      [...args, '--address', inject('temporalAddress')],
      {
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Parses the JSON document the CLI prints with `-o json`. */
export function json<T>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`temporal exited ${r.code}: ${r.stderr || r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** `temporal workflow start --type retrainingPipeline` with a JSON input, as the README shows. */
export async function startPipeline(
  taskQueue: string,
  workflowId: string,
  input: unknown,
): Promise<CliResult> {
  // prettier-ignore
  return temporal([
    'workflow', 'start',
    '--task-queue', taskQueue,
    '--type', 'retrainingPipeline',
    '--workflow-id', workflowId,
    '--input', JSON.stringify(input),
  ]);
}
