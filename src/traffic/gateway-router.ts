/**
 * The traffic-router port over the inference gateway's admin API (`GET|PUT
 * /admin/v1/models/<model>/route`), authenticated with an admin key from the secret store or the
 * worker's environment (never from workflow input). Answers are validated with the gateway's own
 * contract, so a router that drifts from it fails loudly.
 */
import { RouteStateSchema, type RouteState, type RouteUpdate } from '../core/contracts/gateway';
import { formatZodError } from '../core/contracts/errors';
import type { StagingAnswer, StagingPredictor, TrafficRouter } from '../ports/traffic-router';

/** How long one admin call may take before the router counts as unreachable. */
export const ADMIN_CALL_TIMEOUT_MS = 10_000;
/** How long one staging prediction may take before the router counts as unreachable. */
export const STAGING_CALL_TIMEOUT_MS = 10_000;
/** How many times one staging probe asks again after a 429 (the admin principal's rate limit). */
export const STAGING_RATE_LIMIT_RETRIES = 5;
/** The longest wait before asking again after a 429, whatever Retry-After says. */
export const STAGING_MAX_RETRY_WAIT_MS = 5_000;
/** The gateway's header and value that ask for the staging route (admin principals only). */
export const STAGING_ROUTE_HEADER = { 'x-mlops-route': 'staging' } as const;

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

/** The sum of a `Server-Timing` header's `dur` values (the gateway's stages run one after another). */
export function serverTimingMs(header: string | null): number | undefined {
  if (!header) return undefined;
  let total = 0;
  let seen = false;
  for (const m of header.matchAll(/dur=([0-9.]+)/g)) {
    total += Number(m[1]);
    seen = true;
  }
  return seen && Number.isFinite(total) ? total : undefined;
}

export class GatewayTrafficRouter implements TrafficRouter, StagingPredictor {
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

  /**
   * One prediction on the staging route, with the admin key (which the gateway must also know as an
   * API key with role `admin`). Refusals come back as answers (the probe judges them); only an
   * unreachable gateway throws.
   */
  async predictStaging(
    model: string,
    features: Record<string, number | string | null>,
  ): Promise<StagingAnswer> {
    const url = `${this.base}/v1/models/${encodeURIComponent(model)}/predict`;
    let started = performance.now();
    let res: Response;
    let text: string;
    // A 429 is the admin principal's rate limit, not the candidate's answer: the probe waits as the
    // gateway's Retry-After says (bounded) and asks again, so a fast probe is never judged on it.
    for (let attempt = 0; ; attempt++) {
      started = performance.now();
      try {
        res = await fetch(url, {
          method: 'POST',
          body: JSON.stringify({ features }),
          headers: {
            authorization: `Bearer ${this.adminKey()}`,
            'content-type': 'application/json',
            ...STAGING_ROUTE_HEADER,
          },
          signal: AbortSignal.timeout(STAGING_CALL_TIMEOUT_MS),
        });
        text = await res.text();
      } catch (err) {
        throw new RouterUnavailableError(`POST ${url}: ${(err as Error).message}`);
      }
      if (res.status !== 429 || attempt >= STAGING_RATE_LIMIT_RETRIES) break;
      const retryAfterS = Number(res.headers.get('retry-after'));
      const waitMs = Math.min(
        STAGING_MAX_RETRY_WAIT_MS,
        Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 1000,
      );
      await new Promise((r) => setTimeout(r, waitMs));
    }
    const latencyMs = performance.now() - started;
    const serverMs = serverTimingMs(res.headers.get('server-timing'));
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the probe reports the raw text as off contract.
    }
    return { status: res.status, body, latencyMs, ...(serverMs === undefined ? {} : { serverMs }) };
  }
}
