/**
 * Named activity options shared by every workflow family. Each proxy in a family's `activities.ts`
 * takes one of these; every one lists the taxonomy's non-retryable failure types, so a permanent
 * cause is never retried even if its thrower forgot to say so.
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import { NON_RETRYABLE_FAILURE_TYPES } from '../../src/core/contracts/failures';

/** Retries for calls to outside systems: backoff up to a minute. */
export const OUTSIDE_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
};

/** A call to an outside system (registry, dataset store, policy folder): minutes each, an hour in all. */
export const OUTSIDE_CALL: ActivityOptions = {
  startToCloseTimeout: '10m',
  scheduleToCloseTimeout: '1h',
  retry: OUTSIDE_RETRY,
};

/** Scoring two models and bootstrapping can take a while on a large holdout. */
export const LONG_COMPUTATION: ActivityOptions = {
  startToCloseTimeout: '30m',
  scheduleToCloseTimeout: '2h',
  retry: { ...OUTSIDE_RETRY, maximumAttempts: 5 },
};

/** The audit trail must not be lost: retried until the sink takes it. */
export const AUDIT_APPEND: ActivityOptions = {
  startToCloseTimeout: '1m',
  retry: { ...OUTSIDE_RETRY, maximumInterval: '5m' },
};

/** Extra time a job-waiting activity gets beyond the job's own deadline (scheduling, upload). */
export const JOB_SLACK_MS = 10 * 60_000;
/** How many job budgets a job-waiting activity may spend across its retries. */
export const JOB_RETRY_BUDGET_FACTOR = 3;
/** A job-waiting activity heartbeats every poll; a silent one is presumed lost after this. */
export const JOB_HEARTBEAT_TIMEOUT = '1m';

/** Options of an activity that waits for a job with the given deadline: bounded by time, not attempts. */
export function jobWait(jobTimeoutMs: number): ActivityOptions {
  const budget = jobTimeoutMs + JOB_SLACK_MS;
  return {
    startToCloseTimeout: budget,
    scheduleToCloseTimeout: JOB_RETRY_BUDGET_FACTOR * budget,
    heartbeatTimeout: JOB_HEARTBEAT_TIMEOUT,
    retry: OUTSIDE_RETRY,
  };
}

/**
 * The staging probe: a few hundred predictions through the router, a minute at most; three tries,
 * after which the stage judges the candidate unprovable rather than wait for an outage to pass.
 */
export const STAGING_PROBE: ActivityOptions = {
  startToCloseTimeout: '5m',
  retry: { ...OUTSIDE_RETRY, maximumAttempts: 3 },
};
