/**
 * The canary family's activity proxies, one per group with named options. Traffic changes retry
 * until the router takes them (a rollback must land); a KPI snapshot gets two quick tries, since a
 * failed measurement is itself a result (an `error` analysis) that the rollout limits judge.
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { AuditActivities, KpiActivities, RegistryActivities, TrafficActivities } from '../../activities';
import { AUDIT_APPEND, OUTSIDE_CALL, OUTSIDE_RETRY } from '../shared/activity-options';

/** A traffic change: seconds each, retried with backoff (up to 10 s apart) for as long as it takes. */
export const TRAFFIC_CHANGE: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { ...OUTSIDE_RETRY, initialInterval: '200ms', maximumInterval: '10s' },
};

/** A KPI read: a few seconds, two tries; the rollout's error limit decides what a failure means. */
export const KPI_READ: ActivityOptions = {
  startToCloseTimeout: '15s',
  retry: { ...OUTSIDE_RETRY, initialInterval: '500ms', maximumAttempts: 2 },
};

/**
 * The business KPI's label join: it reads every prediction of the window from the inference log,
 * so minutes on a long rollout; two tries, and a failure only leaves that check without labels.
 */
export const LABEL_JOIN: ActivityOptions = {
  startToCloseTimeout: '10m',
  retry: { ...OUTSIDE_RETRY, initialInterval: '2s', maximumAttempts: 2 },
};

export const traffic = proxyActivities<TrafficActivities>(TRAFFIC_CHANGE);
export const kpi = proxyActivities<KpiActivities>(KPI_READ);
export const labels = proxyActivities<KpiActivities>(LABEL_JOIN);
export const registry = proxyActivities<RegistryActivities>(OUTSIDE_CALL);
export const audit = proxyActivities<AuditActivities>(AUDIT_APPEND);
