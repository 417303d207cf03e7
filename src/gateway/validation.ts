/**
 * Input validation of predict requests: a zod schema per model derived from its feature spec (every
 * feature named, numeric ones finite numbers or null, categorical ones strings or null, nothing else),
 * and the JSON checks that run before parsing (nesting depth).
 *
 * Out-of-range numbers and unseen categories pass validation: they are the OOD detector's to flag or
 * block, so both policies see them.
 */
import { z } from 'zod';
import type { FeatureSpec } from '../core/contracts/feature-spec';
import { formatZodError } from '../core/contracts/errors';

/** Longest categorical value accepted: vocabularies are short words, longer strings are junk or PII. */
export const MAX_CATEGORY_LENGTH = 128;
/** Longest sticky-routing key accepted. */
export const MAX_REQUEST_KEY_LENGTH = 256;

export type FeatureValues = Record<string, number | string | null>;
export interface PredictRequest {
  features: FeatureValues;
  /** Routing key for sticky canary assignment (a customer or session id). */
  key?: string;
}

export function predictRequestSchema(spec: FeatureSpec): z.ZodType<PredictRequest> {
  const shape: Record<string, z.ZodType<number | string | null>> = {};
  for (const f of spec.features) {
    shape[f.name] =
      f.kind === 'numeric'
        ? z
            .number({
              error: (i) => (i.input === undefined ? 'Required' : 'must be a finite number or null'),
            })
            .nullable()
        : z
            .string({ error: (i) => (i.input === undefined ? 'Required' : 'must be a string or null') })
            .max(MAX_CATEGORY_LENGTH)
            .nullable();
  }
  return z
    .object({
      features: z.strictObject(shape),
      key: z.string().min(1).max(MAX_REQUEST_KEY_LENGTH).optional(),
    })
    .strict() as unknown as z.ZodType<PredictRequest>;
}

export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
}

/** Parses with the schema; a failure is a {@link RequestValidationError} naming each field. */
export function validatePredict(schema: z.ZodType<PredictRequest>, body: unknown): PredictRequest {
  const r = schema.safeParse(body);
  if (!r.success) throw new RequestValidationError(formatZodError(r.error).replace(/\n/g, '; '));
  return r.data;
}

/**
 * A model's request check: a compiled test of the exact shape the zod schema accepts (plain loops
 * over the spec's feature names, no allocation), with the zod schema run only when that test fails,
 * so a refusal still names each field in zod's words and an accepted body is what zod accepts.
 */
export class PredictValidator {
  readonly schema: z.ZodType<PredictRequest>;
  private readonly numeric: string[];
  private readonly categorical: string[];

  constructor(spec: FeatureSpec) {
    this.schema = predictRequestSchema(spec);
    this.numeric = spec.features.filter((f) => f.kind === 'numeric').map((f) => f.name);
    this.categorical = spec.features.filter((f) => f.kind !== 'numeric').map((f) => f.name);
  }

  /** The validated request; a failure is a {@link RequestValidationError} naming each field. */
  parse(body: unknown): PredictRequest {
    return this.accepts(body) ? body : validatePredict(this.schema, body);
  }

  private accepts(body: unknown): body is PredictRequest {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
    const b = body as Record<string, unknown>;
    let top = 0;
    for (const k in b) {
      top++;
      if (k !== 'features' && k !== 'key') return false;
    }
    const key = b.key;
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length < 1 || key.length > MAX_REQUEST_KEY_LENGTH) return false;
    } else if (top !== 1) return false;
    const f = b.features;
    if (typeof f !== 'object' || f === null || Array.isArray(f)) return false;
    const features = f as Record<string, unknown>;
    let count = 0;
    for (const k in features) {
      if (!Object.hasOwn(features, k)) return false;
      count++;
    }
    if (count !== this.numeric.length + this.categorical.length) return false;
    for (const name of this.numeric) {
      const v = features[name];
      if (v !== null && !(typeof v === 'number' && Number.isFinite(v))) return false;
    }
    for (const name of this.categorical) {
      const v = features[name];
      if (v !== null && !(typeof v === 'string' && v.length <= MAX_CATEGORY_LENGTH)) return false;
    }
    return true;
  }
}

/**
 * Deepest nesting of `[`/`{` in a JSON text, counted outside strings; stops early past `limit`. Run
 * before JSON.parse so a deeply nested document costs one linear scan and nothing more.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  // Nesting deeper than `limit` needs more than `limit` brackets: a text with no more than that (every
  // request of a flat feature record) is answered by two indexOf scans, with no loop over characters.
  let brackets = 0;
  for (let i = text.indexOf('{'); i !== -1 && brackets <= limit; i = text.indexOf('{', i + 1)) brackets++;
  for (let i = text.indexOf('['); i !== -1 && brackets <= limit; i = text.indexOf('[', i + 1)) brackets++;
  if (brackets <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}
