import { describe, expect, it } from 'vitest';
import { latencyRatioInterval } from '../../src/core/stats/latency';
import { createSeededRandom } from '../../src/core/stats/random';

/** Latencies around 0.1 ms with heavy-tailed spikes, as a loaded machine gives. */
function noisy(n: number, seed: number, scale = 1): number[] {
  const rng = createSeededRandom(seed);
  return Array.from({ length: n }, () => {
    const base = 0.1 + 0.02 * rng.nextFloat();
    const spike = rng.nextFloat() < 0.08 ? 3 * rng.nextFloat() : 0;
    return scale * base + spike;
  });
}

describe('latencyRatioInterval (paired bootstrap of the p95 ratio)', () => {
  it('a model against itself under spiky load: the interval covers 1', () => {
    const a = noisy(200, 1);
    const b = noisy(200, 2);
    const r = latencyRatioInterval({ a, b });
    expect(r.ciLow).toBeLessThanOrEqual(1);
    expect(r.ciHigh).toBeGreaterThanOrEqual(1);
    expect(r.n).toBe(200);
  });

  it('a model twice as slow on every row: the interval sits around 2', () => {
    const a = Array.from({ length: 200 }, (_, i) => 1 + (i % 10) / 10);
    const b = a.map((x) => 2 * x);
    const r = latencyRatioInterval({ a, b });
    expect(r.estimate).toBeCloseTo(2, 9);
    expect(r.ciLow).toBeGreaterThan(1.8);
    expect(r.ciHigh).toBeLessThan(2.2);
  });

  it('is reproducible for a seed', () => {
    const a = noisy(100, 3);
    const b = noisy(100, 4);
    expect(latencyRatioInterval({ a, b, seed: 9 })).toEqual(latencyRatioInterval({ a, b, seed: 9 }));
  });

  it('refuses unpaired or invalid input', () => {
    expect(() => latencyRatioInterval({ a: [1, 2], b: [1] })).toThrow(/differ in length/);
    expect(() => latencyRatioInterval({ a: [1], b: [Number.NaN] })).toThrow(/finite/);
    expect(Number.isNaN(latencyRatioInterval({ a: [], b: [] }).estimate)).toBe(true);
  });
});
