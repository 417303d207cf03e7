/**
 * `tsx src/cli/audit-verify.ts [path]` (or `npm run audit:verify -- [path]`): verifies the hash chain of a JSONL
 * audit log.
 *
 * Path: the argument, else `$MLOPS_AUDIT_LOG`, else {@link DEFAULT_AUDIT_LOG_PATH}.
 * Output and exit status: `audit log OK: N entries` (0); `audit log BROKEN at line L (seq S, event E): reason` (1);
 * a usage error or a missing file (2).
 *
 * The whole chain of a version, offline: `audit-verify --chain DIR --trusted-keys KEYS.pem` checks a
 * folder written by `audit-verify --export --model M --version V --out DIR [--audit-log PATH]`
 * (online: MLFLOW_TRACKING_URI): model files against the model signature, the evidence statement's
 * signature, that both name the same model digest, the bound model card, the gate verdict, approvals
 * and data hashes, and the audit log's hash chain with the approvals and integrity checks recorded.
 * One line per check; exit 0 when all pass, 1 otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createModelRegistry } from '../registry';
import { exportEvidenceChain, verifyEvidenceChain } from '../security/evidence';
import { createKeyVerifier } from '../security/model-signing';
import { parsePublicKeyBlocks } from '../security/model-trust';
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

const CHAIN_USAGE =
  'usage: audit-verify --chain <dir> --trusted-keys <pem>  |  audit-verify --export --model <m> --version <v> --out <dir> [--audit-log <path>]';

async function chainMain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      chain: { type: 'string' },
      'trusted-keys': { type: 'string' },
      export: { type: 'boolean' },
      model: { type: 'string' },
      version: { type: 'string' },
      out: { type: 'string' },
      'audit-log': { type: 'string' },
    },
    strict: true,
  });
  if (values.export) {
    const uri = process.env.MLFLOW_TRACKING_URI;
    if (!values.model || !values.version || !values.out || !uri) {
      console.error(`${CHAIN_USAGE}\n(--export needs MLFLOW_TRACKING_URI)`);
      return 2;
    }
    const registry = createModelRegistry({ kind: 'mlflow', trackingUri: uri });
    const mv = await registry.getVersion(values.model, values.version);
    await exportEvidenceChain(registry, mv, values.out, values['audit-log']);
    console.log(`exported ${values.model} v${values.version} to ${values.out}`);
    return 0;
  }
  if (!values.chain || !values['trusted-keys']) {
    console.error(CHAIN_USAGE);
    return 2;
  }
  const verifier = createKeyVerifier(parsePublicKeyBlocks(readFileSync(values['trusted-keys'], 'utf8')));
  const checks = await verifyEvidenceChain(values.chain, verifier);
  for (const c of checks) console.log(`${c.ok ? 'OK  ' : 'FAIL'} ${c.check}: ${c.detail}`);
  const ok = checks.length > 0 && checks.every((c) => c.ok);
  console.log(ok ? 'chain OK' : 'chain BROKEN');
  return ok ? 0 : 1;
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes('--chain') || args.includes('--export')) return chainMain(args);
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
