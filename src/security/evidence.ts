/**
 * Evidence binding: a second signed in-toto statement per version that binds the model's identity
 * (the subject digest of its model signature: sha256 over every file digest) to the model card it
 * was approved with, the gate verdict, the approvals and the dataset snapshot hashes. It is signed
 * with the same key as the model (a Sigstore bundle v0.3 with a DSSE envelope) and stored beside it
 * in the run, with a frozen copy of the bound card, so an auditor can check the whole chain offline:
 * files -> model signature -> evidence -> card, approvals, data -> audit log.
 *
 * Node-only. {@link verifyEvidenceChain} is the one offline check (used by `npm run audit:verify --
 * --chain <dir>`); {@link exportEvidenceChain} writes such a folder from the registry.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { verifyAuditLog } from '../audit/verify';
import type { AuditEntry } from '../core/contracts/audit';
import { MODEL_ARTIFACT_PATH } from '../core/contracts/registry';
import type { ModelRegistry, RegistryVersion } from '../ports/model-registry';
import type { InTotoStatement, StatementVerifier } from '../ports/signing';
import { downloadTree } from '../registry/verified-model';
import { formatZodError } from '../core/contracts/errors';
import {
  IN_TOTO_STATEMENT_TYPE,
  ModelSignatureCode,
  ModelSignatureError,
  verifyModelFolder,
} from './model-signing';
import { EVIDENCE_ARTIFACT, MODEL_SIGNATURE_ARTIFACT, SecurityTags } from './model-trust';

/** Predicate type of the evidence statement. */
export const EVIDENCE_PREDICATE_TYPE = 'https://mlops-control-plane/evidence/v1';
/** Where the frozen copy of the bound model card is stored in the run. */
export const BOUND_CARD_ARTIFACT = 'signatures/model_card.json';
/** File names inside an exported chain folder. */
export const ChainFiles = {
  model: 'model',
  modelSignature: 'model.sig',
  evidence: 'evidence.sig',
  card: 'model_card.json',
  audit: 'audit.jsonl',
} as const;

export const EvidencePredicateSchema = z.object({
  workflowId: z.string(),
  modelCard: z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  gate: z.object({ decision: z.string(), reasons: z.array(z.string()) }),
  approvals: z.array(
    z.object({ approver: z.string(), at: z.string(), signed: z.boolean(), keyId: z.string().optional() }),
  ),
  datasets: z.object({
    training: z.object({ sha256: z.string() }),
    holdout: z.object({ sha256: z.string() }).optional(),
  }),
  modelSignature: z.object({ path: z.string(), signer: z.string() }),
});
export type EvidencePredicate = z.infer<typeof EvidencePredicateSchema>;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The evidence statement for a version whose model signature has subject `subject` / `rootDigest`. */
export function buildEvidenceStatement(args: {
  subject: string;
  rootDigest: string;
  predicate: EvidencePredicate;
}): InTotoStatement {
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: args.subject, digest: { sha256: args.rootDigest } }],
    predicateType: EVIDENCE_PREDICATE_TYPE,
    predicate: args.predicate,
  };
}

export const cardDigest = sha256;

export interface ChainCheck {
  check: string;
  ok: boolean;
  detail: string;
}

/**
 * Verifies an exported chain folder offline with `verifier` (the trusted keys): the model files
 * against the model signature, the evidence signature, that evidence and model name the same
 * subject and digest, the bound card's digest, and (when `audit.jsonl` is there) the audit log's
 * hash chain and that it records the bound approvals and an accepted integrity check of this digest.
 */
export async function verifyEvidenceChain(dir: string, verifier: StatementVerifier): Promise<ChainCheck[]> {
  const out: ChainCheck[] = [];
  const step = async (check: string, fn: () => Promise<string>): Promise<boolean> => {
    try {
      out.push({ check, ok: true, detail: await fn() });
      return true;
    } catch (err) {
      out.push({ check, ok: false, detail: (err as Error).message });
      return false;
    }
  };
  let evidence: { statement: InTotoStatement; predicate: EvidencePredicate } | undefined;
  await step('evidence signature', async () => {
    const { statement, signer } = await verifier.verifyStatement(
      readFileSync(path.join(dir, ChainFiles.evidence)),
    );
    if (statement.predicateType !== EVIDENCE_PREDICATE_TYPE)
      throw new ModelSignatureError(
        ModelSignatureCode.wrongSubject,
        `not an evidence statement: ${statement.predicateType}`,
      );
    const p = EvidencePredicateSchema.safeParse(statement.predicate);
    if (!p.success) throw new Error(formatZodError(p.error, 'evidence predicate'));
    evidence = { statement, predicate: p.data };
    return `signed by key ${signer.id}`;
  });
  const subject = evidence?.statement.subject[0];
  await step('model signature over the files', async () => {
    const r = await verifyModelFolder(
      path.join(dir, ChainFiles.model),
      readFileSync(path.join(dir, ChainFiles.modelSignature)),
      verifier,
      subject ? { expectedName: subject.name } : {},
    );
    if (subject && subject.digest.sha256 !== r.rootDigest)
      throw new Error(`evidence binds digest ${subject.digest.sha256}, the model signature ${r.rootDigest}`);
    return `${r.files} files, ${r.name} sha256 ${r.rootDigest}`;
  });
  if (evidence) {
    const e = evidence.predicate;
    await step('model card', async () => {
      const got = sha256(readFileSync(path.join(dir, ChainFiles.card)));
      if (got !== e.modelCard.sha256)
        throw new Error(`card sha256 ${got}, evidence binds ${e.modelCard.sha256}`);
      return `sha256 ${got}`;
    });
    await step('gate, approvals, data', async () => {
      if (e.gate.decision !== 'promote') throw new Error(`gate verdict is ${e.gate.decision}`);
      if (e.approvals.length === 0) throw new Error('no approvals bound');
      return `gate ${e.gate.decision}; approved by ${e.approvals.map((a) => `${a.approver}${a.signed ? ' (signed)' : ''}`).join(', ')}; training ${e.datasets.training.sha256.slice(0, 12)}${e.datasets.holdout ? `, holdout ${e.datasets.holdout.sha256.slice(0, 12)}` : ''}`;
    });
    const auditPath = path.join(dir, ChainFiles.audit);
    if (existsSync(auditPath)) {
      await step('audit log', async () => {
        const chain = await verifyAuditLog(auditPath);
        if (!chain.ok) throw new Error(`hash chain broken: ${JSON.stringify(chain.firstBroken ?? chain)}`);
        const entries = readFileSync(auditPath, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as AuditEntry)
          .filter((x) => x.workflowId === e.workflowId);
        const accepted = new Set(
          entries
            .filter(
              (x) => x.type === 'approval.attempt' && (x.details as { accepted?: boolean }).accepted === true,
            )
            .map((x) => x.actor),
        );
        const missing = e.approvals.filter((a) => !accepted.has(a.approver)).map((a) => a.approver);
        if (missing.length > 0) throw new Error(`no accepted approval recorded for ${missing.join(', ')}`);
        const integrity = entries.some(
          (x) =>
            x.type === 'integrity.checked' &&
            (x.details as { ok?: boolean; rootDigest?: string }).ok === true &&
            (x.details as { rootDigest?: string }).rootDigest === subject?.digest.sha256,
        );
        if (!integrity) throw new Error('no accepted integrity check of this model digest is recorded');
        return `${chain.entries} entries chained; approvals and integrity checks of ${e.workflowId} recorded`;
      });
    }
  }
  return out;
}

/** Writes the chain folder of `version` from the registry (files, both signatures, bound card) plus an audit log copy. */
export async function exportEvidenceChain(
  registry: ModelRegistry,
  version: RegistryVersion,
  dir: string,
  auditLog?: string,
): Promise<void> {
  const runId = version.runId;
  if (!runId || !version.tags[SecurityTags.evidence])
    throw new Error(`${version.name} v${version.version} has no evidence statement to export`);
  mkdirSync(path.join(dir, ChainFiles.model), { recursive: true });
  for (const f of await downloadTree(registry, runId, MODEL_ARTIFACT_PATH)) {
    const target = path.join(dir, ChainFiles.model, f.path.slice(MODEL_ARTIFACT_PATH.length + 1));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, f.content);
  }
  writeFileSync(
    path.join(dir, ChainFiles.modelSignature),
    await registry.downloadArtifact(runId, MODEL_SIGNATURE_ARTIFACT),
  );
  writeFileSync(
    path.join(dir, ChainFiles.evidence),
    await registry.downloadArtifact(runId, EVIDENCE_ARTIFACT),
  );
  writeFileSync(path.join(dir, ChainFiles.card), await registry.downloadArtifact(runId, BOUND_CARD_ARTIFACT));
  if (auditLog) writeFileSync(path.join(dir, ChainFiles.audit), readFileSync(auditLog));
}
