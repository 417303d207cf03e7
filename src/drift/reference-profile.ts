/**
 * The champion's reference profile as an MLflow artifact of its version.
 *
 * - At registration (`registerModelVersion`), {@link createReferenceProfiler} profiles the version's
 *   training snapshot with the data plane's engine (`profileDatasetWithExtras`: decile bins with exact
 *   counts, category frequencies, summary statistics; `src/data/drift-reference.ts`) under the feature
 *   spec the trainer wrote beside the model (`model/feature_spec.json`), and the registry activity
 *   uploads it to the version's run as {@link REFERENCE_PROFILE_ARTIFACT}, linked by the version tag
 *   {@link REFERENCE_PROFILE_TAG}.
 * - The monitor reads it back by alias ({@link loadProfileByAlias}): features from the artifact, and the
 *   prediction reference and the holdout calibration (for CBPE) from the version's own evaluation
 *   (`evaluation/per_example.csv`: its out-of-sample scores and labels on the frozen holdout), when
 *   the version was evaluated. Scores of the training snapshot would be in-sample, so they are not used.
 *
 * The artifact's reservoirs are the engine's hash-chosen sample of the snapshot's rows
 * ({@link DEFAULT_RESERVOIR_SIZE} values per numeric feature, the same rows in every column). Node-only.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { FeatureSpecSchema, type DatasetProfile, type FeatureSpec } from '../core/contracts/feature-spec';
import { calibrateOnHoldout } from '../core/stats/cbpe';
import {
  DEFAULT_RESERVOIR_SIZE,
  PROFILE_FORMAT,
  profileNumeric,
  ReferenceProfileSchema,
  type CategoricalProfile,
  type NumericProfile,
  type ReferenceProfile,
} from '../core/stats/drift-profile';
import type { DriftReference } from '../data/drift-reference';
import { profileDatasetWithExtras } from '../data/profile';
import type { ModelRegistry, RegistryVersion } from '../ports/model-registry';

/** Artifact path (in the version's run) of the reference profile. */
export const REFERENCE_PROFILE_ARTIFACT = 'drift/reference_profile.json';
/** Version tag pointing at the profile: `runs:/<run>/drift/reference_profile.json`. */
export const REFERENCE_PROFILE_TAG = 'mlops.reference_profile';
/** The feature spec the trainer writes beside the model (job contract). */
export const FEATURE_SPEC_FILE = 'feature_spec.json';
/** The version's evaluation on the frozen holdout (written by evaluateCandidate). */
export const PER_EXAMPLE_ARTIFACT = 'evaluation/per_example.csv';

export class ReferenceProfileError extends Error {}

/**
 * A reference profile in the monitor's format from the engine's drift reference and the validation
 * profile of the same read (summary statistics). Bins are right-closed in both; a last edge equal to
 * the column's maximum leaves an empty bin above it, which is dropped.
 */
export function referenceProfileFromEngine(
  drift: DriftReference,
  dataset: DatasetProfile,
  source: ReferenceProfile['source'] = {},
): ReferenceProfile {
  const columns = new Map(dataset.columns.map((c) => [c.name, c]));
  const numeric = drift.numeric.map((n): NumericProfile => {
    const col = columns.get(n.column);
    const stats = col?.kind === 'numeric' ? col : undefined;
    let edges = [...n.edges];
    let counts = [...n.counts];
    const max = stats?.max ?? null;
    if (
      edges.length > 0 &&
      max !== null &&
      edges[edges.length - 1] === max &&
      counts[counts.length - 1] === 0
    ) {
      edges = edges.slice(0, -1);
      counts = counts.slice(0, -1);
    }
    return {
      name: n.column,
      edges,
      counts,
      nulls: n.missing,
      rows: drift.rows,
      mean: stats?.mean ?? 0,
      std: stats?.std ?? 0,
      min: stats?.min ?? 0,
      max: max ?? 0,
      reservoir: n.sample ?? [],
    };
  });
  const categorical = drift.categorical.map((c): CategoricalProfile => ({
    name: c.column,
    categories: c.categories.map((x) => x.value),
    counts: c.categories.map((x) => x.count),
    other: c.unknown.count,
    nulls: c.missing.count,
    rows: c.rows,
  }));
  return ReferenceProfileSchema.parse({
    format: PROFILE_FORMAT,
    rows: drift.rows,
    source,
    numeric,
    categorical,
  });
}

/** The snapshot of the store named by `sha256` (`<sha256>.csv` or `<sha256>.parquet`), if present. */
export async function findSnapshot(snapshotDir: string, sha256: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  const names = await readdir(snapshotDir).catch(() => [] as string[]);
  const hit = names.find((n) => n === `${sha256}.csv` || n === `${sha256}.parquet`);
  return hit ? path.join(snapshotDir, hit) : undefined;
}

export type ReferenceProfileOutcome =
  { ok: true; profile: ReferenceProfile; json: string } | { ok: false; reason: string };

/** What the registry activity asks for at registration: the version's training snapshot and model files. */
export interface ReferenceProfiler {
  build(input: {
    datasetSha256: string;
    /** The model folder's files (paths relative to it or to the run). */
    files: ReadonlyArray<{ path: string; content: Buffer }>;
  }): Promise<ReferenceProfileOutcome>;
}

function specOf(files: ReadonlyArray<{ path: string; content: Buffer }>): FeatureSpec | string {
  const file = files.find((f) => path.posix.basename(f.path) === FEATURE_SPEC_FILE);
  if (!file) return `the model has no ${FEATURE_SPEC_FILE}`;
  try {
    const r = FeatureSpecSchema.safeParse(JSON.parse(file.content.toString('utf8')));
    if (!r.success)
      return `${FEATURE_SPEC_FILE}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`;
    return r.data;
  } catch (err) {
    return `${FEATURE_SPEC_FILE} is not JSON: ${(err as Error).message}`;
  }
}

/** Profiles training snapshots of the worker's snapshot store (one engine read of the snapshot). */
export function createReferenceProfiler(cfg: { snapshotDir: string }): ReferenceProfiler {
  return {
    async build({ datasetSha256, files }) {
      const spec = specOf(files);
      if (typeof spec === 'string') return { ok: false, reason: spec };
      const snapshot = await findSnapshot(cfg.snapshotDir, datasetSha256);
      if (!snapshot)
        return { ok: false, reason: `training snapshot ${datasetSha256} is not in ${cfg.snapshotDir}` };
      // Registration never fails for the monitor's sake: a snapshot the engine cannot profile is reported.
      try {
        const { profile, drift } = await profileDatasetWithExtras(snapshot, spec, {
          sha256: datasetSha256,
          driftSample: DEFAULT_RESERVOIR_SIZE,
        });
        const ref = referenceProfileFromEngine(drift, profile, { sha256: datasetSha256 });
        return { ok: true, profile: ref, json: `${JSON.stringify(ref)}\n` };
      } catch (err) {
        return { ok: false, reason: `profiling ${snapshot} failed: ${(err as Error).message}` };
      }
    },
  };
}

const PerExampleRow = z.object({
  label: z.coerce.number().int().min(0).max(1),
  challenger_score: z.coerce.number().refine(Number.isFinite, 'must be a finite number'),
});

/**
 * Adds the prediction reference and the holdout calibration from a version's evaluation rows (its own
 * scores, column `challenger_score`, and the labels): out-of-sample, as CBPE's calibration check needs.
 */
export function withEvaluation(profile: ReferenceProfile, perExampleCsv: Buffer | string): ReferenceProfile {
  const rows = z
    .array(PerExampleRow)
    .parse(parse(perExampleCsv, { columns: true, skip_empty_lines: true }) as unknown[]);
  if (rows.length === 0) return profile;
  const scores = Float64Array.from(rows, (r) => r.challenger_score);
  const labels = rows.map((r) => r.label);
  const cal = calibrateOnHoldout(scores, labels);
  return {
    ...profile,
    prediction: profileNumeric('prediction', scores),
    calibration: { map: cal.map, check: cal.check },
  };
}

/**
 * The reference profile of the version `alias` points at, from the registry: the artifact written at
 * registration, completed by the version's evaluation when it has one. Throws
 * {@link ReferenceProfileError} naming what is missing.
 */
export async function loadProfileByAlias(
  registry: ModelRegistry,
  model: string,
  alias: string,
): Promise<{ version: RegistryVersion; profile: ReferenceProfile }> {
  const version = await registry.findVersionByAlias(model, alias);
  if (!version) throw new ReferenceProfileError(`${model} has no version aliased ${alias}`);
  const runId = version.runId;
  if (!runId) throw new ReferenceProfileError(`${model} v${version.version} has no run`);
  // The tag says whether the artifact was written; a download error past that is the registry's.
  if (!version.tags[REFERENCE_PROFILE_TAG])
    throw new ReferenceProfileError(
      `${model}@${alias} (v${version.version}) has no reference profile (tag ${REFERENCE_PROFILE_TAG}): it was registered without one`,
    );
  const raw = await registry.downloadArtifact(runId, REFERENCE_PROFILE_ARTIFACT);
  let profile = ReferenceProfileSchema.parse(JSON.parse(raw.toString('utf8')));
  const dir = path.posix.dirname(PER_EXAMPLE_ARTIFACT);
  const listed = await registry.listArtifacts(runId, dir);
  if (
    listed.some((e) => !e.isDir && path.posix.basename(e.path) === path.posix.basename(PER_EXAMPLE_ARTIFACT))
  )
    profile = withEvaluation(profile, await registry.downloadArtifact(runId, PER_EXAMPLE_ARTIFACT));
  return { version, profile };
}
