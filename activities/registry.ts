/**
 * Model registry activities: register a trained model as a version with its digest manifest and
 * provenance tags, move aliases, promote, record outcomes, and write model cards. All idempotent: a
 * retry finds the version already created for the run, an alias already pointing at the version is
 * left alone, and a tag already set is not written again.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../src/core/contracts/failures';
import type { ModelCard } from '../src/core/contracts/model-card';
import { Aliases, MODEL_ARTIFACT_PATH, RunTags, VersionTags } from '../src/core/contracts/registry';
import type { RegisteredVersion, Trigger } from '../src/core/contracts/retraining';
import { renderModelCard } from '../src/eval/model-card';
import type { ModelRegistry, RegistryVersion } from '../src/ports/model-registry';
import { downloadTree, fetchVerifiedModel } from '../src/registry/verified-model';
import { buildManifest, manifestArtifactPath } from '../src/security/digests';
import type { ModelTrust } from '../src/security/model-trust';
import {
  REFERENCE_PROFILE_ARTIFACT,
  REFERENCE_PROFILE_TAG,
  type ReferenceProfiler,
} from '../src/drift/reference-profile';
import { mapped, owningWorkflow } from './errors';

/** How long registration waits for the registry to mark a new version READY. */
export const VERSION_READY_TIMEOUT_MS = 60_000;
/** How often registration polls a version that is still being registered. */
const VERSION_READY_POLL_MS = 500;
/** Model card artifacts inside the version's run; the version tag `mlops.model_card` points here. */
export const MODEL_CARD_DIR = 'model_card';

export { VersionTags };

export function createRegistryActivities(cfg: {
  registry: ModelRegistry;
  trust?: ModelTrust;
  /** Profiles the training snapshot at registration (drift monitoring's reference); none: no profile. */
  profiler?: ReferenceProfiler;
}) {
  const { registry } = cfg;

  /** Sets each tag that differs from what the version already carries. */
  async function tagVersion(model: string, current: RegistryVersion, tags: Record<string, string>) {
    for (const [k, v] of Object.entries(tags)) {
      if (current.tags[k] !== v) await mapped(() => registry.setVersionTag(model, current.version, k, v));
    }
  }

  return {
    async registerModelVersion(input: {
      model: string;
      runId: string;
      datasetSha256: string;
      datasetRows?: number;
      trigger: Trigger;
      featureSpec: string;
      codeVersion?: string;
    }): Promise<RegisteredVersion> {
      const { workflowId } = owningWorkflow(Context.current().info);
      const files = await mapped(() => downloadTree(registry, input.runId, MODEL_ARTIFACT_PATH));
      if (files.length === 0) {
        throw ApplicationFailure.nonRetryable(
          `run ${input.runId} has no artifacts under ${MODEL_ARTIFACT_PATH}/: nothing to register`,
          FailureType.ArtifactIntegrity,
        );
      }
      const { json, sha256 } = buildManifest(MODEL_ARTIFACT_PATH, files);
      const manifestPath = manifestArtifactPath(MODEL_ARTIFACT_PATH);
      await mapped(() => registry.uploadArtifact(input.runId, manifestPath, json));
      await mapped(() => registry.ensureModel(input.model));

      const tags: Record<string, string> = {
        [VersionTags.datasetSha256]: input.datasetSha256,
        [VersionTags.workflowId]: workflowId,
        [VersionTags.trigger]: input.trigger.kind,
        [VersionTags.codeVersion]: input.codeVersion ?? 'unknown',
        [VersionTags.manifestSha256]: sha256,
        [VersionTags.manifestPath]: manifestPath,
        [VersionTags.featureSpec]: input.featureSpec,
      };
      if (input.datasetRows !== undefined) tags[VersionTags.datasetRows] = String(input.datasetRows);

      // One version per run: a retry (or a response lost on the way back) finds the earlier one.
      const existing = await mapped(() => registry.findVersionByRun(input.model, input.runId));
      let version: RegistryVersion;
      if (!existing) {
        version = await mapped(() =>
          registry.createVersion({
            model: input.model,
            source: `runs:/${input.runId}/${MODEL_ARTIFACT_PATH}`,
            runId: input.runId,
            tags,
            description: `Trained by ${workflowId} on dataset ${input.datasetSha256.slice(0, 12)}`,
          }),
        );
      } else {
        version = existing;
        await tagVersion(input.model, version, tags);
      }
      const deadline = Date.now() + VERSION_READY_TIMEOUT_MS;
      while (version.status !== 'READY') {
        if (version.status === 'FAILED_REGISTRATION') {
          throw ApplicationFailure.nonRetryable(
            `the registry failed to register ${input.model} v${version.version}`,
            FailureType.ArtifactIntegrity,
          );
        }
        if (Date.now() > deadline) {
          throw ApplicationFailure.retryable(
            `${input.model} v${version.version} is still ${version.status}`,
            FailureType.RegistryUnavailable,
          );
        }
        await new Promise((r) => setTimeout(r, VERSION_READY_POLL_MS));
        const pending: string = version.version;
        version = await mapped(() => registry.getVersion(input.model, pending));
      }
      const registered = version;
      // The drift reference of the version: its training snapshot profiled, an artifact of its run.
      if (cfg.profiler) {
        const built = await cfg.profiler.build({ datasetSha256: input.datasetSha256, files });
        if (built.ok) {
          await mapped(() => registry.uploadArtifact(input.runId, REFERENCE_PROFILE_ARTIFACT, built.json));
          await tagVersion(input.model, registered, {
            [REFERENCE_PROFILE_TAG]: `runs:/${input.runId}/${REFERENCE_PROFILE_ARTIFACT}`,
          });
        } else
          console.warn(
            `registration: ${input.model} v${registered.version} has no reference profile: ${built.reason}`,
          );
      }
      await mapped(() => registry.setRunTag(input.runId, RunTags.modelVersion, registered.version));
      return {
        name: input.model,
        version: registered.version,
        runId: input.runId,
        source: registered.source,
        manifestSha256: sha256,
        files: files.length,
      };
    },

    /** Points `alias` at `version`; no-op when it already does. Returns the version it pointed at before. */
    async setModelAlias(input: {
      model: string;
      alias: string;
      version: string;
    }): Promise<{ moved: boolean; previous?: string }> {
      const current = await mapped(() => registry.findVersionByAlias(input.model, input.alias));
      if (current?.version === input.version) return { moved: false, previous: current.version };
      await mapped(() => registry.setAlias(input.model, input.alias, input.version));
      return { moved: true, previous: current?.version };
    },

    /**
     * Promotes a verified version: `previous-champion` takes the old champion, `champion` the new
     * version, and tags record who approved and why. A retry after success changes nothing: once
     * `champion` points at the version, neither alias moves again.
     */
    async promoteModel(input: {
      model: string;
      version: string;
      approvers: string[];
      verdict: string;
    }): Promise<{ moved: boolean; previousChampion?: string }> {
      const { workflowId } = owningWorkflow(Context.current().info);
      const target = await mapped(() => registry.getVersion(input.model, input.version));
      await mapped(() => fetchVerifiedModel(registry, target, { trust: cfg.trust }));
      const current = await mapped(() => registry.findVersionByAlias(input.model, Aliases.champion));
      let moved = false;
      let previousChampion: string | undefined;
      if (current?.version === input.version) {
        previousChampion = (
          await mapped(() => registry.findVersionByAlias(input.model, Aliases.previousChampion))
        )?.version;
      } else {
        if (current) {
          await mapped(() => registry.setAlias(input.model, Aliases.previousChampion, current.version));
          await tagVersion(input.model, current, { [VersionTags.supersededBy]: input.version });
          previousChampion = current.version;
        }
        await mapped(() => registry.setAlias(input.model, Aliases.champion, input.version));
        moved = true;
      }
      await tagVersion(input.model, target, {
        [VersionTags.outcome]: 'promoted',
        [VersionTags.approvedBy]: input.approvers.join(','),
        [VersionTags.gateVerdict]: input.verdict,
        [VersionTags.promotedBy]: workflowId,
      });
      return { moved, previousChampion };
    },

    /**
     * Undoes a promotion after kpiGuard found `version` failing: `champion` goes back to
     * `previous-champion`'s version and `version` is tagged `rolled-back` with the reason. A retry
     * moves nothing twice: once `champion` no longer points at `version`, no alias moves. Without a
     * previous champion the alias stays (the registry cannot unset it). Returns where `champion` points.
     */
    async restoreChampion(input: {
      model: string;
      version: string;
      reason: string;
    }): Promise<{ moved: boolean; champion?: string }> {
      const current = await mapped(() => registry.findVersionByAlias(input.model, Aliases.champion));
      let moved = false;
      let champion = current?.version;
      if (current?.version === input.version) {
        const previous = await mapped(() =>
          registry.findVersionByAlias(input.model, Aliases.previousChampion),
        );
        if (previous && previous.version !== input.version) {
          await mapped(() => registry.setAlias(input.model, Aliases.champion, previous.version));
          moved = true;
          champion = previous.version;
        }
      }
      const bad = await mapped(() => registry.getVersion(input.model, input.version));
      await tagVersion(input.model, bad, {
        [VersionTags.outcome]: 'rolled-back',
        [VersionTags.outcomeReason]: input.reason,
      });
      return { moved, champion };
    },

    /** Records on the version why it was not promoted (gate, rejection, expiry). Aliases stay as they are. */
    async markVersionOutcome(input: {
      model: string;
      version: string;
      outcome: string;
      reason: string;
    }): Promise<void> {
      await mapped(() =>
        registry.setVersionTag(input.model, input.version, VersionTags.outcome, input.outcome),
      );
      await mapped(() =>
        registry.setVersionTag(input.model, input.version, VersionTags.outcomeReason, input.reason),
      );
    },

    /** Writes the model card (Markdown and JSON) to the version's run and links it from a version tag. */
    async writeModelCard(card: ModelCard): Promise<{ markdownPath: string; jsonPath: string }> {
      const mv = await mapped(() => registry.getVersion(card.model, card.version));
      const runId = mv.runId;
      if (!runId) {
        throw ApplicationFailure.nonRetryable(
          `${card.model} v${card.version} has no run to attach a card to`,
          FailureType.ArtifactIntegrity,
        );
      }
      const markdownPath = `${MODEL_CARD_DIR}/model_card.md`;
      const jsonPath = `${MODEL_CARD_DIR}/model_card.json`;
      await mapped(() => registry.uploadArtifact(runId, markdownPath, renderModelCard(card)));
      await mapped(() => registry.uploadArtifact(runId, jsonPath, `${JSON.stringify(card, null, 2)}\n`));
      await tagVersion(card.model, mv, { [VersionTags.modelCard]: `runs:/${runId}/${markdownPath}` });
      return { markdownPath, jsonPath };
    },
  };
}
