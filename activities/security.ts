/**
 * Security activities: checks that need node:crypto or the registry's bytes, so they run here
 * rather than in the workflow.
 *
 * - `verifyApprovalSignature`: an approver's Ed25519 signature.
 * - `signModelVersion`: at registration, the version's files (digest manifest verified first) are
 *   scanned for unsafe formats and signed as an OpenSSF model signature with subject
 *   `<model>/v<version>`; the bundle goes to the run (`signatures/model.sig`), its path and the
 *   signer's key hint onto version tags. Idempotent: a version whose signature already verifies is
 *   left as it is.
 * - `verifyModelVersion`: one hop's check (evaluation, approval, deploy): manifest, then the
 *   signature over the very bytes downloaded. Refusals are returned, not thrown, so the workflow
 *   audits them before it fails with the named failure type; outside-world errors still throw.
 *
 * Keys never pass through here as arguments: the signer reads its key from the secret store.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ApprovalSignature } from '../src/core/contracts/approval';
import { FailureType, isFailureType } from '../src/core/contracts/failures';
import type { ModelRegistry } from '../src/ports/model-registry';
import { fetchVerifiedModel } from '../src/registry/verified-model';
import { verifyApprovalSignature, type ApprovalSignedFields } from '../src/security/approval-signing';
import { scanModelFiles } from '../src/security/format-scan';
import { verifyStartSignature, type StartSignedFields } from '../src/security/start-signing';
import {
  BOUND_CARD_ARTIFACT,
  buildEvidenceStatement,
  cardDigest,
  type EvidencePredicate,
} from '../src/security/evidence';
import { MODEL_CARD_DIR } from './registry';
import { Context } from '@temporalio/activity';
import { signModelFiles } from '../src/security/model-signing';
import {
  EVIDENCE_ARTIFACT,
  MODEL_SIGNATURE_ARTIFACT,
  SecurityTags,
  signatureSubject,
  type ModelTrust,
} from '../src/security/model-trust';
import { mapped, owningWorkflow } from './errors';

/** The hops at which a version is verified again inside the pipeline. */
export type IntegrityHop = 'registration' | 'evaluation' | 'approval' | 'deploy';

export type IntegrityResult =
  | { ok: true; hop: IntegrityHop; signer?: string; rootDigest?: string; files: number }
  | { ok: false; hop: IntegrityHop; failureType: FailureType; reason: string };

/** A refusal (named, permanent) as a result; anything else is rethrown for Temporal to retry. */
function refusalOf(err: unknown, hop: IntegrityHop): IntegrityResult {
  if (err instanceof ApplicationFailure && err.nonRetryable && isFailureType(err.type)) {
    return { ok: false, hop, failureType: err.type, reason: err.message };
  }
  throw err;
}

export function createSecurityActivities(cfg: { registry?: ModelRegistry; trust?: ModelTrust } = {}) {
  const need = () => {
    if (!cfg.registry || !cfg.trust)
      throw ApplicationFailure.nonRetryable(
        'this worker has no model registry or signing trust configured',
        FailureType.ModelSignatureMissing,
      );
    return { registry: cfg.registry, trust: cfg.trust };
  };

  return {
    async verifyApprovalSignature(input: {
      fields: Omit<ApprovalSignedFields, 'issuedAt'>;
      signature: ApprovalSignature;
      publicKey: string;
    }): Promise<boolean> {
      return verifyApprovalSignature(input.fields, input.signature, input.publicKey);
    },

    async verifyStartSignature(input: {
      fields: Omit<StartSignedFields, 'issuedAt'>;
      signature: ApprovalSignature;
      publicKey: string;
    }): Promise<boolean> {
      return verifyStartSignature(input.fields, input.signature, input.publicKey);
    },

    async signModelVersion(input: { model: string; version: string }): Promise<IntegrityResult> {
      const hop: IntegrityHop = 'registration';
      const { registry, trust } = need();
      const signer = trust.signer;
      if (!signer)
        throw ApplicationFailure.nonRetryable(
          'this worker cannot sign models',
          FailureType.ModelSignatureMissing,
        );
      const version = await mapped(() => registry.getVersion(input.model, input.version));
      try {
        if (version.tags[SecurityTags.signature]) {
          const again = await mapped(() => fetchVerifiedModel(registry, version, { trust }));
          return {
            ok: true,
            hop,
            signer: again.signature?.signer,
            rootDigest: again.signature?.rootDigest,
            files: again.files.length,
          };
        }
        const { files, manifest } = await mapped(() => fetchVerifiedModel(registry, version));
        const prefix = `${manifest.artifactPath}/`;
        const relative = files.map((f) => ({
          path: f.path.startsWith(prefix) ? f.path.slice(prefix.length) : f.path,
          content: f.content,
        }));
        const scan = scanModelFiles(relative);
        if (!scan.ok) {
          const reason = `model ${input.model} v${input.version} holds unsafe content: ${scan.findings
            .map((f) => `${f.path}: ${f.reason}`)
            .join('; ')}`;
          await mapped(() =>
            registry.setVersionTag(input.model, input.version, SecurityTags.formatScan, 'refused'),
          );
          return { ok: false, hop, failureType: FailureType.UnsafeModelFormat, reason };
        }
        const runId = version.runId;
        if (!runId)
          throw ApplicationFailure.nonRetryable(
            `v${input.version} has no run`,
            FailureType.ArtifactIntegrity,
          );
        const subject = signatureSubject(input.model, input.version);
        const { bundle, statement } = await signModelFiles(relative, signer, { name: subject });
        const identity = await signer.identity();
        await mapped(() =>
          registry.uploadArtifact(runId, MODEL_SIGNATURE_ARTIFACT, `${JSON.stringify(bundle)}\n`),
        );
        await mapped(() =>
          registry.setVersionTag(input.model, input.version, SecurityTags.formatScan, 'passed'),
        );
        await mapped(() =>
          registry.setVersionTag(input.model, input.version, SecurityTags.signer, identity.id),
        );
        // The path tag last: a version names a signature only once the bundle is in place.
        await mapped(() =>
          registry.setVersionTag(
            input.model,
            input.version,
            SecurityTags.signature,
            MODEL_SIGNATURE_ARTIFACT,
          ),
        );
        return {
          ok: true,
          hop,
          signer: identity.id,
          rootDigest: statement.subject[0]?.digest.sha256,
          files: files.length,
        };
      } catch (err) {
        return refusalOf(err, hop);
      }
    },

    /**
     * Signs the evidence statement of an approved version: its model digest (re-verified now) bound
     * to the model card as it stands (a frozen copy is stored beside it), the gate verdict, the
     * approvals and the dataset hashes. Returns the bundle's sha256 for the audit log.
     */
    async signEvidence(input: {
      model: string;
      version: string;
      gate: EvidencePredicate['gate'];
      approvals: EvidencePredicate['approvals'];
      datasets: EvidencePredicate['datasets'];
    }): Promise<{ evidenceSha256: string; rootDigest: string; cardSha256: string }> {
      const { registry, trust } = need();
      const signer = trust.signer;
      if (!signer)
        throw ApplicationFailure.nonRetryable(
          'this worker cannot sign evidence',
          FailureType.ModelSignatureMissing,
        );
      const version = await mapped(() => registry.getVersion(input.model, input.version));
      const verified = await mapped(() => fetchVerifiedModel(registry, version, { trust }));
      const runId = version.runId;
      const sig = verified.signature;
      if (!runId || !sig)
        throw ApplicationFailure.nonRetryable(
          `${input.model} v${input.version} has no verified model signature to bind evidence to`,
          FailureType.ModelSignatureMissing,
        );
      const cardPath = `${MODEL_CARD_DIR}/model_card.json`;
      const card = await mapped(() => registry.downloadArtifact(runId, cardPath));
      await mapped(() => registry.uploadArtifact(runId, BOUND_CARD_ARTIFACT, card));
      const statement = buildEvidenceStatement({
        subject: sig.subject,
        rootDigest: sig.rootDigest,
        predicate: {
          workflowId: owningWorkflow(Context.current().info).workflowId,
          modelCard: { path: cardPath, sha256: cardDigest(card) },
          gate: input.gate,
          approvals: input.approvals,
          datasets: input.datasets,
          modelSignature: { path: MODEL_SIGNATURE_ARTIFACT, signer: sig.signer },
        },
      });
      const bundle = `${JSON.stringify(await signer.signStatement(statement))}\n`;
      await mapped(() => registry.uploadArtifact(runId, EVIDENCE_ARTIFACT, bundle));
      await mapped(() =>
        registry.setVersionTag(input.model, input.version, SecurityTags.evidence, EVIDENCE_ARTIFACT),
      );
      return { evidenceSha256: cardDigest(bundle), rootDigest: sig.rootDigest, cardSha256: cardDigest(card) };
    },

    async verifyModelVersion(input: {
      model: string;
      version: string;
      hop: IntegrityHop;
    }): Promise<IntegrityResult> {
      const { registry, trust } = need();
      try {
        const version = await mapped(() => registry.getVersion(input.model, input.version));
        const verified = await mapped(() => fetchVerifiedModel(registry, version, { trust }));
        return {
          ok: true,
          hop: input.hop,
          signer: verified.signature?.signer,
          rootDigest: verified.signature?.rootDigest,
          files: verified.files.length,
        };
      } catch (err) {
        return refusalOf(err, input.hop);
      }
    },
  };
}
