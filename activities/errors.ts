/**
 * Every error class of the Node-only side mapped onto the failure taxonomy
 * (`src/core/contracts/failures.ts`) in one place: permanent causes (bad input, unauthorised, corrupt
 * data, a failed job, a caller bug) become non-retryable `ApplicationFailure`s; transient ones (the
 * registry unreachable or failing) retryable ones that Temporal retries with backoff.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AuditEventConflictError, AuditEventInvalidError, AuditLogCorruptError } from '../src/audit';
import { InputValidationError } from '../src/core/contracts/errors';
import { FailureType } from '../src/core/contracts/failures';
import { StatsInputError } from '../src/core/stats/errors';
import { HoldoutError } from '../src/eval/holdout';
import { ModelContractError } from '../src/eval/score';
import { JobOwnershipError, JobSpecError } from '../src/jobs/types';
import { RouterRefusedError, RouterUnavailableError } from '../src/traffic/gateway-router';
import {
  MlflowAlreadyExistsError,
  MlflowError,
  MlflowInvalidRequestError,
  MlflowNotFoundError,
  MlflowProtocolError,
  MlflowUnauthorizedError,
} from '../src/mlflow';

/** @deprecated name kept for readers of older code: use {@link FailureType}. */
export const FailureTypes = FailureType;

function mlflowFailureType(err: MlflowError): FailureType {
  if (err instanceof MlflowUnauthorizedError) return FailureType.RegistryUnauthorized;
  if (err instanceof MlflowNotFoundError) return FailureType.RegistryNotFound;
  if (
    err instanceof MlflowInvalidRequestError ||
    err instanceof MlflowProtocolError ||
    err instanceof MlflowAlreadyExistsError
  ) {
    return FailureType.RegistryRequest;
  }
  return err.retryable ? FailureType.RegistryUnavailable : FailureType.RegistryRequest;
}

/** The Temporal failure for `err`: an `ApplicationFailure` with a taxonomy type, or `err` unchanged. */
export function toFailure(err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  const permanent = (type: FailureType, e: Error) =>
    ApplicationFailure.create({ type, message: e.message, nonRetryable: true, cause: e });
  if (err instanceof MlflowError) {
    const type = mlflowFailureType(err);
    return err.retryable
      ? ApplicationFailure.create({ type, message: err.message, nonRetryable: false, cause: err })
      : permanent(type, err);
  }
  if (err instanceof JobSpecError || err instanceof JobOwnershipError)
    return permanent(FailureType.JobSpec, err);
  if (err instanceof InputValidationError) return permanent(FailureType.InvalidInput, err);
  if (err instanceof StatsInputError) return permanent(FailureType.StatsInput, err);
  if (err instanceof ModelContractError) return permanent(FailureType.ModelContract, err);
  if (err instanceof HoldoutError) return permanent(FailureType.HoldoutInvalid, err);
  if (err instanceof AuditEventConflictError || err instanceof AuditEventInvalidError) {
    return permanent(FailureType.AuditConflict, err);
  }
  if (err instanceof AuditLogCorruptError) return permanent(FailureType.AuditCorrupt, err);
  if (err instanceof RouterRefusedError) return permanent(FailureType.TrafficRefused, err);
  if (err instanceof RouterUnavailableError) {
    return ApplicationFailure.create({
      type: FailureType.TrafficUnavailable,
      message: err.message,
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Runs `fn`, rethrowing whatever it throws as a Temporal failure of the right retryability. */
export async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err);
  }
}

/** The workflow execution an activity runs for; these activities are never run standalone. */
export function owningWorkflow(info: { workflowExecution?: { workflowId: string; runId: string } }): {
  workflowId: string;
  runId: string;
} {
  if (!info.workflowExecution) {
    throw ApplicationFailure.nonRetryable(
      'this activity must be scheduled by a workflow',
      FailureType.InvalidInput,
    );
  }
  return info.workflowExecution;
}
