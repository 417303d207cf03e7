/**
 * Authentication of gateway callers, mapped to principals with roles:
 * - API keys, stored only as their sha256; a presented key is hashed and looked up.
 * - JWTs verified with `jose` against a JWKS (a URL or an inline key set): signature, algorithm
 *   allow-list (asymmetric only, so `alg: none` and HS256-with-the-public-key fail), issuer, audience,
 *   expiry and not-before (with a clock tolerance); `exp` and `sub` are required.
 *
 * Credentials come as `Authorization: Bearer <key-or-jwt>` or `X-Api-Key: <key>`. A verified JWT is
 * cached until its expiry, so a client reusing its token pays for one signature check.
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import type { ApiKeyEntry, JwtConfig, PrincipalRole } from '../core/contracts/gateway';

export interface Principal {
  id: string;
  roles: ReadonlySet<PrincipalRole>;
  via: 'api-key' | 'jwt';
}

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    message: string,
    readonly status: 401 | 403 = 401,
  ) {
    super(message);
  }
}

/** Verified tokens kept: bounded so a flood of distinct tokens cannot grow memory. */
export const JWT_CACHE_MAX = 10_000;
/** Longest presented credential accepted (a JWT with a few claims is well under 2 KiB). */
export const MAX_CREDENTIAL_LENGTH = 8192;

/** One-shot `crypto.hash` where Node has it (20.12+), about twice as fast as a Hash object. */
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

export const hashApiKey = (key: string): string =>
  oneShot ? oneShot('sha256', key, 'hex') : crypto.createHash('sha256').update(key, 'utf8').digest('hex');

type KeySet = ReturnType<typeof jose.createLocalJWKSet> | ReturnType<typeof jose.createRemoteJWKSet>;

const ROLE_NAMES: ReadonlySet<string> = new Set<PrincipalRole>(['predict', 'admin', 'explain']);

function rolesFrom(claim: unknown): Set<PrincipalRole> {
  const list = Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(' ') : [];
  const out = new Set<PrincipalRole>();
  for (const r of list) if (typeof r === 'string' && ROLE_NAMES.has(r)) out.add(r as PrincipalRole);
  return out;
}

function jwtMessage(err: unknown): string {
  if (err instanceof jose.errors.JWTExpired) return 'token expired';
  if (err instanceof jose.errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token not yet valid (nbf is in the future)';
    if (err.claim === 'iss') return 'token issuer is not accepted';
    if (err.claim === 'aud') return 'token audience is not accepted';
    return `token claim ${err.claim} is invalid: ${err.reason}`;
  }
  if (err instanceof jose.errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (err instanceof jose.errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (err instanceof jose.errors.JWKSNoMatchingKey) return 'token is signed by an unknown key';
  if (err instanceof jose.errors.JWSInvalid || err instanceof jose.errors.JWTInvalid)
    return 'token is malformed';
  if (err instanceof jose.errors.JOSENotSupported) return 'token algorithm is not supported';
  return 'token could not be verified';
}

export class Authenticator {
  private readonly keys: Map<string, Principal>;
  private readonly jwks?: KeySet;
  private readonly jwtCache = new Map<string, { principal: Principal; expMs: number }>();

  constructor(
    apiKeys: ApiKeyEntry[],
    private readonly jwt?: JwtConfig,
  ) {
    this.keys = new Map(
      apiKeys.map((k) => [k.sha256, { id: k.principal, roles: new Set(k.roles), via: 'api-key' as const }]),
    );
    if (jwt?.jwks) this.jwks = jose.createLocalJWKSet(jwt.jwks as unknown as jose.JSONWebKeySet);
    else if (jwt?.jwksUrl) this.jwks = jose.createRemoteJWKSet(new URL(jwt.jwksUrl));
  }

  /** The credential of a request, or undefined when it presents none. */
  static credential(headers: {
    authorization?: string;
    'x-api-key'?: string | string[];
  }): string | undefined {
    const auth = headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(auth);
      if (!m) throw new AuthError('Authorization header must be "Bearer <token>"');
      return m[1];
    }
    const key = headers['x-api-key'];
    if (Array.isArray(key)) throw new AuthError('more than one X-Api-Key header');
    return key;
  }

  async authenticate(credential: string | undefined): Promise<Principal> {
    return this.authenticateKey(credential) ?? this.verifyJwt(credential as string);
  }

  /**
   * The synchronous part: an API key's principal, or undefined when the credential is a JWT (for
   * {@link verifyToken}); throws {@link AuthError} for no, an oversized or an unknown credential.
   */
  authenticateKey(credential: string | undefined): Principal | undefined {
    if (credential === undefined || credential === '') throw new AuthError('missing credentials');
    if (credential.length > MAX_CREDENTIAL_LENGTH) throw new AuthError('credential too long');
    // Keys are held only as hashes, even in memory: every presented key is hashed (about 1 us).
    const byKey = this.keys.get(hashApiKey(credential));
    if (byKey) return byKey;
    if (credential.split('.').length === 3) return undefined;
    throw new AuthError('invalid API key');
  }

  /** Verifies a JWT (the credential {@link authenticateKey} left undecided). */
  verifyToken(token: string): Promise<Principal> {
    return this.verifyJwt(token);
  }

  private async verifyJwt(token: string): Promise<Principal> {
    if (!this.jwt || !this.jwks) throw new AuthError('JWT authentication is not configured');
    const now = Date.now();
    const cached = this.jwtCache.get(token);
    if (cached && cached.expMs > now) return cached.principal;
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, this.jwks, {
        issuer: this.jwt.issuer,
        audience: this.jwt.audience,
        algorithms: this.jwt.algorithms,
        clockTolerance: this.jwt.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw new AuthError(jwtMessage(err));
    }
    const roles = rolesFrom(payload[this.jwt.rolesClaim]);
    if (roles.size === 0)
      throw new AuthError(`token has no known role in claim "${this.jwt.rolesClaim}"`, 403);
    const principal: Principal = { id: `jwt:${payload.sub}`, roles, via: 'jwt' };
    if (this.jwtCache.size >= JWT_CACHE_MAX) this.jwtCache.clear();
    this.jwtCache.set(token, {
      principal,
      expMs: Math.min((payload.exp as number) * 1000, now + 3_600_000),
    });
    return principal;
  }
}
