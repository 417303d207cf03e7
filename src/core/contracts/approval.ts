/**
 * Approval contracts: the payloads of the `approve` / `reject` signals and the `submitApproval` update, the
 * per-model approval policy.
 *
 * Rules:
 * - Sandbox-safe: zod only; no Node built-ins, no I/O, no clocks. Loaded by workflows, activities and CLIs alike.
 * - Payload objects are strict: an unknown key (a typo such as `aprover`) is refused with a message naming it.
 * - Approver ids are a restricted character set (letters, digits, `._@-`) so they can be used in file names,
 *   log lines and audit events without escaping.
 * - Every default is a named constant below.
 * - Schemas must run inside the workflow sandbox too: no zod formats that need Node or browser globals
 *   (`z.base64()` calls `atob`, which the sandbox lacks).
 * - A signature here is only structurally checked (algorithm, ISO time, base64); the cryptographic check happens
 *   in Node code (src/security/approval-signing.ts) called from an activity.
 */
import { z } from 'zod';
import { DurationSchema, IsoDateTimeSchema, ModelVersionSchema } from './primitives';

// Kept for importers that predate ./primitives (being moved over); new code imports from './primitives'.
export {
  DurationSchema,
  IsoDateTimeSchema,
  MODEL_VERSION_MAX_LENGTH,
  ModelVersionSchema,
  parseDuration,
} from './primitives';

/** Longest accepted approver id: long enough for an email address, short enough for log lines. */
export const APPROVER_ID_MAX_LENGTH = 128;
/** Longest approval comment: a paragraph, not a document (it is stored in workflow state and the audit log). */
export const COMMENT_MAX_LENGTH = 2000;
/** Longest rejection reason (same bound as comments, for the same reason). */
export const REASON_MAX_LENGTH = 2000;
/** Longest key id: a fingerprint or a short label. */
export const KEY_ID_MAX_LENGTH = 128;
/** Longest base64 signature value accepted (an Ed25519 signature is 88 base64 characters). */
export const SIGNATURE_VALUE_MAX_LENGTH = 256;
/** Largest number of approvers one policy may list (keeps workflow state and status small). */
export const MAX_POLICY_APPROVERS = 100;

/** Distinct approvals needed by default: one reviewer other than the initiator (four-eyes). */
export const DEFAULT_MIN_APPROVALS = 1;
/** Four-eyes by default: whoever started the pipeline may not approve its result. */
export const DEFAULT_FORBID_INITIATOR = true;
/** Signatures are opt-in per model, so a first setup works before keys are distributed. */
export const DEFAULT_REQUIRE_SIGNATURE = false;
/** How long a candidate waits for a decision before the pipeline ends as `expired`: three days spans a weekend. */
export const DEFAULT_APPROVAL_TIMEOUT = '72h';
/** A signature older than a day is refused as stale, which bounds how long a leaked signed payload is useful. */
export const DEFAULT_SIGNATURE_MAX_AGE_SECONDS = 86_400;
/** Tolerated clock skew for a signature's `issuedAt` lying in the future (workstation clocks drift). */
export const SIGNATURE_FUTURE_SKEW_SECONDS = 300;
/** Unsigned human starts are accepted unless a policy says otherwise (existing schedules and scripts keep working). */
export const DEFAULT_REQUIRE_SIGNED_START = false;
/** Prefix of identities Temporal itself proves: a Schedule's run, a child of another workflow. */
export const SYSTEM_IDENTITY_PREFIX = 'system:';

/** Names of the approval messages on `retrainingPipeline` (public contract: CLI, docs and tests use them). */
export const ApprovalMessageName = {
  approveSignal: 'approve',
  rejectSignal: 'reject',
  submitUpdate: 'submitApproval',
  statusQuery: 'status',
} as const;

/** The two decisions an approver can take. */
export const ApprovalDecision = { approve: 'approve', reject: 'reject' } as const;
export type ApprovalDecision = (typeof ApprovalDecision)[keyof typeof ApprovalDecision];

/** Stable codes for a refused approval attempt; shown in status and the audit log, and safe to match on. */
export const RefusalCode = {
  notPending: 'not-pending',
  unknownApprover: 'unknown-approver',
  missingRole: 'missing-role',
  selfApproval: 'self-approval',
  duplicate: 'duplicate',
  wrongVersion: 'wrong-version',
  signatureRequired: 'signature-required',
  signatureInvalid: 'signature-invalid',
  signatureStale: 'signature-stale',
  malformed: 'malformed',
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

/** Final or current state of an approval wait. */
export const ApprovalOutcome = {
  pending: 'pending',
  approved: 'approved',
  rejected: 'rejected',
  expired: 'expired',
} as const;
export type ApprovalOutcome = (typeof ApprovalOutcome)[keyof typeof ApprovalOutcome];

// ---------------------------------------------------------------------------------------------------------------
// Payloads

/** Approver id: trimmed, non-empty, bounded, restricted characters. */
export const ApproverIdSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(APPROVER_ID_MAX_LENGTH)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._@-]*$/,
    'may contain only letters, digits and . _ @ - (starting with a letter or digit)',
  );

/** Strict padded base64, no whitespace. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Detached Ed25519 signature over the canonical approval payload (see src/security/approval-signing.ts). */
export const ApprovalSignatureSchema = z.strictObject({
  alg: z.literal('ed25519'),
  keyId: z.string().trim().min(1).max(KEY_ID_MAX_LENGTH).optional(),
  issuedAt: IsoDateTimeSchema,
  // A regex, not z.base64(): that one calls atob(), which the workflow sandbox does not provide.
  value: z
    .string()
    .min(1, 'must not be empty')
    .max(SIGNATURE_VALUE_MAX_LENGTH)
    .regex(BASE64, 'must be padded base64 (A-Z a-z 0-9 + /)'),
});
export type ApprovalSignature = z.output<typeof ApprovalSignatureSchema>;

const optionalText = (max: number) => z.string().trim().max(max).optional();

/** Payload of the `approve` signal. `modelVersion`, when given, must equal the version awaiting approval. */
export const ApprovePayloadSchema = z.strictObject({
  approver: ApproverIdSchema,
  comment: optionalText(COMMENT_MAX_LENGTH),
  modelVersion: ModelVersionSchema.optional(),
  signature: ApprovalSignatureSchema.optional(),
});
export type ApprovePayload = z.output<typeof ApprovePayloadSchema>;
export type ApprovePayloadInput = z.input<typeof ApprovePayloadSchema>;

/** Payload of the `reject` signal. */
export const RejectPayloadSchema = z.strictObject({
  approver: ApproverIdSchema,
  reason: z.string().trim().min(1, 'must not be empty').max(REASON_MAX_LENGTH),
  modelVersion: ModelVersionSchema.optional(),
  signature: ApprovalSignatureSchema.optional(),
});
export type RejectPayload = z.output<typeof RejectPayloadSchema>;
export type RejectPayloadInput = z.input<typeof RejectPayloadSchema>;

/** Argument of the `submitApproval` update: either payload, tagged with its decision. */
export const SubmitApprovalSchema = z.discriminatedUnion('decision', [
  ApprovePayloadSchema.extend({ decision: z.literal('approve') }),
  RejectPayloadSchema.extend({ decision: z.literal('reject') }),
]);
export type SubmitApproval = z.output<typeof SubmitApprovalSchema>;
export type SubmitApprovalInput = z.input<typeof SubmitApprovalSchema>;

/**
 * Suggested result of the `submitApproval` update (the workflow owns the handler): whether the attempt was
 * accepted, the refusal code when not, and where the approval stands afterwards.
 */
export const SubmitApprovalResultSchema = z.object({
  accepted: z.boolean(),
  code: z.enum(Object.values(RefusalCode) as [RefusalCode, ...RefusalCode[]]).optional(),
  reason: z.string(),
  outcome: z.enum(Object.values(ApprovalOutcome) as [ApprovalOutcome, ...ApprovalOutcome[]]),
  approvals: z.number().int().nonnegative(),
  requiredApprovals: z.number().int().positive(),
});
export type SubmitApprovalResult = z.output<typeof SubmitApprovalResultSchema>;

// ---------------------------------------------------------------------------------------------------------------
// State: what src/core/policy/approval.ts decides, kept in the workflow and shown by its `status` query

/** One decision attempt as recorded in state (accepted or refused). */
export interface ApprovalAttempt {
  approver: string;
  decision: ApprovalDecision;
  accepted: boolean;
  /** Why it was refused; for an accepted reject the rejection reason; for an accepted approval a summary. */
  reason: string;
  /** Set when refused. */
  code?: RefusalCode;
  /** Workflow time of the attempt (ISO). */
  at: string;
  comment?: string;
  /** True when the attempt carried a signature (for an accepted attempt: a verified one). */
  signed: boolean;
  keyId?: string;
}

/** Approval wait state, kept in the workflow and returned by its `status` query. */
export interface ApprovalState {
  /** The model version awaiting a decision. */
  modelVersion: string;
  /** Who started the pipeline (four-eyes). */
  initiator?: string;
  /** How the initiator is known: `signed` (a verified start signature), `system` (Temporal), `claimed` (typed in). */
  initiatorProof?: 'signed' | 'system' | 'claimed';
  /** The public key that signed the start: four-eyes refuses an approval under that key, whatever the name. */
  initiatorKey?: string;
  /** Distinct accepted approvals needed (copied from the policy when the wait starts). */
  requiredApprovals: number;
  attempts: ApprovalAttempt[];
  /** Number of older attempts dropped from `attempts` (src/core/policy/approval.ts bounds the list). */
  droppedAttempts?: number;
  /** Approver ids whose approval was accepted, in order. */
  approvals: string[];
  rejectedBy?: string;
  rejectReason?: string;
  outcome: ApprovalOutcome;
  /** Workflow time at which the outcome left `pending`. */
  decidedAt?: string;
}

/** What an approver submitted, after parsing (src/core/policy/approval.ts parses it). */
export interface ApprovalAttemptInput {
  decision: ApprovalDecision;
  approver: string;
  modelVersion?: string;
  signature?: ApprovalSignature;
  comment?: string;
  /** Rejection reason (reject only). */
  reason?: string;
}

/** How the signature of an accepted attempt stands. */
export type SignatureStatus = 'none' | 'verified' | 'pending-verification';

export type ApprovalVerdict =
  { accepted: true; signature: SignatureStatus } | { accepted: false; code: RefusalCode; reason: string };

// ---------------------------------------------------------------------------------------------------------------
// Policy

const PEM_PUBLIC_KEY = /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;
const RAW_ED25519_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/** A public key as PEM (SPKI) or base64 of the raw 32-byte Ed25519 key; only the shape is checked here. */
export const ApproverPublicKeySchema = z
  .string()
  .trim()
  .refine((k) => PEM_PUBLIC_KEY.test(k) || RAW_ED25519_BASE64.test(k), {
    message: 'must be a PEM "PUBLIC KEY" block or base64 of a raw 32-byte Ed25519 key',
  });

const RoleSchema = z.string().trim().min(1, 'must not be empty').max(APPROVER_ID_MAX_LENGTH);

/**
 * A public key file in the worker's approver-keys folder (MLOPS_APPROVER_KEYS_DIR): a plain file name, no
 * folders, so a policy cannot point the worker at any other file.
 */
export const PublicKeyFileSchema = z
  .string()
  .trim()
  .max(APPROVER_ID_MAX_LENGTH + 16)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*\.pub$/, 'must be a file name ending in .pub (no folders)');

/**
 * One person allowed to decide, with their roles and (for signed approvals) their public key: inline, or
 * registered as `publicKeyFile` in the worker's approver-keys folder (the policy loader reads it into
 * `publicKey`; an unregistered one fails the policy).
 */
export const ApproverSchema = z.strictObject({
  id: ApproverIdSchema,
  roles: z.array(RoleSchema).default([]),
  publicKey: ApproverPublicKeySchema.optional(),
  publicKeyFile: PublicKeyFileSchema.optional(),
});
export type Approver = z.output<typeof ApproverSchema>;

/**
 * Per-model approval policy. Cross-field rules: approver ids are unique; `minApprovals` does not exceed the number
 * of approvers able to count; with `requireSignature` every approver has a `publicKey`.
 */
export const ApprovalPolicySchema = z
  .strictObject({
    approvers: z.array(ApproverSchema).min(1, 'at least one approver is needed').max(MAX_POLICY_APPROVERS),
    requiredRoles: z.array(RoleSchema).min(1, 'omit the field instead of giving an empty list').optional(),
    minApprovals: z.number().int().min(1).max(MAX_POLICY_APPROVERS).default(DEFAULT_MIN_APPROVALS),
    forbidInitiator: z.boolean().default(DEFAULT_FORBID_INITIATOR),
    requireSignature: z.boolean().default(DEFAULT_REQUIRE_SIGNATURE),
    /** Refuse a human start (not a Schedule, not a child workflow) without a verified start signature. */
    requireSignedStart: z.boolean().default(DEFAULT_REQUIRE_SIGNED_START),
    /** People who may start pipelines with a signed request, besides the approvers. */
    initiators: z
      .array(z.strictObject({ id: ApproverIdSchema, publicKey: ApproverPublicKeySchema }))
      .max(MAX_POLICY_APPROVERS)
      .optional(),
    timeout: DurationSchema.default(DEFAULT_APPROVAL_TIMEOUT),
    signatureMaxAgeSeconds: z.number().int().positive().default(DEFAULT_SIGNATURE_MAX_AGE_SECONDS),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    const keys = new Map<string, string>();
    policy.approvers.forEach((a, i) => {
      if (a.publicKey !== undefined) {
        const k = a.publicKey.replace(/\s+/g, '');
        const owner = keys.get(k);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['approvers', i, 'publicKey'],
            message: `is also ${owner}'s key: four-eyes needs one key per person`,
          });
        }
        keys.set(k, a.id);
      }
      if (seen.has(a.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['approvers', i, 'id'],
          message: `duplicate approver id "${a.id}"`,
        });
      }
      seen.add(a.id);
      if (policy.requireSignature && a.publicKey === undefined && a.publicKeyFile === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['approvers', i, 'publicKey'],
          message: 'required when requireSignature is true (inline, or registered as publicKeyFile)',
        });
      }
    });
    const required = policy.requiredRoles;
    const eligible = policy.approvers.filter(
      (a) => required === undefined || a.roles.some((r) => required.includes(r)),
    ).length;
    if (policy.minApprovals > eligible) {
      ctx.addIssue({
        code: 'custom',
        path: ['minApprovals'],
        message: `is ${policy.minApprovals} but only ${eligible} approver(s) can count towards it`,
      });
    }
  });
export type ApprovalPolicy = z.output<typeof ApprovalPolicySchema>;
export type ApprovalPolicyInput = z.input<typeof ApprovalPolicySchema>;
