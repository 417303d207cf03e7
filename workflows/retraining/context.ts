/**
 * What every stage of a retraining run shares: the parsed input, the feature spec, the journal
 * (status, decisions, audit) and who started it. Plain data plus the journal; no module state.
 */
import type { FeatureSpec } from '../../src/core/contracts/feature-spec';
import { formatZodError } from '../../src/core/contracts/errors';
import { FailureType } from '../../src/core/contracts/failures';
import {
  BUILTIN_FEATURE_SPECS,
  RetrainingInputSchema,
  type ParsedRetrainingInput,
  type PipelineOutcome,
  type PipelineResult,
  type PipelineStage,
  type PipelineStatus,
  type RetrainingInput,
} from '../../src/core/contracts/retraining';
import { ApplicationFailure } from '@temporalio/workflow';
import type { RunJournal } from '../shared/journal';

export type RetrainingJournal = RunJournal<PipelineStage, PipelineStatus>;

export interface RetrainingRun {
  input: ParsedRetrainingInput;
  spec: FeatureSpec;
  model: string;
  initiator?: string;
  journal: RetrainingJournal;
}

/** Validates the workflow input; a bad one fails the run at once, non-retryably, naming the field. */
export function parseRetrainingInput(raw: RetrainingInput): {
  input: ParsedRetrainingInput;
  spec: FeatureSpec;
} {
  const parsed = RetrainingInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: ${formatZodError(parsed.error)}`,
      FailureType.InvalidInput,
    );
  }
  const input = parsed.data;
  const spec = input.featureSpec ?? BUILTIN_FEATURE_SPECS[input.model];
  if (!spec) {
    throw ApplicationFailure.nonRetryable(
      `invalid retrainingPipeline input: featureSpec: required for model "${input.model}" (no built-in spec)`,
      FailureType.InvalidInput,
    );
  }
  return { input, spec };
}

/** Who started the run: the explicit initiator, or the person of a manual trigger. */
export function initiatorOf(input: ParsedRetrainingInput): string | undefined {
  return input.initiator ?? (input.trigger.kind === 'manual' ? input.trigger.by : undefined);
}

/** Ends the run with `outcome`, once every handler has finished. */
export function finishRun(
  run: RetrainingRun,
  outcome: PipelineOutcome,
  extra: Partial<PipelineResult> = {},
): Promise<PipelineResult> {
  return run.journal.finish({ outcome, status: run.journal.status, ...extra });
}
