/**
 * Stages 5-6 and the model card: evaluate champion and challenger on the same frozen holdout,
 * judge the measurements with the pure promotion gate, and write the model card. The workflow
 * only carries out the verdict.
 */
import { AuditEventType } from '../../src/core/contracts/audit';
import type { EvaluationSummary } from '../../src/core/contracts/evaluation';
import type { DatasetProfile } from '../../src/core/contracts/feature-spec';
import {
  DEFAULT_INTENDED_USE,
  STANDARD_LIMITATIONS,
  type ModelCard,
} from '../../src/core/contracts/model-card';
import type { ModelPolicy } from '../../src/core/contracts/model-policy';
import type { DatasetRef, DatasetSnapshot, RegisteredVersion } from '../../src/core/contracts/retraining';
import { decidePromotion, summariseVerdict, type GateVerdict } from '../../src/core/policy/gate';
import { workflowNow } from '../shared/journal';
import { data, evaluation, registry } from './activities';
import type { RetrainingRun } from './context';

export async function evaluateCandidate(
  run: RetrainingRun,
  args: { holdout: DatasetRef; snapshot: DatasetSnapshot; version: string; policy: ModelPolicy },
): Promise<EvaluationSummary> {
  const { journal, model, spec } = run;
  const { policy, version } = args;
  journal.enter('evaluating');
  const holdoutSnapshot = await data.snapshotDataset({ dataset: args.holdout });
  const summary = await evaluation.evaluateCandidate({
    model,
    challengerVersion: version,
    holdout: holdoutSnapshot,
    trainingSnapshotPath: args.snapshot.snapshotPath,
    trainingSha256: args.snapshot.sha256,
    spec,
    gate: policy.gate,
  });
  journal.status.evaluation = {
    primaryMetric: policy.gate.primaryMetric,
    holdoutSha256: summary.holdout.sha256,
    holdoutRows: summary.holdout.rows,
    challenger: summary.challenger.evaluation,
    champion: summary.champion,
    comparison: summary.comparison,
  };
  if (summary.champion) journal.status.champion = { version: summary.champion.version };
  await journal.audit(
    AuditEventType.evaluationCompleted,
    {
      holdoutSha256: summary.holdout.sha256,
      champion: summary.champion?.version ?? null,
      primary: summary.challenger.evaluation.metrics[policy.gate.primaryMetric] ?? null,
      comparison: summary.comparison ?? null,
    },
    { modelVersion: version },
  );
  return summary;
}

export async function judgeCandidate(
  run: RetrainingRun,
  args: { summary: EvaluationSummary; version: string; policy: ModelPolicy },
): Promise<GateVerdict> {
  const { journal } = run;
  journal.enter('gating');
  const verdict = decidePromotion({
    policy: args.policy.gate,
    challenger: args.summary.challenger.evaluation,
    champion: args.summary.champion?.evaluation,
    comparison: args.summary.comparison,
    latencyComparison: args.summary.latencyComparison,
  });
  journal.status.gate = { decision: verdict.decision, reasons: verdict.reasons };
  journal.decide(`gate-${verdict.decision}`, summariseVerdict(verdict));
  await journal.audit(
    AuditEventType.gateVerdict,
    { decision: verdict.decision, reasons: verdict.reasons },
    { modelVersion: args.version },
  );
  return verdict;
}

/** Builds model cards of one candidate: the same facts, plus what each later stage adds. */
export function modelCardWriter(
  run: RetrainingRun,
  args: {
    registered: RegisteredVersion;
    snapshot: DatasetSnapshot;
    profile?: DatasetProfile;
    summary: EvaluationSummary;
    verdict: GateVerdict;
    policy: ModelPolicy;
  },
): (extra: Partial<ModelCard>) => Promise<{ markdownPath: string; jsonPath: string }> {
  const { model, spec, input, journal } = run;
  const { registered, summary } = args;
  return (extra) =>
    registry.writeModelCard({
      model,
      version: registered.version,
      runId: registered.runId,
      workflowId: journal.workflowId,
      generatedAt: workflowNow(),
      intendedUse: DEFAULT_INTENDED_USE,
      featureSpec: `${spec.name}@${spec.version}`,
      trigger: input.trigger.kind,
      data: {
        training: { uri: input.dataset.uri, sha256: args.snapshot.sha256, rows: args.profile?.rows },
        holdout: {
          uri: input.holdout?.uri ?? '',
          sha256: summary.holdout.sha256,
          rows: summary.holdout.rows,
          positives: summary.holdout.positives,
        },
      },
      primaryMetric: args.policy.gate.primaryMetric,
      challenger: summary.challenger.evaluation,
      champion: summary.champion,
      comparison: summary.comparison,
      verdict: args.verdict,
      limitations: STANDARD_LIMITATIONS,
      ...extra,
    });
}
