/**
 * The traffic-router port: how the control plane (the canary rollout, kpiGuard, the staging stage)
 * reads and moves a model's traffic. The inference gateway is its embedded implementation
 * (`src/gateway/router.ts`); a service-mesh or KServe router would be another.
 */
import type { RouteState, RouteUpdate } from '../core/contracts/gateway';

export interface TrafficRouter {
  /** The current routing state of a model; undefined when the router does not serve it. */
  getRoute(model: string): Promise<RouteState | undefined>;
  /**
   * Merges an update into a model's routing state and returns the new state. Loading a version it
   * does not serve yet happens first: a version that fails verification leaves the state unchanged
   * and rejects with the reason.
   */
  updateRoute(model: string, update: RouteUpdate): Promise<RouteState>;
}

/** One prediction answered on a router's staging route, as the staging probe sees it. */
export interface StagingAnswer {
  /** HTTP-like status of the answer (200 when served). */
  status: number;
  /** The answer's body, unvalidated (the probe checks it against the serving contract). */
  body: unknown;
  /** Round-trip time of the call, in ms (includes the caller's own scheduling delays). */
  latencyMs: number;
  /** Time the router itself took, in ms, when it says (the gateway's `Server-Timing`). */
  serverMs?: number;
}

/**
 * Predictions on a router's staging route (admin principals only), for the staging stage's
 * schema, latency and serving-parity checks before any customer traffic reaches a candidate.
 */
export interface StagingPredictor {
  predictStaging(model: string, features: Record<string, number | string | null>): Promise<StagingAnswer>;
}
