/**
 * The approval desk: a workflow's human-in-the-loop decision. It owns the approval state and the
 * policy that judges it, installs the `approve` / `reject` signal handlers and the `submitApproval`
 * update (with its validator), and waits for a decision or the policy's timeout. Every attempt,
 * refused ones included, is recorded in the journal and the audit log; a refusal never fails or
 * wedges the workflow. Until `open` is called the desk refuses attempts as `not-pending`.
 *
 * The verdicts are pure functions (src/core/policy/approval.ts); only signature verification runs
 * as an activity (it needs node:crypto).
 */
import { ApplicationFailure, condition, patched, setHandler } from '@temporalio/workflow';
import type { SecurityActivities } from '../../activities';
import {
  ApprovalDecision,
  ApprovalOutcome,
  SubmitApprovalSchema,
  parseDuration,
  type ApprovalPolicy,
  type SubmitApprovalResult,
} from '../../src/core/contracts/approval';
import { AuditEventType } from '../../src/core/contracts/audit';
import { formatZodError } from '../../src/core/contracts/errors';
import { FailureType } from '../../src/core/contracts/failures';
import { approveSignal, rejectSignal, submitApprovalUpdate } from '../../src/core/contracts/retraining';
import {
  applyApprovalAttempt,
  approverPublicKey,
  checkApprovalAttempt,
  createApprovalState,
  expireApproval,
  parseApprovalAttempt,
  submitApprovalResult,
  type ApprovalState,
  type ApprovalVerdict,
  type InitiatorVerdict,
} from '../../src/core/policy/approval';
import { workflowNow, type RunJournal } from './journal';

/** What the `status` query shows of the desk. */
export type ApprovalView = ApprovalState & {
  eligibleApprovers: string[];
  requiredRoles?: string[];
  timeout: string;
};

export type ApprovalDeskOutcome = 'approved' | 'rejected' | 'expired';

/** Patch id: refusals beyond the first {@link REFUSAL_AUDIT_BURST} are audited in batches, not one by one. */
export const BOUNDED_REFUSAL_AUDIT_PATCH = 'approval-bounded-refusal-audit';
/** Refused attempts audited one by one before batching starts (a few honest mistakes stay individual). */
export const REFUSAL_AUDIT_BURST = 20;
/** After the burst, one audit event per this many refusals (each audit costs history events; spam must not). */
export const REFUSAL_AUDIT_EVERY = 100;

// The desk works with any family's journal: it only records decisions and audit events.
type AnyJournal = Pick<RunJournal<string, never>, 'decide' | 'audit' | 'workflowId'> & {
  readonly status: { stage: string };
};

export class ApprovalDesk {
  private policy?: ApprovalPolicy;
  private approval?: ApprovalState;
  private identity?: Extract<InitiatorVerdict, { ok: true }>;
  private refusals = 0;

  constructor(
    private readonly journal: AnyJournal,
    private readonly security: Pick<SecurityActivities, 'verifyApprovalSignature'>,
    private readonly publish: (view: ApprovalView) => void,
  ) {}

  /** The approval state once the desk is open (for model cards and results). */
  get state(): ApprovalState | undefined {
    return this.approval;
  }

  /** Registers the signal and update handlers; call at the start of the workflow. */
  install(): void {
    setHandler(approveSignal, async (payload) => {
      await this.attempt(ApprovalDecision.approve, payload);
    });
    setHandler(rejectSignal, async (payload) => {
      await this.attempt(ApprovalDecision.reject, payload);
    });
    setHandler(
      submitApprovalUpdate,
      async (payload) => {
        const { decision, ...rest } = payload as { decision: ApprovalDecision };
        const result = await this.attempt(decision, rest);
        if (!result.accepted) {
          throw ApplicationFailure.create({
            type: FailureType.ApprovalRefused,
            nonRetryable: true,
            message: `approval refused (${result.code ?? 'refused'}): ${result.reason}`,
            details: [result],
          });
        }
        return result;
      },
      {
        validator: (payload) => {
          const r = SubmitApprovalSchema.safeParse(payload);
          if (!r.success) {
            throw ApplicationFailure.nonRetryable(
              `malformed submitApproval payload: ${formatZodError(r.error)}`,
              FailureType.InvalidApproval,
            );
          }
        },
      },
    );
  }

  /** Records who started the run as proven (signed start, or the system): four-eyes uses it. */
  prove(identity: Extract<InitiatorVerdict, { ok: true }>): void {
    this.identity = identity;
  }

  /** Opens the desk for `modelVersion` under `policy` and records the request. */
  async open(args: { modelVersion: string; initiator?: string; policy: ApprovalPolicy }): Promise<void> {
    this.policy = args.policy;
    const id = this.identity;
    this.approval = createApprovalState({
      modelVersion: args.modelVersion,
      initiator: id ? id.initiator : args.initiator,
      ...(id ? { initiatorProof: id.proof } : {}),
      ...(id?.key !== undefined ? { initiatorKey: id.key } : {}),
      policy: args.policy,
    });
    this.show();
    await this.journal.audit(
      AuditEventType.approvalRequested,
      { required: args.policy.minApprovals, timeout: args.policy.timeout, initiator: args.initiator ?? null },
      { modelVersion: args.modelVersion },
    );
  }

  /** Waits until the policy's outcome is decided or its timeout passes (then the request expires). */
  async awaitDecision(): Promise<ApprovalDeskOutcome> {
    const policy = this.policy;
    if (!policy || !this.approval) throw ApplicationFailure.nonRetryable('approval desk is not open');
    const decided = await condition(
      () => this.approval?.outcome !== ApprovalOutcome.pending,
      parseDuration(policy.timeout),
    );
    if (!decided && this.approval.outcome === ApprovalOutcome.pending) {
      this.approval = expireApproval(this.approval, workflowNow());
      this.show();
      await this.journal.audit(
        AuditEventType.approvalExpired,
        { timeout: policy.timeout },
        { modelVersion: this.approval.modelVersion },
      );
      return 'expired';
    }
    return this.approval.outcome === ApprovalOutcome.rejected ? 'rejected' : 'approved';
  }

  private show(): void {
    const policy = this.policy;
    if (!this.approval || !policy) return;
    const required = policy.requiredRoles;
    this.publish({
      ...this.approval,
      eligibleApprovers: policy.approvers
        .filter((a) => !required || a.roles.some((r) => required.includes(r)))
        .map((a) => a.id),
      requiredRoles: required,
      timeout: policy.timeout,
    });
  }

  private async attempt(decision: ApprovalDecision, payload: unknown): Promise<SubmitApprovalResult> {
    const at = workflowNow();
    const parsed = parseApprovalAttempt(decision, payload);
    const attempt = parsed.attempt;
    const policy = this.policy;
    if (!this.approval || !policy) {
      const reason = `no version is awaiting approval (stage ${this.journal.status.stage})`;
      this.journal.decide('approval-refused', `${attempt.approver} (${decision}): ${reason}`);
      await this.journal.audit(
        AuditEventType.approvalAttempt,
        { decision, accepted: false, code: 'not-pending', reason },
        { actor: attempt.approver },
      );
      return {
        accepted: false,
        code: 'not-pending',
        reason,
        outcome: ApprovalOutcome.pending,
        approvals: 0,
        requiredApprovals: 1,
      };
    }
    const modelVersion = this.approval.modelVersion;
    let verdict: ApprovalVerdict = parsed.ok
      ? checkApprovalAttempt({ state: this.approval, policy, attempt, nowIso: at })
      : parsed.verdict;
    if (verdict.accepted && verdict.signature === 'pending-verification' && attempt.signature) {
      const verified = await this.security.verifyApprovalSignature({
        fields: { workflowId: this.journal.workflowId, modelVersion, decision, approver: attempt.approver },
        signature: attempt.signature,
        publicKey: approverPublicKey(policy, attempt.approver) ?? '',
      });
      // Re-check against the state as it is now: another attempt may have landed meanwhile.
      verdict = checkApprovalAttempt({
        state: this.approval,
        policy,
        attempt,
        nowIso: at,
        signatureVerified: verified,
      });
    }
    const approval = applyApprovalAttempt(this.approval, attempt, verdict, at);
    this.approval = approval;
    this.show();
    const recorded = approval.attempts[approval.attempts.length - 1];
    this.journal.decide(
      recorded?.accepted ? `${decision}-accepted` : 'approval-refused',
      `${attempt.approver} (${decision}): ${recorded?.reason ?? ''}`,
    );
    if (!recorded?.accepted) this.refusals += 1;
    const batched =
      !recorded?.accepted &&
      this.refusals > REFUSAL_AUDIT_BURST &&
      patched(BOUNDED_REFUSAL_AUDIT_PATCH) &&
      (this.refusals - REFUSAL_AUDIT_BURST) % REFUSAL_AUDIT_EVERY !== 0;
    if (!batched)
      await this.journal.audit(
        AuditEventType.approvalAttempt,
        {
          decision,
          accepted: recorded?.accepted ?? false,
          code: recorded?.code,
          reason: recorded?.reason,
          signed: recorded?.signed ?? false,
          comment: recorded?.comment,
          outcome: approval.outcome,
        },
        { modelVersion: approval.modelVersion, actor: attempt.approver },
      );
    const result = submitApprovalResult(approval);
    return recorded?.accepted
      ? result
      : { ...result, accepted: false, code: recorded?.code, reason: recorded?.reason ?? '' };
  }
}
