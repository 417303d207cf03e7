/**
 * The promotion gate: a pure function of the policy, the two models' evaluations on the frozen holdout and
 * their paired comparison (sandbox-safe; never throws).
 *
 * Rules (each is a named check in the verdict; `reasons` lists every failed check, not just the first):
 * - Inputs are validated against the contracts; an invalid input gives `inconclusive` naming the field.
 * - A statistic that is NaN or null is "not measured": the check that needs it fails as `inconclusive` and its
 *   reason names the statistic. A NaN never promotes.
 * - Holdout: fewer than `minHoldoutSize` examples or `minPositives` positives -> `inconclusive`; champion and
 *   challenger evaluated on holdouts of different size -> `inconclusive`.
 * - First model (no champion): every `absoluteMinimums` bar must hold (>= for higher-is-better metrics, <= for
 *   lower-is-better ones) and the absolute guardrails (fairness gap ceiling, p95 latency ceiling) too;
 *   a miss -> `reject`.
 * - With a champion: a comparison computed with the policy's method is required (for the bootstrap: on the
 *   primary metric, at an alpha no larger than the policy's, with at least `bootstrapIterations` resamples of
 *   which at least {@link MIN_VALID_BOOTSTRAP_FRACTION} valid). The improvement on the primary metric (the
 *   bootstrap estimate, or the evaluations' difference for McNemar) must be >= `minImprovement` AND
 *   significant: bootstrap `ciLow > 0`, McNemar `pValue < alpha` with c > b (both strict, so a bound exactly 0
 *   or p exactly alpha is not significant). Not significant or too small -> `inconclusive`; significantly
 *   worse (bootstrap `ciHigh < 0`, McNemar `p < alpha` with b > c) -> `reject`.
 * - Guardrails with a champion, each a `reject` when exceeded: ECE and Brier may rise by at most
 *   `maxCalibrationRegression`; DPD and EOD must stay <= `maxFairnessGap` and rise by at most
 *   `maxFairnessRegression`; p95 latency must stay <= `maxP95LatencyMs` and, once the challenger's p95 is above
 *   `latencyRatioFloorMs`, <= `maxLatencyRegressionRatio` x the champion's (at or below the floor the ratio check
 *   passes: sub-millisecond ratios are timer noise). Fairness not measured while `requireFairness` ->
 *   `inconclusive`.
 * - Fairness with a fairness report (src/core/stats/fairness.ts) in the challenger's evaluation: each metric of
 *   `fairnessMetrics` (default demographic parity and equal opportunity) is judged on its bootstrap interval
 *   instead of its point estimate: `reject` only when the interval's lower bound is above `maxFairnessGap`, or the
 *   paired interval of its change against the champion lies above `maxFairnessRegression`; a gap over fewer than
 *   two groups large enough to judge -> `inconclusive`. Without a report the point estimates are judged as above.
 * - Attributions (`guardrails.attribution`, src/core/policy/attribution.ts): a challenger leaning on a sensitive or
 *   proxy-sensitive feature -> `inconclusive` (a human reviews).
 * - Tolerance comparisons allow {@link FLOAT_TOLERANCE} for rounding (0.03 - 0.02 is not above 0.01);
 *   significance comparisons are exact.
 * - Every check has the shared shape of src/core/contracts/checks.ts: a check that does not pass takes the phase
 *   of its severity (`failed` for the rules above that `reject`, else `inconclusive`); an invalid input is a
 *   check in phase `error`.
 * - Decision: from the worst phase of all checks ({@link DECISION_BY_PHASE}): `failed` -> `reject`;
 *   `inconclusive` or `error` -> `inconclusive`; `successful` -> `promote`.
 */
import type { z } from 'zod';
import type {
  Comparison,
  GateCheck,
  GateDecision,
  GatePolicy,
  GatePolicyInput,
  GateVerdict,
  Measured,
  ModelEvaluation,
} from '../contracts/gate';
import { CheckPhase, judgedPhase, worstPhaseOf } from '../contracts/checks';
import type { LatencyComparison } from '../contracts/evaluation';
import { formatIssuePath } from '../contracts/errors';
import { ComparisonSchema, GatePolicySchema, ModelEvaluationSchema } from '../contracts/gate';
import { METRIC_DIRECTIONS, type MetricName } from '../contracts/metrics';
import { orientedDifference } from '../stats/metrics';
import type { FairnessMetric, FairnessReport } from '../contracts/fairness';
import { attributionChecks } from './attribution';

// The verdict types are contracts; re-exported for the importers of this module.
export type { GateCheck, GateDecision, GateVerdict };

/** Share of bootstrap resamples that must be valid: more skipped ones mean a class is too thin to trust. */
export const MIN_VALID_BOOTSTRAP_FRACTION = 0.95;
/** Slack on tolerance comparisons so float rounding of a difference cannot flip a guardrail. */
export const FLOAT_TOLERANCE = 1e-12;

/**
 * The decision for the worst phase of the checks. `error` (the gate could not judge its input) is
 * `inconclusive`: it never promotes, and it is not a verdict on the model.
 */
export const DECISION_BY_PHASE: { readonly [P in CheckPhase]: GateDecision } = {
  successful: 'promote',
  inconclusive: 'inconclusive',
  failed: 'reject',
  error: 'inconclusive',
};

/** Inputs of {@link decidePromotion}. `policy` may be partial: defaults are applied. */
export interface PromotionInput {
  policy: GatePolicyInput;
  challenger: ModelEvaluation;
  champion?: ModelEvaluation;
  comparison?: Comparison;
  /**
   * Paired bootstrap interval of the challenger/champion p95 latency ratio. With it, a latency
   * regression is called only when the interval's lower bound exceeds the limit.
   */
  latencyComparison?: LatencyComparison;
}

function measured(v: Measured | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function fmt(v: Measured | undefined): string {
  if (!measured(v)) return 'NaN';
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

class CheckList {
  readonly checks: GateCheck[] = [];

  add(check: GateCheck): void {
    this.checks.push(check);
  }

  /** Records a check that was carried out and passed or not; its phase follows from `severity`. */
  record(
    passed: boolean,
    name: string,
    severity: GateCheck['severity'],
    observed: GateCheck['observed'],
    threshold: GateCheck['threshold'],
    detail: string,
  ): void {
    this.add({ name, passed, phase: judgedPhase(passed, severity), severity, observed, threshold, detail });
  }

  pass(
    name: string,
    severity: GateCheck['severity'],
    observed: GateCheck['observed'],
    threshold: GateCheck['threshold'],
    detail: string,
  ): void {
    this.record(true, name, severity, observed, threshold, detail);
  }

  fail(
    name: string,
    severity: GateCheck['severity'],
    observed: GateCheck['observed'],
    threshold: GateCheck['threshold'],
    detail: string,
  ): void {
    this.record(false, name, severity, observed, threshold, detail);
  }

  /** Records that `what` could not be checked because `value` is not measured. */
  unmeasured(name: string, what: string, threshold: GateCheck['threshold']): void {
    this.fail(
      name,
      'inconclusive',
      null,
      threshold,
      `${what} is not measured (NaN or missing); cannot check ${name}`,
    );
  }
}

function issuesOf(label: string, error: z.ZodError): string[] {
  return error.issues.map((i) => `${label}.${formatIssuePath(i.path)}: ${i.message}`);
}

function invalidInput(problems: string[]): GateVerdict {
  const checks: GateCheck[] = problems.map((p) => ({
    name: 'input.valid',
    passed: false,
    phase: CheckPhase.error,
    severity: CheckPhase.inconclusive,
    observed: null,
    threshold: null,
    detail: `invalid gate input: ${p}`,
  }));
  const phase = worstPhaseOf(checks);
  return { decision: DECISION_BY_PHASE[phase], phase, reasons: checks.map((c) => c.detail), checks };
}

/** Upper-bound check `observed <= limit` with rounding slack; severity failed, NaN -> inconclusive. */
function checkAtMost(
  list: CheckList,
  name: string,
  what: string,
  observed: Measured | undefined,
  limit: number,
  unit = '',
): void {
  if (!measured(observed)) {
    list.unmeasured(name, what, limit);
    return;
  }
  const ok = observed <= limit + FLOAT_TOLERANCE;
  const detail = ok
    ? `${what} ${fmt(observed)}${unit} within allowed ${fmt(limit)}${unit}`
    : `${what} ${fmt(observed)}${unit} exceeds allowed ${fmt(limit)}${unit}`;
  list.record(ok, name, 'failed', observed, limit, detail);
}

/** Increase check `challenger - champion <= tolerance`. */
function checkRegression(
  list: CheckList,
  name: string,
  what: string,
  challenger: Measured | undefined,
  champion: Measured | undefined,
  tolerance: number,
): void {
  if (!measured(challenger)) return list.unmeasured(name, `challenger ${what}`, tolerance);
  if (!measured(champion)) return list.unmeasured(name, `champion ${what}`, tolerance);
  const increase = challenger - champion;
  const ok = increase <= tolerance + FLOAT_TOLERANCE;
  const detail = `${what} ${ok ? 'change' : 'regressed'}: challenger ${fmt(challenger)} vs champion ${fmt(champion)} (increase ${fmt(increase)}, allowed ${fmt(tolerance)})`;
  list.record(ok, name, 'failed', increase, tolerance, detail);
}

function checkHoldout(
  list: CheckList,
  policy: GatePolicy,
  challenger: ModelEvaluation,
  champion?: ModelEvaluation,
): void {
  const sizeOk = challenger.n >= policy.minHoldoutSize;
  const sizeDetail = `holdout has ${challenger.n} examples; at least ${policy.minHoldoutSize} required`;
  if (sizeOk) list.pass('holdout.size', 'inconclusive', challenger.n, policy.minHoldoutSize, sizeDetail);
  else
    list.fail(
      'holdout.size',
      'inconclusive',
      challenger.n,
      policy.minHoldoutSize,
      `holdout too small: ${sizeDetail}`,
    );

  const posOk = challenger.positives >= policy.minPositives;
  const posDetail = `holdout has ${challenger.positives} positives; at least ${policy.minPositives} required`;
  if (posOk)
    list.pass('holdout.positives', 'inconclusive', challenger.positives, policy.minPositives, posDetail);
  else {
    list.fail(
      'holdout.positives',
      'inconclusive',
      challenger.positives,
      policy.minPositives,
      `too few positives: ${posDetail}`,
    );
  }

  if (champion !== undefined) {
    const same = champion.n === challenger.n && champion.positives === challenger.positives;
    const detail = `champion evaluated on n=${champion.n} (${champion.positives} positives), challenger on n=${challenger.n} (${challenger.positives} positives)`;
    if (same) list.pass('holdout.same', 'inconclusive', challenger.n, champion.n, detail);
    else
      list.fail('holdout.same', 'inconclusive', challenger.n, champion.n, `not the same holdout: ${detail}`);
  }
}

function checkMinimums(list: CheckList, policy: GatePolicy, challenger: ModelEvaluation): void {
  const entries = Object.entries(policy.absoluteMinimums).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, bar] of entries) {
    const metric = key as MetricName;
    if (bar === undefined) continue;
    const name = `minimum.${metric}`;
    const value = challenger.metrics[metric];
    if (!measured(value)) {
      list.unmeasured(name, `challenger ${metric}`, bar);
      continue;
    }
    const higher = METRIC_DIRECTIONS[metric] === 'higher';
    const ok = higher ? value >= bar - FLOAT_TOLERANCE : value <= bar + FLOAT_TOLERANCE;
    const relation = higher ? 'at least' : 'at most';
    const detail = `${metric} ${fmt(value)} ${ok ? 'meets' : 'fails'} the first-model bar (${relation} ${fmt(bar)})`;
    list.record(ok, name, 'failed', value, bar, detail);
  }
}

function checkFairness(
  list: CheckList,
  policy: GatePolicy,
  challenger: ModelEvaluation,
  champion: ModelEvaluation | undefined,
): void {
  const g = policy.guardrails;
  if (challenger.fairness === undefined) {
    if (g.requireFairness) {
      list.fail(
        'guardrail.fairness.measured',
        'inconclusive',
        null,
        null,
        'fairness not measured for the challenger (no sensitive attribute in the holdout) but the policy requires it',
      );
    }
    return;
  }
  if (challenger.fairness.report !== undefined) {
    checkFairnessReport(list, policy, challenger.fairness.report, champion !== undefined);
    return;
  }
  for (const gap of ['dpd', 'eod'] as const) {
    const label = gap === 'dpd' ? 'demographic parity difference' : 'equal opportunity difference';
    checkAtMost(
      list,
      `guardrail.fairness.${gap}.max`,
      `challenger ${label} (${gap})`,
      challenger.fairness[gap],
      g.maxFairnessGap,
    );
    if (champion === undefined) continue;
    if (champion.fairness === undefined) {
      list.unmeasured(`guardrail.fairness.${gap}.regression`, `champion ${gap}`, g.maxFairnessRegression);
      continue;
    }
    checkRegression(
      list,
      `guardrail.fairness.${gap}.regression`,
      `${label} (${gap})`,
      challenger.fairness[gap],
      champion.fairness[gap],
      g.maxFairnessRegression,
    );
  }
}

/** Fairness metrics judged by default when the evaluation carries a fairness report. */
export const DEFAULT_JUDGED_FAIRNESS_METRICS: readonly FairnessMetric[] = [
  'demographic_parity',
  'equal_opportunity',
];

/**
 * Fairness judged on intervals (the evaluation's fairness report): a gap fails its ceiling only when its
 * bootstrap interval lies wholly above it (`ciLow > maxFairnessGap`), and its change against the champion fails
 * only when the paired interval of the change lies wholly above `maxFairnessRegression`; sampling noise on small
 * groups cannot reject a model. A gap over fewer than two judgeable groups (each group needs the report's
 * minimum count) is not measured: inconclusive.
 */
function checkFairnessReport(
  list: CheckList,
  policy: GatePolicy,
  report: FairnessReport,
  withChampion: boolean,
): void {
  const g = policy.guardrails;
  const level = `${fmt(100 * (1 - report.alpha))}%`;
  for (const metric of g.fairnessMetrics ?? DEFAULT_JUDGED_FAIRNESS_METRICS) {
    const entry = report.metrics.find((m) => m.metric === metric);
    const name = `guardrail.fairness.${metric}`;
    if (entry === undefined || !measured(entry.gap.estimate) || !measured(entry.gap.ciLow)) {
      const why =
        entry === undefined
          ? 'not in the fairness report'
          : `not measured: fewer than two groups with at least ${report.minGroupCount} ${entry.countOf} (too small to judge: ${entry.tooSmall.join(', ') || 'none'})`;
      list.fail(`${name}.max`, 'inconclusive', null, g.maxFairnessGap, `${metric} gap ${why}`);
      continue;
    }
    const groups = `groups ${entry.judged.join(', ')}${entry.tooSmall.length ? `; too small to judge: ${entry.tooSmall.join(', ')}` : ''}`;
    const over = (entry.gap.ciLow as number) > g.maxFairnessGap + FLOAT_TOLERANCE;
    const detail = `${metric} gap ${fmt(entry.gap.estimate)} (${level} CI [${fmt(entry.gap.ciLow)}, ${fmt(entry.gap.ciHigh)}], ${groups}); rule: fails only when the lower bound exceeds the ceiling ${fmt(g.maxFairnessGap)} (${entry.rule})`;
    list.record(
      !over,
      `${name}.max`,
      'failed',
      entry.gap.estimate,
      g.maxFairnessGap,
      over ? `fairness gap significantly above the ceiling: ${detail}` : detail,
    );
    if (!withChampion) continue;
    const change = entry.vsChampion;
    if (change === undefined || !measured(change.estimate) || !measured(change.ciLow)) {
      list.unmeasured(
        `${name}.regression`,
        `change of the ${metric} gap against the champion`,
        g.maxFairnessRegression,
      );
      continue;
    }
    const worse = (change.ciLow as number) > g.maxFairnessRegression + FLOAT_TOLERANCE;
    const cdetail = `${metric} gap change against the champion ${fmt(change.estimate)} (champion ${fmt(change.champion)}, paired ${level} CI [${fmt(change.ciLow)}, ${fmt(change.ciHigh)}]); rule: fails only when the lower bound exceeds the allowed increase ${fmt(g.maxFairnessRegression)}`;
    list.record(
      !worse,
      `${name}.regression`,
      'failed',
      change.estimate,
      g.maxFairnessRegression,
      worse ? `fairness regressed significantly: ${cdetail}` : cdetail,
    );
  }
}

function checkLatency(
  list: CheckList,
  policy: GatePolicy,
  challenger: ModelEvaluation,
  champion?: ModelEvaluation,
  interval?: LatencyComparison,
): void {
  const g = policy.guardrails;
  checkAtMost(
    list,
    'guardrail.latency.p95.max',
    'challenger p95 latency',
    challenger.latency.p95,
    g.maxP95LatencyMs,
    ' ms',
  );
  if (champion === undefined) return;
  const name = 'guardrail.latency.p95.ratio';
  const a = champion.latency.p95;
  const b = challenger.latency.p95;
  if (!measured(b)) return list.unmeasured(name, 'challenger p95 latency', g.maxLatencyRegressionRatio);
  if (b <= g.latencyRatioFloorMs) {
    const ratio = measured(a) && a > 0 ? b / a : null;
    const vs = ratio === null ? '' : ` (ratio ${fmt(ratio)} to the champion's ${fmt(a)} ms, not judged)`;
    list.pass(
      name,
      'failed',
      ratio,
      g.maxLatencyRegressionRatio,
      `challenger p95 latency ${fmt(b)} ms is at or below the ${fmt(g.latencyRatioFloorMs)} ms floor of the ratio limit${vs}`,
    );
    return;
  }
  if (!measured(a)) return list.unmeasured(name, 'champion p95 latency', g.maxLatencyRegressionRatio);
  if (a <= 0) {
    list.fail(
      name,
      'inconclusive',
      null,
      g.maxLatencyRegressionRatio,
      `champion p95 latency is ${fmt(a)} ms; the ratio is undefined`,
    );
    return;
  }
  const ratio = b / a;
  if (interval && measured(interval.ciLow) && measured(interval.ciHigh)) {
    const significant = interval.ciLow > g.maxLatencyRegressionRatio + FLOAT_TOLERANCE;
    const detail = `p95 latency ratio challenger/champion ${fmt(ratio)} (${fmt(b)} ms vs ${fmt(a)} ms), ${fmt(100 * (1 - interval.alpha))}% CI [${fmt(interval.ciLow)}, ${fmt(interval.ciHigh)}] over ${interval.n} interleaved rows, allowed ${fmt(g.maxLatencyRegressionRatio)}`;
    list.record(
      !significant,
      name,
      'failed',
      ratio,
      g.maxLatencyRegressionRatio,
      significant ? `latency regressed: ${detail}` : `${detail}: no significant regression beyond the limit`,
    );
    return;
  }
  const ok = ratio <= g.maxLatencyRegressionRatio + FLOAT_TOLERANCE;
  const detail = `p95 latency ratio challenger/champion ${fmt(ratio)} (${fmt(b)} ms vs ${fmt(a)} ms), allowed ${fmt(g.maxLatencyRegressionRatio)}`;
  list.record(
    ok,
    name,
    'failed',
    ratio,
    g.maxLatencyRegressionRatio,
    ok ? detail : `latency regressed: ${detail}`,
  );
}

function checkComparison(
  list: CheckList,
  policy: GatePolicy,
  challenger: ModelEvaluation,
  champion: ModelEvaluation,
  comparison: Comparison | undefined,
): void {
  const metric = policy.primaryMetric;
  if (comparison === undefined) {
    list.fail(
      'comparison.present',
      'inconclusive',
      null,
      policy.method,
      `no ${policy.method} comparison against the champion was provided`,
    );
    return;
  }
  if (comparison.method !== policy.method) {
    list.fail(
      'comparison.method',
      'inconclusive',
      comparison.method,
      policy.method,
      `comparison used ${comparison.method} but the policy requires ${policy.method}`,
    );
    return;
  }
  if (comparison.n !== challenger.n) {
    list.fail(
      'comparison.holdout',
      'inconclusive',
      comparison.n,
      challenger.n,
      `comparison computed on ${comparison.n} examples but the evaluations on ${challenger.n}`,
    );
  }

  let improvement: Measured;
  if (comparison.method === 'bootstrap') {
    if (comparison.metric !== metric) {
      list.fail(
        'comparison.metric',
        'inconclusive',
        comparison.metric,
        metric,
        `bootstrap compared ${comparison.metric} but the primary metric is ${metric}`,
      );
      return;
    }
    if (comparison.alpha > policy.alpha) {
      list.fail(
        'comparison.alpha',
        'inconclusive',
        comparison.alpha,
        policy.alpha,
        `bootstrap interval computed at alpha ${fmt(comparison.alpha)}, wider than the policy's ${fmt(policy.alpha)} allows`,
      );
    }
    if (comparison.iterations < policy.bootstrapIterations) {
      list.fail(
        'comparison.iterations',
        'inconclusive',
        comparison.iterations,
        policy.bootstrapIterations,
        `bootstrap ran ${comparison.iterations} resamples; the policy requires ${policy.bootstrapIterations}`,
      );
    }
    const minValid = Math.ceil(MIN_VALID_BOOTSTRAP_FRACTION * comparison.iterations);
    if (comparison.validIterations < minValid) {
      list.fail(
        'comparison.valid_iterations',
        'inconclusive',
        comparison.validIterations,
        minValid,
        `only ${comparison.validIterations} of ${comparison.iterations} bootstrap resamples had a defined ${metric}; at least ${minValid} required`,
      );
    }
    improvement = comparison.estimate;
  } else {
    const a = champion.metrics[metric];
    const b = challenger.metrics[metric];
    improvement = measured(a) && measured(b) ? orientedDifference(metric, a, b) : NaN;
  }

  if (!measured(improvement)) {
    list.unmeasured('primary.improvement', `${metric} improvement`, policy.minImprovement);
  } else {
    const ok = improvement >= policy.minImprovement - FLOAT_TOLERANCE;
    const detail = `${metric} improvement ${fmt(improvement)} ${ok ? 'reaches' : 'is below'} the required ${fmt(policy.minImprovement)}`;
    list.record(ok, 'primary.improvement', 'inconclusive', improvement, policy.minImprovement, detail);
  }

  if (comparison.method === 'bootstrap') {
    const { ciLow, ciHigh } = comparison;
    const pct = `${fmt(100 * (1 - comparison.alpha))}%`;
    if (!measured(ciLow) || !measured(ciHigh)) {
      list.unmeasured('primary.significance', `${metric} bootstrap interval`, 0);
      return;
    }
    const interval = `${pct} CI [${fmt(ciLow)}, ${fmt(ciHigh)}]`;
    if (ciLow > 0) {
      list.pass(
        'primary.significance',
        'inconclusive',
        ciLow,
        0,
        `${metric} gain is significant: ${interval} excludes 0`,
      );
    } else if (ciHigh < 0) {
      list.fail(
        'primary.significance',
        'failed',
        ciHigh,
        0,
        `challenger is significantly worse on ${metric}: ${interval} lies below 0`,
      );
    } else {
      list.fail(
        'primary.significance',
        'inconclusive',
        ciLow,
        0,
        `${metric} difference not significant: ${interval} includes 0`,
      );
    }
    return;
  }

  const { b, c, pValue } = comparison;
  if (!measured(pValue)) {
    list.unmeasured('primary.significance', 'McNemar p-value', policy.alpha);
    return;
  }
  const test = `McNemar${comparison.exact ? ' (exact)' : ''} p=${fmt(pValue)} (alpha ${fmt(policy.alpha)}; champion-only correct b=${b}, challenger-only correct c=${c})`;
  if (pValue < policy.alpha && c > b) {
    list.pass(
      'primary.significance',
      'inconclusive',
      pValue,
      policy.alpha,
      `challenger significantly better: ${test}`,
    );
  } else if (pValue < policy.alpha && b > c) {
    list.fail(
      'primary.significance',
      'failed',
      pValue,
      policy.alpha,
      `challenger is significantly worse: ${test}`,
    );
  } else {
    list.fail(
      'primary.significance',
      'inconclusive',
      pValue,
      policy.alpha,
      `difference not significant: ${test}`,
    );
  }
}

function checkPrimaryMeasured(list: CheckList, metric: MetricName, who: string, e: ModelEvaluation): void {
  const v = e.metrics[metric];
  const name = `primary.${who}_measured`;
  if (measured(v)) list.pass(name, 'inconclusive', v, null, `${who} ${metric} = ${fmt(v)}`);
  else list.unmeasured(name, `${who} ${metric}`, null);
}

/** Decides whether the challenger may be promoted; see the module rules. Never throws. */
export function decidePromotion(input: PromotionInput): GateVerdict {
  const policyResult = GatePolicySchema.safeParse(input.policy);
  const challengerResult = ModelEvaluationSchema.safeParse(input.challenger);
  const championResult =
    input.champion === undefined ? undefined : ModelEvaluationSchema.safeParse(input.champion);
  const comparisonResult =
    input.comparison === undefined ? undefined : ComparisonSchema.safeParse(input.comparison);
  const problems = [
    ...(policyResult.success ? [] : issuesOf('policy', policyResult.error)),
    ...(challengerResult.success ? [] : issuesOf('challenger', challengerResult.error)),
    ...(championResult === undefined || championResult.success
      ? []
      : issuesOf('champion', championResult.error)),
    ...(comparisonResult === undefined || comparisonResult.success
      ? []
      : issuesOf('comparison', comparisonResult.error)),
  ];
  if (!policyResult.success || !challengerResult.success || problems.length > 0)
    return invalidInput(problems);

  const policy = policyResult.data;
  const challenger = challengerResult.data;
  const champion = championResult?.data;
  const comparison = comparisonResult?.data;
  const list = new CheckList();

  checkHoldout(list, policy, challenger, champion);
  checkPrimaryMeasured(list, policy.primaryMetric, 'challenger', challenger);
  if (champion === undefined) {
    checkMinimums(list, policy, challenger);
  } else {
    checkPrimaryMeasured(list, policy.primaryMetric, 'champion', champion);
    checkComparison(list, policy, challenger, champion, comparison);
    const g = policy.guardrails;
    for (const stat of ['ece', 'brier'] as const) {
      checkRegression(
        list,
        `guardrail.calibration.${stat}`,
        `calibration ${stat}`,
        challenger.calibration[stat],
        champion.calibration[stat],
        g.maxCalibrationRegression,
      );
    }
  }
  checkFairness(list, policy, challenger, champion);
  for (const c of attributionChecks(
    policy.guardrails.attribution,
    challenger.attribution,
    champion?.attribution,
  ))
    list.add(c);
  checkLatency(list, policy, challenger, champion, input.latencyComparison);

  const failed = list.checks.filter((c) => !c.passed);
  const phase = worstPhaseOf(list.checks);
  const decision = DECISION_BY_PHASE[phase];
  const reasons =
    decision === 'promote'
      ? promoteReasons(list.checks, policy, champion === undefined)
      : failed.map((c) => c.detail);
  return { decision, phase, reasons, checks: list.checks };
}

function promoteReasons(checks: GateCheck[], policy: GatePolicy, firstModel: boolean): string[] {
  if (firstModel) {
    return [`first model: meets every absolute minimum and guardrail (${checks.length} checks passed)`];
  }
  const byName = (name: string) => checks.find((c) => c.name === name)?.detail;
  return [
    byName('primary.improvement') ?? `${policy.primaryMetric} improved`,
    byName('primary.significance') ?? 'significant',
    `all guardrails hold (${checks.length} checks passed)`,
  ];
}

/** One line for logs and the workflow's status query. */
export function summariseVerdict(verdict: GateVerdict): string {
  const passed = verdict.checks.filter((c) => c.passed).length;
  const reasons = verdict.reasons.map((r) => r.replace(/\s+/g, ' ').trim()).join('; ');
  return `${verdict.decision.toUpperCase()} (${passed}/${verdict.checks.length} checks passed): ${reasons}`;
}
