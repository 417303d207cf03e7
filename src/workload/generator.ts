/**
 * Synthetic but realistic card-transaction data for the reference fraud model.
 *
 * Rules:
 * - Deterministic: the same options give the same rows, byte for byte. Randomness comes only from pure-rand
 *   (xoroshiro128+) seeded by `seed`; never Math.random, never the clock.
 * - The label is drawn from a logistic model over the features plus latent noise, so a model can learn it
 *   (PR-AUC well above the base rate) but not perfectly. The model's intercept is calibrated on a fixed
 *   reference sample, so P(fraud | features) is the same for every seed: datasets of different seeds are
 *   draws from one world, and `dataDrift` changes P(features) only (the fraud rate moves with it, as it
 *   would), while `conceptDrift` changes P(fraud | features) at the requested base rate.
 * - Regions differ genuinely but slightly in fraud base rate (the fairness evaluation has something to see).
 * - Drift is applied to every row alike; batches differ only by sampling noise, except a poisoned batch:
 *   `cluster` replaces a fraction of its rows by a tight cluster of fraud-looking transactions labelled
 *   legitimate (a crafted evasion backdoor); `flip` inverts the labels of a fraction of its rows. Poisoning
 *   draws from its own random stream, so the other batches are identical to the unpoisoned dataset.
 * - Missing values (a device score not captured, an unknown merchant, no geolocation) are masked after the
 *   label is drawn: the label depends on the true value, as in life.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringify as stringifySync } from 'csv-stringify/sync';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { z } from 'zod';
import { parseOrThrow } from '../core/contracts/errors';
import { openEngine, sqlString } from '../data/engine';
import {
  FRAUD_COLUMNS,
  FRAUD_MAX_AMOUNT,
  FRAUD_MAX_CUSTOMER_AGE_DAYS,
  FRAUD_MAX_DISTANCE_KM,
  FRAUD_MAX_TXN_COUNT_24H,
  FRAUD_MERCHANT_CATEGORIES,
  FRAUD_REGIONS,
  type FraudMerchantCategory,
  type FraudRegion,
} from '../core/contracts/fraud';

/** Share of fraudulent transactions when none is asked for: a typical card-fraud rate in labelled data. */
export const DEFAULT_FRAUD_RATE = 0.03;
/** Ingestion batches when none is asked for: enough for the poisoning screen to compare a batch with the rest. */
export const DEFAULT_BATCHES = 10;
/** Base rate of missing enrichment values (device score, geolocation; a fifth of it for merchant). */
export const DEFAULT_MISSING_RATE = 0.01;
/** Share of the poisoned batch's rows that are poisoned when no fraction is given. */
export const DEFAULT_POISON_FRACTION = 0.2;
/** Poisoning attack when no mode is given: the crafted cluster (harder to see than flipped labels). */
export const DEFAULT_POISON_MODE = 'cluster';
/** Largest dataset generated in memory: 10 million rows is a few GB of objects. */
export const MAX_GENERATED_ROWS = 10_000_000;
/** Seed of the reference sample the label model's intercept is calibrated on (fixed: one world for all seeds). */
export const CALIBRATION_SEED = 20_240_601;
/** Size of that sample: the calibrated base rate is within about 0.1 percentage point of the target. */
export const CALIBRATION_SAMPLE_SIZE = 20_000;

export const POISON_MODES = ['cluster', 'flip'] as const;
export type PoisonMode = (typeof POISON_MODES)[number];

/**
 * Poisoning against history, spread over every batch alike (so no batch stands out within the snapshot):
 * `replay-flip` replaces rows by copies of the reference dataset's rows (the champion's training data) with
 * the other label, optionally only rows of one region (flips concentrated in a segment); `near-duplicates`
 * replaces rows by copies of a few reference rows whose amount is jittered by at most two cents (a surge of
 * near-duplicates that exact-duplicate checks miss).
 */
export const HISTORY_POISON_MODES = ['replay-flip', 'near-duplicates'] as const;
export type HistoryPoisonMode = (typeof HISTORY_POISON_MODES)[number];
/** Share of rows replaced by history poisoning when no fraction is given. */
export const DEFAULT_HISTORY_POISON_FRACTION = 0.05;
/** Distinct reference rows copied by `near-duplicates` when no count is given. */
export const DEFAULT_NEAR_DUPLICATE_TEMPLATES = 5;

const Strength = z.number().min(0).max(1);

export const GenerateOptionsSchema = z
  .object({
    rows: z.number().int().min(1).max(MAX_GENERATED_ROWS),
    seed: z.number().int().min(0).max(0xffff_ffff),
    fraudRate: z.number().gt(0).lt(0.5).default(DEFAULT_FRAUD_RATE),
    batches: z.number().int().min(1).default(DEFAULT_BATCHES),
    /** 0..1: shifts the feature distributions (amounts, hours, merchant mix, device scores ...). */
    dataDrift: Strength.default(0),
    /** 0..1: moves the label model towards a different fraud pattern. */
    conceptDrift: Strength.default(0),
    /** 0..1: makes the sensitive attribute (region) predictive of the label (a biased labelling process). */
    sensitiveEffect: Strength.default(0),
    missingRate: z.number().min(0).max(0.5).default(DEFAULT_MISSING_RATE),
    poisonedBatch: z
      .object({
        /** The batch_id of the batch to poison (0-based). */
        batch: z.number().int().min(0),
        fraction: z.number().gt(0).max(1).default(DEFAULT_POISON_FRACTION),
        mode: z.enum(POISON_MODES).default(DEFAULT_POISON_MODE),
        /** Only rows of this region are poisoned (a segment-targeted attack); default any row. */
        region: z.enum(FRAUD_REGIONS).optional(),
      })
      .strict()
      .optional(),
    historyPoison: z
      .object({
        /** The reference dataset (the champion's training data) by its generator options. */
        reference: z
          .object({
            rows: z.number().int().min(1).max(MAX_GENERATED_ROWS),
            seed: z.number().int().min(0).max(0xffff_ffff),
            fraudRate: z.number().gt(0).lt(0.5).default(DEFAULT_FRAUD_RATE),
          })
          .strict(),
        mode: z.enum(HISTORY_POISON_MODES),
        fraction: z.number().gt(0).max(1).default(DEFAULT_HISTORY_POISON_FRACTION),
        /** replay-flip: only reference rows of this region are replayed. */
        region: z.enum(FRAUD_REGIONS).optional(),
        /** near-duplicates: how many distinct reference rows are copied. */
        templates: z.number().int().min(1).max(1000).default(DEFAULT_NEAR_DUPLICATE_TEMPLATES),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((opts, ctx) => {
    if (opts.batches > opts.rows) {
      ctx.addIssue({
        code: 'custom',
        path: ['batches'],
        message: `${opts.batches} batches cannot be made of ${opts.rows} rows`,
      });
    }
    if (opts.poisonedBatch !== undefined && opts.poisonedBatch.batch >= opts.batches) {
      ctx.addIssue({
        code: 'custom',
        path: ['poisonedBatch', 'batch'],
        message: `batch ${opts.poisonedBatch.batch} does not exist: batch ids are 0..${opts.batches - 1}`,
      });
    }
  });
export type GenerateOptions = z.input<typeof GenerateOptionsSchema>;
type ParsedOptions = z.output<typeof GenerateOptionsSchema>;

/** One transaction; keys are the CSV columns ({@link FRAUD_COLUMNS}), null is an empty cell. */
export interface FraudRow {
  transaction_id: string;
  batch_id: number;
  amount: number;
  merchant_category: FraudMerchantCategory | null;
  hour_of_day: number;
  customer_age_days: number;
  txn_count_24h: number;
  distance_from_home_km: number | null;
  card_present: 0 | 1;
  device_risk_score: number | null;
  region: FraudRegion;
  is_fraud: 0 | 1;
}

// ---------------------------------------------------------------------------------------------------------
// Random draws
// ---------------------------------------------------------------------------------------------------------

type Rng = ReturnType<typeof xoroshiro128plus>;

/** Draws from the usual distributions on top of one pure-rand generator (mutated in place). */
class Random {
  private spare: number | undefined;

  constructor(private readonly rng: Rng) {}

  /** Uniform in [0, 1). */
  uniform(): number {
    return uniformFloat64(this.rng);
  }

  int(min: number, max: number): number {
    return uniformInt(this.rng, min, max);
  }

  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /** Box-Muller; the second value of each pair is kept for the next call. */
  normal(mean: number, sd: number): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + sd * z;
    }
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.spare = radius * Math.sin(2 * Math.PI * u2);
    return mean + sd * radius * Math.cos(2 * Math.PI * u2);
  }

  /** Knuth's multiplication method: fine for the small rates used here. */
  poisson(lambda: number): number {
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.uniform();
    while (p > limit) {
      k += 1;
      p *= this.uniform();
    }
    return k;
  }

  /** Index drawn with probability proportional to `weights`. */
  pick(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i += 1) {
      u -= weights[i] ?? 0;
      if (u < 0) return i;
    }
    return weights.length - 1;
  }
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const mix = (a: number, b: number, t: number): number => a + (b - a) * t;

// ---------------------------------------------------------------------------------------------------------
// The world: feature distributions (with data drift) and the label model (with concept drift)
// ---------------------------------------------------------------------------------------------------------

type ByMerchant = Record<FraudMerchantCategory, number>;
type ByRegion = Record<FraudRegion, number>;

const MERCHANT_MIX: ByMerchant = {
  grocery: 0.22,
  restaurant: 0.18,
  fuel: 0.12,
  online_retail: 0.15,
  electronics: 0.07,
  travel: 0.06,
  entertainment: 0.1,
  pharmacy: 0.1,
};
/** Merchant mix at full data drift: shopping moved online. */
const MERCHANT_MIX_DRIFTED: ByMerchant = {
  grocery: 0.15,
  restaurant: 0.14,
  fuel: 0.08,
  online_retail: 0.28,
  electronics: 0.13,
  travel: 0.08,
  entertainment: 0.08,
  pharmacy: 0.06,
};
const REGION_MIX: ByRegion = { north: 0.3, south: 0.25, east: 0.25, west: 0.2 };
const REGION_MIX_DRIFTED: ByRegion = { north: 0.2, south: 0.3, east: 0.2, west: 0.3 };
/** Median amount (log scale) per merchant. */
const LOG_AMOUNT: ByMerchant = {
  grocery: 3.6,
  restaurant: 3.3,
  fuel: 3.8,
  online_retail: 4.0,
  electronics: 5.2,
  travel: 5.6,
  entertainment: 3.5,
  pharmacy: 3.0,
};
const CARD_PRESENT_RATE: ByMerchant = {
  grocery: 0.95,
  restaurant: 0.9,
  fuel: 0.92,
  online_retail: 0.03,
  electronics: 0.6,
  travel: 0.35,
  entertainment: 0.8,
  pharmacy: 0.93,
};

/** A transaction before rounding, masking and labelling; `noise` is the label model's latent noise. */
interface Transaction {
  region: FraudRegion;
  merchant: FraudMerchantCategory;
  cardPresent: 0 | 1;
  amount: number;
  hour: number;
  customerAgeDays: number;
  txnCount24h: number;
  distanceKm: number;
  deviceRisk: number;
  noise: number;
}

/** Standard deviation of the label model's latent noise (logit scale): what no feature explains. */
const LABEL_NOISE_SD = 0.5;

/** The region and merchant weights at a drift strength, computed once per dataset (not once per row). */
interface Mixes {
  regionWeights: number[];
  merchantWeights: number[];
}

const mixesByDrift = new Map<number, Mixes>();

function mixesAt(drift: number): Mixes {
  let m = mixesByDrift.get(drift);
  if (m === undefined) {
    m = {
      regionWeights: FRAUD_REGIONS.map((g) => mix(REGION_MIX[g], REGION_MIX_DRIFTED[g], drift)),
      merchantWeights: FRAUD_MERCHANT_CATEGORIES.map((x) =>
        mix(MERCHANT_MIX[x], MERCHANT_MIX_DRIFTED[x], drift),
      ),
    };
    mixesByDrift.set(drift, m);
  }
  return m;
}

function drawTransaction(r: Random, drift: number): Transaction {
  const { regionWeights, merchantWeights } = mixesAt(drift);
  const region = FRAUD_REGIONS[r.pick(regionWeights)] ?? 'north';
  const merchant = FRAUD_MERCHANT_CATEGORIES[r.pick(merchantWeights)] ?? 'grocery';
  const cardPresent: 0 | 1 = r.bernoulli(CARD_PRESENT_RATE[merchant] * (1 - 0.3 * drift)) ? 1 : 0;
  const amount = clamp(Math.exp(r.normal(LOG_AMOUNT[merchant] + 0.4 * drift, 0.75)), 0.5, FRAUD_MAX_AMOUNT);
  // Most purchases in the day, centred later in the day under drift; a few at any hour.
  const anyHour = r.bernoulli(0.12);
  const dayHour = r.normal(14 + 2.5 * drift, 3.8);
  const hour = anyHour ? r.int(0, 23) : ((Math.round(dayHour) % 24) + 24) % 24;
  const customerAgeDays = clamp(
    Math.floor(Math.exp(r.normal(6.3 - 0.6 * drift, 1.1))),
    0,
    FRAUD_MAX_CUSTOMER_AGE_DAYS,
  );
  const txnCount24h = Math.min(
    FRAUD_MAX_TXN_COUNT_24H,
    r.poisson(1.5 * (1 + drift)) + (cardPresent === 1 ? 0 : r.poisson(0.6)),
  );
  const distanceKm = clamp(Math.exp(r.normal(1.8 + 0.6 * drift, 1.3)), 0, FRAUD_MAX_DISTANCE_KM);
  const deviceRisk = sigmoid(r.normal(-1.5 + 0.4 * drift, 1.0));
  const noise = r.normal(0, LABEL_NOISE_SD);
  return {
    region,
    merchant,
    cardPresent,
    amount,
    hour,
    customerAgeDays,
    txnCount24h,
    distanceKm,
    deviceRisk,
    noise,
  };
}

interface LabelWeights {
  amount: number;
  night: number;
  cardNotPresent: number;
  deviceRisk: number;
  distance: number;
  txnCount: number;
  newAccount: number;
  /** Interaction: a new account buying without the card (account-takeover and synthetic-identity fraud). */
  newAccountOnline: number;
  merchant: ByMerchant;
}

const BASE_WEIGHTS: LabelWeights = {
  amount: 0.8,
  night: 1.6,
  cardNotPresent: 1.2,
  deviceRisk: 6.0,
  distance: 0.5,
  txnCount: 0.9,
  newAccount: 1.8,
  newAccountOnline: 1.2,
  merchant: {
    grocery: -0.4,
    restaurant: -0.2,
    fuel: 0.1,
    online_retail: 0.6,
    electronics: 0.8,
    travel: 0.5,
    entertainment: 0,
    pharmacy: -0.5,
  },
};
/** The fraud pattern at full concept drift: device scores were gamed, fraud moved to card-present bursts. */
const DRIFTED_WEIGHTS: LabelWeights = {
  amount: 0.15,
  night: -0.2,
  cardNotPresent: -0.3,
  deviceRisk: 0.4,
  distance: 0.9,
  txnCount: 1.3,
  newAccount: 0.2,
  newAccountOnline: 0,
  merchant: {
    grocery: 0.3,
    restaurant: -0.2,
    fuel: 0.6,
    online_retail: -0.3,
    electronics: 0,
    travel: 0.1,
    entertainment: -0.2,
    pharmacy: 0.8,
  },
};
/** Genuine (small) regional differences in fraud base rate, unchanged by concept drift. */
const REGION_EFFECT: ByRegion = { north: 0, south: 0.25, east: -0.15, west: 0.1 };
/** Extra logit per region at full `sensitiveEffect`: labels that depend on region itself, not on behaviour. */
const SENSITIVE_BIAS: ByRegion = { north: -1.5, south: 2, east: -1, west: 0.5 };

function blendWeights(t: number): LabelWeights {
  const merchant = {} as ByMerchant;
  for (const m of FRAUD_MERCHANT_CATEGORIES)
    merchant[m] = mix(BASE_WEIGHTS.merchant[m], DRIFTED_WEIGHTS.merchant[m], t);
  return {
    amount: mix(BASE_WEIGHTS.amount, DRIFTED_WEIGHTS.amount, t),
    night: mix(BASE_WEIGHTS.night, DRIFTED_WEIGHTS.night, t),
    cardNotPresent: mix(BASE_WEIGHTS.cardNotPresent, DRIFTED_WEIGHTS.cardNotPresent, t),
    deviceRisk: mix(BASE_WEIGHTS.deviceRisk, DRIFTED_WEIGHTS.deviceRisk, t),
    distance: mix(BASE_WEIGHTS.distance, DRIFTED_WEIGHTS.distance, t),
    txnCount: mix(BASE_WEIGHTS.txnCount, DRIFTED_WEIGHTS.txnCount, t),
    newAccount: mix(BASE_WEIGHTS.newAccount, DRIFTED_WEIGHTS.newAccount, t),
    newAccountOnline: mix(BASE_WEIGHTS.newAccountOnline, DRIFTED_WEIGHTS.newAccountOnline, t),
    merchant,
  };
}

/** The label model's logit without its intercept (features centred roughly on typical values). */
function fraudScore(t: Transaction, w: LabelWeights): number {
  return (
    w.amount * (Math.log(t.amount) - 3.8) +
    w.night * (t.hour <= 5 ? 1 : 0) +
    w.cardNotPresent * (1 - t.cardPresent) +
    w.deviceRisk * t.deviceRisk +
    w.distance * (Math.log1p(t.distanceKm) - 2) +
    w.txnCount * Math.log1p(t.txnCount24h) +
    w.newAccount * (t.customerAgeDays < 30 ? 1 : 0) +
    w.newAccountOnline * (t.customerAgeDays < 90 && t.cardPresent === 0 ? 1 : 0) +
    w.merchant[t.merchant] +
    REGION_EFFECT[t.region] +
    t.noise
  );
}

interface LabelModel {
  weights: LabelWeights;
  intercept: number;
}

const labelModels = new Map<string, LabelModel>();

/**
 * The label model for a base rate and concept drift: weights blended towards the drifted pattern, and the
 * intercept found by bisection so that the mean fraud probability over the fixed, undrifted calibration
 * sample equals `fraudRate`. Memoised: it depends on nothing else.
 */
function labelModel(fraudRate: number, conceptDrift: number): LabelModel {
  const key = `${fraudRate}:${conceptDrift}`;
  const cached = labelModels.get(key);
  if (cached !== undefined) return cached;
  const weights = blendWeights(conceptDrift);
  const r = new Random(xoroshiro128plus(CALIBRATION_SEED));
  const scores = new Float64Array(CALIBRATION_SAMPLE_SIZE);
  for (let i = 0; i < scores.length; i += 1) scores[i] = fraudScore(drawTransaction(r, 0), weights);
  let lo = -40;
  let hi = 40;
  for (let iter = 0; iter < 100; iter += 1) {
    const mid = (lo + hi) / 2;
    let sum = 0;
    for (const s of scores) sum += sigmoid(s + mid);
    if (sum / scores.length < fraudRate) lo = mid;
    else hi = mid;
  }
  const model = { weights, intercept: (lo + hi) / 2 };
  labelModels.set(key, model);
  return model;
}

// ---------------------------------------------------------------------------------------------------------
// Poisoning
// ---------------------------------------------------------------------------------------------------------

/**
 * A crafted transaction of the `cluster` attack: an expensive card-not-present electronics purchase at night
 * from a brand-new account with a risky device, far from home, in a burst; labelled legitimate. Values are
 * jittered slightly so the rows are not exact copies of each other.
 */
function craftedTransaction(r: Random, row: FraudRow): FraudRow {
  return {
    ...row,
    amount: round(Math.exp(r.normal(Math.log(1500), 0.05)), 2),
    merchant_category: 'electronics',
    hour_of_day: r.int(1, 4),
    customer_age_days: r.int(1, 20),
    txn_count_24h: r.int(5, 8),
    distance_from_home_km: round(Math.max(0, r.normal(850, 30)), 1),
    card_present: 0,
    device_risk_score: round(0.88 + 0.09 * r.uniform(), 3),
    is_fraud: 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------

/**
 * Generates `rows` transactions in `batches` consecutive batches (batch_id 0..batches-1, sizes differing by
 * at most one). Throws an InputValidationError naming the field for bad options.
 */
export function generateFraudDataset(options: GenerateOptions): FraudRow[] {
  const opts: ParsedOptions = parseOrThrow(GenerateOptionsSchema, options, 'generator options');
  const out: FraudRow[] = new Array<FraudRow>(opts.rows);
  let i = 0;
  for (const row of rowsOf(opts)) out[i++] = row;
  return out;
}

/**
 * The same rows as {@link generateFraudDataset}, one at a time: nothing is held, so any size streams to a
 * file (see {@link writeFraudCsv}). Validates the options before the first row.
 */
export function fraudRows(options: GenerateOptions): Generator<FraudRow> {
  return rowsOf(parseOrThrow(GenerateOptionsSchema, options, 'generator options'));
}

function* rowsOf(opts: ParsedOptions): Generator<FraudRow> {
  const model = labelModel(opts.fraudRate, opts.conceptDrift);
  const base = xoroshiro128plus(opts.seed);
  const poisonRng = base.clone();
  poisonRng.jump();
  const r = new Random(base);
  const poison = new Random(poisonRng);
  const prefix = `tx-${opts.seed.toString(16)}-`;
  const history = opts.historyPoison === undefined ? undefined : historyPoisoner(opts.historyPoison, poison);

  for (let i = 0; i < opts.rows; i += 1) {
    const batch = Math.floor((i * opts.batches) / opts.rows);
    const t = drawTransaction(r, opts.dataDrift);
    const bias = opts.sensitiveEffect * SENSITIVE_BIAS[t.region];
    const fraud = r.bernoulli(sigmoid(fraudScore(t, model.weights) + model.intercept + bias));
    // Always draw the masks, so that datasets differing only in missingRate share every other value.
    const noDevice = r.bernoulli(2 * opts.missingRate);
    const noGeo = r.bernoulli(opts.missingRate);
    const noMerchant = r.bernoulli(0.2 * opts.missingRate);
    let row: FraudRow = {
      transaction_id: `${prefix}${String(i).padStart(7, '0')}`,
      batch_id: batch,
      amount: round(t.amount, 2),
      merchant_category: noMerchant ? null : t.merchant,
      hour_of_day: t.hour,
      customer_age_days: t.customerAgeDays,
      txn_count_24h: t.txnCount24h,
      distance_from_home_km: noGeo ? null : round(t.distanceKm, 1),
      card_present: t.cardPresent,
      device_risk_score: noDevice ? null : round(t.deviceRisk, 3),
      region: t.region,
      is_fraud: fraud ? 1 : 0,
    };
    const p = opts.poisonedBatch;
    if (
      p !== undefined &&
      batch === p.batch &&
      (p.region === undefined || row.region === p.region) &&
      poison.bernoulli(p.fraction)
    ) {
      row =
        p.mode === 'cluster'
          ? craftedTransaction(poison, row)
          : { ...row, is_fraud: row.is_fraud === 1 ? 0 : 1 };
    }
    if (history !== undefined && poison.bernoulli(history.fraction)) row = history.replace(row);
    yield row;
  }
}

/** Replaces rows by poisoned copies of the reference dataset's rows (see {@link HISTORY_POISON_MODES}). */
function historyPoisoner(
  h: NonNullable<ParsedOptions['historyPoison']>,
  r: Random,
): { fraction: number; replace: (row: FraudRow) => FraudRow } {
  const reference = (): Generator<FraudRow> =>
    rowsOf(parseOrThrow(GenerateOptionsSchema, h.reference, 'historyPoison.reference'));
  let source = reference();
  /** The next reference row (of the region, when one is given), starting over at the end. */
  const next = (): FraudRow => {
    for (let restarts = 0; restarts < 2; restarts += 1) {
      for (let it = source.next(); !it.done; it = source.next()) {
        if (h.region === undefined || it.value.region === h.region) return it.value;
      }
      source = reference();
    }
    throw new Error(`historyPoison.region: the reference dataset has no row of region ${h.region}`);
  };
  const templates = h.mode === 'near-duplicates' ? Array.from({ length: h.templates }, next) : [];
  return {
    fraction: h.fraction,
    replace: (row) => {
      const keep = { transaction_id: row.transaction_id, batch_id: row.batch_id };
      if (h.mode === 'replay-flip') {
        const copy = next();
        return { ...copy, ...keep, is_fraud: copy.is_fraud === 1 ? 0 : 1 };
      }
      const t = templates[r.int(0, templates.length - 1)] as FraudRow;
      return { ...t, ...keep, amount: round(Math.max(0.5, t.amount + 0.01 * r.int(-2, 2)), 2) };
    },
  };
}

const CSV_OPTIONS = { header: true, columns: [...FRAUD_COLUMNS] };
/**
 * Bytes per write when streaming CSV: each line is encoded into one of two buffers of this size as soon as it
 * is made (no batch of strings held: that cost more than generating the rows), and a full buffer is written
 * while the other fills.
 */
export const CSV_WRITE_BUFFER_BYTES = 1024 * 1024;

/** The rows as CSV text with a header row; null becomes an empty cell. */
export function toCsv(rows: readonly FraudRow[]): string {
  return stringifySync(rows as FraudRow[], CSV_OPTIONS);
}

/** One cell as csv-stringify writes it: numbers as `String(n)`, null empty, text quoted only when it must be. */
function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One row as a CSV line (with its newline), byte for byte what {@link toCsv} writes. */
export function csvLine(row: FraudRow): string {
  return (
    `${csvCell(row.transaction_id)},${row.batch_id},${row.amount},${csvCell(row.merchant_category)},` +
    `${row.hour_of_day},${row.customer_age_days},${row.txn_count_24h},${csvCell(row.distance_from_home_km)},` +
    `${row.card_present},${csvCell(row.device_risk_score)},${csvCell(row.region)},${row.is_fraud}\n`
  );
}

/** Writes `rows` as CSV to `path` under a temporary name, renamed into place when complete. */
async function writeCsvRows(path: string, rows: Iterable<FraudRow>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const handle = await open(tmp, 'w');
    try {
      const buffers = [
        Buffer.allocUnsafe(CSV_WRITE_BUFFER_BYTES),
        Buffer.allocUnsafe(CSV_WRITE_BUFFER_BYTES),
      ];
      let current = 0;
      let used = 0;
      let writing: Promise<unknown> = Promise.resolve();
      const flush = async (): Promise<void> => {
        await writing;
        const full = buffers[current] as Buffer;
        const length = used;
        writing = handle.write(full, 0, length);
        // A failed write is thrown where it is awaited (the next flush), not reported as unhandled first.
        writing.catch(() => undefined);
        current = 1 - current;
        used = 0;
      };
      /** Encodes `text` into the current buffer; false when it does not fit (flush first). */
      const fits = (text: string): boolean => used + text.length * 3 <= CSV_WRITE_BUFFER_BYTES;
      const put = async (text: string): Promise<void> => {
        if (!fits(text)) await flush();
        if (!fits(text)) {
          // A line longer than a buffer (not made by this generator) is written on its own.
          await writing;
          writing = handle.write(text);
          writing.catch(() => undefined);
          return;
        }
        used += (buffers[current] as Buffer).write(text, used);
      };
      await put(`${FRAUD_COLUMNS.join(',')}\n`);
      for (const row of rows) {
        const line = csvLine(row);
        // A UTF-16 code unit takes at most 3 bytes in UTF-8; the common case stays synchronous.
        if (fits(line)) used += (buffers[current] as Buffer).write(line, used);
        else await put(line);
      }
      await flush();
      await writing;
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes the rows as CSV (streamed), creating the parent folder. The file appears atomically: it is written
 * under a temporary name and renamed, so a reader never sees half a dataset.
 */
export async function writeCsv(path: string, rows: readonly FraudRow[]): Promise<void> {
  await writeCsvRows(path, rows);
}

/** Generates and writes a dataset as CSV without holding its rows (any size up to {@link MAX_GENERATED_ROWS}). */
export async function writeFraudCsv(path: string, options: GenerateOptions): Promise<void> {
  await writeCsvRows(path, fraudRows(options));
}

/** The engine types of the CSV columns, for a typed Parquet copy. */
const PARQUET_TYPES: Record<(typeof FRAUD_COLUMNS)[number], string> = {
  transaction_id: 'VARCHAR',
  batch_id: 'BIGINT',
  amount: 'DOUBLE',
  merchant_category: 'VARCHAR',
  hour_of_day: 'BIGINT',
  customer_age_days: 'BIGINT',
  txn_count_24h: 'BIGINT',
  distance_from_home_km: 'DOUBLE',
  card_present: 'BIGINT',
  device_risk_score: 'DOUBLE',
  region: 'VARCHAR',
  is_fraud: 'BIGINT',
};

/**
 * Converts a CSV of the generator (header row, its columns) into Parquet with typed columns (empty cells as
 * NULL), in parallel by the analytics engine; the Parquet file is renamed into place when complete.
 */
export async function fraudCsvToParquet(csv: string, path: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const db = await openEngine();
    try {
      const columns = FRAUD_COLUMNS.map((c) => `${sqlString(c)}: ${sqlString(PARQUET_TYPES[c])}`).join(', ');
      await db.run(
        `COPY (SELECT * FROM read_csv(${sqlString(csv)}, header = true, auto_detect = false, ` +
          `columns = {${columns}})) TO ${sqlString(tmp)} (FORMAT parquet)`,
      );
    } finally {
      db.close();
    }
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Generates a dataset as Parquet: the rows stream to a temporary CSV that {@link fraudCsvToParquet} converts. */
export async function writeFraudParquet(path: string, options: GenerateOptions): Promise<void> {
  const csv = `${path}.csv-${process.pid}`;
  try {
    await writeFraudCsv(csv, options);
    await fraudCsvToParquet(csv, path);
  } finally {
    await rm(csv, { force: true });
  }
}
