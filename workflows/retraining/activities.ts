/**
 * The retraining family's activity proxies: one typed proxy per activity group, each with named
 * options, so a group's activity cannot silently get another group's timeouts.
 */
import { proxyActivities } from '@temporalio/workflow';
import type {
  AuditActivities,
  DataActivities,
  EvaluationActivities,
  PolicyActivities,
  RegistryActivities,
  SecurityActivities,
  StagingActivities,
  TrainingActivities,
} from '../../activities';
import {
  AUDIT_APPEND,
  LONG_COMPUTATION,
  OUTSIDE_CALL,
  STAGING_PROBE,
  jobWait,
} from '../shared/activity-options';

export const data = proxyActivities<DataActivities>(OUTSIDE_CALL);
export const registry = proxyActivities<RegistryActivities>(OUTSIDE_CALL);
export const policies = proxyActivities<PolicyActivities>(OUTSIDE_CALL);
export const security = proxyActivities<SecurityActivities>(OUTSIDE_CALL);
export const evaluation = proxyActivities<EvaluationActivities>(LONG_COMPUTATION);
export const audit = proxyActivities<AuditActivities>(AUDIT_APPEND);
export const staging = proxyActivities<StagingActivities>(STAGING_PROBE);

/** kpiGuard's traffic changes and KPI reads: the canary family's proxies and options. */
export { kpi, traffic } from '../canary/activities';

/** The training group, with options sized by the job's own deadline. */
export const training = (jobTimeoutMs: number) => proxyActivities<TrainingActivities>(jobWait(jobTimeoutMs));
