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
