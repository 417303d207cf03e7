import { describe, expect, it } from 'vitest';
import { formatZodError } from '../../src/core/contracts/errors';
import {
  DEFAULT_MAX_NULL_RATE,
  DEFAULT_MAX_UNKNOWN_RATE,
  DEFAULT_MIN_ROWS,
  DEFAULT_POISON_MAX_LABEL_RATE_Z,
  FeatureSpecSchema,
  inverseSignedLog1p,
  signedLog1p,
  specColumns,
  type FeatureSpecInput,
} from '../../src/core/contracts/feature-spec';
import { FRAUD_COLUMNS, FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';

const minimal: FeatureSpecInput = {
  name: 'toy',
  version: '1',
  label: { column: 'y', positiveValue: 1 },
  features: [
    { name: 'x', kind: 'numeric' },
    { name: 'c', kind: 'categorical', categories: ['a', 'b'] },
  ],
};

function issues(input: unknown): string {
  const r = FeatureSpecSchema.safeParse(input);
  if (r.success) throw new Error('expected the spec to be rejected');
  return formatZodError(r.error);
}

describe('FeatureSpecSchema', () => {
  it('fills every threshold from the named defaults', () => {
    const spec = FeatureSpecSchema.parse(minimal);
    expect(spec.quality.minRows).toBe(DEFAULT_MIN_ROWS);
    expect(spec.poisoning.maxLabelRateZ).toBe(DEFAULT_POISON_MAX_LABEL_RATE_Z);
    const [x, c] = spec.features;
    expect(x?.maxNullRate).toBe(DEFAULT_MAX_NULL_RATE);
    expect(c?.kind === 'categorical' && c.maxUnknownRate).toBe(DEFAULT_MAX_UNKNOWN_RATE);
    expect(specColumns(spec)).toEqual(['x', 'c', 'y']);
  });

  it('describes the generated fraud dataset: every CSV column is a feature, the label, the id or the batch', () => {
    expect([...specColumns(FRAUD_FEATURE_SPEC)].sort()).toEqual([...FRAUD_COLUMNS].sort());
    expect(FeatureSpecSchema.parse(JSON.parse(JSON.stringify(FRAUD_FEATURE_SPEC)))).toEqual(
      FRAUD_FEATURE_SPEC,
    );
  });

  it.each([
    [
      'a feature name used twice',
      { features: [minimal.features[0], { name: 'x', kind: 'numeric' }] },
      'features[1].name',
    ],
    [
      'the label column also a feature',
      { label: { column: 'x', positiveValue: 1 } },
      'label.column: column "x" is already used',
    ],
    [
      'min above max',
      { features: [{ name: 'x', kind: 'numeric', min: 5, max: 1 }] },
      'features[0].min: min 5',
    ],
    ['a sensitive attribute that is not categorical', { sensitiveAttribute: 'x' }, 'sensitiveAttribute:'],
    ['a sensitive attribute that does not exist', { sensitiveAttribute: 'zzz' }, 'sensitiveAttribute:'],
    [
      'a category listed twice',
      { features: [{ name: 'c', kind: 'categorical', categories: ['a', 'a'] }] },
      'features[0].categories[1]',
    ],
    ['an unknown feature kind', { features: [{ name: 'x', kind: 'text' }] }, 'features[0].kind'],
    ['a rate above 1', { quality: { maxDuplicateRate: 2 } }, 'quality.maxDuplicateRate'],
    [
      'an inverted label-rate band',
      { quality: { labelRate: { min: 0.5, max: 0.1 } } },
      'quality.labelRate.min',
    ],
    ['an unknown key', { quality: { minrows: 3 } }, 'quality'],
    ['a column name with spaces', { idColumn: 'row id' }, 'idColumn'],
    [
      'equal positive and negative labels',
      { label: { column: 'y', positiveValue: 1, negativeValue: 1 } },
      'label.negativeValue',
    ],
  ])('rejects %s, naming the path', (_case, patch, expected) => {
    expect(issues({ ...minimal, ...patch })).toContain(expected);
  });
});

describe('signedLog1p', () => {
  it.each([0, 0.5, -3, 1e6])('is inverted by inverseSignedLog1p (%d)', (x) => {
    expect(inverseSignedLog1p(signedLog1p(x))).toBeCloseTo(x, 6);
    expect(Math.sign(signedLog1p(x))).toBe(Math.sign(x));
  });
});
