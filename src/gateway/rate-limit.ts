/**
 * Per-principal token buckets: `burst` tokens deep, refilled at `ratePerSecond`; a request takes one
 * token or is refused with the time until the next one (HTTP 429, `Retry-After`). Over any interval T a
 * principal is admitted at most `burst + rate * T` requests.
 *
 * Two backends with one interface: in memory for a single replica (the cluster primary holds the
 * buckets for its workers), and Redis for replicas sharing the limit, where one Lua script refills and
 * takes atomically on Redis's own clock so replicas with skewed clocks agree.
 */
import Redis from 'ioredis';

export interface RateDecision {
  allowed: boolean;
  /** Tokens left after this request (rounded down). */
  remaining: number;
  /** Seconds until a token is available again; 0 when allowed. */
  retryAfterS: number;
}

export interface RateLimiter {
  take(key: string): Promise<RateDecision>;
  /** A decision without waiting, where the limiter can make one locally; undefined: use {@link take}. */
  tryTake?(key: string): RateDecision | undefined;
  close(): Promise<void>;
}

/** Buckets kept in memory before idle full ones are swept: bounds memory under many principals. */
export const MEMORY_BUCKETS_SWEEP_AT = 100_000;

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  takeSync(key: string): RateDecision {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MEMORY_BUCKETS_SWEEP_AT) this.sweep(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerSecond);
      b.at = t;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, remaining: Math.floor(b.tokens), retryAfterS: 0 };
    }
    return { allowed: false, remaining: 0, retryAfterS: (1 - b.tokens) / this.ratePerSecond };
  }

  async take(key: string): Promise<RateDecision> {
    return this.takeSync(key);
  }

  tryTake(key: string): RateDecision {
    return this.takeSync(key);
  }

  /**
   * Takes up to `want` whole tokens at once (a lease for a cluster worker): grants what the bucket
   * holds, at least one when one is there; none with the wait for the next token otherwise.
   */
  takeMany(key: string, want: number): { granted: number; retryAfterS: number } {
    const first = this.takeSync(key);
    if (!first.allowed) return { granted: 0, retryAfterS: first.retryAfterS };
    const b = this.buckets.get(key) as { tokens: number };
    const extra = Math.max(0, Math.min(want - 1, Math.floor(b.tokens)));
    b.tokens -= extra;
    return { granted: 1 + extra, retryAfterS: 0 };
  }

  private sweep(t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.ratePerSecond >= this.burst) this.buckets.delete(k);
    }
  }

  async close(): Promise<void> {}
}

/**
 * KEYS[1] bucket; ARGV rate/s, burst. Returns {allowed, remaining*1000, retryAfterMs}. Uses Redis TIME
 * (scripts are replicated by effects since Redis 5, so a non-deterministic TIME is allowed).
 */
const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.floor(tokens), retry}
`;

type TakeCommand = (key: string, rate: number, burst: number) => Promise<[number, number, number]>;

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly prefix: string,
  ) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    this.redis.defineCommand('mlopsTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    // Connection errors surface on the commands (the gateway answers 503); the client reconnects itself.
    this.redis.on('error', () => {});
  }

  async take(key: string): Promise<RateDecision> {
    const take = (this.redis as unknown as { mlopsTake: TakeCommand }).mlopsTake.bind(this.redis);
    const [allowed, remaining, retryMs] = await take(this.prefix + key, this.ratePerSecond, this.burst);
    return { allowed: allowed === 1, remaining, retryAfterS: retryMs / 1000 };
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Largest lease a cluster worker takes from the primary's bucket at once (one IPC round trip each). */
export const MAX_LEASE = 256;
/** Share of the burst one lease may take, so idle leases in one worker cannot starve the others. */
export const LEASE_BURST_SHARE = 0.1;

/**
 * A cluster worker's limiter: tokens are leased from the primary's bucket in small batches and spent
 * locally, so most requests need no round trip. Every admitted request spends a token the primary
 * granted, so the replica as a whole still admits at most `burst + rate * T`; a leased token unused in
 * one worker is the only cost (a worker may refuse while another holds a few tokens).
 */
export class LeasingRateLimiter implements RateLimiter {
  private readonly pools = new Map<
    string,
    { tokens: number; pending?: Promise<{ granted: number; retryAfterS: number }> }
  >();
  private readonly leaseSize: number;

  constructor(
    private readonly lease: (key: string, want: number) => Promise<{ granted: number; retryAfterS: number }>,
    burst: number,
    workers: number,
  ) {
    this.leaseSize = Math.max(
      1,
      Math.min(MAX_LEASE, Math.floor((burst * LEASE_BURST_SHARE) / Math.max(1, workers))),
    );
  }

  tryTake(key: string): RateDecision | undefined {
    const pool = this.pools.get(key);
    if (!pool || pool.tokens < 1) return undefined;
    return this.spend(key, pool);
  }

  private spend(
    key: string,
    pool: { tokens: number; pending?: Promise<{ granted: number; retryAfterS: number }> },
  ): RateDecision {
    pool.tokens -= 1;
    // Refill ahead: the next lease is under way before the pool runs dry, so requests rarely wait on it.
    if (this.leaseSize > 1 && pool.tokens < this.leaseSize / 2 && !pool.pending) {
      this.refill(key, pool).catch(() => undefined);
    }
    return { allowed: true, remaining: Math.floor(pool.tokens), retryAfterS: 0 };
  }

  async take(key: string): Promise<RateDecision> {
    let pool = this.pools.get(key);
    if (!pool) {
      if (this.pools.size >= MEMORY_BUCKETS_SWEEP_AT) {
        for (const [k, p] of this.pools) if (p.tokens < 1 && !p.pending) this.pools.delete(k);
      }
      pool = { tokens: 0 };
      this.pools.set(key, pool);
    }
    for (;;) {
      if (pool.tokens >= 1) return this.spend(key, pool);
      const r = await (pool.pending ?? this.refill(key, pool));
      if (r.granted === 0 && pool.tokens < 1)
        return { allowed: false, remaining: 0, retryAfterS: r.retryAfterS };
    }
  }

  private refill(
    key: string,
    p: { tokens: number; pending?: Promise<{ granted: number; retryAfterS: number }> },
  ): Promise<{ granted: number; retryAfterS: number }> {
    p.pending = this.lease(key, this.leaseSize).then(
      (r) => {
        p.tokens += r.granted;
        p.pending = undefined;
        return r;
      },
      (err: unknown) => {
        p.pending = undefined;
        throw err;
      },
    );
    return p.pending;
  }

  async close(): Promise<void> {}
}
