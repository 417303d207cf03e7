/**
 * Traffic activities over the traffic-router port: move a model's canary weight, roll it back,
 * make the canary stable. Every change is read back from the router and compared, so a rollback is
 * only reported done once the router really routes 0% to the canary. Idempotent: setting the state
 * the router already has changes nothing.
 */
import { ApplicationFailure } from '@temporalio/common';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import type { FeatureSpec } from '../src/core/contracts/feature-spec';
import type { RouteState, RouteUpdate } from '../src/core/contracts/gateway';
import { FailureType } from '../src/core/contracts/failures';
import type { DatasetSnapshot } from '../src/core/contracts/retraining';
import type { StagingMeasurement, StagingPolicy } from '../src/core/contracts/staging';
import { loadHoldout } from '../src/eval/holdout';
import type { ModelRegistry } from '../src/ports/model-registry';
import type { StagingPredictor, TrafficRouter } from '../src/ports/traffic-router';
import { mapped } from './errors';
import { EVALUATION_DIR } from './evaluation';

function applied(state: RouteState, update: RouteUpdate): boolean {
  return (Object.entries(update) as Array<[keyof RouteUpdate, unknown]>).every(([k, v]) =>
    v === null ? state[k as keyof RouteState] === undefined : state[k as keyof RouteState] === v,
  );
}

async function setAndVerify(router: TrafficRouter, model: string, update: RouteUpdate): Promise<RouteState> {
  await mapped(() => router.updateRoute(model, update));
  const state = await mapped(() => router.getRoute(model));
  if (!state || !applied(state, update)) {
    throw ApplicationFailure.retryable(
      `router state of ${model} after ${JSON.stringify(update)} reads back as ${JSON.stringify(state ?? null)}`,
      FailureType.TrafficNotApplied,
    );
  }
  return state;
}

export function createTrafficActivities(cfg: { router: TrafficRouter }) {
  const { router } = cfg;

  return {
    async getRoute(input: { model: string }): Promise<RouteState | null> {
      return (await mapped(() => router.getRoute(input.model))) ?? null;
    },

    /** Serves `version` as the canary with `weight` (0..1) of live traffic, optionally in shadow. */
    async setCanaryWeight(input: {
      model: string;
      version: string;
      weight: number;
      shadow?: boolean;
    }): Promise<RouteState> {
      return setAndVerify(router, input.model, {
        canary: input.version,
        canaryWeight: input.weight,
        shadow: input.shadow ?? false,
      });
    },

    /** Routes nothing to the canary any more (verified by reading the router back). */
    async rollbackTraffic(input: { model: string }): Promise<RouteState> {
      return setAndVerify(router, input.model, { canary: null, canaryWeight: 0, shadow: false });
    },

    /** The canary becomes stable and takes all traffic. */
    async promoteTraffic(input: { model: string; version: string }): Promise<RouteState> {
      return setAndVerify(router, input.model, {
        stable: input.version,
        canary: null,
        canaryWeight: 0,
        shadow: false,
      });
    },
  };
}

/** Schema and off-contract answers kept in a staging measurement (the rest are only counted). */
export const STAGING_ERRORS_KEPT = 5;

/** A staging answer in the serving contract: the gateway's predict answer on the staging route. */
const StagingAnswerSchema = z.object({
  version: z.string(),
  route: z.literal('staging'),
  score: z.number().min(0).max(1),
});

/** Evaluated scores of the challenger, by holdout row, from the evaluation's per-example artifact. */
const PerExampleSchema = z.array(
  z.object({ index: z.coerce.number().int().min(0), challenger_score: z.coerce.number() }),
);

/** Holdout rows `count` of `rows`, evenly spaced (deterministic: a retry probes the same rows). */
export function sampleRows(rows: number, count: number): number[] {
  const n = Math.min(rows, count);
  return Array.from({ length: n }, (_, i) => Math.floor((i * rows) / n));
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
}

/**
 * The staging stage's measurement: load the candidate on the router's staging route, send a sample
 * of holdout rows through it (admin principal), compare each served score with the evaluation's
 * per-example score of that row, and clear the staging route again. Customer traffic (stable,
 * canary) is never touched.
 */
export function createStagingActivities(cfg: {
  router: TrafficRouter;
  predictor: StagingPredictor;
  registry: ModelRegistry;
}) {
  const { router, predictor, registry } = cfg;

  async function evaluatedScores(model: string, version: string): Promise<Map<number, number>> {
    const mv = await mapped(() => registry.getVersion(model, version));
    if (!mv.runId) {
      throw ApplicationFailure.nonRetryable(
        `${model} v${version} has no run: no evaluation scores to compare with`,
        FailureType.ArtifactIntegrity,
      );
    }
    const runId = mv.runId;
    const csv = await mapped(() => registry.downloadArtifact(runId, `${EVALUATION_DIR}/per_example.csv`));
    const parsed = PerExampleSchema.safeParse(parse(csv, { columns: true, skip_empty_lines: true }));
    if (!parsed.success) {
      throw ApplicationFailure.nonRetryable(
        `${EVALUATION_DIR}/per_example.csv of ${model} v${version}: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
        FailureType.ArtifactIntegrity,
      );
    }
    return new Map(parsed.data.map((r) => [r.index, r.challenger_score]));
  }

  return {
    async probeStaging(input: {
      model: string;
      version: string;
      holdout: DatasetSnapshot;
      spec: FeatureSpec;
      policy: StagingPolicy;
    }): Promise<StagingMeasurement> {
      const { model, version, spec, policy } = input;
      const evaluated = await evaluatedScores(model, version);
      const holdout = await loadHoldout(input.holdout.snapshotPath, spec);
      await setAndVerify(router, model, { staging: version });
      const m: StagingMeasurement = {
        version,
        probes: 0,
        valid: 0,
        schemaErrors: [],
        p99Ms: null,
        roundTripP99Ms: null,
        compared: 0,
        maxAbsDiff: null,
        mismatches: 0,
      };
      const latencies: number[] = [];
      const roundTrips: number[] = [];
      const offContract = (row: number, what: string) => {
        if (m.schemaErrors.length < STAGING_ERRORS_KEPT) m.schemaErrors.push(`row ${row}: ${what}`);
      };
      try {
        const rows = sampleRows(holdout.rows, policy.sampleRows + policy.warmupRows);
        for (const [i, row] of rows.entries()) {
          const features: Record<string, number | string | null> = {};
          for (const f of spec.features) {
            const raw = holdout.columns[f.name]?.[row] ?? '';
            features[f.name] = raw === '' ? null : f.kind === 'numeric' ? Number(raw) : raw;
          }
          const answer = await mapped(() => predictor.predictStaging(model, features));
          m.probes++;
          if (i >= policy.warmupRows) {
            latencies.push(answer.serverMs ?? answer.latencyMs);
            roundTrips.push(answer.latencyMs);
          }
          if (answer.status !== 200) {
            offContract(row, `HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
            continue;
          }
          const parsed = StagingAnswerSchema.safeParse(answer.body);
          if (!parsed.success) {
            const issue = parsed.error.issues[0];
            offContract(
              row,
              `answer field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
            );
            continue;
          }
          if (parsed.data.version !== version) {
            offContract(row, `answered by v${parsed.data.version}, not v${version}`);
            continue;
          }
          m.valid++;
          const expected = evaluated.get(row);
          if (expected === undefined) continue;
          const diff = Math.abs(parsed.data.score - expected);
          m.compared++;
          if (diff > policy.parityTolerance) m.mismatches++;
          if (m.maxAbsDiff === null || diff > m.maxAbsDiff) {
            m.maxAbsDiff = diff;
            m.worst = { row, served: parsed.data.score, evaluated: expected };
          }
        }
      } finally {
        await setAndVerify(router, model, { staging: null });
      }
      m.p99Ms = quantile(
        latencies.sort((a, b) => a - b),
        0.99,
      );
      m.roundTripP99Ms = quantile(
        roundTrips.sort((a, b) => a - b),
        0.99,
      );
      return m;
    },
  };
}
