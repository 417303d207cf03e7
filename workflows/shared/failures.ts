/**
 * Reading failures in workflow code: the taxonomy type and message of whatever an activity or a
 * child workflow threw, however deeply Temporal wrapped it.
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/workflow';
import type { FailureType } from '../../src/core/contracts/failures';

export interface FailureInfo {
  /** The `ApplicationFailure.type` found in the cause chain (a taxonomy type, or another string). */
  type?: FailureType | string;
  message: string;
}

/** Most wrapper levels followed: activity -> child workflow -> activity is three. */
const MAX_CAUSE_DEPTH = 8;

/** Walks activity and child-workflow failure causes down to the first `ApplicationFailure`. */
export function failureOf(err: unknown): FailureInfo {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof TemporalFailure; depth++) {
    if (current instanceof ApplicationFailure) {
      return { type: current.type ?? undefined, message: current.message };
    }
    if (!current.cause) return { message: current.message };
    current = current.cause;
  }
  if (current instanceof ApplicationFailure)
    return { type: current.type ?? undefined, message: current.message };
  return { message: current instanceof Error ? current.message : String(current) };
}

/** True when `err` carries a failure of one of `types` anywhere in its cause chain. */
export function isFailure(err: unknown, ...types: readonly string[]): boolean {
  const t = failureOf(err).type;
  return t !== undefined && types.includes(t);
}
