/**
 * The staging judge: a pure function of what the staging probe measured and the staging policy.
 * Three checks, each `successful` or `failed` (staging has no "more data" to wait for: the probe is
 * the whole sample), plus `error` when nothing could be measured at all:
 *
 * - schema: every probe answered 200, in the serving contract, by the candidate on the staging route;
 * - latency: p99 of the timed probes at most the SLO;
 * - serving parity: every compared probe's served score within the tolerance of the evaluation's.
 *
 * Sandbox-safe.
 */
import { CheckPhase, worstPhaseOf, type Check } from '../contracts/checks';
import {
  StagingCheck,
  type StagingMeasurement,
  type StagingPolicy,
  type StagingVerdict,
} from '../contracts/staging';

function check(
  name: string,
  passed: boolean,
  observed: number | null,
  threshold: number,
  detail: string,
): Check {
  const phase = passed ? CheckPhase.successful : CheckPhase.failed;
  return { name, phase, passed, severity: CheckPhase.failed, observed, threshold, detail };
}

export function judgeStaging(m: StagingMeasurement, policy: StagingPolicy): StagingVerdict {
  if (m.probes === 0) {
    const error: Check = {
      name: StagingCheck.schema,
      phase: CheckPhase.error,
      passed: false,
      severity: CheckPhase.failed,
      observed: 0,
      threshold: null,
      detail: 'no holdout row was sent through the staging route',
    };
    return { phase: CheckPhase.error, checks: [error], failed: [error.name] };
  }
  const invalid = m.probes - m.valid;
  const checks: Check[] = [
    check(
      StagingCheck.schema,
      invalid === 0 && m.schemaErrors.length === 0,
      invalid,
      0,
      invalid === 0
        ? `all ${m.probes} holdout rows accepted and answered in the serving contract by v${m.version}`
        : `${invalid} of ${m.probes} holdout rows refused or answered off contract: ${m.schemaErrors.join('; ')}`,
    ),
    m.p99Ms === null
      ? check(
          StagingCheck.latency,
          false,
          null,
          policy.maxP99Ms,
          'no timed probe answered: latency unmeasured',
        )
      : check(
          StagingCheck.latency,
          m.p99Ms <= policy.maxP99Ms,
          m.p99Ms,
          policy.maxP99Ms,
          `serving p99 ${round(m.p99Ms)} ms over the timed probes (SLO ${policy.maxP99Ms} ms)` +
            (m.roundTripP99Ms === null ? '' : `; round trip p99 ${round(m.roundTripP99Ms)} ms`),
        ),
  ];
  if (m.compared === 0 || m.maxAbsDiff === null) {
    checks.push(
      check(
        StagingCheck.parity,
        false,
        null,
        policy.parityTolerance,
        'no served score could be compared with the evaluation: parity unproven',
      ),
    );
  } else {
    const worst = m.worst
      ? ` (worst: holdout row ${m.worst.row}, served ${m.worst.served}, evaluated ${m.worst.evaluated})`
      : '';
    checks.push(
      check(
        StagingCheck.parity,
        m.mismatches === 0 && m.maxAbsDiff <= policy.parityTolerance,
        m.maxAbsDiff,
        policy.parityTolerance,
        `${m.mismatches} of ${m.compared} served scores differ from the evaluation's by more than ` +
          `${policy.parityTolerance}; max |diff| ${m.maxAbsDiff.toExponential(2)}${worst}`,
      ),
    );
  }
  const failed = checks.filter((c) => !c.passed).map((c) => c.name);
  return { phase: worstPhaseOf(checks), checks, failed };
}

const round = (v: number): number => Math.round(v * 1000) / 1000;
