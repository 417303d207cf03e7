/**
 * Stages 1-2: snapshot the dataset (content hash, immutable copy) and validate it (schema,
 * quality, poisoning screen). An unreadable, tampered or failing dataset ends the run as
 * `rejected-data`, never as a retry loop.
 */
import { AuditEventType } from '../../src/core/contracts/audit';
import type { DatasetProfile, ValidationReport } from '../../src/core/contracts/feature-spec';
import { FailureType } from '../../src/core/contracts/failures';
import type { DatasetSnapshot, PipelineResult } from '../../src/core/contracts/retraining';
import { POISONING_HISTORY_PATCH } from '../../src/core/contracts/poisoning-history';
import { failedReport } from '../../src/core/policy/validation';
import { patched } from '@temporalio/workflow';
import { failureOf } from '../shared/failures';
import { data } from './activities';
import { finishRun, type RetrainingRun } from './context';

export type DataStageResult =
  | { ok: true; snapshot: DatasetSnapshot; report: ValidationReport; profile?: DatasetProfile }
  | { ok: false; result: PipelineResult };

export async function snapshotAndValidate(run: RetrainingRun): Promise<DataStageResult> {
  const { journal, input, spec } = run;

  journal.enter('snapshotting');
  let snapshot: DatasetSnapshot;
  try {
    snapshot = await data.snapshotDataset({ dataset: input.dataset });
  } catch (err) {
    const f = failureOf(err);
    if (f.type !== FailureType.DatasetUnreadable && f.type !== FailureType.DatasetIntegrity) throw err;
    journal.decide('rejected', f.message);
    journal.enter('rejected-data');
    journal.status.error = f.message;
    await journal.audit(AuditEventType.pipelineRejected, { stage: 'snapshotting', reason: f.message });
    const check = f.type === FailureType.DatasetIntegrity ? 'integrity' : 'readable';
    return {
      ok: false,
      result: await finishRun(run, 'rejected-data', {
        validation: failedReport(check, f.message, 'readable, matching sha256', f.message),
      }),
    };
  }
  journal.status.dataset = { sha256: snapshot.sha256, snapshotPath: snapshot.snapshotPath };

  journal.enter('validating');
  // The model lets validation screen the snapshot against its champion's training snapshot.
  const { report, profile } = await data.validateDataset({
    snapshotPath: snapshot.snapshotPath,
    spec,
    ...(patched(POISONING_HISTORY_PATCH) && { model: run.model }),
  });
  journal.status.dataset.rows = profile?.rows;
  const failedChecks = report.checks.filter((c) => !c.passed);
  journal.status.validation = { ok: report.ok, failedChecks: failedChecks.map((c) => c.message) };
  await journal.audit(AuditEventType.datasetValidated, {
    sha256: snapshot.sha256,
    rows: profile?.rows ?? null,
    ok: report.ok,
    failed: failedChecks.map((c) => c.message),
  });
  if (!report.ok) {
    journal.decide(
      'rejected',
      `dataset failed ${failedChecks.length} check(s): ${failedChecks.map((c) => c.check).join(', ')}`,
    );
    journal.enter('rejected-data');
    return { ok: false, result: await finishRun(run, 'rejected-data', { validation: report, profile }) };
  }
  journal.decide('accepted', `dataset passed ${report.checks.length} checks`);
  return { ok: true, snapshot, report, profile };
}
