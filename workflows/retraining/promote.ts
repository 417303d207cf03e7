/**
 * The end of a candidate: promotion to champion after approval, or a recorded outcome (not
 * promoted, rejected, expired) that leaves every alias where it was.
 */
import { AuditEventType } from '../../src/core/contracts/audit';
import type { ModelCard } from '../../src/core/contracts/model-card';
import type { PipelineOutcome, PipelineResult, PipelineStage } from '../../src/core/contracts/retraining';
import type { ApprovalState } from '../../src/core/policy/approval';
import type { GateVerdict } from '../../src/core/policy/gate';
import { registry } from './activities';
import { finishRun, type RetrainingRun } from './context';

type WriteCard = (extra: Partial<ModelCard>) => Promise<unknown>;

/** Records why the version is not promoted (on the version, the card and the audit log) and ends the run. */
export async function concludeWithout(
  run: RetrainingRun,
  args: {
    version: string;
    outcome: PipelineOutcome;
    reason: string;
    stage: PipelineStage;
    approval?: ApprovalState;
    writeCard: WriteCard;
    result: Partial<PipelineResult>;
  },
): Promise<PipelineResult> {
  const { journal, model } = run;
  const { version, outcome, reason } = args;
  await registry.markVersionOutcome({ model, version, outcome, reason });
  await args.writeCard({ approval: args.approval, outcome: `${outcome}: ${reason}` });
  journal.decide(outcome, reason);
  journal.enter(args.stage);
  await journal.audit(AuditEventType.pipelineRejected, { outcome, reason }, { modelVersion: version });
  return finishRun(run, outcome, args.result);
}

/**
 * Promotes a verified, approved version: `champion` -> it, the old one kept as `previous-champion`
 * (returned). The stage stays `promoting`; the pipeline completes the run (after kpiGuard, if any).
 */
export async function promote(
  run: RetrainingRun,
  args: { version: string; approval: ApprovalState; verdict: GateVerdict; writeCard: WriteCard },
): Promise<{ previousChampion?: string }> {
  const { journal, model } = run;
  const { version, approval } = args;
  journal.enter('promoting');
  const promoted = await registry.promoteModel({
    model,
    version,
    approvers: approval.approvals,
    verdict: args.verdict.decision,
  });
  journal.status.champion = { version };
  journal.decide(
    'promoted',
    `champion -> v${version}${promoted.previousChampion ? `, previous-champion -> v${promoted.previousChampion}` : ''}`,
  );
  await journal.audit(
    AuditEventType.modelPromoted,
    {
      approvers: approval.approvals,
      previousChampion: promoted.previousChampion ?? null,
      moved: promoted.moved,
    },
    { modelVersion: version },
  );
  await args.writeCard({
    approval,
    outcome: `promoted to champion, approved by ${approval.approvals.join(', ')}`,
  });
  return { previousChampion: promoted.previousChampion };
}
