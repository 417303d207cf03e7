/**
 * `canaryRollout` (workflow id `canary-<model>-v<version>`): moves a candidate through traffic
 * steps (optional shadow phase, then 5, 25, 50, 100 percent by default), each baked and analysed:
 * canary against stable and against absolute limits, judged by a pure function
 * (src/core/policy/canary-analysis.ts) into one of four phases; Argo-style limits decide what
 * follows. Signals: `pause`, `resume`, `abort {reason}`, and `kpiBreach {...}` pushed by the gateway,
 * which rolls back at once, without waiting for the analysis. Rollback (canary weight to 0, read
 * back from the router, the version tagged with the reason) runs even while the workflow is being
 * cancelled. After the last step the canary becomes the router's stable; moving the registry
 * aliases is the caller's (the pipeline's promotion stage).
 *
 * With a `businessKpi` policy (patched `canary-business-kpi`), each analysis also asks the KPI
 * source for the labelled outcomes of canary and stable (delayed labels joined by request id) over
 * the rollout so far or the step's own window, and the judge adds the business-KPI check.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  setHandler,
} from '@temporalio/workflow';
import { parseDuration } from '../src/core/contracts/approval';
import { AuditEventType } from '../src/core/contracts/audit';
import type { LabelledOutcomes } from '../src/core/contracts/business-kpi';
import {
  AbortPayloadSchema,
  CanaryInputSchema,
  KpiBreachSchema,
  abortSignal,
  canaryStatusQuery,
  kpiBreachSignal,
  pauseSignal,
  resumeSignal,
  type AnalysisResult,
  type CanaryInput,
  type CanaryResult,
  type CanaryStatus,
  type VersionKpis,
} from '../src/core/contracts/canary';
import { CheckPhase } from '../src/core/contracts/checks';
import { formatZodError } from '../src/core/contracts/errors';
import { FailureType } from '../src/core/contracts/failures';
import type { KpiBreach } from '../src/core/contracts/gateway';
import { windowKpis, type KpiSnapshot } from '../src/core/contracts/kpi';
import { judgeCanary, nextRolloutAction } from '../src/core/policy/canary-analysis';
import { audit, kpi, labels, registry, traffic } from './canary/activities';
import { failureOf } from './shared/failures';
import { RunJournal, workflowNow } from './shared/journal';

/** Marks the change that added the business KPI's labelled-outcome reads to an analysis. */
export const BUSINESS_KPI_PATCH = 'canary-business-kpi';

export async function canaryRollout(raw: CanaryInput): Promise<CanaryResult> {
  const parsed = CanaryInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid canaryRollout input: ${formatZodError(parsed.error)}`,
      FailureType.InvalidInput,
    );
  }
  const { model, version, policy } = parsed.data;
  const status: CanaryStatus = {
    workflowId: '',
    model,
    version,
    stage: 'starting',
    weight: 0,
    paused: false,
    analyses: [],
    breaches: [],
    decisions: [],
  };
  const journal = new RunJournal(status, model, audit.recordAudit);
  status.workflowId = journal.workflowId;

  let abortReason: string | undefined;
  let breach: KpiBreach | undefined;
  let resumes = 0;
  setHandler(canaryStatusQuery, () => status);
  setHandler(pauseSignal, () => {
    status.paused = true;
  });
  setHandler(resumeSignal, () => {
    if (status.paused) resumes++;
    status.paused = false;
  });
  setHandler(abortSignal, (payload) => {
    const r = AbortPayloadSchema.safeParse(payload);
    abortReason ??= r.success ? r.data.reason : 'aborted (no valid reason given)';
  });
  setHandler(kpiBreachSignal, (payload) => {
    const r = KpiBreachSchema.safeParse(payload);
    if (!r.success) {
      journal.decide(
        'breach-ignored',
        `malformed kpiBreach: ${formatZodError(r.error).replace(/\n/g, '; ')}`,
      );
      return;
    }
    status.breaches.push(r.data);
    breach ??= r.data;
  });
  const interrupted = () => abortReason !== undefined || breach !== undefined;
  const interruption = () =>
    breach
      ? `KPI breach pushed by the gateway: ${breach.metric} ${breach.value} > ${breach.threshold} over ${breach.window}`
      : `aborted: ${abortReason ?? ''}`;

  const rollBack = (reason: string) =>
    CancellationScope.nonCancellable(async () => {
      journal.enter('rolling-back');
      status.rollbackReason = reason;
      const state = await traffic.rollbackTraffic({ model });
      status.weight = Math.round(state.canaryWeight * 100);
      await registry.markVersionOutcome({ model, version, outcome: 'rolled-back', reason });
      journal.decide('rolled-back', reason);
      await journal.audit(
        AuditEventType.modelRolledBack,
        { reason, stable: state.stable },
        { modelVersion: version },
      );
      journal.enter('rolled-back');
      return journal.finish<CanaryResult>({ outcome: 'rolled-back', reason, status });
    });

  /** Snapshot or error: a failed read is an `error` analysis, judged by the limits. */
  const snapshot = async (): Promise<KpiSnapshot | string> => {
    try {
      return await kpi.snapshotKpis({ model });
    } catch (err) {
      if (isCancellation(err)) throw err;
      return failureOf(err).message;
    }
  };

  /**
   * The business KPI's labelled outcomes over [from, to): a failed read is reported as no outcomes
   * (the judge makes the check inconclusive or skips it, as the policy says), not an analysis error.
   */
  const labelledOutcomes = async (from: string, to: string): Promise<LabelledOutcomes> => {
    try {
      return await labels.measureLabelledOutcomes({
        model,
        canary: version,
        stable: stableVersion,
        from,
        to,
        threshold: policy.businessKpi!.threshold,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      return { available: false, reason: failureOf(err).message };
    }
  };

  const analyse = async (step: number): Promise<AnalysisResult | 'interrupted'> => {
    journal.enter('analysing');
    const before = await snapshot();
    if (typeof before !== 'string') labelsFrom ??= before.at;
    if (await condition(interrupted, parseDuration(policy.bakeTime))) return 'interrupted';
    const after = await snapshot();
    let outcomes: LabelledOutcomes | undefined;
    if (
      policy.businessKpi &&
      typeof before !== 'string' &&
      typeof after !== 'string' &&
      patched(BUSINESS_KPI_PATCH)
    ) {
      const from = policy.businessKpi.window === 'rollout' ? (labelsFrom ?? before.at) : before.at;
      // A long join must not hold back a pushed breach or an abort: they win the race and cancel it.
      const join = new CancellationScope();
      const joined = join.run(() => labelledOutcomes(from, after.at));
      joined.catch(() => undefined);
      await Promise.race([joined, condition(interrupted)]);
      if (interrupted()) {
        join.cancel();
        return 'interrupted';
      }
      outcomes = await joined;
    }
    let result: AnalysisResult;
    if (typeof before === 'string' || typeof after === 'string') {
      const error = typeof before === 'string' ? before : (after as string);
      result = { step, phase: CheckPhase.error, checks: [], at: workflowNow(), error };
    } else {
      try {
        let stable = windowKpis(before, after, stableVersion);
        // At 100% stable gets no traffic: compare with its last window that had enough requests.
        let stableFromEarlierWindow = false;
        if (stable.requests >= policy.minRequests) baseline = stable;
        else if (baseline) {
          stable = baseline;
          stableFromEarlierWindow = true;
        }
        const measurement = {
          canary: windowKpis(before, after, version),
          stable,
          stableFromEarlierWindow,
          ...(outcomes && { outcomes }),
          from: before.at,
          to: after.at,
        };
        result = { ...judgeCanary(measurement, policy, step), at: workflowNow() };
      } catch (err) {
        result = {
          step,
          phase: CheckPhase.error,
          checks: [],
          at: workflowNow(),
          error: (err as Error).message,
        };
      }
    }
    status.analyses.push(result);
    journal.decide(
      `analysis-${result.phase}`,
      `${step}%: ${
        result.error ??
        result.checks
          .filter((c) => !c.passed)
          .map((c) => c.detail)
          .join('; ') ??
        ''
      }`,
    );
    await journal.audit(
      AuditEventType.canaryAnalysis,
      {
        step,
        phase: result.phase,
        failed: result.checks.filter((c) => !c.passed).map((c) => c.name),
        error: result.error ?? null,
      },
      { modelVersion: version },
    );
    return result;
  };

  let stableVersion = parsed.data.stableVersion ?? '';
  /** Stable's last window with enough requests: the comparison at 100%, when stable serves nobody. */
  let baseline: VersionKpis | undefined;
  /** Start of the rollout's first measured window: where a rollout-long label window begins. */
  let labelsFrom: string | undefined;
  try {
    const route = await traffic.getRoute({ model });
    if (!route) {
      throw ApplicationFailure.nonRetryable(
        `model ${model} is not served by the traffic router`,
        FailureType.TrafficRefused,
      );
    }
    stableVersion ||= route.stable;
    status.stableVersion = stableVersion;
    if (stableVersion === version) {
      throw ApplicationFailure.nonRetryable(
        `v${version} is already the stable version of ${model}`,
        FailureType.InvalidInput,
      );
    }
    await journal.audit(
      AuditEventType.canaryStarted,
      {
        stable: stableVersion,
        steps: policy.steps,
        shadow: policy.shadow,
        initiator: parsed.data.initiator ?? null,
      },
      { modelVersion: version },
    );

    const steps = policy.shadow ? [0, ...policy.steps] : policy.steps;
    for (const step of steps) {
      journal.enter(step === 0 ? 'shadow' : 'stepping');
      status.step = step;
      const state = await traffic.setCanaryWeight({ model, version, weight: step / 100, shadow: step === 0 });
      status.weight = Math.round(state.canaryWeight * 100);
      journal.decide('step', step === 0 ? 'shadow: mirroring traffic to the canary' : `canary at ${step}%`);
      await journal.audit(AuditEventType.canaryStep, { step, shadow: step === 0 }, { modelVersion: version });
      let sinceResume = 0;
      for (;;) {
        const result = await analyse(step);
        if (result === 'interrupted' || interrupted()) return await rollBack(interruption());
        const action = nextRolloutAction(status.analyses, policy, sinceResume);
        if (action.action === 'rollback') {
          const failing = result.checks.filter((c) => c.phase === CheckPhase.failed).map((c) => c.detail);
          return await rollBack(
            failing.length > 0 ? `${action.reason}: ${failing.join('; ')}` : action.reason,
          );
        }
        if (action.action === 'pause') status.paused = true;
        if (status.paused) {
          journal.enter('paused');
          journal.decide('paused', action.action === 'pause' ? action.reason : 'paused by signal');
          await journal.audit(AuditEventType.canaryPaused, { step }, { modelVersion: version });
          const seen = resumes;
          const woke = await condition(
            () => resumes > seen || interrupted(),
            parseDuration(policy.pauseTimeout),
          );
          if (interrupted()) return await rollBack(interruption());
          if (!woke) return await rollBack(`paused for ${policy.pauseTimeout} without resume`);
          journal.decide('resumed', `resumed at ${step}%`);
          await journal.audit(AuditEventType.canaryResumed, { step }, { modelVersion: version });
          sinceResume = status.analyses.length;
          continue;
        }
        if (action.action === 'continue') break;
      }
    }

    journal.enter('promoting');
    const state = await traffic.promoteTraffic({ model, version });
    status.weight = 100;
    journal.decide('promoted', `v${version} is stable (was v${stableVersion})`);
    await journal.audit(
      AuditEventType.canaryPromoted,
      { previousStable: stableVersion, stable: state.stable },
      { modelVersion: version },
    );
    journal.enter('promoted');
    return await journal.finish<CanaryResult>({
      outcome: 'promoted',
      reason: `all ${steps.length} step(s) passed`,
      status,
    });
  } catch (err) {
    const f = failureOf(err);
    if (isCancellation(err)) {
      await rollBack('the rollout was cancelled');
      throw err;
    }
    if (
      f.type === FailureType.InvalidInput ||
      (f.type === FailureType.TrafficRefused && status.stage === 'starting')
    )
      throw err;
    return await rollBack(`rollout failed: ${f.message}`);
  }
}
