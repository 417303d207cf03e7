/**
 * Seeded pseudo-random numbers for the statistics code (sandbox-safe: no Math.random, no clocks).
 *
 * Rules:
 * - Backed by pure-rand's xoroshiro128+ generator and its unbiased (rejection-sampled) `uniformInt`.
 * - A seed is an integer in [0, 2^32 - 1]; pure-rand folds seeds to 32 bits, so larger seeds are refused
 *   rather than silently aliased. The same seed always yields the same sequence, on every platform.
 * - {@link seedFromString} derives a seed from a stable string (e.g. a workflow id plus a stage name) with
 *   32-bit FNV-1a over the string's UTF-16LE bytes, so workflows can get reproducible yet distinct streams
 *   without storing numbers.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { StatsInputError } from './errors';

/** Largest accepted seed: pure-rand seeds are 32-bit. */
export const MAX_SEED = 0xffffffff;

/** Largest accepted bound for {@link SeededRandom.nextInt}: one 32-bit draw covers it without bias. */
export const MAX_INT_BOUND = 0x100000000;

/** Largest bound for {@link SeededRandom.fillInts}: its values must fit an Int32Array. */
export const MAX_FILL_BOUND = 0x80000000;

/** A mutable stream of reproducible random numbers. */
export interface SeededRandom {
  /** The seed this stream was created with. */
  readonly seed: number;
  /** Uniform integer in [0, bound), bound an integer in [1, 2^32]. */
  nextInt(bound: number): number;
  /** Uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /**
   * Fills `out` with uniform integers in [0, bound), bound in [1, 2^31]: the same values, in the same order, as `out.length` calls
   * of `nextInt(bound)`, without the per-call overhead (the bootstrap's hot loop).
   */
  fillInts(out: Int32Array, bound: number): void;
}

/** Throws StatsInputError unless `seed` is an integer in [0, MAX_SEED]. */
export function assertSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new StatsInputError(
      'INVALID_PARAMETER',
      `seed must be an integer in [0, ${MAX_SEED}], got ${seed}`,
    );
  }
}

function assertBound(bound: number): void {
  if (!Number.isInteger(bound) || bound < 1 || bound > MAX_INT_BOUND) {
    throw new StatsInputError('INVALID_PARAMETER', `bound must be an integer in [1, 2^32], got ${bound}`);
  }
}

/** Creates a reproducible random stream from `seed`. */
export function createSeededRandom(seed: number): SeededRandom {
  assertSeed(seed);
  const rng = xoroshiro128plus(seed | 0);
  return {
    seed,
    nextInt(bound: number): number {
      assertBound(bound);
      return uniformInt(rng, 0, bound - 1);
    },
    nextFloat(): number {
      return uniformFloat64(rng);
    },
    fillInts(out: Int32Array, bound: number): void {
      if (!Number.isInteger(bound) || bound < 1 || bound > MAX_FILL_BOUND) {
        throw new StatsInputError('INVALID_PARAMETER', `bound must be an integer in [1, 2^31], got ${bound}`);
      }
      // pure-rand's uniformInt algorithm inlined: shift the int32 draw to [0, 2^32), reject the incomplete
      // top block so every residue is equally likely, then reduce modulo bound. Identical output, no call
      // chain per value. `v - floor(v / bound) * bound` is exact here (v < 2^32) and much faster than a
      // floating-point `%`.
      const limit = bound > 2 ? Math.floor(TWO_POW_32 / bound) * bound : TWO_POW_32;
      for (let i = 0; i < out.length; i++) {
        let v = rng.next() + TWO_POW_31;
        while (v >= limit) v = rng.next() + TWO_POW_31;
        out[i] = v - Math.floor(v / bound) * bound;
      }
    },
  };
}

const TWO_POW_31 = 0x80000000;
const TWO_POW_32 = 0x100000000;

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a hash of the UTF-16LE bytes of `text`, usable as a seed. */
export function seedFromString(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    hash ^= unit & 0xff;
    hash = Math.imul(hash, FNV_PRIME);
    hash ^= unit >>> 8;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}
