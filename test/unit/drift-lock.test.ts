import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LOCK_COOLDOWN_MS,
  decideLease,
  type LeaseRequest,
  type LockState,
} from '../../src/core/policy/drift-lock';

const T0 = Date.UTC(2026, 11, 1, 12);
const empty = (): LockState => ({ model: 'fraud', decisions: {}, order: [], requests: 0 });
const req = (over: Partial<LeaseRequest> = {}): LeaseRequest => ({
  requestId: `${over.runId ?? 'r1'}/1/1`,
  workflowId: 'retrain-fraud',
  runId: 'r1',
  trigger: 'manual',
  ...over,
});
const held = (over: Partial<LeaseRequest> = {}): LockState => decideLease(empty(), req(over), T0).state;

describe('decideLease', () => {
  const cases: Array<{
    name: string;
    state: () => LockState;
    request: LeaseRequest;
    at?: number;
    granted: boolean;
    reason: RegExp;
    holderRunId?: string;
  }> = [
    {
      name: 'free lock: granted',
      state: empty,
      request: req(),
      granted: true,
      reason: /^granted$/,
      holderRunId: 'r1',
    },
    {
      name: 'the same run again (an activity retry): granted, same holder',
      state: () => held(),
      request: req({ requestId: 'r1/2/1' }),
      granted: true,
      reason: /already held/,
      holderRunId: 'r1',
    },
    {
      name: 'another workflow while held: refused, naming the holder',
      state: () => held(),
      request: req({ workflowId: 'retrain-fraud-sched', runId: 'r9' }),
      granted: false,
      reason: /held by retrain-fraud \(manual\)/,
      holderRunId: 'r1',
    },
    {
      name: 'another workflow that found the holder closed: granted',
      state: () => held(),
      request: req({ workflowId: 'retrain-fraud-sched', runId: 'r9', staleHolderRunId: 'r1' }),
      granted: true,
      reason: /^granted$/,
      holderRunId: 'r9',
    },
    {
      name: 'a stale claim about another run does not release the holder',
      state: () => held(),
      request: req({ workflowId: 'x', runId: 'r9', staleHolderRunId: 'r0' }),
      granted: false,
      reason: /held by/,
      holderRunId: 'r1',
    },
    {
      name: 'the run continuing the holder as new: handed over',
      state: () => held(),
      request: req({ runId: 'r2', continuesRunId: 'r1', trigger: 'continued-as-new' }),
      granted: true,
      reason: /handed over/,
      holderRunId: 'r2',
    },
    {
      name: 'a continuation claim from another workflow id: refused',
      state: () => held(),
      request: req({ workflowId: 'other', runId: 'r2', continuesRunId: 'r1' }),
      granted: false,
      reason: /held by/,
      holderRunId: 'r1',
    },
    {
      name: 'a continuation of a run that is not the holder: refused',
      state: () => held(),
      request: req({ runId: 'r3', continuesRunId: 'r2' }),
      granted: false,
      reason: /held by/,
      holderRunId: 'r1',
    },
    {
      name: 'drift within the cool-down of the last drift grant: refused',
      state: () =>
        decideLease(
          held({ trigger: 'drift' }),
          req({ workflowId: 'w2', runId: 'r2', staleHolderRunId: 'r1', trigger: 'drift' }),
          T0 + 1000,
        ).state,
      request: req({ workflowId: 'w3', runId: 'r3', staleHolderRunId: 'r2', trigger: 'drift' }),
      at: T0 + 2000,
      granted: false,
      reason: /cool-down/,
    },
    {
      name: 'drift after the cool-down: granted',
      state: () => held({ trigger: 'drift' }),
      request: req({ workflowId: 'w2', runId: 'r2', staleHolderRunId: 'r1', trigger: 'drift' }),
      at: T0 + DEFAULT_LOCK_COOLDOWN_MS + 1,
      granted: true,
      reason: /^granted$/,
      holderRunId: 'r2',
    },
    {
      name: 'a manual start ignores the cool-down',
      state: () => held({ trigger: 'drift' }),
      request: req({ workflowId: 'w2', runId: 'r2', staleHolderRunId: 'r1' }),
      at: T0 + 1000,
      granted: true,
      reason: /^granted$/,
      holderRunId: 'r2',
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const { decision, state } = decideLease(c.state(), c.request, c.at ?? T0 + 1);
      expect(decision.granted).toBe(c.granted);
      expect(decision.reason).toMatch(c.reason);
      expect(state.holder?.runId).toBe(c.holderRunId);
      expect(state.decisions[c.request.requestId]).toEqual(decision);
    });
  }

  it('a handover keeps the lease age and trigger, and does not count as a new grant', () => {
    const before = held({ trigger: 'drift' });
    const { state } = decideLease(
      before,
      req({ runId: 'r2', continuesRunId: 'r1', trigger: 'continued-as-new' }),
      T0 + 5000,
    );
    expect(state.holder).toEqual({ workflowId: 'retrain-fraud', runId: 'r2', trigger: 'drift', sinceMs: T0 });
    expect(state.lastGrantMs).toBe(T0);
    expect(state.lastAutomatedGrantMs).toBe(T0);
  });
});
