/**
 * The admission steps every gateway route takes before it reads a body: who is calling
 * (API key or JWT), may they use this route, does their rate limit admit one more request, and
 * is the body JSON. Each refusal is an {@link HttpError} with the status and headers a client
 * acts on (401 with WWW-Authenticate, 403, 429 with Retry-After, 503 when the limiter is down,
 * 415). Decisions that can be made synchronously (API keys, a local token bucket) are returned
 * as plain values, so the predict hot path waits only for a JWT's key set or a shared limiter.
 */
import type http from 'node:http';
import type { PrincipalRole } from '../core/contracts/gateway';
import { AuthError, Authenticator, type Principal } from './auth';
import { HttpError } from './http-error';
import type { RateDecision, RateLimiter } from './rate-limit';

/** Why a request was refused at admission, for the caller's refusal counter. */
export type AdmissionRefusal = 'auth' | 'limiter_unavailable' | 'rate_limit';

type OnRefusal = (reason: AdmissionRefusal) => void;

const noop: OnRefusal = () => undefined;

function unauthenticated(err: unknown, onRefusal: OnRefusal): unknown {
  if (!(err instanceof AuthError)) return err;
  onRefusal('auth');
  return new HttpError(err.status, 'unauthenticated', err.message, { 'www-authenticate': 'Bearer' });
}

/** The caller's principal: an API key is decided at once, a JWT is verified against its key set. */
export function authenticateRequest(
  auth: Authenticator,
  req: http.IncomingMessage,
  onRefusal: OnRefusal = noop,
): Principal | Promise<Principal> {
  let credential: string | undefined;
  try {
    credential = Authenticator.credential(req.headers);
    const byKey = auth.authenticateKey(credential);
    if (byKey !== undefined) return byKey;
  } catch (err) {
    throw unauthenticated(err, onRefusal);
  }
  return auth.verifyToken(credential as string).catch((err: unknown) => {
    throw unauthenticated(err, onRefusal);
  });
}

/** Refuses with 403 unless the principal holds one of `roles` (admin holds every role). */
export function requireRole(
  principal: Principal,
  roles: readonly PrincipalRole[],
  what: string,
  shownId = principal.id,
): void {
  if (principal.roles.has('admin') || roles.some((r) => principal.roles.has(r))) return;
  throw new HttpError(403, 'forbidden', `principal ${shownId} may not ${what}`);
}

function limiterDown(onRefusal: OnRefusal): HttpError {
  // Fail closed: without a working limiter nothing is admitted (a Redis outage is a 503, not a flood).
  onRefusal('limiter_unavailable');
  return new HttpError(503, 'limiter_unavailable', 'rate limiter unavailable; retry later', {
    'retry-after': '1',
  });
}

function admitted(rl: RateDecision, onRefusal: OnRefusal, what: string): RateDecision {
  if (rl.allowed) return rl;
  onRefusal('rate_limit');
  const retry = Math.max(1, Math.ceil(rl.retryAfterS));
  throw new HttpError(429, 'rate_limited', `${what} exceeded; retry in ${retry} s`, {
    'retry-after': String(retry),
  });
}

/**
 * Takes one token of the principal's rate limit, or refuses with 429 and Retry-After. Synchronous
 * where the limiter can decide locally; a limiter failure is a 503.
 */
export function admitRate(
  limiter: RateLimiter,
  principalId: string,
  onRefusal: OnRefusal = noop,
  what = 'rate limit',
): RateDecision | Promise<RateDecision> {
  let local: RateDecision | undefined;
  try {
    local = limiter.tryTake?.(principalId);
  } catch {
    throw limiterDown(onRefusal);
  }
  if (local !== undefined) return admitted(local, onRefusal, what);
  return limiter.take(principalId).then(
    (rl) => admitted(rl, onRefusal, what),
    () => {
      throw limiterDown(onRefusal);
    },
  );
}

/** True when the request declares a JSON body (parameters such as charset allowed). */
export function isJson(req: http.IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  if (ct === undefined) return false;
  const semi = ct.indexOf(';');
  const mime = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase();
  return mime === 'application/json';
}

/** Refuses with 415 unless the body is declared JSON. */
export function requireJson(req: http.IncomingMessage): void {
  if (!isJson(req))
    throw new HttpError(415, 'unsupported_media_type', 'content-type must be application/json');
}
