/**
 * Model registry activities (MLflow): register a trained model as a version with its digest
 * manifest and provenance tags, and move aliases. Both are idempotent: a retry finds the version
 * already created for the run, and an alias already pointing at the version is left alone.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  Aliases,
  MODEL_ARTIFACT_PATH,
  type RegisteredVersion,
  type Trigger,
} from '../src/core/contracts/retraining';
import type { MlflowClient, ModelVersion } from '../src/mlflow';
import {
  buildManifest,
  checkManifest,
  manifestArtifactPath,
  ManifestSchema,
  sha256Hex,
  type DigestManifest,
} from '../src/security/digests';
import { FailureTypes, mapped, owningWorkflow } from './errors';

/** How long registration waits for MLflow to mark a new version READY. */
export const VERSION_READY_TIMEOUT_MS = 60_000;

export const VersionTags = {
  datasetSha256: 'mlops.dataset_sha256',
  datasetRows: 'mlops.dataset_rows',
  workflowId: 'mlops.workflow_id',
  trigger: 'mlops.trigger',
  codeVersion: 'mlops.code_version',
  manifestSha256: 'mlops.manifest_sha256',
  manifestPath: 'mlops.manifest_path',
  featureSpec: 'mlops.feature_spec',
} as const;

async function downloadTree(mlflow: MlflowClient, runId: string, root: string) {
  const files = await mlflow.listArtifactsRecursive(runId, root);
  const out: Array<{ path: string; content: Buffer }> = [];
  for (const f of files) out.push({ path: f.path, content: await mlflow.downloadArtifact(runId, f.path) });
  return out;
}

/**
 * Downloads a model version's files and its manifest, and checks both the manifest's own digest
 * (pinned on the version) and every file against it. Returns the verified files.
 */
export async function fetchVerifiedModel(
  mlflow: MlflowClient,
  version: ModelVersion,
): Promise<{ manifest: DigestManifest; files: Array<{ path: string; content: Buffer }> }> {
  const runId = version.runId;
  const pinned = version.tags[VersionTags.manifestSha256];
  if (!runId || !pinned) {
    throw ApplicationFailure.nonRetryable(
      `model ${version.name} v${version.version} has no run or no ${VersionTags.manifestSha256} tag: refusing to use an unverifiable artifact`,
      FailureTypes.ArtifactIntegrity,
    );
  }
  const manifestPath = version.tags[VersionTags.manifestPath] ?? manifestArtifactPath(MODEL_ARTIFACT_PATH);
  const manifestBytes = await mapped(() => mlflow.downloadArtifact(runId, manifestPath));
  if (sha256Hex(manifestBytes) !== pinned) {
    throw ApplicationFailure.nonRetryable(
      `model ${version.name} v${version.version}: manifest digest ${sha256Hex(manifestBytes)} does not match the pinned ${pinned}`,
      FailureTypes.ArtifactIntegrity,
    );
  }
  const manifest = ManifestSchema.parse(JSON.parse(manifestBytes.toString('utf8')));
  const files = await mapped(() => downloadTree(mlflow, runId, manifest.artifactPath));
  const check = checkManifest(manifest, files);
  if (!check.ok) {
    throw ApplicationFailure.nonRetryable(
      `model ${version.name} v${version.version} failed its digest check: ${check.problems.join('; ')}`,
      FailureTypes.ArtifactIntegrity,
    );
  }
  return { manifest, files };
}

export function createRegistryActivities(cfg: { mlflow: MlflowClient }) {
  const { mlflow } = cfg;
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
      const files = await mapped(() => downloadTree(mlflow, input.runId, MODEL_ARTIFACT_PATH));
      if (files.length === 0) {
        throw ApplicationFailure.nonRetryable(
          `run ${input.runId} has no artifacts under ${MODEL_ARTIFACT_PATH}/: nothing to register`,
          FailureTypes.ArtifactIntegrity,
        );
      }
      const { json, sha256 } = buildManifest(MODEL_ARTIFACT_PATH, files);
      const manifestPath = manifestArtifactPath(MODEL_ARTIFACT_PATH);
      await mapped(() => mlflow.uploadArtifact(input.runId, manifestPath, json));
      await mapped(() => mlflow.ensureRegisteredModel(input.model));

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
      const existing = await mapped(() =>
        mlflow.searchModelVersions({ filter: `name='${input.model}' and run_id='${input.runId}'` }),
      );
      let version = existing.modelVersions[0];
      if (!version) {
        version = await mapped(() =>
          mlflow.createModelVersion({
            name: input.model,
            source: `runs:/${input.runId}/${MODEL_ARTIFACT_PATH}`,
            runId: input.runId,
            tags,
            description: `Trained by ${workflowId} on dataset ${input.datasetSha256.slice(0, 12)}`,
          }),
        );
      } else {
        for (const [k, v] of Object.entries(tags)) {
          if (version.tags[k] !== v)
            await mapped(() => mlflow.setModelVersionTag(input.model, version!.version, k, v));
        }
      }
      const deadline = Date.now() + VERSION_READY_TIMEOUT_MS;
      while (version.status !== 'READY') {
        if (version.status === 'FAILED_REGISTRATION') {
          throw ApplicationFailure.nonRetryable(
            `MLflow failed to register ${input.model} v${version.version}`,
            FailureTypes.ArtifactIntegrity,
          );
        }
        if (Date.now() > deadline) {
          throw ApplicationFailure.retryable(`${input.model} v${version.version} is still ${version.status}`);
        }
        await new Promise((r) => setTimeout(r, 500));
        version = await mapped(() => mlflow.getModelVersion(input.model, version!.version));
      }
      await mapped(() => mlflow.setTag(input.runId, 'mlops.model_version', version!.version));
      return {
        name: input.model,
        version: version.version,
        runId: input.runId,
        source: version.source,
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
      const current = await mapped(() => mlflow.findModelVersionByAlias(input.model, input.alias));
      if (current?.version === input.version) return { moved: false, previous: current.version };
      await mapped(() => mlflow.setAlias(input.model, input.alias, input.version));
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
      const target = await mapped(() => mlflow.getModelVersion(input.model, input.version));
      await fetchVerifiedModel(mlflow, target);
      const current = await mapped(() => mlflow.findModelVersionByAlias(input.model, Aliases.champion));
      let moved = false;
      let previousChampion: string | undefined;
      if (current?.version === input.version) {
        previousChampion = (
          await mapped(() => mlflow.findModelVersionByAlias(input.model, Aliases.previousChampion))
        )?.version;
      } else {
        if (current) {
          await mapped(() => mlflow.setAlias(input.model, Aliases.previousChampion, current.version));
          await mapped(() =>
            mlflow.setModelVersionTag(input.model, current.version, 'mlops.superseded_by', input.version),
          );
          previousChampion = current.version;
        }
        await mapped(() => mlflow.setAlias(input.model, Aliases.champion, input.version));
        moved = true;
      }
      const tags: Record<string, string> = {
        'mlops.outcome': 'promoted',
        'mlops.approved_by': input.approvers.join(','),
        'mlops.gate_verdict': input.verdict,
        'mlops.promoted_by': workflowId,
      };
      for (const [k, v] of Object.entries(tags)) {
        if (target.tags[k] !== v)
          await mapped(() => mlflow.setModelVersionTag(input.model, input.version, k, v));
      }
      return { moved, previousChampion };
    },

    /** Records on the version why it was not promoted (gate, rejection, expiry). Aliases stay as they are. */
    async markVersionOutcome(input: {
      model: string;
      version: string;
      outcome: string;
      reason: string;
    }): Promise<void> {
      await mapped(() =>
        mlflow.setModelVersionTag(input.model, input.version, 'mlops.outcome', input.outcome),
      );
      await mapped(() =>
        mlflow.setModelVersionTag(input.model, input.version, 'mlops.outcome_reason', input.reason),
      );
    },
  };
}
