/**
 * `tsx src/cli/audit-verify.ts [path]` (or `npm run audit:verify -- [path]`): verifies the hash chain of a JSONL
 * audit log.
 *
 * Path: the argument, else `$MLOPS_AUDIT_LOG`, else {@link DEFAULT_AUDIT_LOG_PATH}.
 * Output and exit status: `audit log OK: N entries` (0); `audit log BROKEN at line L (seq S, event E): reason` (1);
 * a usage error or a missing file (2).
 */
import { existsSync } from 'node:fs';
import { formatAuditVerifyResult, verifyAuditLog } from '../audit/verify';

/** Where the embedded stack keeps its audit log, relative to the working directory. */
export const DEFAULT_AUDIT_LOG_PATH = '.state/audit.jsonl';
/** Environment variable naming the audit log path. */
export const AUDIT_LOG_ENV = 'MLOPS_AUDIT_LOG';

const USAGE = 'usage: audit-verify [path]   (default: $MLOPS_AUDIT_LOG or .state/audit.jsonl)';

/** Resolves the log path from the CLI arguments and environment. */
export function auditLogPath(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[AUDIT_LOG_ENV];
  return args[0] ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_AUDIT_LOG_PATH);
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
    console.error(USAGE);
    return 2;
  }
  const path = auditLogPath(args);
  if (!existsSync(path)) {
    console.error(`audit log not found: ${path}`);
    return 2;
  }
  const result = await verifyAuditLog(path);
  // The verdict is the command's output either way (stdout), so it can be piped; the exit status tells them apart.
  console.log(formatAuditVerifyResult(result));
  return result.ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`audit-verify failed: ${(err as Error).message}`);
      process.exitCode = 2;
    },
  );
}
