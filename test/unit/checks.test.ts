import { describe, expect, it } from 'vitest';
import {
  CHECK_PHASES_BEST_FIRST,
  CheckSchema,
  judgedPhase,
  worsePhase,
  worstPhase,
  worstPhaseOf,
  type CheckPhase,
} from '../../src/core/contracts/checks';
import { formatZodError } from '../../src/core/contracts/errors';

const S = 'successful';
const I = 'inconclusive';
const F = 'failed';
const E = 'error';

describe('worsePhase: error > failed > inconclusive > successful', () => {
  // Every ordered pair: [a, b, worse].
  it.each([
    [S, S, S],
    [S, I, I],
    [S, F, F],
    [S, E, E],
    [I, S, I],
    [I, I, I],
    [I, F, F],
    [I, E, E],
    [F, S, F],
    [F, I, F],
    [F, F, F],
    [F, E, E],
    [E, S, E],
    [E, I, E],
    [E, F, E],
    [E, E, E],
  ] as const)('worse of %s and %s is %s', (a, b, worse) => {
    expect(worsePhase(a, b)).toBe(worse);
  });
});

describe('worstPhase over a list', () => {
  it.each([
    [[], S],
    [[S], S],
    [[S, S, S], S],
    [[S, I, S], I],
    [[I, F, I], F],
    [[F, S, E, I], E],
    [[E, F], E],
  ] as Array<[CheckPhase[], CheckPhase]>)('%j -> %s', (phases, worst) => {
    expect(worstPhase(phases)).toBe(worst);
    expect(worstPhaseOf(phases.map((phase) => ({ phase })))).toBe(worst);
    // order does not matter
    expect(worstPhase([...phases].reverse())).toBe(worst);
  });

  it('lists the phases best first', () => {
    expect(CHECK_PHASES_BEST_FIRST).toEqual([S, I, F, E]);
  });
});

describe('judgedPhase', () => {
  it.each([
    [true, F, S],
    [true, I, S],
    [false, F, F],
    [false, I, I],
  ] as const)('passed %s at severity %s -> %s', (passed, severity, phase) => {
    expect(judgedPhase(passed, severity)).toBe(phase);
  });
});

describe('CheckSchema', () => {
  const check = {
    name: 'quality.null-rate',
    passed: true,
    phase: S,
    severity: F,
    observed: 0.01,
    threshold: 0.05,
    detail: 'column "amount": 1.00% missing; allowed 5.00%',
  };

  it('accepts a check', () => {
    expect(CheckSchema.parse(check)).toEqual(check);
  });

  it.each([
    [{ ...check, passed: false }, 'passed: passed must be true exactly when phase is successful'],
    [{ ...check, phase: 'skipped' }, 'phase: Invalid option'],
    [{ ...check, severity: 'error' }, 'severity: Invalid option'],
    [{ ...check, name: '' }, 'name: must not be empty'],
  ])('refuses %j naming the field', (value, message) => {
    const r = CheckSchema.safeParse(value);
    expect(r.success ? '' : formatZodError(r.error)).toContain(message);
  });
});
