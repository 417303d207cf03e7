/**
 * The traffic-router port over the inference gateway's admin API (`GET|PUT
 * /admin/v1/models/<model>/route`), authenticated with an admin key from the secret store or the
 * worker's environment (never from workflow input). Answers are validated with the gateway's own
 * contract, so a router that drifts from it fails loudly.
 */
import { RouteStateSchema, type RouteState, type RouteUpdate } from '../core/contracts/gateway';
import { formatZodError } from '../core/contracts/errors';
import type { TrafficRouter } from '../ports/traffic-router';

/** How long one admin call may take before the router counts as unreachable. */
export const ADMIN_CALL_TIMEOUT_MS = 10_000;

/** The router answered, but refused (4xx): retrying the same call cannot help. */
export class RouterRefusedError extends Error {
  override readonly name = 'RouterRefusedError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The router could not be reached or failed (network, timeout, 5xx): retryable. */
export class RouterUnavailableError extends Error {
  override readonly name = 'RouterUnavailableError';
}

export class GatewayTrafficRouter implements TrafficRouter {
  readonly kind = 'gateway';
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly adminKey: () => string,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  private async call(
    model: string,
    init: { method: 'GET' | 'PUT'; body?: string },
  ): Promise<RouteState | undefined> {
    const url = `${this.base}/admin/v1/models/${encodeURIComponent(model)}/route`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        body: init.body,
        headers: {
          authorization: `Bearer ${this.adminKey()}`,
          ...(init.body ? { 'content-type': 'application/json' } : {}),
        },
        signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
      });
    } catch (err) {
      throw new RouterUnavailableError(`${init.method} ${url}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (init.method === 'GET' && res.status === 404) return undefined;
    if (res.status >= 500)
      throw new RouterUnavailableError(`${init.method} ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
    if (!res.ok)
      throw new RouterRefusedError(
        `${init.method} ${url}: HTTP ${res.status} ${text.slice(0, 300)}`,
        res.status,
      );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new RouterRefusedError(`${init.method} ${url}: answer is not JSON`, res.status);
    }
    const parsed = RouteStateSchema.safeParse(json);
    if (!parsed.success) {
      throw new RouterRefusedError(
        `${init.method} ${url}: unexpected answer: ${formatZodError(parsed.error)}`,
        res.status,
      );
    }
    return parsed.data;
  }

  getRoute(model: string): Promise<RouteState | undefined> {
    return this.call(model, { method: 'GET' });
  }

  async updateRoute(model: string, update: RouteUpdate): Promise<RouteState> {
    const state = await this.call(model, { method: 'PUT', body: JSON.stringify(update) });
    if (!state) throw new RouterRefusedError(`PUT route of ${model}: empty answer`, 404);
    return state;
  }
}
