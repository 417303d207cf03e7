/**
 * Fetching a model version's files with their integrity proven: the manifest's own digest must
 * match the one pinned on the version, and every file must match the manifest. Used by evaluation,
 * promotion and the demo; the gateway verifies the very bytes it loads the same way. Given a
 * {@link ModelTrust}, the version's model signature is verified over those same bytes too.
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
import { scanModelFiles } from '../security/format-scan';
import { ModelSignatureCode, ModelSignatureError, verifyModelFiles } from '../security/model-signing';
import { SecurityTags, signatureFailure, signatureSubject, type ModelTrust } from '../security/model-trust';

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
  options: { trust?: ModelTrust } = {},
): Promise<{ manifest: DigestManifest; files: ModelFile[]; signature?: VerifiedSignature }> {
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
  const prefix = `${manifest.artifactPath}/`;
  const scan = scanModelFiles(
    files.map((f) => ({
      path: f.path.startsWith(prefix) ? f.path.slice(prefix.length) : f.path,
      content: f.content,
    })),
  );
  if (!scan.ok) {
    throw ApplicationFailure.nonRetryable(
      `model ${version.name} v${version.version} holds unsafe content: ${scan.findings.map((f) => `${f.path}: ${f.reason}`).join('; ')}`,
      FailureType.UnsafeModelFormat,
    );
  }
  if (!options.trust) return { manifest, files };
  const signature = await verifyVersionSignature(
    registry,
    version,
    files,
    manifest.artifactPath,
    options.trust,
  );
  return signature ? { manifest, files, signature } : { manifest, files };
}

/** A verified model signature: who signed, and the digest over all file digests (the model's identity). */
export interface VerifiedSignature {
  signer: string;
  rootDigest: string;
  subject: string;
}

/**
 * Verifies the version's model signature over the very bytes in `files` (paths under
 * `artifactPath`): envelope by a trusted key, subject `<model>/v<version>`, every file's digest.
 * Unsigned: refused under `require`, passed (undefined) under `if-signed`. Throws the named
 * non-retryable failure of the refusal (src/security/model-trust.ts).
 */
export async function verifyVersionSignature(
  registry: ModelRegistry,
  version: RegistryVersion,
  files: readonly ModelFile[],
  artifactPath: string,
  trust: ModelTrust,
): Promise<VerifiedSignature | undefined> {
  const label = `model ${version.name} v${version.version}`;
  try {
    const sigPath = version.tags[SecurityTags.signature];
    if (!sigPath || !version.runId) {
      if (trust.mode === 'if-signed') return undefined;
      throw new ModelSignatureError(
        ModelSignatureCode.missing,
        'has no model signature (unsigned versions are refused)',
      );
    }
    const bundle = await registry.downloadArtifact(version.runId, sigPath).catch((err: unknown) => {
      throw new ModelSignatureError(
        ModelSignatureCode.missing,
        `signature ${sigPath} cannot be read: ${(err as Error).message}`,
      );
    });
    const prefix = `${artifactPath}/`;
    const relative = files.map((f) => ({
      path: f.path.startsWith(prefix) ? f.path.slice(prefix.length) : f.path,
      content: f.content,
    }));
    const subject = signatureSubject(version.name, version.version);
    const ok = await verifyModelFiles(relative, bundle, trust.verifier, { expectedName: subject });
    return { signer: ok.signer.id, rootDigest: ok.rootDigest, subject };
  } catch (err) {
    if (err instanceof ModelSignatureError) throw signatureFailure(err, label);
    throw err;
  }
}
