/**
 * Normalisation, the input guard's first layer: undoes the tricks that hide an instruction from a
 * filter while a model still reads it, and reports each trick it found.
 *
 * - Unicode tag characters (U+E0000..U+E007F) spell ASCII invisibly: decoded into a payload.
 * - Zero-width, bidi-control, variation-selector and soft-hyphen characters: removed and counted.
 * - Compatibility forms (fullwidth, mathematical letters): NFKC.
 * - Homoglyphs: Cyrillic and Greek look-alikes inside a word that also has Latin letters are folded
 *   to Latin (a whole Cyrillic or Greek word is left alone: that is a language, not a trick).
 * - Encoded payloads: base64, hex and rot13 runs that decode to text become payloads of their own.
 * - Markdown and HTML hiding: comments, hidden elements, link titles, reference-style comments and
 *   image alt text become payloads; tags are stripped from the visible text.
 *
 * The result is the visible text plus every payload; later layers scan each segment and the guard
 * keeps the worst score. Rules: linear time in the input (every regex here is free of nested
 * quantifiers), and no payload is decoded from more than {@link MAX_DECODE_CHARS} characters.
 */

/** Longest run handed to a decoder: bounds the work an adversarial input can cause. */
export const MAX_DECODE_CHARS = 16_384;
/** Fewest base64 characters taken as a payload: shorter runs are ids and hashes. */
export const MIN_BASE64_CHARS = 16;
/** Fewest hex bytes taken as a payload. */
export const MIN_HEX_BYTES = 8;
/** Share of printable characters a decoded payload needs to count as text. */
export const MIN_PRINTABLE_SHARE = 0.9;
/** Characters looked at to tell whether a text is rot13 (English or not shows within a few lines). */
export const ROT13_PROBE_CHARS = 2048;
/** Most payloads kept from one message: the rest are counted, not scanned. */
export const MAX_PAYLOADS = 16;

export const NORMALISATION_FINDINGS = [
  'tag_chars',
  'zero_width',
  'bidi',
  'variation_selector',
  'homoglyph',
  'compatibility',
  'base64',
  'hex',
  'rot13',
  'html_hidden',
  'markdown_hidden',
] as const;
export type NormalisationFinding = (typeof NORMALISATION_FINDINGS)[number];

export interface Segment {
  /** Where the text came from: the visible message or a decoded/hidden payload. */
  source: 'visible' | NormalisationFinding;
  text: string;
}

export interface Normalised {
  /** The visible text after removal, NFKC and folding. */
  text: string;
  /** Visible text first, then every payload. */
  segments: Segment[];
  /** Count per finding (absent: none). */
  findings: Partial<Record<NormalisationFinding, number>>;
}

/** Suspicion a finding adds on its own, before any payload is read (tag characters never occur in prose). */
export const FINDING_WEIGHTS: Readonly<Record<NormalisationFinding, number>> = {
  tag_chars: 0.95,
  bidi: 0.5,
  zero_width: 0.3,
  variation_selector: 0.5,
  homoglyph: 0.4,
  compatibility: 0,
  base64: 0.2,
  hex: 0.2,
  rot13: 0.3,
  html_hidden: 0.4,
  markdown_hidden: 0.3,
};

const HOMOGLYPHS: Readonly<Record<string, string>> = {
  // Cyrillic
  а: 'a',
  в: 'b',
  е: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  ѕ: 's',
  і: 'i',
  ј: 'j',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  һ: 'h',
  ӏ: 'l',
  ɡ: 'g',
  А: 'A',
  В: 'B',
  Е: 'E',
  К: 'K',
  М: 'M',
  Н: 'H',
  О: 'O',
  Р: 'P',
  С: 'C',
  Т: 'T',
  Х: 'X',
  У: 'Y',
  Ѕ: 'S',
  І: 'I',
  Ј: 'J',
  Ԛ: 'Q',
  Ԝ: 'W',
  // Greek
  α: 'a',
  ο: 'o',
  ρ: 'p',
  ν: 'v',
  ι: 'i',
  κ: 'k',
  τ: 't',
  υ: 'u',
  ε: 'e',
  χ: 'x',
  γ: 'y',
  Α: 'A',
  Β: 'B',
  Ε: 'E',
  Ζ: 'Z',
  Η: 'H',
  Ι: 'I',
  Κ: 'K',
  Μ: 'M',
  Ν: 'N',
  Ο: 'O',
  Ρ: 'P',
  Τ: 'T',
  Υ: 'Y',
  Χ: 'X',
};
const HOMOGLYPH_CLASS = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'u');

const TAG_CHARS = /[\u{E0000}-\u{E007F}]+/gu;
// The joiner is matched alone, as an alternative, so the class holds no joined sequence.
const ZERO_WIDTH = /\u200D|[\u200B\u200C\u2060-\u2064\uFEFF\u180E\u00AD]/g;
const BIDI = /[\u200E\u200F\u202A-\u202E\u2066-\u2069\u061C]/g;
/** FE0E/FE0F (text/emoji presentation) are everyday emoji parts: removed silently, not counted. */
const VARIATION = /[\uFE00-\uFE0D\u{E0100}-\u{E01EF}]/gu;
const EMOJI_PRESENTATION = /[\uFE0E\uFE0F]/g;
const WORD_WITH_LETTERS = /[\p{L}\p{M}]+/gu;
// eslint-disable-next-line no-control-regex
const ASCII_ONLY = /^[\x00-\x7f]*$/;
const LATIN = /[A-Za-z]/;
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
const HEX_RUN = /(?:\\x[0-9a-fA-F]{2}){8,}|(?:[0-9a-fA-F]{2}[ :]?){8,}/g;
const HTML_COMMENT = /<!--([\s\S]{0,16384}?)-->/g;
const HIDDEN_ELEMENT =
  /<(\w{1,16})\b[^>]{0,512}?(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0(?![.\d])|\bhidden\b|color\s*:\s*(?:#fff(?:fff)?|white|transparent))[^>]{0,512}>([\s\S]{0,16384}?)<\/\1\s*>/gi;
const HTML_TAG = /<\/?[A-Za-z][^<>]{0,512}>/g;
const MD_COMMENT = /^\s{0,3}\[(?:\/\/|comment|_)\]:\s*#?\s*[("<]([^\n]{1,4096})[)">]\s*$/gim;
const MD_LINK_TITLE = /\]\([^)\s]{0,2048}\s+"([^"\n]{1,2048})"\)/g;
const MD_IMAGE_ALT = /!\[([^\]\n]{1,2048})\]\(/g;

/** Common English words: rot13 of English text is full of them, rot13 of English is not. */
const COMMON_WORDS = new Set(
  'the you and your are all to of is in that it for this be with as on not or previous ignore instructions system prompt now from what me tell say print reveal any must will do have an please'.split(
    ' ',
  ),
);

function rot13(s: string): string {
  return s.replace(/[A-Za-z]/g, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
  });
}

function commonShare(s: string): { share: number; words: number } {
  const words = s.toLowerCase().match(/[a-z]+/g) ?? [];
  if (words.length === 0) return { share: 0, words: 0 };
  let n = 0;
  for (const w of words) if (COMMON_WORDS.has(w)) n++;
  return { share: n / words.length, words: words.length };
}

function printableText(s: string): boolean {
  if (s.length < 4) return false;
  let ok = 0;
  let letters = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c === 0xfffd) continue;
    if (c === 9 || c === 10 || c === 13 || (c >= 32 && c !== 127 && !(c >= 0x80 && c < 0xa0))) ok++;
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 0xbf) letters++;
  }
  const total = [...s].length;
  return ok / total >= MIN_PRINTABLE_SHARE && letters / total >= 0.5 && /\s/.test(s);
}

function decodeBase64(run: string): string | undefined {
  const clean = run.replace(/-/g, '+').replace(/_/g, '/');
  if (clean.length % 4 === 1) return undefined;
  const text = Buffer.from(clean, 'base64').toString('utf8');
  return printableText(text) ? text : undefined;
}

function decodeHex(run: string): string | undefined {
  const hex = run.replace(/\\x|[ :]/g, '');
  if (hex.length % 2 !== 0 || hex.length < MIN_HEX_BYTES * 2) return undefined;
  const text = Buffer.from(hex, 'hex').toString('utf8');
  return printableText(text) ? text : undefined;
}

/** The normalisation layer over one message's text. */
export function normalise(input: string): Normalised {
  const findings: Partial<Record<NormalisationFinding, number>> = {};
  const payloads: Segment[] = [];
  const add = (f: NormalisationFinding, n = 1) => (findings[f] = (findings[f] ?? 0) + n);
  const payload = (source: NormalisationFinding, text: string) => {
    add(source);
    if (payloads.length < MAX_PAYLOADS && text.trim()) payloads.push({ source, text });
  };

  let text = input;
  // Plain ASCII holds none of the invisible, compatibility or look-alike characters: skip those passes.
  if (!ASCII_ONLY.test(text)) {
    text = text.replace(TAG_CHARS, (m) => {
      let ascii = '';
      for (const ch of m) ascii += String.fromCharCode((ch.codePointAt(0) as number) - 0xe0000);
      payload('tag_chars', ascii);
      return '';
    });
    // A zero-width character between two letters splits a word for a filter (emoji joiners are not counted).
    text = text.replace(ZERO_WIDTH, (_m, at: number, all: string) => {
      if (/\w/.test(all[at - 1] ?? '') && /\w/.test(all[at + 1] ?? '')) add('zero_width');
      return '';
    });
    text = text.replace(BIDI, () => (add('bidi'), ''));
    text = text.replace(VARIATION, () => (add('variation_selector'), '')).replace(EMOJI_PRESENTATION, '');
    const nfkc = text.normalize('NFKC');
    if (nfkc !== text) add('compatibility');
    text = nfkc;
    if (HOMOGLYPH_CLASS.test(text)) {
      text = text.replace(WORD_WITH_LETTERS, (w) => {
        if (!LATIN.test(w) || !HOMOGLYPH_CLASS.test(w)) return w;
        let out = '';
        for (const ch of w) out += HOMOGLYPHS[ch] ?? ch;
        add('homoglyph');
        return out;
      });
    }
  }

  if (text.includes('<')) {
    text = text.replace(HTML_COMMENT, (_m, inner: string) => (payload('html_hidden', inner), ' '));
    text = text.replace(
      HIDDEN_ELEMENT,
      (_m, _tag: string, inner: string) => (payload('html_hidden', inner), ' '),
    );
    text = text.replace(HTML_TAG, ' ');
  }
  if (text.includes('](') || text.includes(']:')) {
    text = text.replace(MD_COMMENT, (_m, inner: string) => (payload('markdown_hidden', inner), ''));
    for (const m of text.matchAll(MD_LINK_TITLE)) payload('markdown_hidden', m[1] as string);
    for (const m of text.matchAll(MD_IMAGE_ALT)) payload('markdown_hidden', m[1] as string);
  }

  const scan = text.length > MAX_DECODE_CHARS ? text.slice(0, MAX_DECODE_CHARS) : text;
  for (const m of scan.matchAll(BASE64_RUN)) {
    const run = m[0];
    // A run of letters alone (a long word, a camelCase identifier) is not base64.
    if (!/[0-9+/=]/.test(run) && !/[A-Z].*[a-z].*[A-Z]/.test(run)) continue;
    const decoded = decodeBase64(run);
    if (decoded) payload('base64', decoded);
  }
  for (const m of scan.matchAll(HEX_RUN)) {
    const decoded = decodeHex(m[0]);
    if (decoded) payload('hex', decoded);
  }
  const probe = scan.length > ROT13_PROBE_CHARS ? scan.slice(0, ROT13_PROBE_CHARS) : scan;
  const plain = commonShare(probe);
  if (plain.words >= 4 && plain.share < 0.15) {
    const turned = rot13(scan);
    const r = commonShare(turned);
    if (r.share >= 0.25 && r.share >= 2 * plain.share) payload('rot13', turned);
  }
  return { text, segments: [{ source: 'visible', text }, ...payloads], findings };
}

/** The normalisation layer's own suspicion: the strongest finding's weight. */
export function findingScore(findings: Normalised['findings']): number {
  let s = 0;
  for (const k in findings) s = Math.max(s, FINDING_WEIGHTS[k as NormalisationFinding]);
  return s;
}
