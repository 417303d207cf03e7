/**
 * The model-registry port on MLflow: the only place that writes MLflow filter strings. Thin: the
 * typed REST client (src/mlflow) does the HTTP, validation and error classes.
 */
import { RunTags } from '../core/contracts/registry';
import type { MlflowClient, ModelVersion, Run } from '../mlflow';
import type { ModelRegistry, RegistryRun, RegistryVersion } from '../ports/model-registry';

/** Single-quoted MLflow filter literal: a quote inside is doubled away so a value cannot end the string. */
function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function toRun(run: Run): RegistryRun {
  return {
    runId: run.info.runId,
    experimentId: run.info.experimentId,
    status: run.info.status,
    metrics: { ...run.data.metrics },
    tags: { ...run.data.tags },
  };
}

function toVersion(v: ModelVersion): RegistryVersion {
  return {
    name: v.name,
    version: v.version,
    runId: v.runId,
    source: v.source,
    status: v.status,
    tags: { ...v.tags },
    aliases: [...v.aliases],
  };
}

export class MlflowModelRegistry implements ModelRegistry {
  readonly kind = 'mlflow';

  constructor(private readonly mlflow: MlflowClient) {}

  get trackingUri(): string {
    return this.mlflow.trackingUri;
  }

  ensureExperiment(name: string): Promise<string> {
    return this.mlflow.getOrCreateExperiment(name);
  }

  async findRunByJobName(experimentId: string, jobName: string): Promise<RegistryRun | undefined> {
    const found = await this.mlflow.searchRuns({
      experimentIds: [experimentId],
      filter: `tags.\`${RunTags.jobName}\` = ${literal(jobName)}`,
    });
    const run = found.runs[0];
    return run ? toRun(run) : undefined;
  }

  async createRun(input: { experimentId: string; runName: string; tags: Record<string, string> }) {
    return toRun(await this.mlflow.createRun(input));
  }

  async getRun(runId: string): Promise<RegistryRun> {
    return toRun(await this.mlflow.getRun(runId));
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    await this.mlflow.updateRun({ runId, status, endTime: Date.now() });
  }

  setRunTag(runId: string, key: string, value: string): Promise<void> {
    return this.mlflow.setTag(runId, key, value);
  }

  async logMetrics(runId: string, metrics: ReadonlyArray<{ key: string; value: number }>): Promise<void> {
    const timestamp = Date.now();
    await this.mlflow.logBatch({ runId, metrics: metrics.map((m) => ({ ...m, timestamp, step: 0 })) });
  }

  listArtifacts(runId: string, path: string) {
    return this.mlflow.listArtifacts(runId, path);
  }

  listArtifactsRecursive(runId: string, path: string) {
    return this.mlflow.listArtifactsRecursive(runId, path);
  }

  downloadArtifact(runId: string, path: string): Promise<Buffer> {
    return this.mlflow.downloadArtifact(runId, path);
  }

  uploadArtifact(runId: string, path: string, content: Buffer | string): Promise<void> {
    return this.mlflow.uploadArtifact(runId, path, content);
  }

  async ensureModel(name: string): Promise<void> {
    await this.mlflow.ensureRegisteredModel(name);
  }

  async findVersionByRun(model: string, runId: string): Promise<RegistryVersion | undefined> {
    const found = await this.mlflow.searchModelVersions({
      filter: `name=${literal(model)} and run_id=${literal(runId)}`,
    });
    const v = found.modelVersions[0];
    return v ? toVersion(v) : undefined;
  }

  async createVersion(input: {
    model: string;
    runId: string;
    source: string;
    tags: Record<string, string>;
    description: string;
  }): Promise<RegistryVersion> {
    return toVersion(
      await this.mlflow.createModelVersion({
        name: input.model,
        source: input.source,
        runId: input.runId,
        tags: input.tags,
        description: input.description,
      }),
    );
  }

  async getVersion(model: string, version: string): Promise<RegistryVersion> {
    return toVersion(await this.mlflow.getModelVersion(model, version));
  }

  setVersionTag(model: string, version: string, key: string, value: string): Promise<void> {
    return this.mlflow.setModelVersionTag(model, version, key, value);
  }

  async findVersionByAlias(model: string, alias: string): Promise<RegistryVersion | undefined> {
    const v = await this.mlflow.findModelVersionByAlias(model, alias);
    return v ? toVersion(v) : undefined;
  }

  setAlias(model: string, alias: string, version: string): Promise<void> {
    return this.mlflow.setAlias(model, alias, version);
  }
}
