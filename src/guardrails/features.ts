/**
 * The classifiers' features: hashed character 3-5-grams and word 1-2-grams of the normalised,
 * lower-cased text, log-scaled counts, L2-normalised. One implementation serves training (it writes the
 * vectors the Python fitter reads) and serving (onnxruntime-node), so the two can never disagree.
 *
 * Rules: {@link FEATURISER_VERSION} changes whenever the output for any input changes (it is part of the
 * model cache key); work is linear in the text and bounded by {@link MAX_FEATURE_CHARS}.
 */

/** Bumped on any change of the features; part of the trained models' cache key. */
export const FEATURISER_VERSION = 2;
/** Hash space: 2^18 buckets keeps collisions rare for a few hundred thousand distinct n-grams. */
export const FEATURE_DIM = 1 << 18;
/** Characters featurised from the start of a text; jailbreak preambles say what they are early. */
export const HEAD_CHARS = 2048;
/** Characters featurised from the end of a text (the request that follows a preamble). */
export const TAIL_CHARS = 512;
export const MAX_FEATURE_CHARS = HEAD_CHARS + TAIL_CHARS;
/** Character n-gram lengths. */
const CHAR_N = [3, 4, 5] as const;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 16777619;
/** Distinct seeds keep character and word n-grams in separate streams of the same hash space. */
const SEED_CHAR = 0x9e3779b9;
const SEED_WORD = 0x85ebca6b;
const SEED_BIGRAM = 0xc2b2ae35;
const MASK = FEATURE_DIM - 1;

export interface SparseFeatures {
  indices: Int32Array;
  values: Float32Array;
}

/** The text the features are computed from: lower case, single spaces, head and tail kept. */
export function featureText(text: string): string {
  // Whitespace runs shrink the text: cut the raw text with room to spare first, then tidy and cut exactly.
  const raw =
    text.length > 4 * MAX_FEATURE_CHARS
      ? `${text.slice(0, 2 * HEAD_CHARS)} ${text.slice(text.length - 2 * TAIL_CHARS)}`
      : text;
  let s = raw.toLowerCase().replace(/\s+/g, ' ').trim();
  if (s.length > MAX_FEATURE_CHARS) s = `${s.slice(0, HEAD_CHARS)} ${s.slice(s.length - TAIL_CHARS)}`;
  return s;
}

function hashWord(w: string, seed: number): number {
  let h = (FNV_OFFSET ^ seed) >>> 0;
  for (let i = 0; i < w.length; i++) {
    h ^= w.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return (h >>> 0) & MASK;
}

/** Reusable scratch space: one featuriser per thread of execution. */
export class Featuriser {
  private readonly acc = new Float32Array(FEATURE_DIM);
  private readonly touched = new Int32Array(4 * MAX_FEATURE_CHARS + 16);

  featurise(text: string): SparseFeatures {
    const s = ` ${featureText(text)} `;
    let nTouched = 0;
    const acc = this.acc;
    const touched = this.touched;
    const bump = (idx: number) => {
      if (acc[idx] === 0) touched[nTouched++] = idx;
      acc[idx] = (acc[idx] as number) + 1;
    };
    const L = s.length;
    for (const n of CHAR_N) {
      const seed = (FNV_OFFSET ^ Math.imul(SEED_CHAR, n)) >>> 0;
      for (let i = 0; i + n <= L; i++) {
        let h = seed;
        for (let j = 0; j < n; j++) {
          h ^= s.charCodeAt(i + j);
          h = Math.imul(h, FNV_PRIME);
        }
        bump((h >>> 0) & MASK);
      }
    }
    const words = s.match(/[\p{L}\p{N}']+/gu) ?? [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i] as string;
      bump(hashWord(w, SEED_WORD));
      if (i > 0) bump(hashWord(`${words[i - 1] as string} ${w}`, SEED_BIGRAM));
    }
    const indices = new Int32Array(nTouched);
    const values = new Float32Array(nTouched);
    let norm = 0;
    for (let k = 0; k < nTouched; k++) {
      const idx = touched[k] as number;
      const v = Math.log1p(acc[idx] as number);
      acc[idx] = 0;
      indices[k] = idx;
      values[k] = v;
      norm += v * v;
    }
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      for (let k = 0; k < nTouched; k++) values[k] = (values[k] as number) * inv;
    }
    return { indices, values };
  }
}
