/**
 * Readable validation errors for every boundary of the project.
 *
 * Rules:
 * - Sandbox-safe: no Node built-ins, no I/O, no clocks; usable inside workflows.
 * - Every message names the offending field as a path (`signature.issuedAt`, `approvers[1].id`), one line per
 *   issue, so a user who typed a bad `--input` sees exactly what to fix.
 * - A missing required field reads `<path>: Required` rather than zod's longer "expected string, received
 *   undefined".
 */
import type { z } from 'zod';

/** Name of the path used when an issue concerns the whole value rather than one field. */
export const ROOT_PATH_LABEL = '(root)';

/** Formats a zod issue path as `a.b[0].c`; an empty path is {@link ROOT_PATH_LABEL}. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
    } else {
      const name = typeof segment === 'symbol' ? segment.toString() : segment;
      out += out === '' ? name : `.${name}`;
    }
  }
  return out === '' ? ROOT_PATH_LABEL : out;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return 'Required';
  return issue.message;
}

/**
 * One line per issue, each `<path>: <message>` (prefixed with `<prefix>: ` when given), joined by newlines.
 * Example: `approve payload: approver: Required`.
 */
export function formatZodError(
  err: z.ZodError | { issues: ReadonlyArray<z.core.$ZodIssue> },
  prefix?: string,
) {
  const head = prefix === undefined || prefix === '' ? '' : `${prefix}: `;
  const lines = err.issues.map((issue) => `${head}${formatIssuePath(issue.path)}: ${issueMessage(issue)}`);
  return lines.length > 0 ? lines.join('\n') : `${head}${ROOT_PATH_LABEL}: invalid input`;
}

/**
 * Thrown by {@link parseOrThrow} for bad input. `name` is stable so the activities layer can map it to a
 * non-retryable `ApplicationFailure` (bad input never becomes valid by retrying).
 */
export class InputValidationError extends Error {
  override readonly name = 'InputValidationError';
  /** The individual issue lines, each naming its field. */
  readonly issues: string[];

  constructor(message: string) {
    super(message);
    this.issues = message.split('\n');
  }
}

/** Parses `input` with `schema`, or throws an {@link InputValidationError} whose message names each field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, prefix?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new InputValidationError(formatZodError(result.error, prefix));
  return result.data;
}
