/**
 * Supply-chain hops of a candidate: signed at registration (after an unsafe-format scan), then
 * verified again before evaluation, before approvers see it, and after approval before staging,
 * canary or promotion; the evaluation and promotion activities verify the bytes they load too.
 * Each check is audited (`integrity.checked`, with the hop); a refusal tags the version with the
 * reason, leaves traffic and every alias as they were, and fails the run with the named,
 * non-retryable failure type (ModelSignature*, UnsafeModelFormat).
 *
 * Behind `patched(MODEL_SIGNING_PATCH)`: runs started before it replay without these steps.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { IntegrityHop, IntegrityResult } from '../../activities/security';
import { AuditEventType } from '../../src/core/contracts/audit';
import { registry, security } from './activities';
import type { RetrainingRun } from './context';
import type { ApprovalState } from '../../src/core/contracts/approval';

export const MODEL_SIGNING_PATCH = 'retraining-model-signing';

/** Outcome tag of a version refused at a hop. */
export const INTEGRITY_REFUSED_OUTCOME = 'integrity-refused';

async function record(run: RetrainingRun, version: string, result: IntegrityResult): Promise<void> {
  const { journal, model } = run;
  if (result.ok) {
    journal.decide(
      result.hop === 'registration' ? 'model-signed' : `verified-${result.hop}`,
      `v${version}: ${result.files} files${result.signer ? `, signed by key ${result.signer.slice(0, 16)}` : ''}`,
    );
    await journal.audit(
      AuditEventType.integrityChecked,
      { hop: result.hop, ok: true, signer: result.signer ?? null, rootDigest: result.rootDigest ?? null },
      { modelVersion: version },
    );
    return;
  }
  journal.decide('integrity-refused', `${result.hop}: ${result.reason}`);
  await journal.audit(
    AuditEventType.integrityChecked,
    { hop: result.hop, ok: false, failureType: result.failureType, reason: result.reason },
    { modelVersion: version },
  );
  await registry.markVersionOutcome({
    model,
    version,
    outcome: INTEGRITY_REFUSED_OUTCOME,
    reason: `${result.hop}: ${result.reason}`,
  });
  throw ApplicationFailure.nonRetryable(`${result.hop}: ${result.reason}`, result.failureType);
}

/** Scans and signs the registered version (idempotent). */
export async function signCandidate(run: RetrainingRun, version: string): Promise<void> {
  if (!patched(MODEL_SIGNING_PATCH)) return;
  await record(run, version, await security.signModelVersion({ model: run.model, version }));
}

/** Patch id of the evidence statement signed after approval. */
export const EVIDENCE_PATCH = 'retraining-evidence';

/** Signs the evidence statement of an approved version (model digest, card, verdict, approvals, data) and audits it. */
export async function bindEvidence(
  run: RetrainingRun,
  args: {
    version: string;
    approval: ApprovalState;
    verdict: { decision: string; reasons: string[] };
    training: string;
    holdout?: string;
  },
): Promise<void> {
  if (!patched(EVIDENCE_PATCH)) return;
  const approvals = args.approval.attempts
    .filter((a) => a.accepted && a.decision === 'approve')
    .map((a) => ({
      approver: a.approver,
      at: a.at,
      signed: a.signed,
      ...(a.keyId ? { keyId: a.keyId } : {}),
    }));
  const bound = await security.signEvidence({
    model: run.model,
    version: args.version,
    gate: { decision: args.verdict.decision, reasons: args.verdict.reasons },
    approvals,
    datasets: {
      training: { sha256: args.training },
      ...(args.holdout ? { holdout: { sha256: args.holdout } } : {}),
    },
  });
  run.journal.decide(
    'evidence-signed',
    `v${args.version}: card ${bound.cardSha256.slice(0, 12)} bound to ${bound.rootDigest.slice(0, 12)}`,
  );
  await run.journal.audit(
    'evidence.signed',
    {
      rootDigest: bound.rootDigest,
      cardSha256: bound.cardSha256,
      evidenceSha256: bound.evidenceSha256,
      approvers: approvals.map((a) => a.approver),
    },
    { modelVersion: args.version },
  );
}

/** Verifies the version's manifest and signature at `hop`. */
export async function verifyHop(run: RetrainingRun, version: string, hop: IntegrityHop): Promise<void> {
  if (!patched(MODEL_SIGNING_PATCH)) return;
  await record(run, version, await security.verifyModelVersion({ model: run.model, version, hop }));
}
