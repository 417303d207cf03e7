/**
 * Errors raised by the MLflow client.
 *
 * Rules:
 * - Every failure of an MLflow call is one {@link MlflowError} subclass; `name` is the class name and stable, so
 *   the activities layer can map it to an `ApplicationFailure` type, and `retryable` says whether repeating the
 *   same call may succeed (server trouble, network trouble) or never will (bad request, unauthorised, missing
 *   resource, malformed response).
 * - Classification uses MLflow's `error_code` first (it is precise: MLflow answers "already exists" with HTTP
 *   400), then the HTTP status. 401/403 always mean unauthorised, whatever the body says.
 * - A 404 whose body is not an MLflow error (an HTML page from a proxy or a wrong base path) is a protocol
 *   error, not "resource not found": otherwise `find*` helpers would silently answer "absent" for a misconfigured
 *   tracking URI.
 * - Messages name the endpoint (`METHOD /path`, never the host, query string or headers) and MLflow's own
 *   message, truncated. They never contain credentials: the client strips them from the tracking URI and sends
 *   them only in the `Authorization` header, which no message quotes.
 */

/** MLflow messages can embed whole SQL statements; keep error messages readable in logs and UIs. */
export const MAX_MLFLOW_MESSAGE_CHARS = 500;

/** Fields shared by every MLflow error. */
export interface MlflowErrorFields {
  /** `METHOD /api/2.0/...` of the call that failed. */
  endpoint: string;
  /** HTTP status, when the server answered. */
  status?: number;
  /** MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), when the body carried one. */
  errorCode?: string;
  /** The underlying error (network error, zod error), if any. */
  cause?: unknown;
}

/** Base class of every error thrown by the MLflow client. */
export class MlflowError extends Error {
  override readonly name: string = 'MlflowError';
  readonly endpoint: string;
  readonly status?: number;
  readonly errorCode?: string;
  /** True when repeating the same call may succeed. */
  readonly retryable: boolean;

  constructor(message: string, fields: MlflowErrorFields, retryable: boolean) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.endpoint = fields.endpoint;
    if (fields.status !== undefined) this.status = fields.status;
    if (fields.errorCode !== undefined) this.errorCode = fields.errorCode;
    this.retryable = retryable;
  }
}

/** The resource (experiment, run, model, version, alias, artifact) does not exist. Not retryable. */
export class MlflowNotFoundError extends MlflowError {
  override readonly name = 'MlflowNotFoundError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, false);
  }
}

/** The resource already exists (create raced with another creator, or was repeated). Not retryable. */
export class MlflowAlreadyExistsError extends MlflowError {
  override readonly name = 'MlflowAlreadyExistsError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, false);
  }
}

/** Missing, wrong or insufficient credentials (HTTP 401/403). Not retryable: credentials do not heal. */
export class MlflowUnauthorizedError extends MlflowError {
  override readonly name = 'MlflowUnauthorizedError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, false);
  }
}

/** The server rejected the request as invalid (HTTP 400, `INVALID_PARAMETER_VALUE`, ...). Not retryable. */
export class MlflowInvalidRequestError extends MlflowError {
  override readonly name = 'MlflowInvalidRequestError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, false);
  }
}

/** The server failed or is throttling (HTTP 5xx, 408, 429). Retryable. */
export class MlflowServerError extends MlflowError {
  override readonly name = 'MlflowServerError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, true);
  }
}

/** No answer: connection refused, DNS failure, reset, or the request timed out. Retryable. */
export class MlflowUnreachableError extends MlflowError {
  override readonly name = 'MlflowUnreachableError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, true);
  }
}

/** The server answered something that is not what the MLflow API promises. Not retryable. */
export class MlflowProtocolError extends MlflowError {
  override readonly name = 'MlflowProtocolError';
  constructor(message: string, fields: MlflowErrorFields) {
    super(message, fields, false);
  }
}

const NOT_FOUND_CODES = new Set(['RESOURCE_DOES_NOT_EXIST', 'NOT_FOUND']);
const ALREADY_EXISTS_CODES = new Set(['RESOURCE_ALREADY_EXISTS', 'ALREADY_EXISTS']);
const UNAUTHORIZED_CODES = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'CUSTOMER_UNAUTHORIZED']);
const INVALID_REQUEST_CODES = new Set([
  'INVALID_PARAMETER_VALUE',
  'BAD_REQUEST',
  'MALFORMED_REQUEST',
  'INVALID_STATE',
  'INVALID_STATE_TRANSITION',
  'FEATURE_DISABLED',
  'NOT_IMPLEMENTED',
  'RESOURCE_LIMIT_EXCEEDED',
  'QUOTA_EXCEEDED',
  'MAX_BLOCK_SIZE_EXCEEDED',
  'MAX_READ_SIZE_EXCEEDED',
]);
const SERVER_CODES = new Set([
  'INTERNAL_ERROR',
  'TEMPORARILY_UNAVAILABLE',
  'SERVICE_UNDER_MAINTENANCE',
  'IO_ERROR',
  'DEADLINE_EXCEEDED',
  'REQUEST_LIMIT_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
  'COULD_NOT_ACQUIRE_LOCK',
  'RESOURCE_CONFLICT',
]);

/** Shortens `text` to {@link MAX_MLFLOW_MESSAGE_CHARS}, on one line. */
export function truncateMessage(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= MAX_MLFLOW_MESSAGE_CHARS
    ? oneLine
    : `${oneLine.slice(0, MAX_MLFLOW_MESSAGE_CHARS)}... (${oneLine.length - MAX_MLFLOW_MESSAGE_CHARS} more chars)`;
}

interface ParsedErrorBody {
  errorCode?: string;
  message?: string;
  /** True when the body is a JSON error object from MLflow (has `error_code`, `message` or `detail`). */
  isMlflowError: boolean;
}

function parseErrorBody(bodyText: string): ParsedErrorBody {
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const obj = parsed as Record<string, unknown>;
      const errorCode = typeof obj['error_code'] === 'string' ? obj['error_code'] : undefined;
      const rawMessage = obj['message'] ?? obj['detail'];
      const message =
        rawMessage === undefined
          ? undefined
          : typeof rawMessage === 'string'
            ? rawMessage
            : JSON.stringify(rawMessage);
      const out: ParsedErrorBody = { isMlflowError: errorCode !== undefined || message !== undefined };
      if (errorCode !== undefined) out.errorCode = errorCode;
      if (message !== undefined) out.message = message;
      return out;
    }
  } catch {
    // not JSON: fall through
  }
  return { isMlflowError: false };
}

/**
 * Builds the error for a non-2xx answer. `bodyText` is the raw response body (MLflow sends
 * `{"error_code": ..., "message": ...}`; its artifact proxy sometimes sends `{"detail": ...}`).
 */
export function mlflowErrorFromResponse(endpoint: string, status: number, bodyText: string): MlflowError {
  const body = parseErrorBody(bodyText);
  const fields: MlflowErrorFields = { endpoint, status };
  if (body.errorCode !== undefined) fields.errorCode = body.errorCode;
  const detail = body.message ?? (bodyText.trim() === '' ? '(empty body)' : bodyText);
  const codePart = body.errorCode === undefined ? '' : ` ${body.errorCode}`;
  const message = `${endpoint} failed with HTTP ${status}${codePart}: ${truncateMessage(detail)}`;
  const code = body.errorCode ?? '';

  if (status === 401 || status === 403 || UNAUTHORIZED_CODES.has(code)) {
    return new MlflowUnauthorizedError(message, fields);
  }
  if (NOT_FOUND_CODES.has(code)) return new MlflowNotFoundError(message, fields);
  if (ALREADY_EXISTS_CODES.has(code)) return new MlflowAlreadyExistsError(message, fields);
  if (INVALID_REQUEST_CODES.has(code)) return new MlflowInvalidRequestError(message, fields);
  if (SERVER_CODES.has(code)) return new MlflowServerError(message, fields);

  if (status >= 500 || status === 408 || status === 429) return new MlflowServerError(message, fields);
  if (status === 404) {
    return body.isMlflowError
      ? new MlflowNotFoundError(message, fields)
      : new MlflowProtocolError(
          `${endpoint} failed with HTTP 404 and a non-MLflow body (is the tracking URI an MLflow server?): ` +
            truncateMessage(detail),
          fields,
        );
  }
  if (status === 409) return new MlflowAlreadyExistsError(message, fields);
  if (status >= 400) return new MlflowInvalidRequestError(message, fields);
  return new MlflowProtocolError(
    `${endpoint} answered unexpected HTTP ${status}: ${truncateMessage(detail)}`,
    fields,
  );
}

/** Extracts a short reason (`ECONNREFUSED`, `ENOTFOUND`, ...) from a fetch rejection, without URLs or headers. */
function networkReason(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (typeof current === 'object') {
      const obj = current as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
      if (typeof obj.code === 'string') {
        parts.push(obj.code);
        break;
      }
      if (typeof obj.message === 'string' && obj.message !== '') parts.push(obj.message);
      current = obj.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.length === 0 ? 'unknown network error' : parts.join(': ');
}

/** True for the error that `AbortSignal.timeout` raises when it fires. */
function isTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TimeoutError';
}

/** Builds the error for a request that got no (complete) answer: network failure or timeout. */
export function mlflowErrorFromNetwork(
  endpoint: string,
  err: unknown,
  timeoutMs: number,
): MlflowUnreachableError {
  const reason = isTimeout(err) ? `no answer within ${timeoutMs} ms` : networkReason(err);
  return new MlflowUnreachableError(`${endpoint}: MLflow server unreachable (${reason})`, {
    endpoint,
    cause: err,
  });
}
