/**
 * Per-principal token budgets for the chat route (requests are limited by the gateway's own limiter).
 * A request reserves its prompt estimate plus the completion tokens it may use before it is sent; once
 * the answer's real size is known the difference is settled (refunded or charged), so a bucket may go
 * into debt by at most one answer and then refuses until it has refilled.
 *
 * In memory per serving process: with N processes a principal's budget is N times this (stated in the
 * README); requests go through the shared request limiter either way.
 */

/** Characters per token for the estimate before the upstream says: English averages about four. */
export const CHARS_PER_TOKEN = 4;
/** Tokens a chat template adds per message (role markers). */
export const TOKENS_PER_MESSAGE = 4;
/** Buckets kept before full idle ones are swept. */
export const TOKEN_BUCKETS_SWEEP_AT = 100_000;

export const estimateTokens = (chars: number, messages: number): number =>
  Math.ceil(chars / CHARS_PER_TOKEN) + messages * TOKENS_PER_MESSAGE;

export interface TokenDecision {
  allowed: boolean;
  retryAfterS: number;
}

export class TokenLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    tokensPerMinute: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = tokensPerMinute / 60_000;
  }

  private bucket(key: string) {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= TOKEN_BUCKETS_SWEEP_AT) {
        for (const [k, v] of this.buckets)
          if (v.tokens + (t - v.at) * this.perMs >= this.burst) this.buckets.delete(k);
      }
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perMs);
      b.at = t;
    }
    return b;
  }

  /** Reserves `n` tokens (a request larger than the burst is admitted into a full bucket only). */
  reserve(key: string, n: number): TokenDecision {
    const b = this.bucket(key);
    const need = Math.min(n, this.burst);
    if (b.tokens >= need) {
      b.tokens -= n;
      return { allowed: true, retryAfterS: 0 };
    }
    return { allowed: false, retryAfterS: (need - b.tokens) / this.perMs / 1000 };
  }

  /** Settles a reservation: `delta` > 0 charges more, < 0 refunds. */
  settle(key: string, delta: number): void {
    const b = this.bucket(key);
    b.tokens = Math.min(this.burst, b.tokens - delta);
  }
}
