/**
 * The feature spec of the reference fraud-detection dataset produced by `src/workload/generator.ts`.
 *
 * Rules:
 * - Sandbox-safe: plain data, parsed once with {@link FeatureSpecSchema} at load so defaults are filled in and
 *   a mistake here fails loudly at import rather than at validation time.
 * - The column names and category vocabularies below are the generator's; change both together.
 */
import { FeatureSpecSchema, type FeatureSpec } from './feature-spec';

export const FRAUD_MERCHANT_CATEGORIES = [
  'grocery',
  'restaurant',
  'fuel',
  'online_retail',
  'electronics',
  'travel',
  'entertainment',
  'pharmacy',
] as const;
export type FraudMerchantCategory = (typeof FRAUD_MERCHANT_CATEGORIES)[number];

export const FRAUD_REGIONS = ['north', 'south', 'east', 'west'] as const;
export type FraudRegion = (typeof FRAUD_REGIONS)[number];

/** Column order of the generated CSV. */
export const FRAUD_COLUMNS = [
  'transaction_id',
  'batch_id',
  'amount',
  'merchant_category',
  'hour_of_day',
  'customer_age_days',
  'txn_count_24h',
  'distance_from_home_km',
  'card_present',
  'device_risk_score',
  'region',
  'is_fraud',
] as const;
export type FraudColumn = (typeof FRAUD_COLUMNS)[number];

/** Largest plausible transaction amount; anything above is a unit or parsing error upstream. */
export const FRAUD_MAX_AMOUNT = 100_000;
/** Half the Earth's circumference: no place is farther from home. */
export const FRAUD_MAX_DISTANCE_KM = 20_038;
/** A century of account age. */
export const FRAUD_MAX_CUSTOMER_AGE_DAYS = 36_500;
/** More transactions a day than a card network would let through is a counter error. */
export const FRAUD_MAX_TXN_COUNT_24H = 1_000;
/** Null rate allowed for columns filled by optional enrichments (device fingerprint, geolocation). */
export const FRAUD_ENRICHMENT_MAX_NULL_RATE = 0.05;
/** Null rate allowed for columns every transaction record carries. */
export const FRAUD_CORE_MAX_NULL_RATE = 0.01;

export const FRAUD_FEATURE_SPEC: FeatureSpec = FeatureSpecSchema.parse({
  name: 'fraud',
  version: '1',
  label: { column: 'is_fraud', positiveValue: 1, negativeValue: 0 },
  sensitiveAttribute: 'region',
  idColumn: 'transaction_id',
  batchColumn: 'batch_id',
  features: [
    { name: 'amount', kind: 'numeric', min: 0, max: FRAUD_MAX_AMOUNT, maxNullRate: FRAUD_CORE_MAX_NULL_RATE },
    {
      name: 'merchant_category',
      kind: 'categorical',
      categories: [...FRAUD_MERCHANT_CATEGORIES],
      maxNullRate: FRAUD_ENRICHMENT_MAX_NULL_RATE,
      maxUnknownRate: 0.01,
    },
    { name: 'hour_of_day', kind: 'numeric', min: 0, max: 23, maxNullRate: FRAUD_CORE_MAX_NULL_RATE },
    {
      name: 'customer_age_days',
      kind: 'numeric',
      min: 0,
      max: FRAUD_MAX_CUSTOMER_AGE_DAYS,
      maxNullRate: FRAUD_CORE_MAX_NULL_RATE,
    },
    {
      name: 'txn_count_24h',
      kind: 'numeric',
      min: 0,
      max: FRAUD_MAX_TXN_COUNT_24H,
      maxNullRate: FRAUD_CORE_MAX_NULL_RATE,
    },
    {
      name: 'distance_from_home_km',
      kind: 'numeric',
      min: 0,
      max: FRAUD_MAX_DISTANCE_KM,
      maxNullRate: FRAUD_ENRICHMENT_MAX_NULL_RATE,
    },
    { name: 'card_present', kind: 'numeric', min: 0, max: 1, maxNullRate: FRAUD_CORE_MAX_NULL_RATE },
    {
      name: 'device_risk_score',
      kind: 'numeric',
      min: 0,
      max: 1,
      maxNullRate: FRAUD_ENRICHMENT_MAX_NULL_RATE,
    },
    {
      name: 'region',
      kind: 'categorical',
      categories: [...FRAUD_REGIONS],
      maxNullRate: FRAUD_CORE_MAX_NULL_RATE,
      maxUnknownRate: 0,
    },
  ],
  quality: {
    minRows: 1000,
    maxDuplicateRate: 0.005,
    // Card fraud runs at a fraction of a percent to a few percent; outside this band the labels are broken.
    labelRate: { min: 0.005, max: 0.2 },
  },
});
