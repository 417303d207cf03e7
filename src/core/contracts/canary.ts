/**
 * The public contract of the `canaryRollout` workflow family: id scheme, input and policy schemas,
 * the measurements an analysis judges, status, and the signal / query definitions. Sandbox-safe.
 *
 * A rollout moves a candidate through traffic steps (default 5, 25, 50, 100 percent), each baked
 * for a while and then analysed: canary against stable (relative limits, with intervals) and
 * against absolute limits. Each analysis is one of the four check phases; Argo Rollouts' limits
 * decide what follows (failures and consecutive errors roll back, inconclusive pauses for a human).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import { BusinessKpiPolicySchema, type LabelledOutcomes } from './business-kpi';
import type { Check, CheckPhase } from './checks';
import { KpiBreachSchema, type KpiBreach } from './gateway';
import { DurationSchema, ModelNameSchema, ModelVersionSchema, parseDuration } from './primitives';

/** Traffic steps in percent: a small blast radius first, then doubling toward everyone. */
export const DEFAULT_CANARY_STEPS = [5, 25, 50, 100] as const;
/** Time each step bakes before its analysis: enough requests at demo traffic for a rate. */
export const DEFAULT_BAKE_TIME = '30s';
/** Failed analyses tolerated before rollback: none, as in Argo Rollouts' default. */
export const DEFAULT_FAILURE_LIMIT = 0;
/** Inconclusive analyses tolerated before the rollout pauses for a human: none. */
export const DEFAULT_INCONCLUSIVE_LIMIT = 0;
/** Consecutive analyses that could not measure (router or KPI source down) before rollback. */
export const DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4;
/** Fewest canary requests an analysis needs; fewer is inconclusive, never a pass. */
export const DEFAULT_MIN_REQUESTS = 50;
/** Absolute error-rate ceiling of the canary. */
export const DEFAULT_MAX_ERROR_RATE = 0.05;
/** Allowed increase of the canary's error rate over stable's (upper interval bound). */
export const DEFAULT_MAX_ERROR_RATE_INCREASE = 0.02;
/** Absolute p99 latency ceiling in ms. */
export const DEFAULT_MAX_P99_MS = 250;
/** Allowed p99 ratio canary / stable, applied only above {@link DEFAULT_LATENCY_FLOOR_MS}. */
export const DEFAULT_MAX_P99_RATIO = 1.5;
/** Below this p99 (ms) a ratio of timer noise decides nothing: users do not notice a millisecond. */
export const DEFAULT_LATENCY_FLOOR_MS = 1;
/** Absolute OOD-rate ceiling of the canary's inputs. */
export const DEFAULT_MAX_OOD_RATE = 0.2;
/**
 * Largest population stability index between canary and stable prediction distributions. A
 * retrained model legitimately moves its scores (the demo's October and November models differ by
 * 0.3-0.4); above 1 the distribution has changed shape: a constant, inverted or broken model.
 */
export const DEFAULT_MAX_PREDICTION_PSI = 1;
/** Significance level of each interval; Bonferroni-divided across the relative comparisons. */
export const DEFAULT_CANARY_ALPHA = 0.05;
/** How long a paused rollout waits for `resume` or `abort` before rolling back on its own. */
export const DEFAULT_PAUSE_TIMEOUT = '24h';

export const CanaryPolicySchema = z
  .object({
    steps: z
      .array(z.number().int().min(1).max(100))
      .min(1)
      .default([...DEFAULT_CANARY_STEPS])
      .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), 'must increase step by step')
      .refine((s) => s[s.length - 1] === 100, 'must end at 100'),
    bakeTime: DurationSchema.default(DEFAULT_BAKE_TIME),
    /** Mirror traffic to the canary first (answers from stable) and compare before any step. */
    shadow: z.boolean().default(false),
    failureLimit: z.number().int().min(0).default(DEFAULT_FAILURE_LIMIT),
    inconclusiveLimit: z.number().int().min(0).default(DEFAULT_INCONCLUSIVE_LIMIT),
    consecutiveErrorLimit: z.number().int().min(1).default(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
    minRequests: z.number().int().min(1).default(DEFAULT_MIN_REQUESTS),
    maxErrorRate: z.number().min(0).max(1).default(DEFAULT_MAX_ERROR_RATE),
    maxErrorRateIncrease: z.number().min(0).max(1).default(DEFAULT_MAX_ERROR_RATE_INCREASE),
    maxP99Ms: z.number().positive().default(DEFAULT_MAX_P99_MS),
    maxP99Ratio: z.number().min(1).default(DEFAULT_MAX_P99_RATIO),
    latencyFloorMs: z.number().min(0).default(DEFAULT_LATENCY_FLOOR_MS),
    maxOodRate: z.number().min(0).max(1).default(DEFAULT_MAX_OOD_RATE),
    maxPredictionPsi: z.number().positive().default(DEFAULT_MAX_PREDICTION_PSI),
    alpha: z.number().gt(0).lt(1).default(DEFAULT_CANARY_ALPHA),
    pauseTimeout: DurationSchema.default(DEFAULT_PAUSE_TIMEOUT),
    /**
     * A business KPI on delayed labels (cost per decision, precision or recall at the serving
     * threshold), canary against stable; absent: not judged. `{}` takes the fraud defaults.
     */
    businessKpi: BusinessKpiPolicySchema.optional(),
  })
  .strict();
export type CanaryPolicy = z.output<typeof CanaryPolicySchema>;
export type CanaryPolicyInput = z.input<typeof CanaryPolicySchema>;

export const CanaryInputSchema = z
  .object({
    model: ModelNameSchema,
    /** The candidate version. */
    version: ModelVersionSchema,
    /** The version serving now; the router's current stable when absent. */
    stableVersion: ModelVersionSchema.optional(),
    policy: CanaryPolicySchema.default(CanaryPolicySchema.parse({})),
    /** Who or what started the rollout (the parent pipeline's id, or a person). */
    initiator: z.string().min(1).optional(),
  })
  .strict();
export type CanaryInput = z.input<typeof CanaryInputSchema>;
export type ParsedCanaryInput = z.output<typeof CanaryInputSchema>;

/** How long kpiGuard watches a new champion: ten one-minute windows after the switch. */
export const DEFAULT_KPI_GUARD_WINDOW = '10m';
/** One kpiGuard measurement window: enough requests at demo traffic, a reaction within a minute. */
export const DEFAULT_KPI_GUARD_INTERVAL = '1m';
/** Most windows one guard may take: keeps its history far below Temporal's event limit. */
export const MAX_KPI_GUARD_INTERVALS = 1000;

/**
 * kpiGuard: after promotion, the new champion's KPIs are judged window by window against absolute
 * limits (there is no stable left to compare with). The limits default to the canary's.
 */
export const KpiGuardPolicySchema = z
  .object({
    window: DurationSchema.default(DEFAULT_KPI_GUARD_WINDOW),
    interval: DurationSchema.default(DEFAULT_KPI_GUARD_INTERVAL),
    maxErrorRate: z.number().min(0).max(1).default(DEFAULT_MAX_ERROR_RATE),
    maxP99Ms: z.number().positive().default(DEFAULT_MAX_P99_MS),
    maxOodRate: z.number().min(0).max(1).default(DEFAULT_MAX_OOD_RATE),
    minRequests: z.number().int().min(1).default(DEFAULT_MIN_REQUESTS),
    alpha: z.number().gt(0).lt(1).default(DEFAULT_CANARY_ALPHA),
  })
  .strict()
  .superRefine((g, ctx) => {
    let windowMs: number;
    let intervalMs: number;
    try {
      windowMs = parseDuration(g.window);
      intervalMs = parseDuration(g.interval);
    } catch {
      return; // the duration fields report their own issue
    }
    if (intervalMs > windowMs)
      ctx.addIssue({ code: 'custom', path: ['interval'], message: `must not exceed window (${g.window})` });
    else if (Math.ceil(windowMs / intervalMs) > MAX_KPI_GUARD_INTERVALS)
      ctx.addIssue({
        code: 'custom',
        path: ['interval'],
        message: `window / interval must be at most ${MAX_KPI_GUARD_INTERVALS} windows`,
      });
  });
export type KpiGuardPolicy = z.output<typeof KpiGuardPolicySchema>;
export type KpiGuardPolicyInput = z.input<typeof KpiGuardPolicySchema>;

/** One kpiGuard window, as the pipeline's status shows it. */
export interface KpiGuardWindow {
  at: string;
  phase: CheckPhase;
  requests: number;
  /** Names of the checks that did not pass, or the measurement error. */
  notes: string[];
}

/** One version's measurements over an analysis window (from the KPI-source port). */
export interface VersionKpis {
  requests: number;
  errors: number;
  /** p99 latency in ms (NaN without requests). */
  p99Ms: number;
  oodRequests: number;
  /** Prediction histogram over fixed bins of [0, 1] (counts). */
  predictionHistogram: number[];
  /**
   * The window's latency histogram (cumulative counts per bound in seconds, last bound +Infinity as
   * null): gives the p99 its order-statistic interval. Absent from older measurements.
   */
  latencyHistogram?: { bounds: Array<number | null>; counts: number[] };
}

export interface CanaryMeasurement {
  canary: VersionKpis;
  stable: VersionKpis;
  /**
   * True when `stable` is an earlier window (at 100% stable serves nobody): latency, which moves
   * with the machine's load over time, is then not compared across the two windows.
   */
  stableFromEarlierWindow?: boolean;
  /** Labelled outcomes of both versions, when the policy names a business KPI. */
  outcomes?: LabelledOutcomes;
  /** Window start and end (ISO), workflow time. */
  from: string;
  to: string;
}

export interface AnalysisResult {
  /** Traffic percent the analysis ran at (0 in the shadow phase). */
  step: number;
  phase: CheckPhase;
  checks: Check[];
  at: string;
  /** Why the measurement failed, for an `error` analysis. */
  error?: string;
  /** The labelled outcomes the business KPI was judged on (counts and label coverage per version). */
  outcomes?: LabelledOutcomes;
}

export const CanaryStages = [
  'starting',
  'shadow',
  'stepping',
  'analysing',
  'paused',
  'promoting',
  'rolling-back',
  'promoted',
  'rolled-back',
] as const;
export type CanaryStage = (typeof CanaryStages)[number];

export type CanaryOutcome = 'promoted' | 'rolled-back';

export interface CanaryStatus {
  workflowId: string;
  model: string;
  version: string;
  stableVersion?: string;
  stage: CanaryStage;
  /** Current traffic percent of the canary. */
  weight: number;
  step?: number;
  paused: boolean;
  analyses: AnalysisResult[];
  breaches: KpiBreach[];
  decisions: Array<{ stage: CanaryStage; decision: string; reason: string; at: string }>;
  rollbackReason?: string;
}

export interface CanaryResult {
  outcome: CanaryOutcome;
  reason: string;
  status: CanaryStatus;
}

export const CanaryMessageName = {
  pause: 'pause',
  resume: 'resume',
  abort: 'abort',
  kpiBreach: 'kpiBreach',
  status: 'status',
} as const;

export const AbortPayloadSchema = z.object({ reason: z.string().trim().min(1).max(2000) }).strict();
export type AbortPayload = z.infer<typeof AbortPayloadSchema>;
export { KpiBreachSchema };

export const pauseSignal = defineSignal<[unknown?]>(CanaryMessageName.pause);
export const resumeSignal = defineSignal<[unknown?]>(CanaryMessageName.resume);
export const abortSignal = defineSignal<[AbortPayload]>(CanaryMessageName.abort);
export const kpiBreachSignal = defineSignal<[KpiBreach]>(CanaryMessageName.kpiBreach);
export const canaryStatusQuery = defineQuery<CanaryStatus>(CanaryMessageName.status);
