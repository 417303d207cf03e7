/**
 * The approval desk: a workflow's human-in-the-loop decision. It owns the approval state and the
 * policy that judges it, installs the `approve` / `reject` signal handlers and the `submitApproval`
 * update (with its validator), and waits for a decision or the policy's timeout. Every attempt,
 * refused ones included, is recorded in the journal and the audit log; a refusal never fails or
 * wedges the workflow. Until `open` is called the desk refuses attempts as `not-pending`.
 *
 * The verdicts are pure functions (src/core/policy/approval.ts); only signature verification runs
 * as an activity (it needs node:crypto).
 *
 * A long wait cannot push the run's history to Temporal's limits: once Temporal suggests it, or the
 * history passes a named number of events or bytes, the wait ends as `continue-as-new` (behind
 * `patched(APPROVAL_CONTINUE_AS_NEW_PATCH)`) after every in-flight attempt has landed; the workflow
 * then carries {@link ApprovalDesk.carry} into its next run, which {@link ApprovalDesk.restore}s it:
 * the same approvals, attempts, refusal count and absolute deadline.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
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
import {
  APPROVAL_HISTORY_BYTES_LIMIT,
  APPROVAL_HISTORY_EVENTS_LIMIT,
  approveSignal,
  rejectSignal,
  submitApprovalUpdate,
  type ApprovalResume,
} from '../../src/core/contracts/retraining';
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
  deadline?: string;
};

export type ApprovalDeskOutcome = 'approved' | 'rejected' | 'expired';

/** Patch id: the approval wait may end in continue-as-new when the history grows too long. */
export const APPROVAL_CONTINUE_AS_NEW_PATCH = 'approval-continue-as-new';
/** Audit event of a run that resumed an approval wait its previous run continued as new. */
export const APPROVAL_RESUMED_EVENT = 'approval.resumed';
/** Decision recorded right before the run continues as new. */
export const CONTINUED_AS_NEW_DECISION = 'continued-as-new';

/** What the approval wait carries into the next run (no secrets: state, counters, deadline). */
export type CarriedApproval = ApprovalResume['approval'];

/** Whether this run's history is long enough to continue as new: Temporal says so, or past a limit. */
export function historyFull(eventsLimit: number = APPROVAL_HISTORY_EVENTS_LIMIT): boolean {
  const info = workflowInfo();
  return (
    info.continueAsNewSuggested ||
    info.historyLength >= eventsLimit ||
    info.historySize >= APPROVAL_HISTORY_BYTES_LIMIT
  );
}

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
  /** Workflow time (ms) at which the wait expires: fixed when it first starts, carried across runs. */
  private deadlineMs?: number;

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

  /** Re-opens the desk in a continued run exactly where the previous run's wait stood. */
  restore(args: { policy: ApprovalPolicy; carried: CarriedApproval }): void {
    this.policy = args.policy;
    this.approval = args.carried.state;
    this.refusals = args.carried.refusals;
    this.deadlineMs = args.carried.deadlineMs;
    this.show();
  }

  /** What the next run needs to resume this wait (call once the wait returned `continue-as-new`). */
  carry(): CarriedApproval {
    if (!this.approval || this.deadlineMs === undefined)
      throw ApplicationFailure.nonRetryable('approval desk has no wait to carry');
    return { state: this.approval, refusals: this.refusals, deadlineMs: this.deadlineMs };
  }

  /**
   * Waits until the policy's outcome is decided or its timeout passes (then the request expires), or
   * (new runs) until the history is full: then, once no attempt is in flight, `continue-as-new`.
   */
  async awaitDecision(
    opts: { historyLimit?: number | undefined } = {},
  ): Promise<ApprovalDeskOutcome | 'continue-as-new'> {
    const policy = this.policy;
    if (!policy || !this.approval) throw ApplicationFailure.nonRetryable('approval desk is not open');
    // Fixed when the wait first starts (so the first timer is the policy's timeout, as it always was).
    this.deadlineMs ??= Date.now() + parseDuration(policy.timeout);
    this.show();
    const remaining = this.deadlineMs - Date.now();
    const pending = () => this.approval?.outcome === ApprovalOutcome.pending;
    const mayContinue = patched(APPROVAL_CONTINUE_AS_NEW_PATCH);
    const full = () => mayContinue && historyFull(opts.historyLimit);
    const decided = remaining > 0 ? await condition(() => !pending() || full(), remaining) : !pending();
    if (pending() && full()) {
      // Attempts still verifying or auditing land first, so the carried state holds them.
      await condition(allHandlersFinished);
      if (pending()) {
        const { historyLength, historySize } = workflowInfo();
        this.journal.decide(
          CONTINUED_AS_NEW_DECISION,
          `history at ${historyLength} events (${historySize} bytes): the approval wait continues in a new run ` +
            `with ${this.approval.approvals.length} approval(s), ${this.refusals} refusal(s) and its deadline`,
        );
        return 'continue-as-new';
      }
    }
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
      ...(this.deadlineMs !== undefined ? { deadline: new Date(this.deadlineMs).toISOString() } : {}),
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
