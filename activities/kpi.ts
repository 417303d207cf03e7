/**
 * KPI activities over the KPI-source port: one snapshot of a model's cumulative counters. The
 * workflow takes one before and one after a bake window and judges the difference (pure).
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../src/core/contracts/failures';
import type { KpiSnapshot } from '../src/core/contracts/kpi';
import type { KpiSource } from '../src/ports/kpi-source';

export function createKpiActivities(cfg: { kpi: KpiSource }) {
  return {
    async snapshotKpis(input: { model: string }): Promise<KpiSnapshot> {
      try {
        return await cfg.kpi.snapshot(input.model);
      } catch (err) {
        throw ApplicationFailure.create({
          type: FailureType.KpiUnavailable,
          message: `KPI source ${cfg.kpi.kind}: ${(err as Error).message}`,
          cause: err as Error,
        });
      }
    },
  };
}
