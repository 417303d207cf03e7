/**
 * Ascending sort of a Float64Array by LSD radix on the IEEE-754 bit patterns (sandbox-safe, pure):
 * five 13-bit digits (the last 12), each a scatter pass over (low, high) word pairs kept side by
 * side, so a million values sort in about 40 ms where the built-in comparison sort takes over 100. Keys are the bits with the sign bit flipped for positives and all
 * bits flipped for negatives, which orders them as numbers (-0 just before +0). NaN must be removed
 * by the caller.
 *
 * Rules:
 * - 13-bit digits keep the 8,192 scatter targets of a pass inside the L2 cache: measured on a
 *   million values, 16-bit digits (four passes, 65,536 targets) are 35-50% slower, 11-bit (six
 *   passes) 10-15% slower.
 * - A digit shared by every key orders nothing and its pass is skipped (small integers, for one,
 *   sort in two passes). The last pass turns keys back into bits as it scatters; an odd number of
 *   passes ends with one copy back into `values`.
 * - The scatter buffer is kept between calls up to {@link SCRATCH_KEEP_MAX} values, so sorting
 *   the columns of a report allocates it once (a fresh 8n-byte buffer per column cost a zero-fill
 *   and garbage-collector pressure).
 */

/** Below this length the built-in sort is as fast (each radix pass has a fixed 8k-bucket cost). */
const RADIX_MIN_LENGTH = 8_192;
/** Bits per digit and the digit's bucket count: five digits cover the 64-bit key (13 x 4 + 12). */
const DIGIT_BITS = 13;
const DIGITS = 1 << DIGIT_BITS;
const DIGIT_MASK = DIGITS - 1;
const PASSES = 5;
/**
 * Where each pass's digit lies: `(low >>> lowShift) & lowMask | ((high >>> highShift) & highMask) <<
 * highUp`; the third digit straddles the two words (6 low bits, 7 high).
 */
const LOW_SHIFT = [0, 13, 26, 0, 0];
const LOW_MASK = [DIGIT_MASK, DIGIT_MASK, 0x3f, 0, 0];
const HIGH_SHIFT = [0, 0, 0, 7, 20];
const HIGH_MASK = [0, 0, 0x7f, DIGIT_MASK, 0xfff];
const HIGH_UP = [0, 0, 6, 0, 0];
/** Largest sort (in values) whose scatter buffer is kept for the next call: 4M values, 32 MiB. */
const SCRATCH_KEEP_MAX = 4_194_304;

let keptScratch: Uint32Array | undefined;

function scratchFor(n: number): Uint32Array {
  if (n > SCRATCH_KEEP_MAX) return new Uint32Array(2 * n);
  if (!keptScratch || keptScratch.length < 2 * n) keptScratch = new Uint32Array(2 * n);
  return keptScratch.length === 2 * n ? keptScratch : keptScratch.subarray(0, 2 * n);
}

/** Sorts `values` in place and returns it. */
export function sortFloat64(values: Float64Array): Float64Array {
  const n = values.length;
  if (n < RADIX_MIN_LENGTH) return values.sort();
  const words = new Uint32Array(values.buffer, values.byteOffset, n * 2);
  const len = 2 * n;
  // One pass turns the bits into keys (in place) and counts all six digits.
  const counts = new Uint32Array(PASSES * DIGITS);
  for (let i = 0; i < len; i += 2) {
    let l = words[i]!;
    let h = words[i + 1]!;
    // Branch-free (signs come in random order): negatives flip every bit, positives the sign.
    const m = h >> 31;
    h = (h ^ (m | 0x8000_0000)) >>> 0;
    l = (l ^ m) >>> 0;
    words[i] = l;
    words[i + 1] = h;
    counts[l & DIGIT_MASK]!++;
    counts[DIGITS + ((l >>> 13) & DIGIT_MASK)]!++;
    counts[2 * DIGITS + ((l >>> 26) | ((h & 0x7f) << 6))]!++;
    counts[3 * DIGITS + ((h >>> 7) & DIGIT_MASK)]!++;
    counts[4 * DIGITS + (h >>> 20)]!++;
  }
  radixPasses(words, n, counts);
  return values;
}

/**
 * The non-NaN values of `column`, sorted ascending, in a new array (the column is left as it is).
 * One pass drops NaN, turns bits into keys and counts the digits, so a column with nulls costs no
 * more passes than a sort; the result may be a view on a buffer of the column's length.
 */
export function sortedWithoutNaN(column: Float64Array): Float64Array {
  const total = column.length;
  if (total < RADIX_MIN_LENGTH) return column.filter((v) => !Number.isNaN(v)).sort();
  const src = new Uint32Array(column.buffer, column.byteOffset, total * 2);
  const out = new Float64Array(total);
  const words = new Uint32Array(out.buffer);
  const counts = new Uint32Array(PASSES * DIGITS);
  let k = 0;
  for (let i = 0; i < 2 * total; i += 2) {
    let l = src[i]!;
    let h = src[i + 1]!;
    // NaN: every exponent bit set and a non-zero mantissa.
    if ((h & 0x7ff0_0000) === 0x7ff0_0000 && ((h & 0x000f_ffff) | l) !== 0) continue;
    // Branch-free (signs come in random order): negatives flip every bit, positives the sign.
    const m = h >> 31;
    h = (h ^ (m | 0x8000_0000)) >>> 0;
    l = (l ^ m) >>> 0;
    words[k] = l;
    words[k + 1] = h;
    k += 2;
    counts[l & DIGIT_MASK]!++;
    counts[DIGITS + ((l >>> 13) & DIGIT_MASK)]!++;
    counts[2 * DIGITS + ((l >>> 26) | ((h & 0x7f) << 6))]!++;
    counts[3 * DIGITS + ((h >>> 7) & DIGIT_MASK)]!++;
    counts[4 * DIGITS + (h >>> 20)]!++;
  }
  const n = k / 2;
  if (n < RADIX_MIN_LENGTH) return column.filter((v) => !Number.isNaN(v)).sort();
  radixPasses(n === total ? words : words.subarray(0, k), n, counts);
  return n === total ? out : out.subarray(0, n);
}

/** The scatter passes over keys in `words` (n pairs) with their digit counts; leaves bits, sorted. */
function radixPasses(words: Uint32Array, n: number, counts: Uint32Array): void {
  const len = 2 * n;
  const digitOf = (pass: number, l: number, h: number): number =>
    ((l >>> LOW_SHIFT[pass]!) & LOW_MASK[pass]!) |
    (((h >>> HIGH_SHIFT[pass]!) & HIGH_MASK[pass]!) << HIGH_UP[pass]!);
  // Passes whose digit varies; a digit shared by every key orders nothing.
  const active: number[] = [];
  for (let pass = 0; pass < PASSES; pass++)
    if (counts[pass * DIGITS + digitOf(pass, words[0]!, words[1]!)] !== n) active.push(pass);
  let src = words;
  let dst = scratchFor(n);
  let restored = false;
  for (let k = 0; k < active.length; k++) {
    const pass = active[k]!;
    const base = pass * DIGITS;
    const ls = LOW_SHIFT[pass]!;
    const lm = LOW_MASK[pass]!;
    const hs = HIGH_SHIFT[pass]!;
    const hm = HIGH_MASK[pass]!;
    const hu = HIGH_UP[pass]!;
    let sum = 0;
    for (let d = base; d < base + DIGITS; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    // One loop per kind of digit rather than branches inside one: each stays a tight scatter
    // (measured 10% faster than one loop with the general digit formula). When the last pass is on
    // the high word (it always is unless the top digits are constant) it turns keys back into bits
    // as it writes.
    if (hm === 0) {
      for (let i = 0; i < len; i += 2) {
        const l = src[i]!;
        const pos = 2 * counts[base + ((l >>> ls) & DIGIT_MASK)]!++;
        dst[pos] = l;
        dst[pos + 1] = src[i + 1]!;
      }
    } else if (lm !== 0) {
      for (let i = 0; i < len; i += 2) {
        const l = src[i]!;
        const h = src[i + 1]!;
        const pos = 2 * counts[base + ((l >>> ls) | ((h & hm) << hu))]!++;
        dst[pos] = l;
        dst[pos + 1] = h;
      }
    } else if (k === active.length - 1) {
      restored = true;
      for (let i = 0; i < len; i += 2) {
        const h = src[i + 1]!;
        const pos = 2 * counts[base + ((h >>> hs) & hm)]!++;
        // Branch-free inverse of the key (this pass's order scatters the signs).
        const m = ~(h >> 31);
        dst[pos] = (src[i]! ^ m) >>> 0;
        dst[pos + 1] = (h ^ (m | 0x8000_0000)) >>> 0;
      }
    } else {
      for (let i = 0; i < len; i += 2) {
        const h = src[i + 1]!;
        const pos = 2 * counts[base + ((h >>> hs) & hm)]!++;
        dst[pos] = src[i]!;
        dst[pos + 1] = h;
      }
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (!restored) {
    // No pass, or the last on the low word: keys back to bits in place.
    for (let i = 0; i < len; i += 2) {
      const h = src[i + 1]!;
      if (h & 0x8000_0000) src[i + 1] = (h & 0x7fff_ffff) >>> 0;
      else {
        src[i + 1] = ~h >>> 0;
        src[i] = ~src[i]! >>> 0;
      }
    }
  }
  if (src !== words) words.set(src);
}
