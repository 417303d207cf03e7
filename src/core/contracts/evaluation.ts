/**
 * What the evaluation stage hands the workflow: the holdout's identity and both models'
 * measurements on it, and their paired comparison. Sandbox-safe; per-example outcomes stay out of
 * workflow history (they go to the registry as an artifact).
 */
import type { Comparison, ModelEvaluation } from './gate';

/** Challenger/champion p95 latency ratio with its paired bootstrap interval (interleaved timings). */
export interface LatencyComparison {
  quantile: number;
  estimate: number;
  ciLow: number;
  ciHigh: number;
  alpha: number;
  iterations: number;
  n: number;
}

export interface EvaluationSummary {
  holdout: { sha256: string; rows: number; positives: number };
  challenger: { version: string; evaluation: ModelEvaluation };
  champion?: { version: string; evaluation: ModelEvaluation };
  comparison?: Comparison;
  /** Present when a champion was timed beside the challenger. */
  latencyComparison?: LatencyComparison;
}
