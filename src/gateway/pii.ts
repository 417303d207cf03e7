/**
 * PII detection and redaction, run over everything the gateway logs or stores (access log, inference
 * log): emails, phone numbers, payment card numbers (Luhn-checked), IBANs (mod-97-checked), national
 * ids (US SSN with its reserved ranges excluded, UK National Insurance numbers) and IP addresses
 * (IPv4 octets checked, IPv6 parsed). Each match becomes `[REDACTED:<class>]`.
 *
 * Rules:
 * - Checksums and range checks keep look-alikes (order numbers, versions, timestamps) intact.
 * - Fast path: a string with no digit and no `@` cannot hold any class and is returned as it is.
 */
import { isIPv6 } from 'node:net';

export const PII_CLASSES = ['email', 'card', 'iban', 'national_id', 'phone', 'ip'] as const;
export type PiiClass = (typeof PII_CLASSES)[number];

export const redactionMark = (cls: PiiClass): string => `[REDACTED:${cls}]`;

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}/g;
/** 13-19 digits, optionally in groups separated by single spaces or dashes. */
const CARD = /(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])/g;
/** Country code, check digits, 11-30 alphanumerics, optionally in groups of four. */
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g;
const SSN = /(?<!\d)(\d{3})-(\d{2})-(\d{4})(?!\d)/g;
const NINO = /\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g;
const IPV4 = /(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])/g;
const IPV6 = /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])/g;
/**
 * International (+CC then 7-14 digits) or North American ((NPA) NXX-XXXX, NPA-NXX-XXXX, NPA.NXX.XXXX)
 * numbers; separators are single spaces, dots or dashes.
 */
const PHONE =
  /(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([.-])\d{3}\1\d{4})(?![\w])/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

export function ibanValid(raw: string): boolean {
  const iban = raw.replace(/ /g, '');
  if (iban.length < 15 || iban.length > 34) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    rem = value > 9 ? (rem * 100 + value) % 97 : (rem * 10 + value) % 97;
  }
  return rem === 1;
}

function ssnValid(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}

function phoneDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) n++;
  return n;
}

export interface RedactionResult {
  text: string;
  found: PiiClass[];
}

/** Redacts every PII class in a string; `found` lists each class once per match. */
export function redactText(input: string): RedactionResult {
  const found: PiiClass[] = [];
  if (!/[\d@]/.test(input)) return { text: input, found };
  let text = input;
  if (text.includes('@')) {
    text = text.replace(EMAIL, () => (found.push('email'), redactionMark('email')));
  }
  text = text.replace(IBAN, (m) => (ibanValid(m) ? (found.push('iban'), redactionMark('iban')) : m));
  text = text.replace(CARD, (m) => {
    const digits = m.replace(/[ -]/g, '');
    return luhnValid(digits) ? (found.push('card'), redactionMark('card')) : m;
  });
  text = text.replace(SSN, (m, a: string, g: string, s: string) =>
    ssnValid(a, g, s) ? (found.push('national_id'), redactionMark('national_id')) : m,
  );
  text = text.replace(NINO, () => (found.push('national_id'), redactionMark('national_id')));
  text = text.replace(IPV4, (m, a: string, b: string, c: string, d: string) =>
    [a, b, c, d].every((o) => Number(o) <= 255 && (o.length === 1 || o[0] !== '0'))
      ? (found.push('ip'), redactionMark('ip'))
      : m,
  );
  if (text.includes(':')) {
    text = text.replace(IPV6, (m) => (isIPv6(m) ? (found.push('ip'), redactionMark('ip')) : m));
  }
  text = text.replace(PHONE, (m) => {
    const n = phoneDigits(m);
    return n >= 10 && n <= 15 ? (found.push('phone'), redactionMark('phone')) : m;
  });
  return { text, found };
}

/** Digits of an integer that could be a card number typed into a numeric field. */
const CARD_LIKE_MIN = 1e12;

/** Per feature, the words of its fixed vocabulary (a feature spec's categories). */
export type Vocabularies = ReadonlyMap<string, ReadonlySet<string>>;

/** The categorical vocabularies of a feature spec, for {@link redactRecord}. */
export function vocabulariesOf(spec: {
  features: ReadonlyArray<{ name: string; kind: string; categories?: readonly string[] }>;
}): Vocabularies {
  const out = new Map<string, ReadonlySet<string>>();
  for (const f of spec.features) if (f.categories) out.set(f.name, new Set(f.categories));
  return out;
}

/**
 * Redacts the values of a flat record (features): strings are scanned, integers long enough to be a
 * card number are Luhn-checked. A string that is exactly one of its field's `vocabulary` words (the
 * model's fixed categories, the same for every caller) carries nothing personal and is not scanned;
 * any other string, an unseen category or free text, is. Returns a new record (or the same one when
 * nothing was found).
 */
export function redactRecord<T extends Record<string, unknown>>(
  record: T,
  vocabulary?: Vocabularies,
): { record: T; found: PiiClass[] } {
  let out: Record<string, unknown> | undefined;
  const found: PiiClass[] = [];
  for (const key in record) {
    const v = record[key];
    let replacement: unknown = v;
    if (typeof v === 'string') {
      if (vocabulary?.get(key)?.has(v)) continue;
      const r = redactText(v);
      if (r.found.length > 0) {
        found.push(...r.found);
        replacement = r.text;
      }
    } else if (typeof v === 'number' && Math.abs(v) >= CARD_LIKE_MIN && Number.isSafeInteger(v)) {
      if (luhnValid(String(Math.abs(v)))) {
        found.push('card');
        replacement = redactionMark('card');
      }
    }
    if (replacement !== v) {
      out ??= { ...record };
      out[key] = replacement;
    }
  }
  return { record: (out ?? record) as T, found };
}
