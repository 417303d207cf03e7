/**
 * The business-KPI check of a canary analysis, pure: canary against stable on delayed labels (the
 * predictions each version made, joined by request id to the labels that have arrived), at the
 * policy's serving threshold.
 *
 * Decision rule, on the worsening `d` (canary - stable for cost; stable - canary for precision and
 * recall, so a positive `d` is always the canary doing worse):
 * - the interval of `d` at the alpha it is given (the caller shares alpha across the comparisons):
 *   for cost the bootstrap (or, on large samples, Wald) interval of the difference of mean costs,
 *   for precision and recall Newcombe's interval on the difference of proportions;
 * - allowed worsening: the larger of `maxDegradation` (absolute) and `maxRelativeDegradation`
 *   times stable's value;
 * - failed when the interval's lower bound is above the allowed worsening (significantly worse),
 *   successful when the estimate is within it, inconclusive in between.
 * Fewer than `minLabelled` cases in either version's denominator, or no label source, decide
 * nothing: the check is inconclusive when the policy requires labels, else skipped (reported as
 * not judged, passing). It never fails on a handful of labels.
 */
import type { BusinessKpiPolicy, LabelledOutcomes, VersionOutcomes } from '../contracts/business-kpi';
import { CheckPhase, type Check } from '../contracts/checks';
import { costDifferenceInterval, costPerDecision } from '../stats/decision-cost';
import { rateDifferenceInterval } from '../stats/proportions';

const fmt = (v: number): string => (Number.isFinite(v) ? String(Math.round(v * 1e4) / 1e4) : 'NaN');
const pct = (part: number, whole: number): string =>
  whole > 0 ? `${Math.round((part / whole) * 1000) / 10}%` : 'n/a';

/** The name of the check for a metric. */
export const businessCheckName = (metric: BusinessKpiPolicy['metric']): string =>
  `canary.business.${metric}.vs-stable`;

/** The cases a metric is a proportion (or mean) of. */
export function metricDenominator(metric: BusinessKpiPolicy['metric'], o: VersionOutcomes): number {
  if (metric === 'precision') return o.tp + o.fp;
  if (metric === 'recall') return o.tp + o.fn;
  return o.labelled;
}

const DENOMINATOR_NAME = {
  cost: 'labelled decisions',
  precision: 'labelled flagged decisions',
  recall: 'labelled frauds',
} as const;

const METRIC_TEXT = { cost: 'cost per decision', precision: 'precision', recall: 'recall' } as const;

/** The metric's value on one version's outcomes (NaN with an empty denominator). */
export function businessMetric(policy: BusinessKpiPolicy, o: VersionOutcomes): number {
  if (policy.metric === 'cost') return costPerDecision({ n: o.labelled, fp: o.fp, fn: o.fn }, policy.costs);
  const d = metricDenominator(policy.metric, o);
  return d > 0 ? o.tp / d : Number.NaN;
}

function coverage(label: string, o: VersionOutcomes): string {
  return `${label} ${o.labelled} of ${o.predictions} predictions labelled (${pct(o.labelled, o.predictions)})`;
}

/** Judges the business KPI of one analysis at significance `alpha` (already shared by the caller). */
export function judgeBusinessKpi(
  outcomes: LabelledOutcomes | undefined,
  policy: BusinessKpiPolicy,
  alpha: number,
): Check {
  const name = businessCheckName(policy.metric);
  const notJudged = (why: string): Check => {
    const required = policy.labels === 'required';
    return {
      name,
      phase: required ? CheckPhase.inconclusive : CheckPhase.successful,
      passed: !required,
      severity: CheckPhase.inconclusive,
      observed: null,
      threshold: policy.minLabelled,
      detail: required
        ? `${METRIC_TEXT[policy.metric]} cannot be judged: ${why} (labels are required)`
        : `${METRIC_TEXT[policy.metric]} not judged: ${why} (labels are optional)`,
    };
  };
  if (!outcomes) return notJudged('no labelled outcomes were measured');
  if (!outcomes.available) return notJudged(`no label source: ${outcomes.reason}`);
  const { canary, stable } = outcomes;
  const nc = metricDenominator(policy.metric, canary);
  const ns = metricDenominator(policy.metric, stable);
  const cov = `${coverage('canary', canary)}, ${coverage('stable', stable)}`;
  if (nc < policy.minLabelled || ns < policy.minLabelled) {
    return notJudged(
      `${DENOMINATOR_NAME[policy.metric]} canary ${nc}, stable ${ns}; at least ${policy.minLabelled} each are needed (${cov})`,
    );
  }
  const stableValue = businessMetric(policy, stable);
  const canaryValue = businessMetric(policy, canary);
  let low: number;
  let high: number;
  let estimate: number;
  let method: string;
  if (policy.metric === 'cost') {
    const d = costDifferenceInterval(
      { n: stable.labelled, fp: stable.fp, fn: stable.fn },
      { n: canary.labelled, fp: canary.fp, fn: canary.fn },
      policy.costs,
      alpha,
    );
    ({ low, high, estimate } = d);
    method = d.method === 'bootstrap' ? 'percentile bootstrap' : 'Wald (large samples)';
  } else {
    // rateDifferenceInterval(a, b) is b - a: stable - canary, the worsening of a higher-is-better rate.
    const d = rateDifferenceInterval({ events: canary.tp, n: nc }, { events: stable.tp, n: ns }, alpha);
    ({ low, high, estimate } = d);
    method = 'Newcombe';
  }
  const allowed = Math.max(policy.maxDegradation, policy.maxRelativeDegradation * Math.abs(stableValue));
  const phase = !Number.isFinite(estimate)
    ? CheckPhase.inconclusive
    : low > allowed
      ? CheckPhase.failed
      : estimate <= allowed
        ? CheckPhase.successful
        : CheckPhase.inconclusive;
  const direction = policy.metric === 'cost' ? 'canary - stable' : 'stable - canary';
  const costs =
    policy.metric === 'cost'
      ? `, costs FP ${fmt(policy.costs.falsePositive)} FN ${fmt(policy.costs.falseNegative)}`
      : '';
  return {
    name,
    phase,
    passed: phase === CheckPhase.successful,
    severity: CheckPhase.failed,
    observed: Number.isFinite(estimate) ? estimate : null,
    threshold: allowed,
    detail:
      `${METRIC_TEXT[policy.metric]} at threshold ${fmt(outcomes.threshold)}${costs}: canary ${fmt(canaryValue)}, stable ${fmt(stableValue)}; ` +
      `worsening (${direction}) ${fmt(estimate)}, ${fmt((1 - alpha) * 100)}% ${method} CI [${fmt(low)}, ${fmt(high)}]; ` +
      `allowed ${fmt(allowed)} (the larger of ${fmt(policy.maxDegradation)} and ${fmt(policy.maxRelativeDegradation * 100)}% of stable's); ` +
      `failed when the lower bound exceeds it; ${cov}`,
  };
}
