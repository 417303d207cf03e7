import { describe, expect, it } from 'vitest';
import {
  ApprovalPolicySchema,
  ApprovePayloadSchema,
  DEFAULT_APPROVAL_TIMEOUT,
  DEFAULT_MIN_APPROVALS,
  DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
  RejectPayloadSchema,
  SIGNATURE_FUTURE_SKEW_SECONDS,
  SubmitApprovalSchema,
} from '../../src/core/contracts/approval';
import type {
  ApprovalAttemptInput,
  ApprovalPolicyInput,
  ApprovalState,
  ApprovalVerdict,
  RefusalCode,
} from '../../src/core/contracts/approval';
import { formatZodError } from '../../src/core/contracts/errors';
import {
  MAX_RECORDED_ATTEMPTS,
  UNKNOWN_APPROVER_LABEL,
  applyApprovalAttempt,
  checkApprovalAttempt,
  createApprovalState,
  expireApproval,
  parseApprovalAttempt,
  submitApprovalResult,
  judgeInitiator,
} from '../../src/core/policy/approval';

// A syntactically valid raw Ed25519 public key (base64 of 32 bytes); crypto is not exercised here.
const PUB = Buffer.alloc(32, 7).toString('base64');
const PUB2 = Buffer.alloc(32, 8).toString('base64');
const SIG_VALUE = Buffer.alloc(64, 1).toString('base64');
const NOW = '2026-11-26T12:00:00.000Z';
const at = (offsetSeconds: number) => new Date(Date.parse(NOW) + offsetSeconds * 1000).toISOString();

const basePolicy: ApprovalPolicyInput = {
  approvers: [
    { id: 'alice', roles: ['ml-lead'], publicKey: PUB },
    { id: 'bob', roles: ['ml-lead', 'risk'] },
    { id: 'carol', roles: ['viewer'] },
    { id: 'dave', roles: ['ml-lead'] },
  ],
};
const policyOf = (over: Partial<ApprovalPolicyInput> = {}) =>
  ApprovalPolicySchema.parse({ ...basePolicy, ...over });

function pending(over: Partial<ApprovalState> = {}, minApprovals = 1): ApprovalState {
  return {
    ...createApprovalState({ modelVersion: '3', initiator: 'dave', policy: { minApprovals } }),
    ...over,
  };
}

const signature = (issuedAt = NOW) => ({ alg: 'ed25519' as const, issuedAt, value: SIG_VALUE });

interface Case {
  name: string;
  policy?: Partial<ApprovalPolicyInput>;
  state?: Partial<ApprovalState>;
  attempt: ApprovalAttemptInput;
  signatureVerified?: boolean;
  expect: { accepted: true; signature: string } | { code: RefusalCode; reasonMatch: RegExp };
}

const cases: Case[] = [
  {
    name: 'allowed approver approves',
    attempt: { decision: 'approve', approver: 'bob' },
    expect: { accepted: true, signature: 'none' },
  },
  {
    name: 'unknown approver',
    attempt: { decision: 'approve', approver: 'mallory' },
    expect: { code: 'unknown-approver', reasonMatch: /mallory is not an approver/ },
  },
  {
    name: 'missing role',
    policy: { requiredRoles: ['ml-lead'] },
    attempt: { decision: 'approve', approver: 'carol' },
    expect: { code: 'missing-role', reasonMatch: /carol has none of the required roles \(ml-lead\)/ },
  },
  {
    name: 'missing role also blocks a reject',
    policy: { requiredRoles: ['risk'] },
    attempt: { decision: 'reject', approver: 'alice', reason: 'no' },
    expect: { code: 'missing-role', reasonMatch: /alice has none of the required roles \(risk\)/ },
  },
  {
    name: 'self-approval refused (four-eyes)',
    attempt: { decision: 'approve', approver: 'dave' },
    expect: { code: 'self-approval', reasonMatch: /dave started this pipeline/ },
  },
  {
    name: 'self-approval allowed when forbidInitiator is false',
    policy: { forbidInitiator: false },
    attempt: { decision: 'approve', approver: 'dave' },
    expect: { accepted: true, signature: 'none' },
  },
  {
    name: 'initiator may still reject',
    attempt: { decision: 'reject', approver: 'dave', reason: 'found a bug' },
    expect: { accepted: true, signature: 'none' },
  },
  {
    name: 'duplicate approval by the same person',
    state: { approvals: ['bob'] },
    attempt: { decision: 'approve', approver: 'bob' },
    expect: { code: 'duplicate', reasonMatch: /bob has already approved version 3/ },
  },
  {
    name: 'reject by an allowed approver',
    attempt: { decision: 'reject', approver: 'carol', reason: 'bias in segment B' },
    expect: { accepted: true, signature: 'none' },
  },
  {
    name: 'approval after approved',
    state: { outcome: 'approved', approvals: ['bob'] },
    attempt: { decision: 'approve', approver: 'alice' },
    expect: { code: 'not-pending', reasonMatch: /already approved/ },
  },
  {
    name: 'approval after expired',
    state: { outcome: 'expired' },
    attempt: { decision: 'approve', approver: 'alice' },
    expect: { code: 'not-pending', reasonMatch: /already expired/ },
  },
  {
    name: 'reject after rejected',
    state: { outcome: 'rejected', rejectedBy: 'bob' },
    attempt: { decision: 'reject', approver: 'alice', reason: 'me too' },
    expect: { code: 'not-pending', reasonMatch: /already rejected/ },
  },
  {
    name: 'wrong version',
    attempt: { decision: 'approve', approver: 'bob', modelVersion: '2' },
    expect: { code: 'wrong-version', reasonMatch: /names version 2 but version 3 is awaiting/ },
  },
  {
    name: 'matching version accepted',
    attempt: { decision: 'approve', approver: 'bob', modelVersion: '3' },
    expect: { accepted: true, signature: 'none' },
  },
  {
    name: 'signature required but missing',
    policy: {
      requireSignature: true,
      approvers: [
        { id: 'alice', roles: [], publicKey: PUB },
        { id: 'bob', roles: [], publicKey: PUB2 },
      ],
    },
    attempt: { decision: 'approve', approver: 'bob' },
    expect: { code: 'signature-required', reasonMatch: /requires a signed decision/ },
  },
  {
    name: 'signature stale (older than max age)',
    attempt: {
      decision: 'approve',
      approver: 'alice',
      signature: signature(at(-DEFAULT_SIGNATURE_MAX_AGE_SECONDS - 1)),
    },
    expect: { code: 'signature-stale', reasonMatch: /older than 86400s/ },
  },
  {
    name: 'signature stale with a custom max age',
    policy: { signatureMaxAgeSeconds: 60 },
    attempt: { decision: 'approve', approver: 'alice', signature: signature(at(-61)) },
    expect: { code: 'signature-stale', reasonMatch: /older than 60s/ },
  },
  {
    name: 'signature issued too far in the future',
    attempt: {
      decision: 'approve',
      approver: 'alice',
      signature: signature(at(SIGNATURE_FUTURE_SKEW_SECONDS + 1)),
    },
    expect: { code: 'signature-stale', reasonMatch: /in the future/ },
  },
  {
    name: 'signature slightly in the future (within skew) awaits verification',
    attempt: {
      decision: 'approve',
      approver: 'alice',
      signature: signature(at(SIGNATURE_FUTURE_SKEW_SECONDS - 1)),
    },
    expect: { accepted: true, signature: 'pending-verification' },
  },
  {
    name: 'verified false -> signature-invalid',
    attempt: { decision: 'approve', approver: 'alice', signature: signature() },
    signatureVerified: false,
    expect: { code: 'signature-invalid', reasonMatch: /does not verify against alice's public key/ },
  },
  {
    name: 'verified true -> accepted as verified',
    attempt: { decision: 'approve', approver: 'alice', signature: signature() },
    signatureVerified: true,
    expect: { accepted: true, signature: 'verified' },
  },
  {
    name: 'signature from an approver with no registered key',
    attempt: { decision: 'approve', approver: 'bob', signature: signature() },
    signatureVerified: true,
    expect: { code: 'signature-invalid', reasonMatch: /no public key is registered for bob/ },
  },
  {
    name: 'malformed attempt (empty approver)',
    attempt: { decision: 'approve', approver: '   ' },
    expect: { code: 'malformed', reasonMatch: /approver: must not be empty/ },
  },
  {
    name: 'malformed signature (bad issuedAt)',
    attempt: {
      decision: 'approve',
      approver: 'alice',
      signature: { alg: 'ed25519', issuedAt: 'yesterday', value: SIG_VALUE },
    },
    expect: { code: 'malformed', reasonMatch: /signature\.issuedAt/ },
  },
];

describe('checkApprovalAttempt', () => {
  it.each(cases)('$name', (c) => {
    const verdict = checkApprovalAttempt({
      state: pending(c.state),
      policy: policyOf(c.policy),
      attempt: c.attempt,
      nowIso: NOW,
      signatureVerified: c.signatureVerified,
    });
    if ('accepted' in c.expect) {
      expect(verdict).toEqual({ accepted: true, signature: c.expect.signature });
    } else {
      expect(verdict.accepted).toBe(false);
      if (verdict.accepted) return;
      expect(verdict.code).toBe(c.expect.code);
      expect(verdict.reason).toMatch(c.expect.reasonMatch);
    }
  });

  it('checks the state first: a decided approval refuses even an unknown approver as not-pending', () => {
    const v = checkApprovalAttempt({
      state: pending({ outcome: 'approved' }),
      policy: policyOf(),
      attempt: { decision: 'approve', approver: 'mallory' },
      nowIso: NOW,
    });
    expect(v).toMatchObject({ accepted: false, code: 'not-pending' });
  });
});

/** Runs check + apply the way the workflow does (with the signature verdict supplied when signed). */
function submit(
  state: ApprovalState,
  policy: ReturnType<typeof policyOf>,
  attempt: ApprovalAttemptInput,
  signatureVerified?: boolean,
  nowIso = NOW,
): { state: ApprovalState; verdict: ApprovalVerdict } {
  const verdict = checkApprovalAttempt({ state, policy, attempt, nowIso, signatureVerified });
  return { state: applyApprovalAttempt(state, attempt, verdict, nowIso), verdict };
}

describe('applyApprovalAttempt', () => {
  it('two-approval policy: one -> pending, two distinct -> approved', () => {
    const policy = policyOf({ minApprovals: 2 });
    let s = createApprovalState({ modelVersion: '3', initiator: 'dave', policy });
    expect(s.requiredApprovals).toBe(2);

    s = submit(s, policy, { decision: 'approve', approver: 'alice', comment: 'metrics look good' }).state;
    expect(s.outcome).toBe('pending');
    expect(s.approvals).toEqual(['alice']);
    expect(s.attempts[0]).toEqual({
      approver: 'alice',
      decision: 'approve',
      accepted: true,
      reason: 'approval 1 of 2 accepted',
      at: NOW,
      comment: 'metrics look good',
      signed: false,
    });

    // The same person again does not count twice.
    const dup = submit(s, policy, { decision: 'approve', approver: 'alice' });
    expect(dup.verdict).toMatchObject({ accepted: false, code: 'duplicate' });
    s = dup.state;
    expect(s.outcome).toBe('pending');
    expect(s.approvals).toEqual(['alice']);
    expect(s.attempts[1]).toMatchObject({ approver: 'alice', accepted: false, code: 'duplicate' });

    const later = '2026-11-26T13:00:00.000Z';
    s = submit(s, policy, { decision: 'approve', approver: 'bob' }, undefined, later).state;
    expect(s.outcome).toBe('approved');
    expect(s.approvals).toEqual(['alice', 'bob']);
    expect(s.decidedAt).toBe(later);
    expect(submitApprovalResult(s)).toEqual({
      accepted: true,
      reason: 'approval 2 of 2 accepted',
      outcome: 'approved',
      approvals: 2,
      requiredApprovals: 2,
    });

    // After approval, a further attempt is recorded but refused.
    const after = submit(s, policy, { decision: 'reject', approver: 'carol', reason: 'late' });
    expect(after.state.outcome).toBe('approved');
    expect(after.state.attempts).toHaveLength(4);
    expect(submitApprovalResult(after.state)).toMatchObject({ accepted: false, code: 'not-pending' });
  });

  it('one accepted reject ends the approval as rejected', () => {
    const policy = policyOf({ minApprovals: 2 });
    let s = createApprovalState({ modelVersion: '3', initiator: 'dave', policy });
    s = submit(s, policy, { decision: 'approve', approver: 'alice' }).state;
    s = submit(s, policy, {
      decision: 'reject',
      approver: 'bob',
      reason: 'AUC regressed on segment B',
    }).state;
    expect(s.outcome).toBe('rejected');
    expect(s.rejectedBy).toBe('bob');
    expect(s.rejectReason).toBe('AUC regressed on segment B');
    expect(s.attempts[1]).toMatchObject({ accepted: true, reason: 'AUC regressed on segment B' });
  });

  it('does not modify the input state', () => {
    const policy = policyOf();
    const s = pending();
    const copy = structuredClone(s);
    submit(s, policy, { decision: 'approve', approver: 'bob' });
    expect(s).toEqual(copy);
  });

  it('refuses (records) a verdict whose signature was never verified', () => {
    const policy = policyOf();
    const attempt: ApprovalAttemptInput = { decision: 'approve', approver: 'alice', signature: signature() };
    const pre = checkApprovalAttempt({ state: pending(), policy, attempt, nowIso: NOW });
    expect(pre).toEqual({ accepted: true, signature: 'pending-verification' });
    const s = applyApprovalAttempt(pending(), attempt, pre, NOW);
    expect(s.outcome).toBe('pending');
    expect(s.approvals).toEqual([]);
    expect(s.attempts[0]).toMatchObject({ accepted: false, code: 'signature-invalid', signed: true });
  });

  it('a stale accepted verdict (state decided meanwhile) is recorded as not-pending', () => {
    const policy = policyOf();
    const verdict = checkApprovalAttempt({
      state: pending(),
      policy,
      attempt: { decision: 'approve', approver: 'bob' },
      nowIso: NOW,
    });
    const decided = pending({ outcome: 'rejected', rejectedBy: 'alice' });
    const s = applyApprovalAttempt(decided, { decision: 'approve', approver: 'bob' }, verdict, NOW);
    expect(s.outcome).toBe('rejected');
    expect(s.attempts[0]).toMatchObject({ accepted: false, code: 'not-pending' });
  });

  it('a verified signed approval is recorded as signed with its key id', () => {
    const policy = policyOf();
    const attempt: ApprovalAttemptInput = {
      decision: 'approve',
      approver: 'alice',
      modelVersion: '3',
      signature: { ...signature(), keyId: 'abc123' },
    };
    const { state } = submit(pending(), policy, attempt, true);
    expect(state.outcome).toBe('approved');
    expect(state.attempts[0]).toMatchObject({ accepted: true, signed: true, keyId: 'abc123' });
  });

  it('bounds the recorded attempts and counts the dropped ones', () => {
    const policy = policyOf();
    let s = pending();
    for (let i = 0; i < MAX_RECORDED_ATTEMPTS + 5; i++) {
      s = submit(s, policy, { decision: 'approve', approver: `mallory${i}` }).state;
    }
    expect(s.attempts).toHaveLength(MAX_RECORDED_ATTEMPTS);
    expect(s.droppedAttempts).toBe(5);
    expect(s.attempts[0]?.approver).toBe('mallory5');
    expect(s.outcome).toBe('pending');
  });
});

describe('expireApproval', () => {
  it('expires a pending approval and leaves decided ones alone', () => {
    const e = expireApproval(pending(), NOW);
    expect(e.outcome).toBe('expired');
    expect(e.decidedAt).toBe(NOW);
    const approved = pending({ outcome: 'approved', approvals: ['bob'] });
    expect(expireApproval(approved, NOW)).toBe(approved);
  });

  it('an approval after expiry is refused as not-pending', () => {
    const policy = policyOf();
    const { verdict, state } = submit(expireApproval(pending()), policy, {
      decision: 'approve',
      approver: 'bob',
    });
    expect(verdict).toMatchObject({ accepted: false, code: 'not-pending' });
    expect(state.outcome).toBe('expired');
  });
});

describe('parseApprovalAttempt', () => {
  it('parses a valid approve payload, normalising a numeric version', () => {
    const r = parseApprovalAttempt('approve', { approver: ' alice ', modelVersion: 3, comment: 'ok' });
    expect(r).toEqual({
      ok: true,
      attempt: { decision: 'approve', approver: 'alice', modelVersion: '3', comment: 'ok' },
    });
  });

  it('returns a malformed refusal naming the field, keeping a usable approver name', () => {
    const r = parseApprovalAttempt('reject', { approver: 'bob' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.attempt.approver).toBe('bob');
    expect(r.verdict.code).toBe('malformed');
    expect(r.verdict.reason).toBe('malformed reject payload: reason: Required');
    const s = applyApprovalAttempt(pending(), r.attempt, r.verdict, NOW);
    expect(s.attempts[0]).toMatchObject({ approver: 'bob', accepted: false, code: 'malformed' });
  });

  it('labels a payload without an approver', () => {
    const r = parseApprovalAttempt('approve', 'not an object');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.attempt.approver).toBe(UNKNOWN_APPROVER_LABEL);
  });
});

describe('payload schemas', () => {
  it('names the missing field', () => {
    const r = ApprovePayloadSchema.safeParse({});
    expect(r.success).toBe(false);
    if (!r.success) expect(formatZodError(r.error, 'approve')).toBe('approve: approver: Required');
  });

  it('refuses unknown keys, bad signatures and bad ids with the field path', () => {
    const r = ApprovePayloadSchema.safeParse({
      approver: 'alice smith',
      aprover: 'x',
      signature: { alg: 'rsa', issuedAt: 'now', value: '***' },
    });
    expect(r.success).toBe(false);
    if (r.success) return;
    const text = formatZodError(r.error);
    expect(text).toMatch(/^approver: may contain only letters/m);
    expect(text).toMatch(/^\(root\): Unrecognized key: "aprover"/m);
    expect(text).toMatch(/^signature\.alg: /m);
    expect(text).toMatch(/^signature\.issuedAt: /m);
    expect(text).toMatch(/^signature\.value: /m);
  });

  it('do not depend on atob, which the workflow sandbox lacks', () => {
    const g = globalThis as { atob?: unknown };
    const saved = g.atob;
    delete g.atob;
    try {
      const ok = ApprovePayloadSchema.safeParse({ approver: 'alice', signature: signature() });
      expect(ok.success).toBe(true);
      const bad = ApprovePayloadSchema.safeParse({
        approver: 'alice',
        signature: { ...signature(), value: 'a b' },
      });
      expect(bad.success).toBe(false);
    } finally {
      g.atob = saved;
    }
  });

  it('reject needs a non-empty reason', () => {
    const r = RejectPayloadSchema.safeParse({ approver: 'bob', reason: '  ' });
    expect(r.success).toBe(false);
    if (!r.success) expect(formatZodError(r.error)).toBe('reason: must not be empty');
  });

  it('submitApproval discriminates on decision', () => {
    expect(SubmitApprovalSchema.parse({ decision: 'reject', approver: 'bob', reason: 'no' })).toEqual({
      decision: 'reject',
      approver: 'bob',
      reason: 'no',
    });
    const bad = SubmitApprovalSchema.safeParse({ decision: 'maybe', approver: 'bob' });
    expect(bad.success).toBe(false);
    if (!bad.success) expect(formatZodError(bad.error)).toMatch(/^decision: /);
  });
});

describe('ApprovalPolicySchema', () => {
  it('fills the named defaults', () => {
    const p = ApprovalPolicySchema.parse({ approvers: [{ id: 'alice' }] });
    expect(p).toEqual({
      approvers: [{ id: 'alice', roles: [] }],
      minApprovals: DEFAULT_MIN_APPROVALS,
      forbidInitiator: true,
      requireSignature: false,
      requireSignedStart: false,
      timeout: DEFAULT_APPROVAL_TIMEOUT,
      signatureMaxAgeSeconds: DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
    });
  });

  it.each([
    [{ approvers: [] }, /^approvers: at least one approver/],
    [{ approvers: [{ id: 'a' }, { id: 'a' }] }, /^approvers\[1\]\.id: duplicate approver id "a"/],
    [{ approvers: [{ id: 'a' }], minApprovals: 2 }, /^minApprovals: is 2 but only 1 approver/],
    [
      { approvers: [{ id: 'a', roles: ['x'] }, { id: 'b' }], requiredRoles: ['x'], minApprovals: 2 },
      /^minApprovals: is 2 but only 1 approver/,
    ],
    [{ approvers: [{ id: 'a' }], requireSignature: true }, /^approvers\[0\]\.publicKey: required when/],
    [{ approvers: [{ id: 'a', publicKey: 'not a key' }] }, /^approvers\[0\]\.publicKey: must be a PEM/],
    [{ approvers: [{ id: 'a' }], timeout: '72' }, /^timeout: invalid duration "72": missing unit/],
    [{ approvers: [{ id: 'a' }], timeout: '0s' }, /^timeout: must be longer than zero/],
    [{ approvers: [{ id: 'a' }], minApproval: 1 }, /Unrecognized key: "minApproval"/],
  ])('refuses %j', (input, message) => {
    const r = ApprovalPolicySchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(formatZodError(r.error)).toMatch(message);
  });
});

describe('proven identities', () => {
  const keyed = ApprovalPolicySchema.parse({
    approvers: [
      { id: 'alice', publicKey: PUB },
      { id: 'bob', publicKey: PUB2 },
    ],
    initiators: [{ id: 'dana', publicKey: PUB }],
    requireSignedStart: true,
  });

  it('refuses one key registered for two approvers', () => {
    const r = ApprovalPolicySchema.safeParse({
      approvers: [
        { id: 'alice', publicKey: PUB },
        { id: 'bob', publicKey: PUB },
      ],
    });
    expect(r.success).toBe(false);
    expect(formatZodError(r.error!)).toMatch(/approvers\[1\]\.publicKey: is also alice's key/);
  });

  it('judges the initiator: system, signed, unsigned under requireSignedStart', () => {
    expect(judgeInitiator(keyed, { claimed: 'bob', system: 'system:schedule/weekly' })).toEqual({
      ok: true,
      initiator: 'system:schedule/weekly',
      proof: 'system',
    });
    expect(judgeInitiator(keyed, { claimed: 'dana', signed: { verified: true, key: PUB } })).toEqual({
      ok: true,
      initiator: 'dana',
      proof: 'signed',
      key: PUB,
    });
    expect(judgeInitiator(keyed, { claimed: 'dana', signed: { verified: false, key: PUB } })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/does not verify/),
    });
    expect(judgeInitiator(keyed, { claimed: 'dana' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/requires a signed start/),
    });
    const lax = ApprovalPolicySchema.parse({ approvers: [{ id: 'alice' }] });
    expect(judgeInitiator(lax, { claimed: 'dana' })).toEqual({
      ok: true,
      initiator: 'dana',
      proof: 'claimed',
    });
  });

  it('four-eyes compares keys: the key that signed the start may not approve under another name', () => {
    const state = createApprovalState({
      modelVersion: '3',
      initiator: 'dana',
      initiatorProof: 'signed',
      initiatorKey: PUB,
      policy: keyed,
    });
    const byAlice = checkApprovalAttempt({
      state,
      policy: keyed,
      attempt: { decision: 'approve', approver: 'alice' },
      nowIso: NOW,
    });
    expect(byAlice).toMatchObject({ accepted: false, code: 'self-approval' });
    const byBob = checkApprovalAttempt({
      state,
      policy: keyed,
      attempt: { decision: 'approve', approver: 'bob' },
      nowIso: NOW,
    });
    expect(byBob).toEqual({ accepted: true, signature: 'none' });
  });
});
