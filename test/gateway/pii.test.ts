/**
 * PII redaction, class by class: generated positives (random valid instances, checksums computed) are
 * all redacted; look-alikes that fail a checksum or a range rule are all kept.
 */
import { describe, expect, it } from 'vitest';
import {
  ibanValid,
  luhnValid,
  redactRecord,
  redactText,
  vocabulariesOf,
  type PiiClass,
} from '../../src/gateway/pii';

let seed = 12345;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const digits = (n: number): string => Array.from({ length: n }, () => String(rand(10))).join('');
const letters = (n: number): string =>
  Array.from({ length: n }, () => String.fromCharCode(97 + rand(26))).join('');

function withLuhn(prefix: string, length: number): string {
  const body = prefix + digits(length - prefix.length - 1);
  for (let d = 0; d < 10; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

function iban(country: string, bban: string): string {
  const moved = `${bban}${country}00`;
  const numeric = [...moved].map((c) => (/[A-Z]/.test(c) ? String(c.charCodeAt(0) - 55) : c)).join('');
  let rem = 0;
  for (const ch of numeric) rem = (rem * 10 + Number(ch)) % 97;
  return `${country}${String(98 - rem).padStart(2, '0')}${bban}`;
}

const N = 50;
const positives: Record<PiiClass, () => string> = {
  email: () => `${letters(6)}.${letters(4)}@${letters(5)}.${['com', 'org', 'co.uk', 'de'][rand(4)]}`,
  card: () => {
    const c = withLuhn(['4', '51', '37', '6011'][rand(4)] as string, [16, 16, 15, 16][rand(4)] as number);
    return rand(2) === 0 ? c : (c.match(/.{1,4}/g) as string[]).join(rand(2) ? ' ' : '-');
  },
  iban: () => {
    const v =
      rand(3) === 0
        ? iban('DE', digits(18))
        : rand(2)
          ? iban('GB', `NWBK${digits(14)}`)
          : iban('FR', digits(23));
    return rand(2) ? v : (v.match(/.{1,4}/g) as string[]).join(' ');
  },
  national_id: () =>
    rand(2)
      ? `${String(100 + rand(565))}-${String(10 + rand(89))}-${String(1000 + rand(8999))}`
      : `${'ABCEGHJKLMNPRSTWXYZ'[rand(19)]}${'ABCEGHJKLMNPRSTWXYZ'[rand(19)]}${digits(6)}${'ABCD'[rand(4)]}`,
  phone: () =>
    [
      `+${1 + rand(98)} ${digits(3)} ${digits(3)} ${digits(4)}`,
      `(${200 + rand(799)}) ${digits(3)}-${digits(4)}`,
      `${200 + rand(799)}-${digits(3)}-${digits(4)}`,
      `+44 20 ${digits(4)} ${digits(4)}`,
    ][rand(4)] as string,
  ip: () =>
    rand(2)
      ? `${1 + rand(254)}.${rand(256)}.${rand(256)}.${1 + rand(254)}`
      : `2001:db8:${rand(65535).toString(16)}::${rand(65535).toString(16)}`,
};

const negatives: Record<PiiClass, () => string> = {
  email: () => `${letters(6)} at ${letters(5)} dot com`,
  card: () => {
    const c = withLuhn('4', 16);
    const last = Number(c.slice(-1));
    return c.slice(0, -1) + String((last + 1) % 10); // Luhn broken
  },
  iban: () => {
    const v = iban('DE', digits(18));
    return `${v.slice(0, 2)}${String((Number(v.slice(2, 4)) % 97) + 1).padStart(2, '0')}${v.slice(4)}`; // check digits off
  },
  national_id: () =>
    [`000-${digits(2)}-${digits(4)}`, `666-12-${digits(4)}`, `123-00-4567`, `9${digits(2)}-12-3456`][
      rand(4)
    ] as string,
  phone: () => [`2026-11-30`, `v1.2.3`, `order ${digits(6)}`, `12:30:45`][rand(4)] as string,
  ip: () => [`256.${rand(256)}.1.1`, `1.2.3`, `10.0.0.1.5`, `01.2.3.4`][rand(4)] as string,
};

describe('PII redaction', () => {
  for (const cls of Object.keys(positives) as PiiClass[]) {
    it(`redacts every generated ${cls} and keeps every look-alike`, () => {
      for (let i = 0; i < N; i++) {
        const value = (positives[cls] as () => string)();
        const r = redactText(`note: ${value} end`);
        expect(r.text, value).toBe(`note: [REDACTED:${cls}] end`);
        expect(r.found).toEqual([cls]);
      }
      for (let i = 0; i < N; i++) {
        const value = (negatives[cls] as () => string)();
        const r = redactText(`note: ${value} end`);
        expect(r.found, value).toEqual([]);
        expect(r.text).toBe(`note: ${value} end`);
      }
    });
  }

  it('checks IBAN and Luhn checksums', () => {
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('GB82WEST12345698765433')).toBe(false);
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
  });

  it('redacts card numbers typed into numeric fields and leaves ordinary numbers', () => {
    const r = redactRecord({ amount: 4111111111111111, hour: 13, merchant: 'grocery', note: 'mail a@b.io' });
    expect(r.record).toEqual({
      amount: '[REDACTED:card]',
      hour: 13,
      merchant: 'grocery',
      note: 'mail [REDACTED:email]',
    });
    const clean = { amount: 12.5, merchant: 'grocery' };
    expect(redactRecord(clean).record).toBe(clean);
  });

  it('leaves exact vocabulary words unscanned and scans every other string, in or out of a categorical field', () => {
    const vocab = vocabulariesOf({
      features: [
        { name: 'merchant', kind: 'categorical', categories: ['grocery', 'travel'] },
        { name: 'amount', kind: 'numeric' },
      ],
    });
    // A word of the vocabulary passes as it is; PII in the same field (an unseen category) is redacted,
    // and so is PII next to a vocabulary word, or in a field without a vocabulary.
    const r = redactRecord(
      { merchant: 'a.b@corp.example', amount: 4111111111111111, note: 'travel 4111 1111 1111 1111' },
      vocab,
    );
    expect(r.record).toEqual({
      merchant: '[REDACTED:email]',
      amount: '[REDACTED:card]',
      note: 'travel [REDACTED:card]',
    });
    expect(r.found.sort()).toEqual(['card', 'card', 'email']);
    const words = { merchant: 'travel', amount: 3.5 };
    expect(redactRecord(words, vocab)).toEqual({ record: words, found: [] });
    expect(redactRecord({ merchant: 'travel +1 415 555 0100' }, vocab).found).toEqual(['phone']);
  });
});
