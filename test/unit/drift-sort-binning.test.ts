/**
 * The drift report's two hot loops against their plain definitions: the radix sort orders exactly
 * as the comparison sort does (bit for bit, -0 before +0, whichever digits are skipped), and the
 * grid-started bin counts equal a binary search per value on every kind of column.
 */
import { describe, expect, it } from 'vitest';
import { binCounts, binCountsSorted, binOf, quantileEdges } from '../../src/core/stats/drift-tests';
import { createSeededRandom } from '../../src/core/stats/random';
import { sortedWithoutNaN, sortFloat64 } from '../../src/core/stats/sort';

const rng = createSeededRandom(20_261_201);
const normal = (): number =>
  Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());

/** Columns that exercise every pass pattern: full mantissas, small integers, one sign, heavy tails. */
const columns: Record<string, (i: number) => number> = {
  normal: () => normal(),
  lognormal: () => Math.exp(2 * normal()),
  uniform: () => rng.nextFloat() * 10,
  integers: () => Math.floor(rng.nextFloat() * 12),
  negativeIntegers: () => -Math.floor(rng.nextFloat() * 300),
  halves: () => Math.floor(rng.nextFloat() * 40) / 2 - 10,
  tiny: (i) => (i % 2 ? 1 : -1) * Number.MIN_VALUE * Math.floor(rng.nextFloat() * 5),
  extremes: (i) =>
    [0, -0, Infinity, -Infinity, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-300, -1e300][i % 8]! *
    (i % 16 < 8 ? 1 : 0.5 + rng.nextFloat()),
  constant: () => 3.25,
  // Only the low word varies (the last pass is a low-word one), then also the straddling digit.
  lowWordOnly: () => 1 + Math.floor(rng.nextFloat() * 2 ** 20) * Number.EPSILON,
  lowWordNegative: () => -1 - Math.floor(rng.nextFloat() * 2 ** 20) * Number.EPSILON,
  straddling: () => 1 + Math.floor(rng.nextFloat() * 2 ** 30) * Number.EPSILON,
};

const bits = (x: Float64Array): number[] => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length * 2));

describe('radix sort', () => {
  for (const [name, gen] of Object.entries(columns))
    for (const n of [5_000, 50_001])
      it(`${name}, ${n} values: bit-identical to the comparison sort`, () => {
        const x = Float64Array.from({ length: n }, (_, i) => gen(i));
        const native = x.slice().sort();
        const ours = sortFloat64(x.slice());
        expect(bits(ours)).toEqual(bits(native));
      });

  for (const [name, gen] of Object.entries(columns))
    for (const n of [3_000, 50_001])
      it(`${name}, ${n} values with NaN of every sign and payload: the sorted rest, column untouched`, () => {
        const x = Float64Array.from({ length: n }, (_, i) => gen(i));
        const w = new Uint32Array(x.buffer);
        for (let i = 5; i < n; i += 53) {
          w[2 * i] = i; // a payload in the low word
          w[2 * i + 1] = i % 2 ? 0x7ff8_0000 : 0xfff0_0001; // quiet NaN, and a negative signalling one
        }
        expect(Number.isNaN(x[5]!) && Number.isNaN(x[58]!)).toBe(true);
        const before = bits(x);
        const expected = x.filter((v) => !Number.isNaN(v)).sort();
        const got = sortedWithoutNaN(x);
        expect(bits(got)).toEqual(bits(expected));
        expect(bits(x)).toEqual(before);
      });

  it('a subarray sorts in place without touching its neighbours', () => {
    const x = Float64Array.from({ length: 30_000 }, () => normal());
    const before = x.slice();
    const view = x.subarray(1_000, 21_000);
    const expected = view.slice().sort();
    sortFloat64(view);
    expect(bits(view)).toEqual(bits(expected));
    expect(bits(x.subarray(0, 1_000))).toEqual(bits(before.subarray(0, 1_000)));
    expect(bits(x.subarray(21_000))).toEqual(bits(before.subarray(21_000)));
  });
});

describe('bin counts', () => {
  const reference = (edges: Float64Array, values: Float64Array): number[] => {
    const counts = new Array<number>(edges.length + 1).fill(0);
    for (const v of values) if (!Number.isNaN(v)) counts[binOf(edges, v)]!++;
    return counts;
  };
  for (const [name, gen] of Object.entries(columns))
    it(`${name}: equal to a binary search per value, nulls and sums apart`, () => {
      const ref = sortFloat64(Float64Array.from({ length: 20_000 }, (_, i) => gen(i)));
      const edges = quantileEdges(ref);
      const values = Float64Array.from({ length: 10_000 }, (_, i) => (i % 97 === 0 ? Number.NaN : gen(i)));
      // Values on the edges themselves and just beside them.
      for (let k = 0; k < edges.length; k++) {
        values[3 * k + 1] = edges[k]!;
        values[3 * k + 2] = edges[k]! * (1 + Number.EPSILON);
      }
      const got = binCounts(edges, values);
      expect(Array.from(got.counts)).toEqual(reference(edges, values));
      let nulls = 0;
      let sum = 0;
      for (const v of values) {
        if (Number.isNaN(v)) nulls++;
        else sum += v;
      }
      expect(got.nulls).toBe(nulls);
      expect(Object.is(got.sum, sum) || got.sum === sum).toBe(true);
    });

  for (const [name, gen] of Object.entries(columns))
    it(`${name}: sorted counts by binary search equal a merge pass`, () => {
      const ref = sortFloat64(Float64Array.from({ length: 20_000 }, (_, i) => gen(i)));
      const edges = quantileEdges(ref);
      const sorted = sortFloat64(Float64Array.from({ length: 10_000 }, (_, i) => gen(i + 7)));
      const merge = new Array<number>(edges.length + 1).fill(0);
      let b = 0;
      for (const v of sorted) {
        while (b < edges.length && edges[b]! < v) b++;
        merge[b]!++;
      }
      expect(Array.from(binCountsSorted(edges, sorted))).toEqual(merge);
      const added = Float64Array.from(merge, () => 1);
      expect(Array.from(binCountsSorted(edges, sorted, added))).toEqual(merge.map((c) => c + 1));
    });

  it('no edges, one edge, and edges spanning the whole double range', () => {
    const values = Float64Array.from([-Infinity, -1e308, -1, 0, 1, 1e308, Infinity, Number.NaN]);
    for (const edges of [[], [0], [-1e308, 0, 1e308], [-Number.MAX_VALUE, Number.MAX_VALUE]]) {
      const e = Float64Array.from(edges);
      expect(Array.from(binCounts(e, values).counts)).toEqual(reference(e, values));
    }
  });
});
