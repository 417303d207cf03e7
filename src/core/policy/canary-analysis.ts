/**
 * Canary analysis, pure: one analysis judges a window of measurements (canary against stable with
 * intervals, and against absolute limits) into checks of the four phases; `nextRolloutAction`
 * applies Argo Rollouts-style limits to the analyses so far. The workflow only carries out the
 * action.
 *
 * Decision rules, per rate (error rate, OOD rate):
 * - absolute: failed when the Wilson lower bound exceeds the limit (significantly worse), successful
 *   when the point estimate is within it, inconclusive in between;
 * - relative to stable: Newcombe's interval on `canary - stable`; failed when its lower bound
 *   exceeds the allowed increase, successful when the estimate is within it, else inconclusive.
 * The relative comparisons share `alpha` by Bonferroni. Latency: the absolute p99 ceiling, and the
 * p99 ratio against stable only when the canary's p99 is above the floor (a ratio of sub-millisecond
 * figures is timer noise). The ratio is judged on distribution-free intervals of both p99s (the
 * binomial order-statistic interval on the p99's rank, read from each window's latency histogram):
 * it fails only when the canary's lower bound is beyond `maxP99Ratio` times stable's upper bound, so
 * a few requests stalled by a busy machine do not roll back a version as fast as stable; without
 * histograms the point ratio decides. Prediction distribution: PSI between the two histograms. Fewer canary
 * requests than `minRequests` make every check inconclusive: tiny samples never decide.
 *
 * With a `businessKpi` policy, the business KPI on delayed labels joins the relative comparisons
 * (src/core/policy/business-kpi.ts): Bonferroni then shares alpha three ways, and when its labels
 * come from the whole rollout (`window: 'rollout'`, so every step looks at the same growing sample
 * again) its share is divided once more by the number of planned analyses.
 */
import type {
  AnalysisResult,
  CanaryMeasurement,
  CanaryPolicy,
  KpiGuardPolicy,
  VersionKpis,
} from '../contracts/canary';
import { CheckPhase, judgedPhase, worstPhaseOf, type Check, type CheckSeverity } from '../contracts/checks';
import { judgeBusinessKpi } from './business-kpi';
import { chiSquareSurvival } from '../stats/distributions';
import { populationStabilityIndex } from '../stats/divergence';
import { histogramQuantile } from '../contracts/kpi';
import { normalQuantile, rateDifferenceInterval, wilsonInterval } from '../stats/proportions';

/** Relative comparisons that share alpha (Bonferroni): error rate and OOD rate against stable. */
const RELATIVE_COMPARISONS = 2;

/** The relative comparisons of a policy: the two rates, plus the business KPI when it names one. */
export function relativeComparisons(policy: Pick<CanaryPolicy, 'businessKpi'>): number {
  return RELATIVE_COMPARISONS + (policy.businessKpi ? 1 : 0);
}

/**
 * The alpha of the business-KPI check: its Bonferroni share, divided by the planned analyses when
 * every step judges the same growing rollout-long sample (repeated looks at one sample).
 */
export function businessKpiAlpha(
  policy: Pick<CanaryPolicy, 'alpha' | 'businessKpi' | 'steps' | 'shadow'>,
): number {
  const share = policy.alpha / relativeComparisons(policy);
  const looks = policy.businessKpi?.window === 'rollout' ? policy.steps.length + (policy.shadow ? 1 : 0) : 1;
  return share / looks;
}
/** The latency quantile the ratio compares. */
const LATENCY_QUANTILE = 0.99;

/**
 * The `(1 - alpha)` order-statistic interval of the `q` quantile of a window's latency histogram, in
 * ms: the ranks `nq -/+ z sqrt(nq(1-q))` read back through the histogram. An upper rank inside the
 * +Inf bucket gives an unbounded upper end.
 */
export function latencyQuantileInterval(
  h: { bounds: ReadonlyArray<number | null>; counts: readonly number[] },
  q: number,
  alpha: number,
): { low: number; high: number } | undefined {
  const n = h.counts[h.counts.length - 1] ?? 0;
  if (n <= 0) return undefined;
  const z = normalQuantile(1 - alpha / 2);
  const spread = z * Math.sqrt(n * q * (1 - q));
  const lowRank = Math.max(1, Math.floor(n * q - spread));
  const highRank = Math.min(n, Math.ceil(n * q + spread) + 1);
  const finite =
    h.bounds.length > 0 && h.bounds[h.bounds.length - 1] === null ? h.counts.length - 1 : h.counts.length;
  const lastFinite = finite > 0 ? (h.counts[finite - 1] ?? 0) : 0;
  const low = histogramQuantile(h.bounds, h.counts, lowRank / n) * 1000;
  const high =
    highRank > lastFinite
      ? Number.POSITIVE_INFINITY
      : histogramQuantile(h.bounds, h.counts, highRank / n) * 1000;
  return { low, high };
}

const fmt = (v: number): string => (Number.isFinite(v) ? String(Math.round(v * 1e4) / 1e4) : 'NaN');

function check(
  name: string,
  phase: CheckPhase,
  observed: number | null,
  threshold: number | null,
  detail: string,
  severity: CheckSeverity = CheckPhase.failed,
): Check {
  return { name, phase, passed: phase === CheckPhase.successful, severity, observed, threshold, detail };
}

function rateChecks(
  label: string,
  events: { canary: number; stable: number },
  n: { canary: number; stable: number },
  limits: { absolute: number; increase?: number },
  alpha: number,
  subject = 'canary',
  comparisons = RELATIVE_COMPARISONS,
): Check[] {
  const out: Check[] = [];
  const abs = wilsonInterval(events.canary, n.canary, alpha);
  const absPhase =
    abs.low > limits.absolute
      ? CheckPhase.failed
      : abs.estimate <= limits.absolute
        ? CheckPhase.successful
        : CheckPhase.inconclusive;
  out.push(
    check(
      `${subject}.${label}.absolute`,
      absPhase,
      abs.estimate,
      limits.absolute,
      `${subject} ${label} ${fmt(abs.estimate)} (${fmt((1 - alpha) * 100)}% CI [${fmt(abs.low)}, ${fmt(abs.high)}], ${events.canary}/${n.canary}) against the ceiling ${fmt(limits.absolute)}`,
    ),
  );
  if (limits.increase !== undefined) {
    const rel = rateDifferenceInterval(
      { events: events.stable, n: n.stable },
      { events: events.canary, n: n.canary },
      alpha / comparisons,
    );
    const relPhase = !Number.isFinite(rel.estimate)
      ? CheckPhase.inconclusive
      : rel.low > limits.increase
        ? CheckPhase.failed
        : rel.estimate <= limits.increase
          ? CheckPhase.successful
          : CheckPhase.inconclusive;
    out.push(
      check(
        `canary.${label}.vs-stable`,
        relPhase,
        rel.estimate,
        limits.increase,
        `canary - stable ${label} ${fmt(rel.estimate)} (CI [${fmt(rel.low)}, ${fmt(rel.high)}], Bonferroni alpha ${fmt(alpha / comparisons)}), allowed increase ${fmt(limits.increase)}`,
      ),
    );
  }
  return out;
}

/** Judges one analysis window. */
export function judgeCanary(
  m: CanaryMeasurement,
  policy: CanaryPolicy,
  step: number,
): Omit<AnalysisResult, 'at'> {
  const { canary, stable } = m;
  if (canary.requests < policy.minRequests) {
    const checks = [
      check(
        'canary.sample-size',
        CheckPhase.inconclusive,
        canary.requests,
        policy.minRequests,
        `only ${canary.requests} canary request(s) in the window; at least ${policy.minRequests} are needed to judge`,
        CheckPhase.inconclusive,
      ),
    ];
    return { step, phase: CheckPhase.inconclusive, checks };
  }
  const n = { canary: canary.requests, stable: stable.requests };
  const comparisons = relativeComparisons(policy);
  const checks: Check[] = [
    ...rateChecks(
      'error-rate',
      { canary: canary.errors, stable: stable.errors },
      n,
      { absolute: policy.maxErrorRate, increase: policy.maxErrorRateIncrease },
      policy.alpha,
      'canary',
      comparisons,
    ),
    ...rateChecks(
      'ood-rate',
      { canary: canary.oodRequests, stable: stable.oodRequests },
      n,
      { absolute: policy.maxOodRate },
      policy.alpha,
      'canary',
      comparisons,
    ),
  ];
  const p99 = canary.p99Ms;
  if (step === 0) {
    // Shadow phase: mirrored requests run as background work after the live answer; their latency
    // says nothing about serving, so only errors, inputs and predictions are judged.
    checks.push(
      check(
        'canary.latency.shadow',
        CheckPhase.successful,
        null,
        null,
        'latency is not judged on mirrored (shadow) traffic: it runs behind the live answer',
      ),
    );
  } else {
    checks.push(
      check(
        'canary.latency.p99.absolute',
        Number.isFinite(p99)
          ? judgedPhase(p99 <= policy.maxP99Ms, CheckPhase.failed)
          : CheckPhase.inconclusive,
        Number.isFinite(p99) ? p99 : null,
        policy.maxP99Ms,
        `canary p99 ${fmt(p99)} ms against the ceiling ${fmt(policy.maxP99Ms)} ms`,
      ),
    );
    if (!Number.isFinite(p99) || !Number.isFinite(stable.p99Ms) || stable.p99Ms <= 0) {
      checks.push(
        check(
          'canary.latency.p99.ratio',
          CheckPhase.inconclusive,
          null,
          policy.maxP99Ratio,
          'p99 of canary or stable not measured',
          CheckPhase.inconclusive,
        ),
      );
    } else if (m.stableFromEarlierWindow) {
      checks.push(
        check(
          'canary.latency.p99.ratio',
          CheckPhase.successful,
          p99 / stable.p99Ms,
          policy.maxP99Ratio,
          `stable serves no traffic at ${step}%: its latency is from an earlier window under other load, so the ratio is not judged (the absolute ceiling applies)`,
        ),
      );
    } else if (p99 <= policy.latencyFloorMs) {
      checks.push(
        check(
          'canary.latency.p99.ratio',
          CheckPhase.successful,
          p99 / stable.p99Ms,
          policy.maxP99Ratio,
          `canary p99 ${fmt(p99)} ms is below the ${fmt(policy.latencyFloorMs)} ms floor: the ratio is not judged`,
        ),
      );
    } else {
      const ratio = p99 / stable.p99Ms;
      // Each version's interval at alpha/2, so the pair holds with probability 1 - alpha.
      const c = canary.latencyHistogram
        ? latencyQuantileInterval(canary.latencyHistogram, LATENCY_QUANTILE, policy.alpha / 2)
        : undefined;
      const s = stable.latencyHistogram
        ? latencyQuantileInterval(stable.latencyHistogram, LATENCY_QUANTILE, policy.alpha / 2)
        : undefined;
      if (c && s) {
        const lowerRatio = c.low / s.high;
        checks.push(
          check(
            'canary.latency.p99.ratio',
            judgedPhase(!(lowerRatio > policy.maxP99Ratio), CheckPhase.failed),
            ratio,
            policy.maxP99Ratio,
            `p99 ratio canary/stable ${fmt(ratio)} (${fmt(p99)} ms, ${fmt((1 - policy.alpha) * 100)}% CI [${fmt(c.low)}, ${fmt(c.high)}], vs ${fmt(stable.p99Ms)} ms, CI [${fmt(s.low)}, ${fmt(s.high)}]); lower bound ${fmt(lowerRatio)}, allowed ${fmt(policy.maxP99Ratio)}`,
          ),
        );
      } else {
        checks.push(
          check(
            'canary.latency.p99.ratio',
            judgedPhase(ratio <= policy.maxP99Ratio, CheckPhase.failed),
            ratio,
            policy.maxP99Ratio,
            `p99 ratio canary/stable ${fmt(ratio)} (${fmt(p99)} ms vs ${fmt(stable.p99Ms)} ms), allowed ${fmt(policy.maxP99Ratio)}`,
          ),
        );
      }
    }
  }
  const comparable =
    stable.requests >= policy.minRequests &&
    stable.predictionHistogram.length > 0 &&
    stable.predictionHistogram.length === canary.predictionHistogram.length;
  const psi = comparable
    ? populationStabilityIndex(stable.predictionHistogram, canary.predictionHistogram)
    : Number.NaN;
  // Under no shift, PSI / (1/n1 + 1/n2) is about chi-square with bins - 1 degrees of freedom: a PSI
  // over the limit counts only when it is also significant, so small windows cannot fail on noise.
  const psiP = Number.isFinite(psi)
    ? chiSquareSurvival(
        psi / (1 / stable.requests + 1 / canary.requests),
        stable.predictionHistogram.length - 1,
      )
    : Number.NaN;
  const psiFails = Number.isFinite(psi) && psi > policy.maxPredictionPsi && psiP < policy.alpha;
  checks.push(
    check(
      'canary.predictions.psi',
      Number.isFinite(psi) ? judgedPhase(!psiFails, CheckPhase.failed) : CheckPhase.inconclusive,
      Number.isFinite(psi) ? psi : null,
      policy.maxPredictionPsi,
      Number.isFinite(psi)
        ? `prediction distribution PSI canary vs stable ${fmt(psi)} (p ${fmt(psiP)} of no shift), allowed ${fmt(policy.maxPredictionPsi)}`
        : `prediction distributions not comparable (stable requests ${stable.requests}, bins ${stable.predictionHistogram.length} vs ${canary.predictionHistogram.length})`,
      Number.isFinite(psi) ? CheckPhase.failed : CheckPhase.inconclusive,
    ),
  );
  if (policy.businessKpi)
    checks.push(judgeBusinessKpi(m.outcomes, policy.businessKpi, businessKpiAlpha(policy)));
  return {
    step,
    phase: worstPhaseOf(checks),
    checks,
    ...(policy.businessKpi && m.outcomes && { outcomes: m.outcomes }),
  };
}

export type RolloutAction =
  | { action: 'continue' }
  | { action: 'remeasure'; reason: string }
  | { action: 'pause'; reason: string }
  | { action: 'rollback'; reason: string };

/**
 * What follows the analyses so far (in order), in the manner of Argo Rollouts: more failures than
 * `failureLimit` or `consecutiveErrorLimit` errors in a row roll back; an error below the limit is
 * measured again; an inconclusive one is measured again up to `inconclusiveLimit` times, then the
 * rollout pauses for a human (counted from index `sinceResume`, the analyses since the last resume).
 */
export function nextRolloutAction(
  analyses: readonly Pick<AnalysisResult, 'phase' | 'step'>[],
  policy: Pick<CanaryPolicy, 'failureLimit' | 'inconclusiveLimit' | 'consecutiveErrorLimit'>,
  sinceResume = 0,
): RolloutAction {
  const last = analyses[analyses.length - 1];
  if (!last) return { action: 'continue' };
  const failures = analyses.filter((a) => a.phase === CheckPhase.failed).length;
  if (failures > policy.failureLimit) {
    return {
      action: 'rollback',
      reason: `analysis failed at ${last.step}% (${failures} failure(s), limit ${policy.failureLimit})`,
    };
  }
  let errors = 0;
  for (let i = analyses.length - 1; i >= 0 && analyses[i]!.phase === CheckPhase.error; i--) errors++;
  if (errors >= policy.consecutiveErrorLimit) {
    return {
      action: 'rollback',
      reason: `${errors} consecutive analyses could not measure (limit ${policy.consecutiveErrorLimit})`,
    };
  }
  if (last.phase === CheckPhase.error)
    return { action: 'remeasure', reason: `measurement error ${errors} of ${policy.consecutiveErrorLimit}` };
  const inconclusive = analyses.slice(sinceResume).filter((a) => a.phase === CheckPhase.inconclusive).length;
  if (last.phase === CheckPhase.inconclusive && inconclusive > policy.inconclusiveLimit) {
    return { action: 'pause', reason: `analysis inconclusive at ${last.step}%: waiting for resume or abort` };
  }
  if (last.phase === CheckPhase.inconclusive) {
    return {
      action: 'remeasure',
      reason: `inconclusive ${inconclusive} of ${policy.inconclusiveLimit} allowed`,
    };
  }
  return { action: 'continue' };
}

/**
 * Judges one kpiGuard window of the promoted champion against absolute limits only (stable is
 * gone): error and OOD rate failed only when the Wilson lower bound is above the ceiling, p99 against
 * its ceiling. Fewer requests than `minRequests` is inconclusive, never a breach.
 */
export function judgeGuard(
  kpis: VersionKpis,
  policy: Pick<KpiGuardPolicy, 'maxErrorRate' | 'maxP99Ms' | 'maxOodRate' | 'minRequests' | 'alpha'>,
): { phase: CheckPhase; checks: Check[] } {
  if (kpis.requests < policy.minRequests) {
    const checks = [
      check(
        'champion.sample-size',
        CheckPhase.inconclusive,
        kpis.requests,
        policy.minRequests,
        `only ${kpis.requests} request(s) in the window; at least ${policy.minRequests} are needed to judge`,
        CheckPhase.inconclusive,
      ),
    ];
    return { phase: CheckPhase.inconclusive, checks };
  }
  const n = { canary: kpis.requests, stable: 0 };
  const checks: Check[] = [
    ...rateChecks(
      'error-rate',
      { canary: kpis.errors, stable: 0 },
      n,
      { absolute: policy.maxErrorRate },
      policy.alpha,
      'champion',
    ),
    ...rateChecks(
      'ood-rate',
      { canary: kpis.oodRequests, stable: 0 },
      n,
      { absolute: policy.maxOodRate },
      policy.alpha,
      'champion',
    ),
  ];
  const p99 = kpis.p99Ms;
  checks.push(
    check(
      'champion.latency.p99.absolute',
      Number.isFinite(p99) ? judgedPhase(p99 <= policy.maxP99Ms, CheckPhase.failed) : CheckPhase.inconclusive,
      Number.isFinite(p99) ? p99 : null,
      policy.maxP99Ms,
      `champion p99 ${fmt(p99)} ms against the ceiling ${fmt(policy.maxP99Ms)} ms`,
      Number.isFinite(p99) ? CheckPhase.failed : CheckPhase.inconclusive,
    ),
  );
  return { phase: worstPhaseOf(checks), checks };
}
