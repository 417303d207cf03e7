/**
 * KPI activities over the KPI-source port: one snapshot of a model's cumulative counters (the
 * workflow takes one before and one after a bake window and judges the difference, pure), and the
 * business KPI's labelled outcomes of canary and stable over a window (delayed labels joined by
 * request id), when the source can join labels.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { EMPTY_OUTCOMES, type LabelledOutcomes } from '../src/core/contracts/business-kpi';
import { formatZodError } from '../src/core/contracts/errors';
import { FailureType } from '../src/core/contracts/failures';
import type { KpiSnapshot } from '../src/core/contracts/kpi';
import { IsoDateTimeSchema, ModelNameSchema, ModelVersionSchema } from '../src/core/contracts/primitives';
import type { KpiSource } from '../src/ports/kpi-source';

const OutcomesRequestSchema = z
  .object({
    model: ModelNameSchema,
    canary: ModelVersionSchema,
    stable: ModelVersionSchema,
    from: IsoDateTimeSchema,
    to: IsoDateTimeSchema,
    threshold: z.number().gt(0).lt(1),
  })
  .strict();
export type OutcomesRequest = z.input<typeof OutcomesRequestSchema>;

/** Why no outcomes come back from a worker whose KPI source cannot join labels. */
export const NO_LABEL_SOURCE =
  'no delayed-label source is configured on this worker (its KPI source reads no labels)';

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

    async measureLabelledOutcomes(input: OutcomesRequest): Promise<LabelledOutcomes> {
      const parsed = OutcomesRequestSchema.safeParse(input);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(
          `invalid labelled-outcomes request: ${formatZodError(parsed.error)}`,
          FailureType.InvalidInput,
        );
      }
      const req = parsed.data;
      if (!cfg.kpi.outcomes) return { available: false, reason: NO_LABEL_SOURCE };
      try {
        const got = await cfg.kpi.outcomes({
          model: req.model,
          versions: [req.canary, req.stable],
          from: new Date(req.from),
          to: new Date(req.to),
          threshold: req.threshold,
        });
        return {
          available: true,
          from: req.from,
          to: req.to,
          threshold: req.threshold,
          canary: got[req.canary] ?? EMPTY_OUTCOMES,
          stable: got[req.stable] ?? EMPTY_OUTCOMES,
        };
      } catch (err) {
        throw ApplicationFailure.create({
          type: FailureType.KpiUnavailable,
          message: `label source of ${cfg.kpi.kind}: ${(err as Error).message}`,
          cause: err as Error,
        });
      }
    },
  };
}
