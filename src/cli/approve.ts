/**
 * `tsx src/cli/approve.ts` (or `npm run approve --`): sends an approval or rejection to a waiting
 * `retrainingPipeline`, signed when a private key is given.
 *
 * ```
 * approve --model fraud --approver alice [--comment "..."] [--version 3] [--key-file path | --key-env VAR]
 *         [--reject --reason "..."] [--via update|signal] [--workflow-id retrain-fraud] [--profile name]
 *         [--print-command]
 * approve --sign-start --model fraud --initiator dana --dataset file:///data/x.csv --key-file dana.key
 * ```
 *
 * Rules:
 * - The Temporal connection comes from `@temporalio/envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS and API
 *   key variables, or a profile of the Temporal config file), exactly like the `temporal` CLI.
 * - Without `--version` the version awaiting approval is read from the workflow's `status` query; the payload
 *   always names the version the approver decided on, so a decision cannot land on a different candidate.
 * - The private key is read from the file or environment variable named on the command line, only to sign; it is
 *   never printed or sent. The signature covers workflow id, model version, decision, approver and issue time.
 * - `--via update` (default) waits for the workflow's verdict and exits 1 on a refusal (the validator's message
 *   is printed); `--via signal` is fire-and-forget. `--print-command` prints the equivalent `temporal` command
 *   instead of sending (it needs `--version` to sign, since it does not connect).
 * - Exit status: 0 sent/accepted, 1 refused (a finished pipeline too: nothing awaits approval), 2 usage or
 *   connection error.
 */
import { Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  ApprovalDecision,
  ApprovalMessageName,
  ApprovePayloadSchema,
  RejectPayloadSchema,
  SubmitApprovalResultSchema,
  SubmitApprovalSchema,
} from '../core/contracts/approval';
import type { ApprovePayload, RejectPayload, SubmitApproval } from '../core/contracts/approval';
import { parseOrThrow } from '../core/contracts/errors';
import type { PipelineStatus } from '../core/contracts/retraining';
import { loadPrivateKey, signApproval } from '../security/approval-signing';
import type { PrivateKeySource } from '../security/approval-signing';
import { signStart } from '../security/start-signing';

/** Prefix of a retraining pipeline's workflow id (`retrain-<model>`, see src/core/contracts/retraining.ts). */
export const RETRAIN_WORKFLOW_ID_PREFIX = 'retrain-';

/** How the decision is delivered. */
export type ApprovalTransport = 'update' | 'signal';

export interface ApproveCliOptions {
  workflowId: string;
  approver: string;
  decision: ApprovalDecision;
  reason?: string;
  comment?: string;
  version?: string;
  key?: PrivateKeySource;
  via: ApprovalTransport;
  printCommand: boolean;
  profile?: string;
  help: boolean;
}

/** Bad command line; the message says what to fix. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const APPROVE_USAGE = `usage: approve --model <model> --approver <id> [options]
  --model <name>          model whose pipeline waits (workflow id retrain-<model>)
  --workflow-id <id>      workflow id instead of --model
  --approver <id>         who decides (must be listed in the model's approval policy)
  --comment <text>        comment with an approval
  --reject --reason <t>   reject instead of approve, with a reason
  --version <v>           model version decided on (default: read from the workflow's status query)
  --key-file <path>       sign with the Ed25519 private key in this PEM file
  --key-env <VAR>         sign with the PEM private key in this environment variable
  --via update|signal     update (default): wait for the verdict; signal: fire and forget
  --profile <name>        Temporal config profile (default: environment / "default")
  --print-command         print the equivalent temporal CLI command instead of sending`;

/** Parses the command line (without node and script). Throws {@link UsageError}. */
export function parseApproveArgs(argv: string[]): ApproveCliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        'workflow-id': { type: 'string' },
        approver: { type: 'string' },
        comment: { type: 'string' },
        reject: { type: 'boolean', default: false },
        reason: { type: 'string' },
        version: { type: 'string' },
        'key-file': { type: 'string' },
        'key-env': { type: 'string' },
        via: { type: 'string' },
        profile: { type: 'string' },
        'print-command': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const help = values.help === true;
  const printCommand = values['print-command'] === true;
  const base = { help, printCommand };
  if (help) return { ...base, workflowId: '', approver: '', decision: 'approve', via: 'update' };

  const model = values.model;
  const explicitId = values['workflow-id'];
  if (model !== undefined && explicitId !== undefined)
    throw new UsageError('give --model or --workflow-id, not both');
  if (model === undefined && explicitId === undefined)
    throw new UsageError('--model (or --workflow-id) is required');
  const workflowId = explicitId ?? `${RETRAIN_WORKFLOW_ID_PREFIX}${model}`;
  if (workflowId.trim() === '' || model === '')
    throw new UsageError('--model / --workflow-id must not be empty');

  if (values.approver === undefined) throw new UsageError('--approver is required');
  const decision: ApprovalDecision = values.reject === true ? 'reject' : 'approve';
  if (decision === 'reject' && values.reason === undefined) throw new UsageError('--reject needs --reason');
  if (decision === 'approve' && values.reason !== undefined)
    throw new UsageError('--reason goes with --reject');
  if (decision === 'reject' && values.comment !== undefined) {
    throw new UsageError('--comment goes with an approval; put the explanation in --reason');
  }

  if (values['key-file'] !== undefined && values['key-env'] !== undefined) {
    throw new UsageError('give --key-file or --key-env, not both');
  }
  const key: PrivateKeySource | undefined =
    values['key-file'] !== undefined
      ? { file: values['key-file'] }
      : values['key-env'] !== undefined
        ? { env: values['key-env'] }
        : undefined;

  const viaRaw = values.via ?? (printCommand ? 'signal' : 'update');
  if (viaRaw !== 'update' && viaRaw !== 'signal')
    throw new UsageError(`--via must be update or signal, not ${viaRaw}`);

  const opts: ApproveCliOptions = { ...base, workflowId, approver: values.approver, decision, via: viaRaw };
  if (values.reason !== undefined) opts.reason = values.reason;
  if (values.comment !== undefined) opts.comment = values.comment;
  if (values.version !== undefined) opts.version = values.version;
  if (key !== undefined) opts.key = key;
  if (values.profile !== undefined) opts.profile = values.profile;
  return opts;
}

/** What gets sent: the signal name and payload, and the equivalent update argument. */
export interface ApprovalRequest {
  decision: ApprovalDecision;
  signalName: string;
  payload: ApprovePayload | RejectPayload;
  updateArg: SubmitApproval;
}

/**
 * Builds (and validates) the payload for a decision; signs it when `privateKey` is given, which requires
 * `modelVersion` (the signature binds it). `issuedAt` defaults to now.
 */
export function buildApprovalRequest(args: {
  workflowId: string;
  decision: ApprovalDecision;
  approver: string;
  modelVersion?: string;
  comment?: string;
  reason?: string;
  privateKey?: KeyObject | string;
  issuedAt?: string;
}): ApprovalRequest {
  const raw: Record<string, unknown> = { approver: args.approver };
  if (args.modelVersion !== undefined) raw.modelVersion = args.modelVersion;
  if (args.decision === ApprovalDecision.reject) raw.reason = args.reason;
  else if (args.comment !== undefined) raw.comment = args.comment;
  const schema = args.decision === ApprovalDecision.reject ? RejectPayloadSchema : ApprovePayloadSchema;
  const payload: ApprovePayload | RejectPayload = parseOrThrow(schema, raw, `${args.decision} payload`);
  if (args.privateKey !== undefined) {
    if (payload.modelVersion === undefined) {
      throw new UsageError('signing needs the model version (--version), since the signature binds it');
    }
    const signFields = {
      workflowId: args.workflowId,
      modelVersion: payload.modelVersion,
      decision: args.decision,
      approver: payload.approver,
      ...(args.issuedAt !== undefined ? { issuedAt: args.issuedAt } : {}),
    };
    payload.signature = signApproval(signFields, args.privateKey);
  }
  const updateArg = parseOrThrow(
    SubmitApprovalSchema,
    { decision: args.decision, ...payload },
    'submitApproval',
  );
  const signalName =
    args.decision === ApprovalDecision.reject
      ? ApprovalMessageName.rejectSignal
      : ApprovalMessageName.approveSignal;
  return { decision: args.decision, signalName, payload, updateArg };
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The `temporal` CLI command that delivers `request` the same way. */
export function formatTemporalCommand(
  request: ApprovalRequest,
  workflowId: string,
  via: ApprovalTransport,
): string {
  const words =
    via === 'signal'
      ? ['temporal', 'workflow', 'signal', '--workflow-id', workflowId, '--name', request.signalName]
      : [
          'temporal',
          'workflow',
          'update',
          'execute',
          '--workflow-id',
          workflowId,
          '--name',
          ApprovalMessageName.submitUpdate,
        ];
  const input = JSON.stringify(via === 'signal' ? request.payload : request.updateArg);
  return [...words, '--input', input].map(shellQuote).join(' ');
}

function describeError(err: unknown): string {
  if (err instanceof WorkflowUpdateFailedError) return err.cause?.message ?? err.message;
  if (err instanceof WorkflowNotFoundError) return `no running workflow ${err.workflowId}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** Runs the CLI; returns the exit status. */
/** Usage of the start-signing mode. */
export const SIGN_START_USAGE =
  'usage: approve --sign-start --model <model> --initiator <id> --dataset <uri> (--key-file path | --key-env VAR) [--workflow-id id]';

/**
 * `--sign-start`: prints the `startSignature` JSON that proves `--initiator` started this pipeline
 * (workflow id, model and dataset URI bound), to put into the workflow input. Only the signature is
 * printed, never the key.
 */
export function signStartMain(argv: string[]): number {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        'sign-start': { type: 'boolean' },
        model: { type: 'string' },
        initiator: { type: 'string' },
        dataset: { type: 'string' },
        'workflow-id': { type: 'string' },
        'key-file': { type: 'string' },
        'key-env': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${SIGN_START_USAGE}`);
    return 2;
  }
  const { model, initiator, dataset } = values;
  const keyFile = values['key-file'];
  const keyEnv = values['key-env'];
  if (typeof model !== 'string' || typeof initiator !== 'string' || typeof dataset !== 'string') {
    console.error(SIGN_START_USAGE);
    return 2;
  }
  const source: PrivateKeySource | undefined =
    typeof keyFile === 'string'
      ? { file: keyFile }
      : typeof keyEnv === 'string'
        ? { env: keyEnv }
        : undefined;
  if (!source) {
    console.error(`a key is needed to sign a start\n${SIGN_START_USAGE}`);
    return 2;
  }
  try {
    const workflowId =
      typeof values['workflow-id'] === 'string'
        ? values['workflow-id']
        : `${RETRAIN_WORKFLOW_ID_PREFIX}${model}`;
    const signature = signStart({ workflowId, model, dataset, initiator }, loadPrivateKey(source));
    console.log(JSON.stringify({ initiator, startSignature: signature }));
    return 0;
  } catch (err) {
    console.error(`sign-start failed: ${describeError(err)}`);
    return 2;
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--sign-start')) return signStartMain(argv);
  let opts: ApproveCliOptions;
  try {
    opts = parseApproveArgs(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n${APPROVE_USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(APPROVE_USAGE);
    return 0;
  }

  let privateKey: KeyObject | undefined;
  try {
    if (opts.key !== undefined) privateKey = loadPrivateKey(opts.key);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }

  const build = (modelVersion: string | undefined) =>
    buildApprovalRequest({
      workflowId: opts.workflowId,
      decision: opts.decision,
      approver: opts.approver,
      ...(modelVersion !== undefined ? { modelVersion } : {}),
      ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
    });

  if (opts.printCommand) {
    try {
      console.log(formatTemporalCommand(build(opts.version), opts.workflowId, opts.via));
      return 0;
    } catch (err) {
      console.error((err as Error).message);
      return 2;
    }
  }

  let connection: Connection | undefined;
  try {
    const config = loadClientConnectConfig(opts.profile !== undefined ? { profile: opts.profile } : {});
    connection = await Connection.connect(config.connectionOptions);
    const client = new Client({
      connection,
      ...(config.namespace !== undefined ? { namespace: config.namespace } : {}),
    });
    const handle = client.workflow.getHandle(opts.workflowId);
    // A pipeline that has finished has nothing awaiting approval: that is a refusal, not an error.
    const described = await handle.describe();
    if (described.status.name !== 'RUNNING') {
      console.error(
        `refused (not-pending): ${opts.workflowId} is ${described.status.name.toLowerCase()}; nothing awaits approval`,
      );
      return 1;
    }

    let version = opts.version;
    if (version === undefined) {
      const status = await handle.query<Partial<PipelineStatus>>(ApprovalMessageName.statusQuery);
      version = status.candidate?.version;
      if (version === undefined) {
        console.error(`${opts.workflowId} has no candidate version awaiting approval; pass --version`);
        return 2;
      }
    }
    const request = build(String(version));

    if (opts.via === 'signal') {
      await handle.signal(request.signalName, request.payload);
      console.log(
        `sent ${request.signalName} for version ${version} to ${opts.workflowId}` +
          `${request.payload.signature !== undefined ? ' (signed)' : ''}; ` +
          'the workflow records whether it was accepted (see its status query)',
      );
      return 0;
    }

    let result: unknown;
    try {
      result = await handle.executeUpdate(ApprovalMessageName.submitUpdate, { args: [request.updateArg] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        console.error(`refused: ${describeError(err)}`);
        return 1;
      }
      throw err;
    }
    const parsed = SubmitApprovalResultSchema.safeParse(result);
    if (!parsed.success) {
      console.log(JSON.stringify(result));
      const refused =
        typeof result === 'object' &&
        result !== null &&
        (result as { accepted?: unknown }).accepted === false;
      return refused ? 1 : 0;
    }
    const r = parsed.data;
    const progress = `outcome ${r.outcome}, ${r.approvals}/${r.requiredApprovals} approvals`;
    if (r.accepted) {
      console.log(`accepted: ${r.reason} (${progress})`);
      return 0;
    }
    console.error(`refused (${r.code ?? 'unknown'}): ${r.reason} (${progress})`);
    return 1;
  } catch (err) {
    console.error(`approve failed: ${describeError(err)}`);
    return 2;
  } finally {
    await connection?.close();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
