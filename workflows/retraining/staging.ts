/**
 * The staging stage: after approval and before any customer traffic, the candidate is served on
 * the router's staging route (admin principals only) and probed with holdout rows; the pure
 * `judgeStaging` decides on schema, latency SLO and serving parity with the evaluation's
 * per-example scores. The probe clears the staging route itself; stable, canary and every registry
 * alias stay as they were, whatever the verdict.
 */
import { isCancellation } from '@temporalio/workflow';
import { CheckPhase } from '../../src/core/contracts/checks';
import type { DatasetRef } from '../../src/core/contracts/retraining';
import {
  STAGING_CHECKED_EVENT,
  type StagingPolicy,
  type StagingVerdict,
} from '../../src/core/contracts/staging';
import { judgeStaging } from '../../src/core/policy/staging';
import { failureOf } from '../shared/failures';
import { data, staging } from './activities';
import type { RetrainingRun } from './context';

/** Marks the change that added the staging stage, so histories from before it replay unchanged. */
export const STAGING_STAGE_PATCH = 'retraining-staging-stage';

export interface StagingOutcome {
  passed: boolean;
  /** One sentence: the failed checks' details, or why nothing could be measured. */
  reason: string;
  verdict?: StagingVerdict;
}

export async function stagingStage(
  run: RetrainingRun,
  args: { version: string; holdout: DatasetRef; holdoutSha256: string; policy: StagingPolicy },
): Promise<StagingOutcome> {
  const { journal, model, spec } = run;
  const { version } = args;
  journal.enter('staging');
  journal.status.staging = {};
  let outcome: StagingOutcome;
  try {
    const holdout = await data.snapshotDataset({ dataset: args.holdout });
    if (holdout.sha256 !== args.holdoutSha256) {
      outcome = {
        passed: false,
        reason: `the holdout changed since evaluation (sha256 ${holdout.sha256} != ${args.holdoutSha256})`,
      };
    } else {
      const measurement = await staging.probeStaging({ model, version, holdout, spec, policy: args.policy });
      const verdict = judgeStaging(measurement, args.policy);
      journal.status.staging = { measurement, verdict };
      const failing = verdict.checks.filter((c) => !c.passed).map((c) => c.detail);
      outcome = {
        passed: verdict.phase === CheckPhase.successful,
        reason:
          failing.length > 0
            ? `staging ${verdict.phase}: ${failing.join('; ')}`
            : verdict.checks.map((c) => c.detail).join('; '),
        verdict,
      };
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    outcome = { passed: false, reason: `staging could not be measured: ${failureOf(err).message}` };
  }
  journal.decide(outcome.passed ? 'staging-passed' : 'staging-failed', outcome.reason);
  await journal.audit(
    STAGING_CHECKED_EVENT,
    {
      phase: outcome.verdict?.phase ?? CheckPhase.error,
      failed: outcome.verdict?.failed ?? [],
      maxAbsDiff: journal.status.staging?.measurement?.maxAbsDiff ?? null,
      p99Ms: journal.status.staging?.measurement?.p99Ms ?? null,
    },
    { modelVersion: version },
  );
  return outcome;
}
