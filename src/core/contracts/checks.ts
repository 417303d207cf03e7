/**
 * One shape for every judged check, and one rule for combining them: dataset validation and the promotion gate
 * use it now, canary analysis and drift alarms will. Measuring happens elsewhere; a judge returns a list of
 * {@link Check}s and its verdict is the worst of their phases.
 *
 * Rules:
 * - Sandbox-safe: zod only. Plain JSON.
 * - `phase` is what happened: `successful` (the check passed), `failed` (a definite no), `inconclusive` (not
 *   enough evidence either way: more data or a human decides) or `error` (the check could not be carried out at
 *   all: invalid input, unreadable data). `passed` is `phase === 'successful'`.
 * - `severity` is what a check that does not pass means: the phase it takes then (`failed` or `inconclusive`).
 *   An `error` does not depend on severity.
 * - Worst-of: `error` > `failed` > `inconclusive` > `successful` ({@link worstPhase}); no checks is `successful`.
 */
import { z } from 'zod';

/** The four outcomes of a check, and of a verdict over checks. */
export const CheckPhase = {
  successful: 'successful',
  failed: 'failed',
  inconclusive: 'inconclusive',
  error: 'error',
} as const;
export type CheckPhase = (typeof CheckPhase)[keyof typeof CheckPhase];

/** The phases from best to worst (the order {@link worstPhase} uses). */
export const CHECK_PHASES_BEST_FIRST = [
  CheckPhase.successful,
  CheckPhase.inconclusive,
  CheckPhase.failed,
  CheckPhase.error,
] as const satisfies readonly CheckPhase[];

/** What a check that does not pass means: the phase it takes then. */
export type CheckSeverity = typeof CheckPhase.failed | typeof CheckPhase.inconclusive;

/** A judged check. */
export interface Check {
  /** Stable identifier, dotted, e.g. `guardrail.latency.p95.ratio` or `quality.null-rate`. */
  name: string;
  /** True exactly when `phase` is `successful`. */
  passed: boolean;
  phase: CheckPhase;
  severity: CheckSeverity;
  /** Observed value (null when not measured). */
  observed: number | string | null;
  /** Allowed value or bound (null when not applicable). */
  threshold: number | string | null;
  /** Human-readable sentence naming what was checked, observed versus allowed. */
  detail: string;
}

const CheckPhaseSchema = z.enum(CHECK_PHASES_BEST_FIRST);

/** Schema of {@link Check}, for boundaries that receive checks (audit readers, dashboards). */
export const CheckSchema = z
  .object({
    name: z.string().min(1, 'must not be empty'),
    passed: z.boolean(),
    phase: CheckPhaseSchema,
    severity: z.enum([CheckPhase.failed, CheckPhase.inconclusive]),
    observed: z.union([z.number(), z.string(), z.null()]),
    threshold: z.union([z.number(), z.string(), z.null()]),
    detail: z.string(),
  })
  .refine((c) => c.passed === (c.phase === CheckPhase.successful), {
    message: 'passed must be true exactly when phase is successful',
    path: ['passed'],
  });

/** The worse of two phases: `error` > `failed` > `inconclusive` > `successful`. */
export function worsePhase(a: CheckPhase, b: CheckPhase): CheckPhase {
  return CHECK_PHASES_BEST_FIRST.indexOf(b) > CHECK_PHASES_BEST_FIRST.indexOf(a) ? b : a;
}

/** The worst phase of a list; `successful` for an empty list. */
export function worstPhase(phases: Iterable<CheckPhase>): CheckPhase {
  let worst: CheckPhase = CheckPhase.successful;
  for (const p of phases) worst = worsePhase(worst, p);
  return worst;
}

/** The worst phase of a list of checks; `successful` for an empty list. */
export function worstPhaseOf(checks: ReadonlyArray<Pick<Check, 'phase'>>): CheckPhase {
  return worstPhase(checks.map((c) => c.phase));
}

/** The phase of a check that was carried out: `successful` if it passed, else its severity. */
export function judgedPhase(passed: boolean, severity: CheckSeverity): CheckPhase {
  return passed ? CheckPhase.successful : severity;
}
