/**
 * The model-registry port: what the control plane needs of a registry (MLflow in production and
 * in the local stack; an in-memory fake for workflow-logic tests). Domain-level operations, so the
 * adapters own their query language (MLflow filter strings live only in src/registry/mlflow.ts)
 * and activities never see a concrete client.
 *
 * Errors: adapters throw the errors of their backend; `activities/errors.ts` maps MLflow's onto the
 * failure taxonomy. The fake throws MLflow's error classes too, so both paths map the same way.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export type VersionStatus = 'PENDING_REGISTRATION' | 'FAILED_REGISTRATION' | 'READY';

export interface RegistryRun {
  runId: string;
  experimentId: string;
  status: RunStatus;
  /** Latest value of each metric. */
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export interface RegistryVersion {
  name: string;
  version: string;
  runId?: string;
  source: string;
  status: VersionStatus;
  tags: Record<string, string>;
  aliases: string[];
}

export interface ArtifactEntry {
  /** Relative to the run's artifact root. */
  path: string;
  isDir: boolean;
  fileSize?: number;
}

export interface ModelRegistry {
  /** `mlflow`, `memory`, ... */
  readonly kind: string;
  /** Where training jobs report their run (MLflow tracking URI). */
  readonly trackingUri: string;

  // Training runs
  ensureExperiment(name: string): Promise<string>;
  /** The run a training job of this name reports to, if an earlier attempt created one. */
  findRunByJobName(experimentId: string, jobName: string): Promise<RegistryRun | undefined>;
  createRun(input: {
    experimentId: string;
    runName: string;
    tags: Record<string, string>;
  }): Promise<RegistryRun>;
  getRun(runId: string): Promise<RegistryRun>;
  endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void>;
  setRunTag(runId: string, key: string, value: string): Promise<void>;
  logMetrics(runId: string, metrics: ReadonlyArray<{ key: string; value: number }>): Promise<void>;

  // Artifacts of a run
  listArtifacts(runId: string, path: string): Promise<ArtifactEntry[]>;
  /** Every file (not folder) below `path`, recursively. */
  listArtifactsRecursive(runId: string, path: string): Promise<ArtifactEntry[]>;
  downloadArtifact(runId: string, path: string): Promise<Buffer>;
  uploadArtifact(runId: string, path: string, content: Buffer | string): Promise<void>;

  // Registered models, versions and aliases
  ensureModel(name: string): Promise<void>;
  /** The version registered from `runId`, if any (one version per run). */
  findVersionByRun(model: string, runId: string): Promise<RegistryVersion | undefined>;
  createVersion(input: {
    model: string;
    runId: string;
    source: string;
    tags: Record<string, string>;
    description: string;
  }): Promise<RegistryVersion>;
  getVersion(model: string, version: string): Promise<RegistryVersion>;
  setVersionTag(model: string, version: string, key: string, value: string): Promise<void>;
  findVersionByAlias(model: string, alias: string): Promise<RegistryVersion | undefined>;
  setAlias(model: string, alias: string, version: string): Promise<void>;
}
