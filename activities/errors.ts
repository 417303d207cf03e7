/**
 * Maps errors from outside systems onto Temporal failures with stable `type` strings: permanent
 * causes (bad input, unauthorised, corrupt data, a failed job) are non-retryable; transient ones
 * (MLflow unreachable or 5xx) are retried by Temporal with backoff.
 */
import { ApplicationFailure } from '@temporalio/common';
import { JobOwnershipError, JobSpecError } from '../src/jobs/types';
import { MlflowError } from '../src/mlflow';

export const FailureTypes = {
  InvalidInput: 'InvalidInput',
  DatasetUnreadable: 'DatasetUnreadable',
  DatasetIntegrity: 'DatasetIntegrity',
  TrainingFailed: 'TrainingFailed',
  ArtifactIntegrity: 'ArtifactIntegrity',
  JobSpec: 'JobSpec',
} as const;

export function toFailure(err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof MlflowError) {
    return err.retryable
      ? ApplicationFailure.retryable(err.message, err.name)
      : ApplicationFailure.nonRetryable(err.message, err.name);
  }
  if (err instanceof JobSpecError || err instanceof JobOwnershipError) {
    return ApplicationFailure.nonRetryable(err.message, FailureTypes.JobSpec);
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
      FailureTypes.InvalidInput,
    );
  }
  return info.workflowExecution;
}
