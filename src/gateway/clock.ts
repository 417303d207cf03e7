/**
 * Wall-clock time for the gateway's log lines. A busy worker answers several requests within one
 * millisecond, and the access log and the inference log each stamp every request: the ISO text is
 * formatted once per millisecond and shared.
 */

let lastMs = Number.NaN;
let lastIso = '';

/** The current time as `Date.prototype.toISOString` writes it (UTC, millisecond precision). */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
