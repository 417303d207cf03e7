import { describe, expect, it } from 'vitest';
import * as approval from '../../src/core/contracts/approval';
import { formatZodError } from '../../src/core/contracts/errors';
import {
  DurationSchema,
  IsoDateTimeSchema,
  MODEL_NAME_PATTERN,
  ModelNameSchema,
  ModelVersionSchema,
  SHA256_HEX_PATTERN,
  Sha256HexSchema,
  parseDuration,
} from '../../src/core/contracts/primitives';
import * as retraining from '../../src/core/contracts/retraining';

describe('parseDuration: one grammar for every duration', () => {
  it.each([
    ['72h', 72 * 3_600_000],
    ['30m', 1_800_000],
    ['15s', 15_000],
    ['250ms', 250],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['1m30s', 90_000],
    ['1d2h3m4s5ms', 93_784_005],
    [' 2h ', 7_200_000],
  ])('%j -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '72', 'h', '3 weeks', '10x', '-5m', '5m junk', '1h 30m'])(
    'refuses %j with a clear message',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/invalid duration .*expected a number followed by a unit/);
    },
  );
});

describe('DurationSchema', () => {
  it('accepts what parseDuration accepts, trimmed', () => {
    expect(DurationSchema.parse(' 1h30m ')).toBe('1h30m');
  });

  it.each([
    ['0s', /must be longer than zero/],
    ['90', /missing unit/],
    ['2 hours', /invalid duration/],
  ])('refuses %j', (text, message) => {
    const r = DurationSchema.safeParse(text);
    expect(r.success ? '' : formatZodError(r.error)).toMatch(message);
  });

  it('the training timeout and the approval timeout share it (combined form, field named on error)', () => {
    expect(retraining.TrainingOptionsSchema.parse({ timeout: '1h30m' }).timeout).toBe('1h30m');
    expect(approval.ApprovalPolicySchema.parse({ approvers: [{ id: 'a' }], timeout: '1d12h' }).timeout).toBe(
      '1d12h',
    );
    const r = retraining.TrainingOptionsSchema.safeParse({ timeout: 'soon' });
    expect(r.success ? '' : formatZodError(r.error)).toMatch(/^timeout: invalid duration "soon"/);
  });
});

describe('Sha256HexSchema', () => {
  const digest = 'a'.repeat(64);
  it.each([
    [digest, true],
    ['A'.repeat(64), false],
    ['a'.repeat(63), false],
    ['a'.repeat(65), false],
    [`${'a'.repeat(63)}g`, false],
  ])('%s -> %s', (value, ok) => {
    expect(Sha256HexSchema.safeParse(value).success).toBe(ok);
    expect(SHA256_HEX_PATTERN.test(value)).toBe(ok);
  });

  it('is the digest grammar of dataset refs', () => {
    const r = retraining.DatasetRefSchema.safeParse({ uri: 'file:///x.csv', sha256: 'ABC' });
    expect(r.success ? '' : formatZodError(r.error)).toBe('sha256: must be a lowercase hex sha256 digest');
  });
});

describe('IsoDateTimeSchema', () => {
  it.each([
    ['2026-11-26T10:00:00.000Z', true],
    ['2026-11-26T10:00:00+01:00', true],
    ['2026-11-26', false],
    ['26/11/2026 10:00', false],
  ])('%s -> %s', (value, ok) => {
    expect(IsoDateTimeSchema.safeParse(value).success).toBe(ok);
  });
});

describe('model names and versions', () => {
  it.each([
    ['fraud', true],
    ['fraud-v2', true],
    ['a', true],
    ['x'.repeat(48), true],
    ['x'.repeat(49), false],
    ['Fraud', false],
    ['-fraud', false],
    ['fraud-', false],
    ['fraud_v2', false],
  ])('model name %j -> %s', (value, ok) => {
    expect(ModelNameSchema.safeParse(value).success).toBe(ok);
    expect(MODEL_NAME_PATTERN.test(value)).toBe(ok);
  });

  it('the pipeline input names the model field on a bad name', () => {
    const r = retraining.RetrainingInputSchema.safeParse({
      model: 'Bad Name',
      dataset: { uri: 'file:///x.csv' },
      trigger: { kind: 'manual' },
    });
    expect(r.success ? '' : formatZodError(r.error)).toBe(
      'model: must be lowercase letters, digits and dashes (max 48)',
    );
  });

  it.each([
    ['3', '3'],
    [3, '3'],
    [' 12 ', '12'],
  ])('model version %j -> %j', (value, out) => {
    expect(ModelVersionSchema.parse(value)).toBe(out);
  });

  it.each(['', -1, 1.5, 'x'.repeat(65)])('refuses model version %j', (value) => {
    expect(ModelVersionSchema.safeParse(value).success).toBe(false);
  });
});

describe('re-exports from the older places are the same values', () => {
  it('approval and retraining re-export the primitives unchanged', () => {
    expect(approval.parseDuration).toBe(parseDuration);
    expect(approval.DurationSchema).toBe(DurationSchema);
    expect(approval.ModelVersionSchema).toBe(ModelVersionSchema);
    expect(approval.IsoDateTimeSchema).toBe(IsoDateTimeSchema);
    expect(retraining.MODEL_NAME_PATTERN).toBe(MODEL_NAME_PATTERN);
  });
});
