/**
 * The model card of a version: what it is for, what it was trained and judged on, how it compares
 * with the champion, the gate's verdict and (once decided) the approvals. Plain JSON assembled by
 * the workflow; rendered to Markdown by src/eval/model-card.ts. Sandbox-safe.
 */
import type { ApprovalState } from './approval';
import type { Comparison, GateVerdict, ModelEvaluation } from './gate';

/** Intended use of a model when its spec gives none. */
export const DEFAULT_INTENDED_USE =
  'Scores transactions for fraud risk to prioritise human review. Not for automated account closure or credit decisions.';

/** Known limits stated on every card. */
export const STANDARD_LIMITATIONS = [
  'Evaluated on a frozen holdout snapshot; live traffic may drift from it (see drift monitoring).',
  'Fairness gaps are measured only across the declared sensitive attribute, at the stated threshold.',
  'Latency is single-example CPU inference in the evaluation worker, not end-to-end serving latency.',
];

export interface ModelCard {
  model: string;
  version: string;
  runId: string;
  workflowId: string;
  generatedAt: string;
  intendedUse: string;
  featureSpec: string;
  trigger: string;
  data: {
    training: { uri: string; sha256: string; rows?: number };
    holdout?: { uri: string; sha256: string; rows: number; positives: number };
  };
  primaryMetric: string;
  challenger?: ModelEvaluation;
  champion?: { version: string; evaluation: ModelEvaluation };
  comparison?: Comparison;
  verdict?: GateVerdict;
  approval?: ApprovalState;
  outcome?: string;
  limitations: string[];
}
