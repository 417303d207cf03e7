/**
 * Traffic activities over the traffic-router port: move a model's canary weight, roll it back,
 * make the canary stable. Every change is read back from the router and compared, so a rollback is
 * only reported done once the router really routes 0% to the canary. Idempotent: setting the state
 * the router already has changes nothing.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { RouteState, RouteUpdate } from '../src/core/contracts/gateway';
import { FailureType } from '../src/core/contracts/failures';
import type { TrafficRouter } from '../src/ports/traffic-router';
import { mapped } from './errors';

function applied(state: RouteState, update: RouteUpdate): boolean {
  return (Object.entries(update) as Array<[keyof RouteUpdate, unknown]>).every(([k, v]) =>
    v === null ? state[k as keyof RouteState] === undefined : state[k as keyof RouteState] === v,
  );
}

export function createTrafficActivities(cfg: { router: TrafficRouter }) {
  const { router } = cfg;

  async function setAndVerify(model: string, update: RouteUpdate): Promise<RouteState> {
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
      return setAndVerify(input.model, {
        canary: input.version,
        canaryWeight: input.weight,
        shadow: input.shadow ?? false,
      });
    },

    /** Routes nothing to the canary any more (verified by reading the router back). */
    async rollbackTraffic(input: { model: string }): Promise<RouteState> {
      return setAndVerify(input.model, { canary: null, canaryWeight: 0, shadow: false });
    },

    /** The canary becomes stable and takes all traffic. */
    async promoteTraffic(input: { model: string; version: string }): Promise<RouteState> {
      return setAndVerify(input.model, {
        stable: input.version,
        canary: null,
        canaryWeight: 0,
        shadow: false,
      });
    },
  };
}
