/**
 * Digest manifests for model artifacts: the sha256 of every file under a model's artifact folder,
 * stored beside it in the run and pinned by its own sha256 on the registered model version. A
 * deploy (or an evaluation) recomputes the digests of what it downloaded and refuses on any
 * difference: a changed, added or removed file.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const ManifestSchema = z
  .object({
    algorithm: z.literal('sha256'),
    artifactPath: z.string(),
    files: z.array(
      z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number() }),
    ),
  })
  .strict();
export type DigestManifest = z.infer<typeof ManifestSchema>;

/** Where the manifest of a model artifact folder is stored inside its MLflow run. */
export const manifestArtifactPath = (artifactPath: string): string =>
  `manifests/${artifactPath}.digests.json`;

export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Builds a manifest with files in path order, serialised deterministically (same files, same bytes). */
export function buildManifest(
  artifactPath: string,
  files: Array<{ path: string; content: Buffer }>,
): { manifest: DigestManifest; json: string; sha256: string } {
  const manifest: DigestManifest = {
    algorithm: 'sha256',
    artifactPath,
    files: files
      .map((f) => ({ path: f.path, sha256: sha256Hex(f.content), bytes: f.content.length }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  const json = `${JSON.stringify(manifest, null, 2)}\n`;
  return { manifest, json, sha256: sha256Hex(json) };
}

export type ManifestCheck = { ok: true } | { ok: false; problems: string[] };

/** Compares downloaded files against a manifest; every difference is listed. */
export function checkManifest(
  manifest: DigestManifest,
  files: Array<{ path: string; content: Buffer }>,
): ManifestCheck {
  const problems: string[] = [];
  const expected = new Map(manifest.files.map((f) => [f.path, f]));
  const seen = new Set<string>();
  for (const f of files) {
    seen.add(f.path);
    const want = expected.get(f.path);
    if (!want) {
      problems.push(`${f.path}: not in the manifest`);
      continue;
    }
    const got = sha256Hex(f.content);
    if (got !== want.sha256) problems.push(`${f.path}: sha256 ${got} does not match manifest ${want.sha256}`);
  }
  for (const f of manifest.files) if (!seen.has(f.path)) problems.push(`${f.path}: missing`);
  return problems.length === 0 ? { ok: true } : { ok: false, problems };
}
