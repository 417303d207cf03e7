/**
 * Typed input errors for the statistics modules (sandbox-safe).
 *
 * Rule: a *structural* problem with the inputs (arrays of different lengths, a label that is not 0/1, a
 * parameter out of range, a prediction that is not 0/1) is a bug in the caller and throws
 * {@link StatsInputError} with a stable `code`. A *data condition* under which a statistic is simply undefined
 * (empty input, a single class, a non-finite score) is not an error: real-valued statistics return `NaN`, and
 * the promotion gate turns a `NaN` into a non-promoting verdict that names the metric.
 */

/** Stable codes carried by {@link StatsInputError}; activities may map them to ApplicationFailure types. */
export const STATS_ERROR_CODES = [
  'LENGTH_MISMATCH',
  'INVALID_LABEL',
  'INVALID_PREDICTION',
  'INVALID_VALUE',
  'INVALID_PARAMETER',
] as const;
export type StatsErrorCode = (typeof STATS_ERROR_CODES)[number];

/** Thrown for structural input errors; never for data conditions (those yield NaN). */
export class StatsInputError extends Error {
  override readonly name = 'StatsInputError';
  constructor(
    readonly code: StatsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
