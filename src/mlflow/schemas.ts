/**
 * zod schemas of the MLflow REST responses the client reads, and the types derived from them.
 *
 * Rules:
 * - Each schema parses MLflow's snake_case wire format and outputs camelCase; the exported types are
 *   `z.output` of these schemas, so the types cannot drift from what is validated.
 * - Key/value lists (tags, params) become `Record<string, string>`; a run's latest metrics become both a
 *   `Record<string, number>` and the full {@link Metric} list.
 * - Lenient where MLflow is loose, strict where callers depend on a value: protobuf int64 fields may arrive as
 *   numbers or numeric strings, empty lists and empty strings may be omitted, metric values may be the strings
 *   `NaN`, `Infinity` and `-Infinity`. Unknown fields are dropped so newer servers stay compatible.
 * - Verified against MLflow server 3.17.2.
 */
import { z } from 'zod';

/** protobuf int64 (timestamps, sizes): JSON number or numeric string, output as a number. */
const int64 = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^-?\d+$/)
    .transform((s) => Number(s)),
]);

/** A metric value as MLflow writes it: a number, or `NaN` / `Infinity` / `-Infinity` as strings. */
export const metricValueSchema = z.union([
  z.number(),
  z
    .enum(['NaN', 'Infinity', '-Infinity'])
    .transform((s) => (s === 'NaN' ? NaN : s === 'Infinity' ? Infinity : -Infinity)),
]);

const keyValueSchema = z.object({ key: z.string(), value: z.string().default('') });

/** A `[{key, value}]` list (omitted when empty) as a record; later duplicates win. */
const keyValueRecord = z
  .array(keyValueSchema)
  .optional()
  .transform((items): Record<string, string> =>
    Object.fromEntries((items ?? []).map((t) => [t.key, t.value])),
  );

/** Lifecycle of an experiment or run. */
export const lifecycleStageSchema = z.enum(['active', 'deleted']);
export type LifecycleStage = z.output<typeof lifecycleStageSchema>;

export const experimentSchema = z
  .object({
    experiment_id: z.string(),
    name: z.string(),
    artifact_location: z.string().default(''),
    lifecycle_stage: lifecycleStageSchema,
    creation_time: int64.optional(),
    last_update_time: int64.optional(),
    tags: keyValueRecord,
  })
  .transform((e) => ({
    experimentId: e.experiment_id,
    name: e.name,
    artifactLocation: e.artifact_location,
    lifecycleStage: e.lifecycle_stage,
    creationTime: e.creation_time,
    lastUpdateTime: e.last_update_time,
    tags: e.tags,
  }));
export type Experiment = z.output<typeof experimentSchema>;

/** Status of a run; FINISHED, FAILED and KILLED are terminal. */
export const runStatusSchema = z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']);
export type RunStatus = z.output<typeof runStatusSchema>;

/** One metric measurement. */
export const metricSchema = z.object({
  key: z.string(),
  value: metricValueSchema,
  timestamp: int64,
  step: int64.default(0),
});
export type Metric = z.output<typeof metricSchema>;

export const runInfoSchema = z
  .object({
    run_id: z.string(),
    experiment_id: z.string(),
    run_name: z.string().default(''),
    user_id: z.string().default(''),
    status: runStatusSchema,
    start_time: int64.optional(),
    end_time: int64.optional(),
    artifact_uri: z.string().default(''),
    lifecycle_stage: lifecycleStageSchema,
  })
  .transform((r) => ({
    runId: r.run_id,
    experimentId: r.experiment_id,
    runName: r.run_name,
    userId: r.user_id,
    status: r.status,
    startTime: r.start_time,
    endTime: r.end_time,
    artifactUri: r.artifact_uri,
    lifecycleStage: r.lifecycle_stage,
  }));
export type RunInfo = z.output<typeof runInfoSchema>;

export const runDataSchema = z
  .object({
    metrics: z.array(metricSchema).optional(),
    params: keyValueRecord,
    tags: keyValueRecord,
  })
  .default({ params: {}, tags: {} })
  .transform((d) => {
    const latestMetrics = d.metrics ?? [];
    const metrics: Record<string, number> = Object.fromEntries(latestMetrics.map((m) => [m.key, m.value]));
    return { metrics, latestMetrics, params: d.params, tags: d.tags };
  });
export type RunData = z.output<typeof runDataSchema>;

export const runSchema = z.object({ info: runInfoSchema, data: runDataSchema });
export type Run = z.output<typeof runSchema>;

/** An artifact entry; `path` is relative to the run's artifact root. */
export const fileInfoSchema = z
  .object({ path: z.string(), is_dir: z.boolean().default(false), file_size: int64.optional() })
  .transform((f) => ({ path: f.path, isDir: f.is_dir, fileSize: f.file_size }));
export type FileInfo = z.output<typeof fileInfoSchema>;

/** Registration status of a model version; only READY versions can be served. */
export const modelVersionStatusSchema = z.enum(['PENDING_REGISTRATION', 'FAILED_REGISTRATION', 'READY']);
export type ModelVersionStatus = z.output<typeof modelVersionStatusSchema>;

export const modelVersionSchema = z
  .object({
    name: z.string(),
    version: z.string().regex(/^\d+$/, 'expected a decimal version number'),
    creation_timestamp: int64.optional(),
    last_updated_timestamp: int64.optional(),
    description: z.string().default(''),
    source: z.string(),
    run_id: z.string().optional(),
    run_link: z.string().optional(),
    model_id: z.string().optional(),
    status: modelVersionStatusSchema,
    status_message: z.string().optional(),
    tags: keyValueRecord,
    aliases: z.array(z.string()).default([]),
  })
  .transform((v) => ({
    name: v.name,
    version: v.version,
    creationTimestamp: v.creation_timestamp,
    lastUpdatedTimestamp: v.last_updated_timestamp,
    description: v.description,
    source: v.source,
    // MLflow writes "" for "no run"; expose that as absent.
    runId: v.run_id === '' ? undefined : v.run_id,
    runLink: v.run_link === '' ? undefined : v.run_link,
    modelId: v.model_id === '' ? undefined : v.model_id,
    status: v.status,
    statusMessage: v.status_message === '' ? undefined : v.status_message,
    tags: v.tags,
    aliases: v.aliases,
  }));
export type ModelVersion = z.output<typeof modelVersionSchema>;

export const registeredModelAliasSchema = z.object({ alias: z.string(), version: z.string() });
export type RegisteredModelAlias = z.output<typeof registeredModelAliasSchema>;

export const registeredModelSchema = z
  .object({
    name: z.string(),
    creation_timestamp: int64.optional(),
    last_updated_timestamp: int64.optional(),
    description: z.string().default(''),
    tags: keyValueRecord,
    aliases: z.array(registeredModelAliasSchema).default([]),
  })
  .transform((m) => ({
    name: m.name,
    creationTimestamp: m.creation_timestamp,
    lastUpdatedTimestamp: m.last_updated_timestamp,
    description: m.description,
    tags: m.tags,
    aliases: m.aliases,
  }));
export type RegisteredModel = z.output<typeof registeredModelSchema>;

// ---- Response envelopes, one per endpoint family -------------------------------------------------------

/** Body of endpoints that answer `{}` on success. Anything object-shaped is accepted. */
export const emptyResponseSchema = z.object({});

export const getExperimentResponseSchema = z.object({ experiment: experimentSchema });
export const createExperimentResponseSchema = z.object({ experiment_id: z.string().min(1) });
export const runResponseSchema = z.object({ run: runSchema });
export const updateRunResponseSchema = z.object({ run_info: runInfoSchema });
export const searchRunsResponseSchema = z.object({
  runs: z.array(runSchema).default([]),
  next_page_token: z.string().optional(),
});
export const listArtifactsResponseSchema = z.object({
  root_uri: z.string().optional(),
  files: z.array(fileInfoSchema).default([]),
  next_page_token: z.string().optional(),
});
export const registeredModelResponseSchema = z.object({ registered_model: registeredModelSchema });
export const modelVersionResponseSchema = z.object({ model_version: modelVersionSchema });
export const searchModelVersionsResponseSchema = z.object({
  model_versions: z.array(modelVersionSchema).default([]),
  next_page_token: z.string().optional(),
});
export const downloadUriResponseSchema = z.object({ artifact_uri: z.string().min(1) });
/** Listing from the artifact proxy: `path` is the bare entry name, relative to the listed directory. */
export const proxyListResponseSchema = z.object({ files: z.array(fileInfoSchema).default([]) });

/** The part of an MLflow 3 logged model the client reads (to resolve `runs:/` model sources). */
export const loggedModelInfoSchema = z
  .object({
    model_id: z.string().min(1),
    name: z.string(),
    experiment_id: z.string(),
    source_run_id: z.string().optional(),
    artifact_uri: z.string().default(''),
  })
  .transform((m) => ({
    modelId: m.model_id,
    name: m.name,
    experimentId: m.experiment_id,
    sourceRunId: m.source_run_id === '' ? undefined : m.source_run_id,
    artifactUri: m.artifact_uri,
  }));
export type LoggedModelInfo = z.output<typeof loggedModelInfoSchema>;
export const loggedModelSearchResponseSchema = z.object({
  models: z
    .array(z.object({ info: loggedModelInfoSchema }))
    .default([])
    .transform((models) => models.map((m) => m.info)),
  next_page_token: z.string().optional(),
});
