/**
 * Verified model loading and the served model slots.
 *
 * Loading goes through the model-registry port and {@link fetchVerifiedModel}
 * (src/registry/verified-model.ts), the one place that verifies a version's artifacts: the version is
 * resolved by number or alias, its digest manifest checked against the sha256 pinned on the version,
 * and every file of the artifact folder downloaded once into memory and checked against the manifest.
 * onnxruntime is handed those very bytes: nothing is read again after the check. An integrity failure is
 * a {@link ModelIntegrityError} and the version is not served.
 *
 * Slots: a loaded version is reference-counted. A request acquires the slot it is routed to and
 * releases it when done; a swapped-out version keeps serving the requests it already had and its
 * session is released only after the last of them, so a hot swap drops nothing.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as ort from 'onnxruntime-node';
import { FeatureSpecSchema, type FeatureSpec } from '../core/contracts/feature-spec';
import { formatZodError } from '../core/contracts/errors';
import { FailureType } from '../core/contracts/failures';
import type { ModelRef, ReferenceProfile } from '../core/contracts/gateway';
import { ReferenceProfileSchema } from '../core/contracts/gateway';
import { MODEL_ARTIFACT_PATH, VersionTags } from '../core/contracts/registry';
import { parseInputSchema, type ModelInputSchema } from '../eval/score';
import type { ModelRegistry, RegistryVersion } from '../ports/model-registry';
import { fetchVerifiedModel, type ModelFile } from '../registry/verified-model';
import type { ModelTrust } from '../security/model-trust';
import { predictOne, type InferenceBatcher } from './batching';
import type { FeatureValues } from './validation';

/** Folder of a version's model files inside its run (the job contract's `MLOPS_ARTIFACT_PATH`). */
export const MODEL_FOLDER = MODEL_ARTIFACT_PATH;
/** Version tag pinning the manifest's sha256 (set by the registration step). */
export const MANIFEST_SHA256_TAG = VersionTags.manifestSha256;
/** Optional artifact with per-feature training statistics for OOD z-scores. */
export const REFERENCE_PROFILE_FILE = 'reference_profile.json';
/** Intra-op threads per session: one, since the gateway runs a process per core already. */
export const ORT_INTRA_OP_THREADS = 1;

export class ModelIntegrityError extends Error {
  override readonly name = 'ModelIntegrityError';
}
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}

export interface LoadedModel {
  name: string;
  version: string;
  manifestSha256: string;
  session: ort.InferenceSession;
  /** The verified model bytes the session was created from (read by src/explain for the graph). */
  onnx: Uint8Array;
  schema: ModelInputSchema;
  spec: FeatureSpec;
  profile: ReferenceProfile;
  /** Set by {@link enableBatching} when batched calls agree with single-row ones for this model. */
  batcher?: InferenceBatcher;
}

async function resolveVersion(
  registry: ModelRegistry,
  name: string,
  ref: ModelRef,
): Promise<RegistryVersion> {
  const what = 'version' in ref ? `v${ref.version}` : `alias ${ref.alias}`;
  let found: RegistryVersion | undefined;
  try {
    found =
      'version' in ref
        ? await registry.getVersion(name, ref.version)
        : await registry.findVersionByAlias(name, ref.alias);
  } catch (err) {
    throw new ModelLoadError(`model ${name} ${what}: ${(err as Error).message}`);
  }
  if (!found) throw new ModelLoadError(`model ${name} ${what}: no such version`);
  return found;
}

/** Profile from the spec alone: ranges and vocabularies, no mean/std (so no z-scores). */
export function profileFromSpec(spec: FeatureSpec): ReferenceProfile {
  const profile: ReferenceProfile = { numeric: [], categorical: [] };
  for (const f of spec.features) {
    if (f.kind === 'numeric') profile.numeric.push({ name: f.name, min: f.min, max: f.max });
    else profile.categorical.push({ name: f.name, categories: [...f.categories] });
  }
  return profile;
}

function fileOf(files: ModelFile[], name: string): Buffer | undefined {
  return files.find((f) => f.path === `${MODEL_FOLDER}/${name}`)?.content;
}

function parseJson<T>(bytes: Buffer, what: string, parse: (v: unknown) => T): T {
  try {
    return parse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    const msg =
      err && typeof err === 'object' && 'issues' in err
        ? formatZodError(err as Parameters<typeof formatZodError>[0])
        : (err as Error).message;
    throw new ModelLoadError(`${what}: ${msg}`);
  }
}

/**
 * Resolves, verifies (through {@link fetchVerifiedModel}) and opens one model version.
 * `fallbackSpec` is used when the artifact folder carries no `feature_spec.json`; a profile given
 * here wins over the artifact's.
 */
export async function loadVerifiedModel(
  registry: ModelRegistry,
  name: string,
  ref: ModelRef,
  opts: { fallbackSpec?: FeatureSpec; profile?: ReferenceProfile; trust?: ModelTrust } = {},
): Promise<LoadedModel> {
  const mv = await resolveVersion(registry, name, ref);
  const label = `model ${name} v${mv.version}`;
  let files: ModelFile[];
  try {
    ({ files } = await fetchVerifiedModel(registry, mv, opts.trust ? { trust: opts.trust } : {}));
  } catch (err) {
    // fetchVerifiedModel's refusals are its non-retryable failures (a digest mismatch, and whatever
    // else it comes to verify); anything else (an unreachable registry, say) is a load error.
    if (err instanceof ApplicationFailure && (err.nonRetryable || err.type === FailureType.ArtifactIntegrity))
      throw new ModelIntegrityError(err.message);
    throw new ModelLoadError(`${label}: ${(err as Error).message}`);
  }
  const pinned = mv.tags[MANIFEST_SHA256_TAG] as string; // fetchVerifiedModel refuses a version without it

  // From here on only the verified buffers are used.
  const onnx = fileOf(files, 'model.onnx');
  const schemaBytes = fileOf(files, 'input_schema.json');
  if (!onnx || !schemaBytes)
    throw new ModelLoadError(`${label}: lacks model.onnx or input_schema.json (job contract)`);
  let schema: ModelInputSchema;
  try {
    schema = parseInputSchema(schemaBytes);
  } catch (err) {
    throw new ModelLoadError(`${label}: ${(err as Error).message}`);
  }
  const specBytes = fileOf(files, 'feature_spec.json');
  const spec = specBytes
    ? parseJson(specBytes, `${label}: feature_spec.json`, (v) => FeatureSpecSchema.parse(v))
    : opts.fallbackSpec;
  if (!spec) throw new ModelLoadError(`${label}: no feature_spec.json and no fallback spec`);
  for (const input of schema.inputs) {
    if (!spec.features.some((f) => f.name === input.name)) {
      throw new ModelLoadError(`${label}: model input "${input.name}" is not a feature of spec ${spec.name}`);
    }
  }
  const profileBytes = fileOf(files, REFERENCE_PROFILE_FILE);
  const profile =
    opts.profile ??
    (profileBytes
      ? parseJson(profileBytes, `${label}: ${REFERENCE_PROFILE_FILE}`, (v) => ReferenceProfileSchema.parse(v))
      : profileFromSpec(spec));
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnx, {
      intraOpNumThreads: ORT_INTRA_OP_THREADS,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new ModelLoadError(`${label}: onnxruntime refused the model: ${(err as Error).message}`);
  }
  if (!session.outputNames.includes(schema.probabilityOutput)) {
    await session.release();
    throw new ModelLoadError(
      `${label}: no output "${schema.probabilityOutput}" (has ${session.outputNames.join(', ')})`,
    );
  }
  return { name, version: mv.version, manifestSha256: pinned, session, onnx, schema, spec, profile };
}

/**
 * A prediction of one row: through the model's {@link InferenceBatcher} when batching is on for it
 * (rows asked for in the same turn share one call), else one call of its own.
 */
export function predict(model: LoadedModel, features: FeatureValues): Promise<number> {
  return model.batcher ? model.batcher.predict(features) : predictOne(model, features);
}

/** A served version with a reference count of the requests using it. */
export class ModelSlot {
  private refs = 0;
  private retired = false;
  private released?: Promise<void>;

  constructor(readonly model: LoadedModel) {}

  acquire(): this {
    this.refs++;
    return this;
  }

  release(): void {
    this.refs--;
    if (this.retired && this.refs === 0) this.free();
  }

  /** No new requests will come; the session is freed once the in-flight ones are done. */
  retire(): Promise<void> {
    this.retired = true;
    if (this.refs === 0) this.free();
    return this.released ?? Promise.resolve();
  }

  get inFlight(): number {
    return this.refs;
  }

  private free(): void {
    this.released ??= this.model.session.release().catch(() => undefined);
  }
}
