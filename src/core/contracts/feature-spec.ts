/**
 * The feature spec of a tabular dataset and the shapes that dataset validation produces from it: the
 * {@link DatasetProfile} measured by `src/data/profile.ts` and the {@link ValidationReport} judged by
 * `src/core/policy/validation.ts`.
 *
 * Rules:
 * - Sandbox-safe: no Node built-ins, no I/O, no clocks; loaded inside the workflow bundle.
 * - A spec is parsed with {@link FeatureSpecSchema}; every optional threshold has a named default below, so a
 *   spec need only name its columns. Cross-field rules (unique names, the sensitive attribute being a
 *   categorical feature, min <= max) are checked too, each issue naming its path.
 * - Profiles and reports are plain JSON (arrays of named entries rather than maps keyed by column), so they
 *   travel through Temporal payloads and workflow state unchanged.
 */
import { z } from 'zod';
import type { Check, CheckPhase } from './checks';

/** Share of empty cells a feature may have: above 5% usually means a broken upstream join. */
export const DEFAULT_MAX_NULL_RATE = 0.05;
/** Share of unseen categories tolerated: new values appear, but above 1% the vocabulary itself changed. */
export const DEFAULT_MAX_UNKNOWN_RATE = 0.01;
/** Fewest rows worth training on: below this the validation metrics are noise. */
export const DEFAULT_MIN_ROWS = 1000;
/** Share of exact duplicate rows tolerated: replays happen, a large share means a double ingestion. */
export const DEFAULT_MAX_DUPLICATE_RATE = 0.01;
/** Lowest positive-label rate accepted: fewer positives leave nothing to learn from. */
export const DEFAULT_MIN_LABEL_RATE = 0.001;
/** Highest positive-label rate accepted: a label that is almost always positive is almost surely broken. */
export const DEFAULT_MAX_LABEL_RATE = 0.999;
/** Non-numbers in a numeric column are a schema break, not noise: none tolerated. */
export const DEFAULT_MAX_TYPE_ERROR_RATE = 0;
/** Values outside a column's [min, max]: rare glitches tolerated, systematic violations are not. */
export const DEFAULT_MAX_OUT_OF_RANGE_RATE = 0.001;
/** Rows without a label cannot be trained on; a missing label means the labelling job failed. */
export const DEFAULT_MAX_LABEL_MISSING_RATE = 0;
/** Columns the spec does not know are refused by default: they hint at a changed upstream schema. */
export const DEFAULT_ALLOW_UNEXPECTED_COLUMNS = false;

/** Smallest batch the poisoning screen judges: below 50 rows the normal approximation of a rate is poor. */
export const DEFAULT_POISON_MIN_BATCH_ROWS = 50;
/** |z| of a batch's label rate against the other batches: 4.5 sigma keeps false alarms below 1e-5 per batch. */
export const DEFAULT_POISON_MAX_LABEL_RATE_Z = 4.5;
/** |z| of a batch's feature mean or category share against the other batches: 6 sigma, as many are tested. */
export const DEFAULT_POISON_MAX_FEATURE_SHIFT_Z = 6;
/** Smallest standardised effect (Cohen's d or h) flagged: "small" by Cohen; big data makes tiny shifts significant. */
export const DEFAULT_POISON_MIN_EFFECT_SIZE = 0.2;
/** Fewest judged batches for between-batch comparisons: with two, neither can be told to be the odd one. */
export const DEFAULT_POISON_MIN_BATCHES = 3;
/** Share of a batch's rows repeating an earlier feature vector: continuous features almost never repeat. */
export const DEFAULT_POISON_MAX_REPEATED_VECTOR_RATE = 0.05;
/** Share of a batch's labelled rows whose feature vector was seen earlier with the other label. */
export const DEFAULT_POISON_MAX_CONFLICTING_LABEL_RATE = 0.01;

/** Column names double as ONNX input names and log fields: a conservative identifier alphabet. */
export const COLUMN_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

const ColumnName = z
  .string()
  .regex(COLUMN_NAME_PATTERN, 'must be a column name: a letter or _, then letters, digits, _ . - (max 128)');
const Rate = z.number().min(0).max(1);
const LabelValue = z.union([z.number(), z.string().min(1)]);

export const NumericFeatureSchema = z
  .object({
    name: ColumnName,
    kind: z.literal('numeric'),
    /** Smallest valid value (inclusive); values below count as out of range. */
    min: z.number().optional(),
    /** Largest valid value (inclusive); values above count as out of range. */
    max: z.number().optional(),
    maxNullRate: Rate.default(DEFAULT_MAX_NULL_RATE),
  })
  .strict();

export const CategoricalFeatureSchema = z
  .object({
    name: ColumnName,
    kind: z.literal('categorical'),
    /** The known vocabulary; matching is exact (case-sensitive) after trimming blanks. */
    categories: z.array(z.string().min(1)).min(1),
    maxNullRate: Rate.default(DEFAULT_MAX_NULL_RATE),
    /** Share of non-missing values outside `categories` that is tolerated. */
    maxUnknownRate: Rate.default(DEFAULT_MAX_UNKNOWN_RATE),
  })
  .strict();

export const FeatureSchema = z.discriminatedUnion('kind', [NumericFeatureSchema, CategoricalFeatureSchema]);

export const QualityThresholdsSchema = z
  .object({
    minRows: z.number().int().nonnegative().default(DEFAULT_MIN_ROWS),
    maxDuplicateRate: Rate.default(DEFAULT_MAX_DUPLICATE_RATE),
    labelRate: z
      .object({ min: Rate.default(DEFAULT_MIN_LABEL_RATE), max: Rate.default(DEFAULT_MAX_LABEL_RATE) })
      .strict()
      .prefault({}),
    maxTypeErrorRate: Rate.default(DEFAULT_MAX_TYPE_ERROR_RATE),
    maxOutOfRangeRate: Rate.default(DEFAULT_MAX_OUT_OF_RANGE_RATE),
    maxLabelMissingRate: Rate.default(DEFAULT_MAX_LABEL_MISSING_RATE),
    allowUnexpectedColumns: z.boolean().default(DEFAULT_ALLOW_UNEXPECTED_COLUMNS),
  })
  .strict();

/** Thresholds of the poisoning screen; see `src/core/policy/validation.ts` for the statistics they bound. */
export const PoisoningThresholdsSchema = z
  .object({
    minBatchRows: z.number().int().min(2).default(DEFAULT_POISON_MIN_BATCH_ROWS),
    minBatches: z.number().int().min(3).default(DEFAULT_POISON_MIN_BATCHES),
    minEffectSize: z.number().nonnegative().default(DEFAULT_POISON_MIN_EFFECT_SIZE),
    maxLabelRateZ: z.number().positive().default(DEFAULT_POISON_MAX_LABEL_RATE_Z),
    maxFeatureShiftZ: z.number().positive().default(DEFAULT_POISON_MAX_FEATURE_SHIFT_Z),
    maxRepeatedVectorRate: Rate.default(DEFAULT_POISON_MAX_REPEATED_VECTOR_RATE),
    maxConflictingLabelRate: Rate.default(DEFAULT_POISON_MAX_CONFLICTING_LABEL_RATE),
  })
  .strict();

export const FeatureSpecSchema = z
  .object({
    /** Name of the spec, usually the model's name. */
    name: z.string().min(1).max(128),
    /** Version of the spec; bump it when columns or thresholds change. */
    version: z.string().min(1).max(64),
    label: z
      .object({
        column: ColumnName,
        /** The value meaning "positive" (1, 'fraud', ...); numbers match numerically ("1.0" is 1). */
        positiveValue: LabelValue,
        /** When given, every label must be one of the two values; otherwise anything else is negative. */
        negativeValue: LabelValue.optional(),
      })
      .strict(),
    /** A categorical feature whose groups are compared later for fairness. */
    sensitiveAttribute: ColumnName.optional(),
    /** Column holding a unique row id (not a feature; repeated ids are reported). */
    idColumn: ColumnName.optional(),
    /** Column grouping rows into ingestion batches (not a feature); the poisoning screen compares batches. */
    batchColumn: ColumnName.optional(),
    features: z.array(FeatureSchema).min(1),
    quality: QualityThresholdsSchema.prefault({}),
    poisoning: PoisoningThresholdsSchema.prefault({}),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Map<string, string>();
    const claim = (name: string, role: string, path: PropertyKey[]) => {
      const previous = seen.get(name);
      if (previous !== undefined) {
        ctx.addIssue({ code: 'custom', path, message: `column "${name}" is already used as ${previous}` });
      } else {
        seen.set(name, role);
      }
    };
    spec.features.forEach((feature, i) => {
      claim(feature.name, `feature ${i}`, ['features', i, 'name']);
      if (feature.kind === 'numeric') {
        if (feature.min !== undefined && feature.max !== undefined && feature.min > feature.max) {
          ctx.addIssue({
            code: 'custom',
            path: ['features', i, 'min'],
            message: `min ${feature.min} is greater than max ${feature.max}`,
          });
        }
      } else {
        const cats = new Set<string>();
        feature.categories.forEach((category, j) => {
          if (cats.has(category)) {
            ctx.addIssue({
              code: 'custom',
              path: ['features', i, 'categories', j],
              message: `category "${category}" is listed twice`,
            });
          }
          cats.add(category);
        });
      }
    });
    claim(spec.label.column, 'the label column', ['label', 'column']);
    if (spec.idColumn !== undefined) claim(spec.idColumn, 'the id column', ['idColumn']);
    if (spec.batchColumn !== undefined) claim(spec.batchColumn, 'the batch column', ['batchColumn']);
    if (spec.sensitiveAttribute !== undefined) {
      const feature = spec.features.find((f) => f.name === spec.sensitiveAttribute);
      if (feature === undefined || feature.kind !== 'categorical') {
        ctx.addIssue({
          code: 'custom',
          path: ['sensitiveAttribute'],
          message: `"${spec.sensitiveAttribute}" must name a categorical feature of this spec`,
        });
      }
    }
    if (
      spec.label.negativeValue !== undefined &&
      String(spec.label.negativeValue) === String(spec.label.positiveValue)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['label', 'negativeValue'],
        message: 'must differ from positiveValue',
      });
    }
    if (spec.quality.labelRate.min > spec.quality.labelRate.max) {
      ctx.addIssue({
        code: 'custom',
        path: ['quality', 'labelRate', 'min'],
        message: `min ${spec.quality.labelRate.min} is greater than max ${spec.quality.labelRate.max}`,
      });
    }
  });

/** A parsed feature spec: every default filled in. */
export type FeatureSpec = z.output<typeof FeatureSpecSchema>;
/** What a user writes: thresholds may be left out. */
export type FeatureSpecInput = z.input<typeof FeatureSpecSchema>;
export type FeatureDef = FeatureSpec['features'][number];
export type NumericFeature = Extract<FeatureDef, { kind: 'numeric' }>;
export type CategoricalFeature = Extract<FeatureDef, { kind: 'categorical' }>;

/** Every column the spec expects in the file, in spec order: features, label, then id and batch columns. */
export function specColumns(spec: FeatureSpec): string[] {
  const cols = spec.features.map((f) => f.name);
  cols.push(spec.label.column);
  if (spec.idColumn !== undefined) cols.push(spec.idColumn);
  if (spec.batchColumn !== undefined) cols.push(spec.batchColumn);
  return cols;
}

// ---------------------------------------------------------------------------------------------------------
// Dataset profile: what src/data/profile.ts measures. Plain JSON; counts are row counts unless stated.
// ---------------------------------------------------------------------------------------------------------

/** A value (truncated) and the 1-based line of the file where it was found (Parquet: the 1-based row number). */
export interface ValueAtLine {
  line: number;
  value: string;
}

export interface NumericColumnProfile {
  name: string;
  kind: 'numeric';
  /** Empty cells or a missing-value token (NA, null, NaN, ...). */
  missing: number;
  /** Cells that are not a finite decimal number. */
  typeErrors: number;
  firstTypeError?: ValueAtLine;
  /** Cells parsed as numbers (out-of-range ones included). */
  count: number;
  /** Statistics over parsed cells; null when there are none. `std` is the sample standard deviation. */
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  belowMin: number;
  aboveMax: number;
  firstOutOfRange?: ValueAtLine;
}

export interface CategoryCount {
  value: string;
  count: number;
}

export interface CategoricalColumnProfile {
  name: string;
  kind: 'categorical';
  missing: number;
  /** Non-missing cells. */
  count: number;
  /** One entry per spec category, in spec order (zero counts included). */
  categories: CategoryCount[];
  /** Non-missing cells outside the spec's categories. */
  unknown: number;
  /** The most frequent unknown values, most frequent first (a bounded sample of them). */
  unknownValues: CategoryCount[];
}

export type ColumnProfile = NumericColumnProfile | CategoricalColumnProfile;

export interface LabelProfile {
  column: string;
  positive: number;
  negative: number;
  missing: number;
  /** Values that are neither the positive nor the negative value (only when the spec names both). */
  invalid: number;
  firstInvalid?: ValueAtLine;
}

/**
 * The scale batch statistics of numeric features are kept on: sign(x) * ln(1 + |x|). Monotone, close to linear
 * near zero (bounded scores keep their shape) and logarithmic for large values, so heavy-tailed features
 * (amounts, distances) get nearly normal batch means and one huge value cannot dominate a batch.
 */
export function signedLog1p(x: number): number {
  return Math.sign(x) * Math.log1p(Math.abs(x));
}

/** Inverse of {@link signedLog1p}: turns a mean on that scale back into a value in the column's units. */
export function inverseSignedLog1p(y: number): number {
  return Math.sign(y) * Math.expm1(Math.abs(y));
}

/** Welford statistics of a numeric feature in one batch, on the {@link signedLog1p} scale. */
export interface BatchNumericStats {
  column: string;
  /** Parsed values. */
  count: number;
  /** Mean of signedLog1p(value). */
  mean: number;
  /** Sum of squared deviations of signedLog1p(value) from that mean. */
  m2: number;
}

export interface BatchCategoricalStats {
  column: string;
  /** Non-missing values. */
  count: number;
  /** One entry per spec category, in spec order. */
  categories: CategoryCount[];
  unknown: number;
}

export interface BatchProfile {
  /** The batch column's value ({@link MISSING_BATCH_KEY} when empty). */
  batch: string;
  rows: number;
  /** Rows with a positive / a negative label. */
  positives: number;
  negatives: number;
  /** Rows (exact duplicates aside) whose feature vector equals that of an earlier row of the file. */
  repeatedVectors: number;
  /** Rows whose feature vector was seen earlier with the other label. */
  conflictingLabels: number;
  /** Parsed numeric cells outside their [min, max]. */
  outOfRange: number;
  numeric: BatchNumericStats[];
  categorical: BatchCategoricalStats[];
}

/** Batch key of rows whose batch cell is empty. */
export const MISSING_BATCH_KEY = '(missing)';

export interface DatasetProfile {
  /** File format that was profiled (absent in profiles recorded before Parquet was read: CSV). */
  format?: 'csv' | 'parquet';
  specName: string;
  specVersion: string;
  /** sha256 (hex) and size of the bytes that were profiled. */
  sha256: string;
  bytes: number;
  header: string[];
  /** Records with as many fields as the header (the rows every statistic is computed on). */
  rows: number;
  /** Records with a different number of fields than the header; skipped. */
  raggedRows: number;
  firstRaggedRow?: { line: number; fields: number; expected: number };
  /** Spec columns absent from the header, in spec order. */
  missingColumns: string[];
  /** Header columns the spec does not know. */
  unexpectedColumns: string[];
  /** Rows identical (all fields) to an earlier row. */
  duplicateRows: number;
  /** Rows that are not exact duplicates but repeat an earlier row's id; null without an id column. */
  duplicateIds: number | null;
  /** One entry per spec feature present in the header, in spec order. */
  columns: ColumnProfile[];
  /** Null when the label column is missing from the header. */
  label: LabelProfile | null;
  /**
   * Rows (exact duplicates aside) whose feature vector equals that of an earlier row / was seen earlier with
   * the other label.
   */
  repeatedVectors: number;
  conflictingLabels: number;
  /** The spec's batch column when present in the header; batches are empty otherwise. */
  batchColumn: string | null;
  /** Per-batch statistics in order of first appearance (at most MAX_PROFILED_BATCHES). */
  batches: BatchProfile[];
  /** Rows of batches beyond that cap: not screened. */
  untrackedBatchRows: number;
}

// ---------------------------------------------------------------------------------------------------------
// Validation report: what src/core/policy/validation.ts decides.
// ---------------------------------------------------------------------------------------------------------

/** Stable names of the validation checks (part of the report's contract). */
export const VALIDATION_CHECKS = {
  /** Used by callers when the file could not be profiled at all (DatasetFormatError). */
  format: 'format',
  missingColumn: 'schema.missing-column',
  unexpectedColumn: 'schema.unexpected-column',
  raggedRows: 'schema.ragged-rows',
  typeErrors: 'schema.type-errors',
  labelValues: 'schema.label-values',
  minRows: 'quality.min-rows',
  nullRate: 'quality.null-rate',
  range: 'quality.range',
  unknownCategories: 'quality.unknown-categories',
  duplicateRows: 'quality.duplicate-rows',
  duplicateIds: 'quality.duplicate-ids',
  labelMissing: 'quality.label-missing',
  labelRate: 'quality.label-rate',
  poisonBatches: 'poisoning.batches',
  poisonLabelRate: 'poisoning.label-rate',
  poisonFeatureShift: 'poisoning.feature-shift',
  poisonRepeatedVectors: 'poisoning.repeated-vectors',
  poisonConflictingLabels: 'poisoning.conflicting-labels',
} as const;
export type ValidationCheckName = (typeof VALIDATION_CHECKS)[keyof typeof VALIDATION_CHECKS];

/**
 * One validation check, in the shared check shape (src/core/contracts/checks.ts) plus the fields the workflow,
 * the audit log and recorded workflow histories already use: `check` (= `name`) and `message` (= `detail`).
 * Every check of the dataset judge has severity `failed`; `error` means the dataset could not be judged at all.
 */
export interface ValidationCheck extends Check {
  /** One of {@link VALIDATION_CHECKS} for the checks of this project; a string so others can add theirs. */
  check: string;
  column?: string;
  batch?: string;
  observed: number | string;
  threshold: number | string;
  message: string;
}

export interface ValidationReport {
  /** True when every check passed. */
  ok: boolean;
  /**
   * Worst phase of `checks`. Optional because reports recorded before the shared check shape carry none (nor
   * `name`/`phase`/`severity`/`detail` on their checks): read `ok`, `check` and `message` in workflow code.
   */
  phase?: CheckPhase;
  checks: ValidationCheck[];
}
