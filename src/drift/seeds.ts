/**
 * Independent per-window seeds for the generator. Its xoroshiro128+ source is seeded without
 * scrambling, so neighbouring seeds give correlated first draws; a window's seed is therefore the
 * murmur3 finaliser (a bijective avalanche mix of 32 bits) of the base seed combined with the window
 * index, so seeds of neighbouring windows differ in about half their bits.
 */

/** Golden-ratio increment (2^32 / phi): spreads consecutive indexes before the mix. */
const GOLDEN = 0x9e3779b9;

/** murmur3's fmix32: every input bit flips each output bit with probability about 1/2. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Seed of window `index` of a run seeded `base` (both 32-bit unsigned). */
export function windowSeed(base: number, index: number): number {
  return mix32((mix32(base) + Math.imul(index + 1, GOLDEN)) >>> 0);
}
