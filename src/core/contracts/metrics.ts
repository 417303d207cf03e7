/**
 * The metrics a gate policy may name, and which way each one is better, as data. `src/core/stats` implements
 * each of them (its `METRICS` registry takes the direction from {@link METRIC_DIRECTIONS}); contracts and policies
 * refer to them by name only.
 *
 * Sandbox-safe: imports nothing.
 */

/** Names of the metrics the gate can use. */
export const METRIC_NAMES = [
  'pr_auc',
  'roc_auc',
  'recall_at_precision',
  'precision_at_recall',
  'brier',
  'ece',
  'log_loss',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Whether a larger (`higher`) or a smaller (`lower`) value of a metric is better. */
export type MetricDirection = 'higher' | 'lower';

/** Direction of every metric: ranking metrics are better higher, losses and calibration errors lower. */
export const METRIC_DIRECTIONS: { readonly [K in MetricName]: MetricDirection } = {
  pr_auc: 'higher',
  roc_auc: 'higher',
  recall_at_precision: 'higher',
  precision_at_recall: 'higher',
  brier: 'lower',
  ece: 'lower',
  log_loss: 'lower',
};

/** True if `name` is one of {@link METRIC_NAMES}. */
export function isMetricName(name: string): name is MetricName {
  return (METRIC_NAMES as readonly string[]).includes(name);
}
