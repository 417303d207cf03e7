/**
 * Fetching a model version's files with their integrity proven: the manifest's own digest must
 * match the one pinned on the version, and every file must match the manifest. Used by evaluation,
 * promotion and the demo; the gateway verifies the very bytes it loads the same way.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../core/contracts/failures';
import { MODEL_ARTIFACT_PATH, VersionTags } from '../core/contracts/registry';
import type { ModelRegistry, RegistryVersion } from '../ports/model-registry';
import {
  checkManifest,
  manifestArtifactPath,
  ManifestSchema,
  sha256Hex,
  type DigestManifest,
} from '../security/digests';

export interface ModelFile {
  path: string;
  content: Buffer;
}

/** Every file of a run below `root`. */
export async function downloadTree(
  registry: ModelRegistry,
  runId: string,
  root: string,
): Promise<ModelFile[]> {
  const files = await registry.listArtifactsRecursive(runId, root);
  const out: ModelFile[] = [];
  for (const f of files) out.push({ path: f.path, content: await registry.downloadArtifact(runId, f.path) });
  return out;
}

/**
 * Downloads a version's files and its manifest, and checks both the manifest's digest (pinned on
 * the version) and every file against it. Returns the verified files; throws a non-retryable
 * `ArtifactIntegrity` failure otherwise.
 */
export async function fetchVerifiedModel(
  registry: ModelRegistry,
  version: RegistryVersion,
): Promise<{ manifest: DigestManifest; files: ModelFile[] }> {
  const refuse = (why: string): never => {
    throw ApplicationFailure.nonRetryable(
      `model ${version.name} v${version.version} ${why}`,
      FailureType.ArtifactIntegrity,
    );
  };
  const runId = version.runId;
  const pinned = version.tags[VersionTags.manifestSha256];
  if (!runId || !pinned) {
    return refuse(
      `has no run or no ${VersionTags.manifestSha256} tag: refusing to use an unverifiable artifact`,
    );
  }
  const manifestPath = version.tags[VersionTags.manifestPath] ?? manifestArtifactPath(MODEL_ARTIFACT_PATH);
  const manifestBytes = await registry.downloadArtifact(runId, manifestPath);
  const actual = sha256Hex(manifestBytes);
  if (actual !== pinned) return refuse(`manifest digest ${actual} does not match the pinned ${pinned}`);
  const manifest = ManifestSchema.parse(JSON.parse(manifestBytes.toString('utf8')));
  const files = await downloadTree(registry, runId, manifest.artifactPath);
  const check = checkManifest(manifest, files);
  if (!check.ok) return refuse(`failed its digest check: ${check.problems.join('; ')}`);
  return { manifest, files };
}
