/**
 * The pieces of a continued approval wait that are pure: folding refusal decisions so the carried
 * status stays bounded, and the input fields a continuation uses (`resume`, `approvalHistoryLimit`).
 */
import { describe, expect, it } from 'vitest';
import {
  APPROVAL_HISTORY_EVENTS_LIMIT,
  APPROVAL_HISTORY_EVENTS_MIN,
  RetrainingInputSchema,
} from '../../src/core/contracts/retraining';
import {
  FOLDED_REFUSALS_DECISION,
  REFUSED_DECISION,
  foldRefusalDecisions,
} from '../../src/core/policy/approval';

const d = (decision: string, reason = decision) => ({
  decision,
  reason,
  stage: 'awaiting-approval',
  at: 't',
});
const refused = (n: number) => Array.from({ length: n }, (_, i) => d(REFUSED_DECISION, `r${i}`));

describe('foldRefusalDecisions', () => {
  it('keeps everything when there are few refusals', () => {
    const all = [d('accepted'), ...refused(3), d('approve-accepted')];
    expect(foldRefusalDecisions(all, 5)).toEqual(all);
  });

  it('folds the oldest refusals into one count at their place, keeps the newest and every other decision', () => {
    const all = [d('accepted'), ...refused(10), d('approve-accepted'), ...refused(2)];
    const out = foldRefusalDecisions(all, 4);
    expect(out.map((x) => x.decision)).toEqual([
      'accepted',
      FOLDED_REFUSALS_DECISION,
      REFUSED_DECISION,
      REFUSED_DECISION,
      'approve-accepted',
      REFUSED_DECISION,
      REFUSED_DECISION,
    ]);
    expect(out[1]?.reason).toMatch(/^8 refused approval attempt\(s\) folded/);
    expect(out.filter((x) => x.decision === REFUSED_DECISION).map((x) => x.reason)).toEqual([
      'r8',
      'r9',
      'r0',
      'r1',
    ]);
  });

  it('adds to a count folded by an earlier continuation', () => {
    const once = foldRefusalDecisions([d('accepted'), ...refused(10)], 2);
    const twice = foldRefusalDecisions([...once, ...refused(5)], 2);
    expect(twice.filter((x) => x.decision === FOLDED_REFUSALS_DECISION)).toHaveLength(1);
    expect(twice.find((x) => x.decision === FOLDED_REFUSALS_DECISION)?.reason).toMatch(/^13 refused/);
    expect(twice.filter((x) => x.decision === REFUSED_DECISION)).toHaveLength(2);
    expect(twice[0]?.decision).toBe('accepted');
  });
});

describe('continuation input fields', () => {
  const base = { model: 'fraud', dataset: { uri: 'file:///x.csv' }, trigger: { kind: 'manual' } };

  it('bounds approvalHistoryLimit to the default and a floor', () => {
    expect(
      RetrainingInputSchema.safeParse({ ...base, approvalHistoryLimit: APPROVAL_HISTORY_EVENTS_MIN }).success,
    ).toBe(true);
    for (const bad of [APPROVAL_HISTORY_EVENTS_MIN - 1, APPROVAL_HISTORY_EVENTS_LIMIT + 1, 1.5]) {
      const r = RetrainingInputSchema.safeParse({ ...base, approvalHistoryLimit: bad });
      expect(r.success).toBe(false);
      expect(JSON.stringify(r.error?.issues)).toContain('approvalHistoryLimit');
    }
  });

  it('names the field of a resume that is not carried state', () => {
    const r = RetrainingInputSchema.safeParse({
      ...base,
      resume: { stage: 'awaiting-approval', continuedFrom: 'r', continuations: 1, status: 'x' },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain('resume.status');
  });
});
