/**
 * Approval decisions as pure functions of (state, policy, attempt, time).
 *
 * Rules:
 * - Sandbox-safe and deterministic: no Node built-ins, no I/O, no clocks (the workflow passes `nowIso` from
 *   workflow time), no randomness. State is plain JSON (arrays, no Map/Set) so it survives queries and
 *   continue-as-new.
 * - Never throws on bad input from an approver: a malformed or unauthorised attempt is refused with a stable
 *   {@link RefusalCode} and a reason, and recorded; the workflow keeps waiting.
 * - Signature cryptography is not done here. Call {@link checkApprovalAttempt} without `signatureVerified` for the
 *   synchronous checks (update validator); if the verdict says `signature: 'pending-verification'`, verify the
 *   signature in an activity, then call it again with `signatureVerified` and the *current* state before applying.
 *   {@link applyApprovalAttempt} refuses a verdict whose signature was never verified (fail closed).
 * - Four-eyes applies to approving only: the initiator may still reject their own pipeline.
 * - `requiredRoles` applies to both decisions: someone who may not approve may not veto either.
 */
import { z } from 'zod';
import {
  ApprovalDecision,
  ApprovalOutcome,
  ApprovalSignatureSchema,
  ApproverIdSchema,
  RefusalCode,
  RejectPayloadSchema,
  ApprovePayloadSchema,
  SIGNATURE_FUTURE_SKEW_SECONDS,
} from '../contracts/approval';
import type {
  ApprovalAttempt,
  ApprovalAttemptInput,
  ApprovalPolicy,
  ApprovalState,
  ApprovalVerdict,
  SignatureStatus,
  SubmitApprovalResult,
} from '../contracts/approval';
import { formatZodError } from '../contracts/errors';
import { ModelVersionSchema } from '../contracts/primitives';

// The approval state types are contracts; re-exported for the importers of this module.
export type { ApprovalAttempt, ApprovalAttemptInput, ApprovalState, ApprovalVerdict, SignatureStatus };

/** Most attempts kept in state; older ones are dropped (and counted) so spam cannot grow workflow state unbounded. */
export const MAX_RECORDED_ATTEMPTS = 200;
/** Approver name recorded when a malformed payload carries no usable approver id. */
export const UNKNOWN_APPROVER_LABEL = '(unknown)';

/** Same key, whatever the line breaks and spacing of its text. */
export function sameKey(a: string, b: string): boolean {
  return a.replace(/\s+/g, '') === b.replace(/\s+/g, '');
}

/** The key registered for `id` as an initiator or an approver, if any. */
export function initiatorPublicKey(policy: ApprovalPolicy, id: string): string | undefined {
  return policy.initiators?.find((i) => i.id === id)?.publicKey ?? approverPublicKey(policy, id);
}

/** What the workflow knows about who started it (the signature already verified by an activity). */
export interface InitiatorEvidence {
  /** The name in the input (`initiator`, or the manual trigger's `by`). */
  claimed?: string;
  /** Temporal's own proof of a non-human start: `system:schedule/<id>`, `system:workflow/<parent id>`. */
  system?: string;
  /** A start signature was given: whether it verified against `claimed`'s registered key, and that key. */
  signed?: { verified: boolean; key?: string };
}

export type InitiatorVerdict =
  | { ok: true; initiator?: string; proof: 'signed' | 'system' | 'claimed'; key?: string }
  | { ok: false; reason: string };

/**
 * Who started the run, as far as it is proven. A Schedule or parent workflow is the system identity
 * (a claimed name is ignored); a start signature must verify; an unsigned human start is refused when
 * the policy has `requireSignedStart`, else accepted as `claimed` (four-eyes then compares names).
 */
export function judgeInitiator(policy: ApprovalPolicy, e: InitiatorEvidence): InitiatorVerdict {
  if (e.system !== undefined) return { ok: true, initiator: e.system, proof: 'system' };
  if (e.signed !== undefined) {
    if (e.claimed === undefined)
      return { ok: false, reason: 'a start signature needs an initiator to verify it for' };
    if (!e.signed.verified || e.signed.key === undefined)
      return {
        ok: false,
        reason: `the start signature does not verify against ${e.claimed}'s registered key`,
      };
    return { ok: true, initiator: e.claimed, proof: 'signed', key: e.signed.key };
  }
  if (policy.requireSignedStart)
    return {
      ok: false,
      reason: `this model's policy requires a signed start request; ${e.claimed ?? 'an anonymous caller'} sent none`,
    };
  return e.claimed === undefined
    ? { ok: true, proof: 'claimed' }
    : { ok: true, initiator: e.claimed, proof: 'claimed' };
}

/** Starts a pending approval for `modelVersion`. */
export function createApprovalState(args: {
  modelVersion: string;
  initiator?: string;
  initiatorProof?: ApprovalState['initiatorProof'];
  initiatorKey?: string;
  policy: Pick<ApprovalPolicy, 'minApprovals'>;
}): ApprovalState {
  const state: ApprovalState = {
    modelVersion: args.modelVersion,
    requiredApprovals: args.policy.minApprovals,
    attempts: [],
    approvals: [],
    outcome: ApprovalOutcome.pending,
  };
  if (args.initiator !== undefined) state.initiator = args.initiator;
  if (args.initiatorProof !== undefined) state.initiatorProof = args.initiatorProof;
  if (args.initiatorKey !== undefined) state.initiatorKey = args.initiatorKey;
  return state;
}

/**
 * Parses a raw signal/update payload for `decision`. On failure returns a `malformed` refusal plus a best-effort
 * attempt (so the refusal can still be recorded and audited with whatever approver name was given).
 */
export function parseApprovalAttempt(
  decision: ApprovalDecision,
  payload: unknown,
):
  | { ok: true; attempt: ApprovalAttemptInput }
  | {
      ok: false;
      attempt: ApprovalAttemptInput;
      verdict: { accepted: false; code: RefusalCode; reason: string };
    } {
  const schema = decision === ApprovalDecision.reject ? RejectPayloadSchema : ApprovePayloadSchema;
  const parsed = schema.safeParse(payload);
  if (parsed.success) {
    const attempt: ApprovalAttemptInput = { decision, approver: parsed.data.approver };
    if (parsed.data.modelVersion !== undefined) attempt.modelVersion = parsed.data.modelVersion;
    if (parsed.data.signature !== undefined) attempt.signature = parsed.data.signature;
    if ('comment' in parsed.data && parsed.data.comment !== undefined) attempt.comment = parsed.data.comment;
    if ('reason' in parsed.data) attempt.reason = parsed.data.reason;
    return { ok: true, attempt };
  }
  const raw = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const approver = ApproverIdSchema.safeParse(raw.approver);
  return {
    ok: false,
    attempt: { decision, approver: approver.success ? approver.data : UNKNOWN_APPROVER_LABEL },
    verdict: {
      accepted: false,
      code: RefusalCode.malformed,
      reason: formatZodError(parsed.error, `malformed ${decision} payload`).replace(/\n/g, '; '),
    },
  };
}

function refuse(code: RefusalCode, reason: string): ApprovalVerdict {
  return { accepted: false, code, reason };
}

const AttemptShapeSchema = z.object({
  decision: z.enum([ApprovalDecision.approve, ApprovalDecision.reject]),
  approver: ApproverIdSchema,
  modelVersion: ModelVersionSchema.optional(),
  signature: ApprovalSignatureSchema.optional(),
});

/**
 * Decides whether `attempt` may be applied to `state` under `policy` at workflow time `nowIso`.
 *
 * Checks, in order: shape (`malformed`), `not-pending`, `wrong-version`, `unknown-approver`, `missing-role`,
 * `self-approval` (approve only, when `forbidInitiator`), `duplicate` (approve only), then signatures:
 * `signature-required`, `signature-invalid` (no registered key, or `signatureVerified === false`),
 * `signature-stale` (older than `signatureMaxAgeSeconds` or further than {@link SIGNATURE_FUTURE_SKEW_SECONDS} in
 * the future). A signature that is present is always checked, even when the policy does not require one.
 * With `signatureVerified` undefined and a signature present, an otherwise acceptable attempt is returned as
 * `{ accepted: true, signature: 'pending-verification' }`.
 */
export function checkApprovalAttempt(args: {
  state: ApprovalState;
  policy: ApprovalPolicy;
  attempt: ApprovalAttemptInput;
  nowIso: string;
  signatureVerified?: boolean | undefined;
}): ApprovalVerdict {
  const { state, policy, nowIso, signatureVerified } = args;
  const shape = AttemptShapeSchema.safeParse(args.attempt);
  if (!shape.success) {
    return refuse(
      RefusalCode.malformed,
      formatZodError(shape.error, 'malformed attempt').replace(/\n/g, '; '),
    );
  }
  const attempt = shape.data;
  const nowMs = Date.parse(nowIso);
  if (Number.isNaN(nowMs))
    return refuse(RefusalCode.malformed, `invalid current time ${JSON.stringify(nowIso)}`);

  if (state.outcome !== ApprovalOutcome.pending) {
    return refuse(
      RefusalCode.notPending,
      `approval is already ${state.outcome} for version ${state.modelVersion}`,
    );
  }
  if (attempt.modelVersion !== undefined && attempt.modelVersion !== state.modelVersion) {
    return refuse(
      RefusalCode.wrongVersion,
      `attempt names version ${attempt.modelVersion} but version ${state.modelVersion} is awaiting approval`,
    );
  }
  const approver = policy.approvers.find((a) => a.id === attempt.approver);
  if (approver === undefined) {
    return refuse(
      RefusalCode.unknownApprover,
      `${attempt.approver} is not an approver in this model's policy`,
    );
  }
  const required = policy.requiredRoles;
  if (required !== undefined && !approver.roles.some((r) => required.includes(r))) {
    return refuse(
      RefusalCode.missingRole,
      `${attempt.approver} has none of the required roles (${required.join(', ')})`,
    );
  }
  if (attempt.decision === ApprovalDecision.approve) {
    if (policy.forbidInitiator && state.initiator !== undefined && state.initiator === attempt.approver) {
      return refuse(
        RefusalCode.selfApproval,
        `${attempt.approver} started this pipeline and may not approve it`,
      );
    }
    if (
      policy.forbidInitiator &&
      state.initiatorKey !== undefined &&
      approver.publicKey !== undefined &&
      sameKey(approver.publicKey, state.initiatorKey)
    ) {
      return refuse(
        RefusalCode.selfApproval,
        `${attempt.approver}'s key is the key that signed this pipeline's start: it may not approve it`,
      );
    }
    if (state.approvals.includes(attempt.approver)) {
      return refuse(
        RefusalCode.duplicate,
        `${attempt.approver} has already approved version ${state.modelVersion}`,
      );
    }
  }

  const sig = attempt.signature;
  if (sig === undefined) {
    if (policy.requireSignature) {
      return refuse(RefusalCode.signatureRequired, 'this model requires a signed decision; none was given');
    }
    return { accepted: true, signature: 'none' };
  }
  if (approver.publicKey === undefined) {
    return refuse(
      RefusalCode.signatureInvalid,
      `no public key is registered for ${attempt.approver}, so the signature cannot be verified`,
    );
  }
  const issuedMs = Date.parse(sig.issuedAt);
  if (Number.isNaN(issuedMs)) return refuse(RefusalCode.malformed, 'signature.issuedAt is not a valid time');
  const ageMs = nowMs - issuedMs;
  if (ageMs > policy.signatureMaxAgeSeconds * 1000) {
    return refuse(
      RefusalCode.signatureStale,
      `signature issued at ${sig.issuedAt} is older than ${policy.signatureMaxAgeSeconds}s`,
    );
  }
  if (-ageMs > SIGNATURE_FUTURE_SKEW_SECONDS * 1000) {
    return refuse(
      RefusalCode.signatureStale,
      `signature issued at ${sig.issuedAt} lies more than ${SIGNATURE_FUTURE_SKEW_SECONDS}s in the future`,
    );
  }
  if (signatureVerified === false) {
    return refuse(
      RefusalCode.signatureInvalid,
      `signature does not verify against ${attempt.approver}'s public key`,
    );
  }
  return { accepted: true, signature: signatureVerified === true ? 'verified' : 'pending-verification' };
}

/** The registered public key to verify `approver`'s signature with, if any. */
export function approverPublicKey(policy: ApprovalPolicy, approver: string): string | undefined {
  return policy.approvers.find((a) => a.id === approver)?.publicKey;
}

/**
 * Records `attempt` with `verdict` and returns the new state (the input is not modified). An accepted approval
 * adds the approver; `requiredApprovals` distinct approvals make the outcome `approved`; one accepted reject makes
 * it `rejected`. Defensive re-checks turn a verdict that no longer fits the state (decided meanwhile, duplicate,
 * signature never verified) into a recorded refusal rather than an error.
 */
export function applyApprovalAttempt(
  state: ApprovalState,
  attempt: ApprovalAttemptInput,
  verdict: ApprovalVerdict,
  nowIso: string,
): ApprovalState {
  let effective: ApprovalVerdict = verdict;
  if (effective.accepted) {
    if (state.outcome !== ApprovalOutcome.pending) {
      effective = refuse(
        RefusalCode.notPending,
        `approval is already ${state.outcome} for version ${state.modelVersion}`,
      );
    } else if (attempt.decision === ApprovalDecision.approve && state.approvals.includes(attempt.approver)) {
      effective = refuse(
        RefusalCode.duplicate,
        `${attempt.approver} has already approved version ${state.modelVersion}`,
      );
    } else if (effective.signature === 'pending-verification') {
      effective = refuse(
        RefusalCode.signatureInvalid,
        'signature was not verified before the decision was applied',
      );
    }
  }

  const next: ApprovalState = { ...state, approvals: [...state.approvals] };
  let reason: string;
  if (!effective.accepted) {
    reason = effective.reason;
  } else if (attempt.decision === ApprovalDecision.reject) {
    reason = attempt.reason ?? 'rejected';
    next.outcome = ApprovalOutcome.rejected;
    next.rejectedBy = attempt.approver;
    next.rejectReason = reason;
    next.decidedAt = nowIso;
  } else {
    next.approvals.push(attempt.approver);
    reason = `approval ${next.approvals.length} of ${state.requiredApprovals} accepted`;
    if (next.approvals.length >= state.requiredApprovals) {
      next.outcome = ApprovalOutcome.approved;
      next.decidedAt = nowIso;
    }
  }

  const record: ApprovalAttempt = {
    approver: attempt.approver,
    decision: attempt.decision,
    accepted: effective.accepted,
    reason,
    at: nowIso,
    signed: attempt.signature !== undefined,
  };
  if (!effective.accepted) record.code = effective.code;
  if (attempt.comment !== undefined) record.comment = attempt.comment;
  if (attempt.signature?.keyId !== undefined) record.keyId = attempt.signature.keyId;

  const attempts = [...state.attempts, record];
  const overflow = attempts.length - MAX_RECORDED_ATTEMPTS;
  if (overflow > 0) {
    attempts.splice(0, overflow);
    next.droppedAttempts = (state.droppedAttempts ?? 0) + overflow;
  }
  next.attempts = attempts;
  return next;
}

/** Ends a still-pending approval as `expired` (the timeout elapsed); a decided one is returned unchanged. */
export function expireApproval(state: ApprovalState, nowIso?: string): ApprovalState {
  if (state.outcome !== ApprovalOutcome.pending) return state;
  const next: ApprovalState = { ...state, outcome: ApprovalOutcome.expired };
  if (nowIso !== undefined) next.decidedAt = nowIso;
  return next;
}

/**
 * Result for the `submitApproval` update, read from the attempt that {@link applyApprovalAttempt} just recorded
 * (the last one) and the state after it.
 */
export function submitApprovalResult(state: ApprovalState): SubmitApprovalResult {
  const last = state.attempts[state.attempts.length - 1];
  const common = {
    outcome: state.outcome,
    approvals: state.approvals.length,
    requiredApprovals: state.requiredApprovals,
  };
  if (last === undefined) {
    return {
      accepted: false,
      code: RefusalCode.malformed,
      reason: 'no attempt has been recorded',
      ...common,
    };
  }
  if (last.accepted) return { accepted: true, reason: last.reason, ...common };
  return { accepted: false, code: last.code ?? RefusalCode.malformed, reason: last.reason, ...common };
}

/** Refusal decisions a continued approval wait keeps in its status (the newest); older ones are folded into a count. */
export const CARRIED_REFUSAL_DECISIONS = 50;
/** Decision names of refused attempts (the approval desk records them so). */
export const REFUSED_DECISION = 'approval-refused';
/** Decision that stands for the refusals folded away. */
export const FOLDED_REFUSALS_DECISION = 'approval-refusals-folded';

/**
 * The decisions a run carries into its continuation: every decision except refused approval attempts,
 * of which the newest `keep` stay; the older ones become one `approval-refusals-folded` decision (at the
 * place of the first one folded) counting them, added to any such count carried before. Bounded, so a
 * flood of refusals cannot grow the carried status; the attempts themselves stay in the audit log.
 */
export function foldRefusalDecisions<D extends { decision: string; reason: string }>(
  decisions: readonly D[],
  keep: number = CARRIED_REFUSAL_DECISIONS,
): D[] {
  const refused = decisions.filter((d) => d.decision === REFUSED_DECISION).length;
  const drop = Math.max(0, refused - keep);
  if (drop === 0) return [...decisions];
  const out: D[] = [];
  let folded = 0;
  let dropped = 0;
  let slot: { at: number; like: D } | undefined;
  for (const d of decisions) {
    const earlier = d.decision === FOLDED_REFUSALS_DECISION;
    if (earlier || (d.decision === REFUSED_DECISION && dropped < drop)) {
      if (earlier) folded += Number(/^(\d+)/.exec(d.reason)?.[1] ?? 0);
      else dropped += 1;
      slot ??= { at: out.length, like: d };
      continue;
    }
    out.push(d);
  }
  if (slot !== undefined) {
    out.splice(slot.at, 0, {
      ...slot.like,
      decision: FOLDED_REFUSALS_DECISION,
      reason: `${folded + dropped} refused approval attempt(s) folded (see status.approval.attempts and the audit log)`,
    });
  }
  return out;
}
