/**
 * Primitive value grammars shared by every contract: sha256 digests, durations, ISO timestamps, model names and
 * model versions. Each is written once here; the contracts that use them import them from this module.
 *
 * Rules:
 * - Sandbox-safe: zod only; no Node built-ins, no I/O, no clocks. Imports nothing else.
 * - Schemas must run inside the workflow sandbox too: no zod formats that need Node or browser globals.
 * - Every bound is a named constant with the reason for its value.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------------
// Digests

/** A sha256 digest as 64 lowercase hex characters (what `sha256sum` and node:crypto's `digest('hex')` print). */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

/** A lowercase hex sha256 digest. */
export const Sha256HexSchema = z.string().regex(SHA256_HEX_PATTERN, 'must be a lowercase hex sha256 digest');

// ---------------------------------------------------------------------------------------------------------------
// Durations

/** Milliseconds per duration unit. */
export const DURATION_UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type DurationUnit = keyof typeof DURATION_UNIT_MS;

/** One `<number><unit>` part of a duration; `ms` is tried before `m` and `s`. */
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration such as `'72h'`, `'30m'`, `'15s'`, `'500ms'`, `'2d'`, `'1.5h'` or a combination (`'1h30m'`)
 * into milliseconds (rounded to an integer). Surrounding whitespace is ignored. Throws an Error naming the
 * accepted format otherwise.
 */
export function parseDuration(text: string): number {
  const fail = (why: string): never => {
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: ${why}; expected a number followed by a unit ` +
        `(ms, s, m, h, d), e.g. '72h', '30m', '15s' or '1h30m'`,
    );
  };
  if (typeof text !== 'string') return fail('not a string');
  const s = text.trim();
  if (s === '') return fail('empty');
  if (/^\d+(?:\.\d+)?$/.test(s)) return fail('missing unit');
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < s.length) {
    const m = DURATION_PART.exec(s);
    if (m === null) return fail(`unexpected text at ${JSON.stringify(s.slice(DURATION_PART.lastIndex))}`);
    total += Number(m[1]) * DURATION_UNIT_MS[m[2] as DurationUnit];
  }
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms)) return fail('too large');
  return ms;
}

/** A duration string that {@link parseDuration} accepts and that is longer than zero (trimmed). */
export const DurationSchema = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    try {
      if (parseDuration(value) <= 0) ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

// ---------------------------------------------------------------------------------------------------------------
// Timestamps

/** An ISO-8601 date-time with `Z` or an explicit offset, e.g. `2026-11-26T10:00:00.000Z`. */
export const IsoDateTimeSchema = z.iso.datetime({ offset: true });

// ---------------------------------------------------------------------------------------------------------------
// Models

/**
 * Model names become MLflow registered-model names, Kubernetes label values and workflow ids: lowercase letters,
 * digits and inner dashes, at most 48 characters (well inside the 63 of a Kubernetes label value).
 */
export const MODEL_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$/;

/** A model name (see {@link MODEL_NAME_PATTERN}). */
export const ModelNameSchema = z
  .string()
  .regex(MODEL_NAME_PATTERN, 'must be lowercase letters, digits and dashes (max 48)');

/** Longest model version string (MLflow versions are small integers; leave room for other schemes). */
export const MODEL_VERSION_MAX_LENGTH = 64;

/** Model version: a non-empty string; a JSON integer (`3`) is accepted and normalised to `'3'`. */
export const ModelVersionSchema = z
  .union([z.string(), z.number().int().nonnegative()])
  .transform((v) => String(v).trim())
  .pipe(z.string().min(1, 'must not be empty').max(MODEL_VERSION_MAX_LENGTH));
