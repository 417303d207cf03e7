/** The staging judge as a table: each measurement and the phase and failed checks it must give. */
import { describe, expect, it } from 'vitest';
import { CheckPhase } from '../../src/core/contracts/checks';
import { StagingCheck, StagingPolicySchema, type StagingMeasurement } from '../../src/core/contracts/staging';
import { judgeStaging } from '../../src/core/policy/staging';

const policy = StagingPolicySchema.parse({});
const good: StagingMeasurement = {
  version: '7',
  probes: 205,
  valid: 205,
  schemaErrors: [],
  p99Ms: 3.2,
  roundTripP99Ms: 9.5,
  compared: 205,
  maxAbsDiff: 4e-8,
  worst: { row: 12, served: 0.12345678, evaluated: 0.12345674 },
  mismatches: 0,
};

const cases: Array<{ name: string; m: StagingMeasurement; phase: string; failed: string[] }> = [
  { name: 'every check holds', m: good, phase: CheckPhase.successful, failed: [] },
  {
    name: 'a difference exactly at the tolerance passes',
    m: { ...good, maxAbsDiff: 1e-6 },
    phase: CheckPhase.successful,
    failed: [],
  },
  {
    name: 'one served score off by 1e-3 fails parity',
    m: {
      ...good,
      maxAbsDiff: 1e-3,
      mismatches: 1,
      worst: { row: 40, served: 0.501, evaluated: 0.5 },
    },
    phase: CheckPhase.failed,
    failed: [StagingCheck.parity],
  },
  {
    name: 'nothing compared: parity unproven fails',
    m: { ...good, compared: 0, maxAbsDiff: null, worst: undefined },
    phase: CheckPhase.failed,
    failed: [StagingCheck.parity],
  },
  {
    name: 'a refused row fails the schema check',
    m: { ...good, valid: 204, compared: 204, schemaErrors: ['row 3: HTTP 400 invalid_input'] },
    phase: CheckPhase.failed,
    failed: [StagingCheck.schema],
  },
  {
    name: 'p99 above the SLO fails latency',
    m: { ...good, p99Ms: 251 },
    phase: CheckPhase.failed,
    failed: [StagingCheck.latency],
  },
  {
    name: 'p99 exactly at the SLO passes',
    m: { ...good, p99Ms: 250 },
    phase: CheckPhase.successful,
    failed: [],
  },
  {
    name: 'no timed probe: latency unmeasured fails',
    m: { ...good, p99Ms: null },
    phase: CheckPhase.failed,
    failed: [StagingCheck.latency],
  },
  {
    name: 'every answer from another version: schema and parity fail',
    m: { ...good, valid: 0, compared: 0, maxAbsDiff: null, schemaErrors: ['row 0: answered by v6, not v7'] },
    phase: CheckPhase.failed,
    failed: [StagingCheck.schema, StagingCheck.parity],
  },
  {
    name: 'no probe at all is an error',
    m: { ...good, probes: 0, valid: 0, compared: 0, maxAbsDiff: null, p99Ms: null, roundTripP99Ms: null },
    phase: CheckPhase.error,
    failed: [StagingCheck.schema],
  },
];

describe('judgeStaging', () => {
  it.each(cases)('$name', ({ m, phase, failed }) => {
    const v = judgeStaging(m, policy);
    expect(v.phase).toBe(phase);
    expect(v.failed).toEqual(failed);
    for (const c of v.checks) expect(c.passed).toBe(c.phase === CheckPhase.successful);
  });

  it('names the worst row and both scores in the parity detail', () => {
    const v = judgeStaging(
      { ...good, maxAbsDiff: 0.25, mismatches: 3, worst: { row: 9, served: 0.75, evaluated: 0.5 } },
      policy,
    );
    const parity = v.checks.find((c) => c.name === StagingCheck.parity);
    expect(parity?.detail).toMatch(/3 of 205 .* row 9, served 0.75, evaluated 0.5/);
  });

  it('a tighter tolerance from the policy is applied', () => {
    const strict = StagingPolicySchema.parse({ parityTolerance: 1e-9 });
    expect(judgeStaging(good, strict).failed).toEqual([StagingCheck.parity]);
  });

  it('refuses a policy field out of range, naming it', () => {
    const r = StagingPolicySchema.safeParse({ sampleRows: 0 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['sampleRows']);
  });
});
