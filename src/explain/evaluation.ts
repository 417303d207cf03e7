/**
 * The explain part of champion/challenger evaluation (activities/evaluation.ts): both versions explained alike on
 * a seeded sample of holdout rows against a seeded background sample of the training snapshot (the data the
 * version's reference profile describes), per segment of the sensitive attribute, with the attribution drift.
 */
import type { FeatureSpec } from '../core/contracts/feature-spec';
import { loadHoldout, type Holdout } from '../eval/holdout';
import type { ModelToScore } from '../eval/score';
import { ExplainableModel, type Row } from './model';
import { rowsFromColumns } from './rows';
import {
  DEFAULT_BACKGROUND_ROWS,
  DEFAULT_EXPLAIN_SEED,
  DEFAULT_EXPLAINED_ROWS,
  explainVersions,
  sampleIndices,
  type VersionAttributions,
} from './versions';

export interface EvaluationAttributions extends VersionAttributions {
  /** The background rows, for explanations on request (the gateway) against the same reference. */
  background: Row[];
  features: readonly string[];
}

/** `models[0]` is the challenger, `models[1]` (optional) the champion. */
export async function explainEvaluation(args: {
  models: readonly ModelToScore[];
  holdout: Holdout;
  trainingSnapshotPath: string;
  spec: FeatureSpec;
  seed?: number;
}): Promise<EvaluationAttributions> {
  const seed = args.seed ?? DEFAULT_EXPLAIN_SEED;
  const [first, second] = args.models;
  if (!first) throw new Error('explainEvaluation needs the challenger');
  const training = await loadHoldout(args.trainingSnapshotPath, args.spec);
  const challenger = await ExplainableModel.load(first.onnx, first.schema);
  const champion = second ? await ExplainableModel.load(second.onnx, second.schema) : undefined;
  try {
    const bgIdx = sampleIndices(training.rows, DEFAULT_BACKGROUND_ROWS, seed);
    const background = rowsFromColumns(first.schema, training.columns, bgIdx);
    const idx = sampleIndices(args.holdout.rows, DEFAULT_EXPLAINED_ROWS, seed + 1);
    const rows = rowsFromColumns(first.schema, args.holdout.columns, idx);
    const groups = args.holdout.groups;
    const segments = groups ? idx.map((i) => groups[i] ?? '') : undefined;
    const labels = idx.map((i) => args.holdout.labels[i] as number);
    const result = await explainVersions({ challenger, champion, rows, segments, background, seed, labels });
    return { ...result, background, features: challenger.features };
  } finally {
    await challenger.release();
    await champion?.release();
  }
}
