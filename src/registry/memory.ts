/**
 * In-memory model registry: a fake of the registry port for workflow-logic tests, where a stage's
 * branches must run in seconds without an MLflow server. It keeps the semantics the activities rely
 * on (one version per run, aliases unique per model, versions READY at once, not-found errors of
 * the same class as MLflow's) so the activities run unchanged on it. Not for production use.
 */
import { MlflowNotFoundError } from '../mlflow';
import type { ArtifactEntry, ModelRegistry, RegistryRun, RegistryVersion } from '../ports/model-registry';

interface StoredRun extends RegistryRun {
  artifacts: Map<string, Buffer>;
}

export class MemoryModelRegistry implements ModelRegistry {
  readonly kind = 'memory';
  readonly trackingUri = 'memory://registry';
  private readonly experiments = new Map<string, string>();
  private readonly runs = new Map<string, StoredRun>();
  private readonly models = new Map<string, { versions: RegistryVersion[]; aliases: Map<string, string> }>();
  private nextRun = 1;

  private notFound(what: string): never {
    throw new MlflowNotFoundError(`${what} does not exist (memory registry)`, { endpoint: 'memory' });
  }

  private run(runId: string): StoredRun {
    return this.runs.get(runId) ?? this.notFound(`run ${runId}`);
  }

  private model(name: string) {
    return this.models.get(name) ?? this.notFound(`registered model ${name}`);
  }

  private withAliases(name: string, v: RegistryVersion): RegistryVersion {
    const aliases = [...this.model(name).aliases].filter(([, ver]) => ver === v.version).map(([a]) => a);
    return { ...v, tags: { ...v.tags }, aliases };
  }

  async ensureExperiment(name: string): Promise<string> {
    let id = this.experiments.get(name);
    if (!id) {
      id = String(this.experiments.size + 1);
      this.experiments.set(name, id);
    }
    return id;
  }

  async findRunByJobName(experimentId: string, jobName: string): Promise<RegistryRun | undefined> {
    for (const r of this.runs.values()) {
      if (r.experimentId === experimentId && r.tags['mlops.job_name'] === jobName) return this.copy(r);
    }
    return undefined;
  }

  private copy(r: StoredRun): RegistryRun {
    return {
      runId: r.runId,
      experimentId: r.experimentId,
      status: r.status,
      metrics: { ...r.metrics },
      tags: { ...r.tags },
    };
  }

  async createRun(input: { experimentId: string; runName: string; tags: Record<string, string> }) {
    const runId = `run${String(this.nextRun++).padStart(4, '0')}`;
    const run: StoredRun = {
      runId,
      experimentId: input.experimentId,
      status: 'RUNNING',
      metrics: {},
      tags: { ...input.tags, 'mlflow.runName': input.runName },
      artifacts: new Map(),
    };
    this.runs.set(runId, run);
    return this.copy(run);
  }

  async getRun(runId: string): Promise<RegistryRun> {
    return this.copy(this.run(runId));
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    this.run(runId).status = status;
  }

  async setRunTag(runId: string, key: string, value: string): Promise<void> {
    this.run(runId).tags[key] = value;
  }

  async logMetrics(runId: string, metrics: ReadonlyArray<{ key: string; value: number }>): Promise<void> {
    const run = this.run(runId);
    for (const m of metrics) run.metrics[m.key] = m.value;
  }

  async listArtifacts(runId: string, path: string): Promise<ArtifactEntry[]> {
    const prefix = path === '' ? '' : `${path.replace(/\/+$/, '')}/`;
    const seen = new Map<string, ArtifactEntry>();
    for (const [p, content] of this.run(runId).artifacts) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      const slash = rest.indexOf('/');
      const entry =
        slash < 0
          ? { path: p, isDir: false, fileSize: content.length }
          : { path: prefix + rest.slice(0, slash), isDir: true };
      seen.set(entry.path, entry);
    }
    return [...seen.values()].sort((a, b) => a.path.localeCompare(b.path));
  }

  async listArtifactsRecursive(runId: string, path: string): Promise<ArtifactEntry[]> {
    const prefix = path === '' ? '' : `${path.replace(/\/+$/, '')}/`;
    return [...this.run(runId).artifacts]
      .filter(([p]) => p.startsWith(prefix))
      .map(([p, content]) => ({ path: p, isDir: false, fileSize: content.length }))
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  async downloadArtifact(runId: string, path: string): Promise<Buffer> {
    const content = this.run(runId).artifacts.get(path);
    return content ? Buffer.from(content) : this.notFound(`artifact ${path} of run ${runId}`);
  }

  async uploadArtifact(runId: string, path: string, content: Buffer | string): Promise<void> {
    this.run(runId).artifacts.set(path, Buffer.from(content));
  }

  async ensureModel(name: string): Promise<void> {
    if (!this.models.has(name)) this.models.set(name, { versions: [], aliases: new Map() });
  }

  async findVersionByRun(model: string, runId: string): Promise<RegistryVersion | undefined> {
    const m = this.models.get(model);
    const v = m?.versions.find((x) => x.runId === runId);
    return v ? this.withAliases(model, v) : undefined;
  }

  async createVersion(input: {
    model: string;
    runId: string;
    source: string;
    tags: Record<string, string>;
    description: string;
  }): Promise<RegistryVersion> {
    const m = this.model(input.model);
    this.run(input.runId);
    const v: RegistryVersion = {
      name: input.model,
      version: String(m.versions.length + 1),
      runId: input.runId,
      source: input.source,
      status: 'READY',
      tags: { ...input.tags },
      aliases: [],
    };
    m.versions.push(v);
    return this.withAliases(input.model, v);
  }

  private storedVersion(model: string, version: string): RegistryVersion {
    return (
      this.model(model).versions.find((v) => v.version === version) ??
      this.notFound(`version ${version} of ${model}`)
    );
  }

  async getVersion(model: string, version: string): Promise<RegistryVersion> {
    return this.withAliases(model, this.storedVersion(model, version));
  }

  async setVersionTag(model: string, version: string, key: string, value: string): Promise<void> {
    this.storedVersion(model, version).tags[key] = value;
  }

  async findVersionByAlias(model: string, alias: string): Promise<RegistryVersion | undefined> {
    const version = this.models.get(model)?.aliases.get(alias);
    return version ? this.getVersion(model, version) : undefined;
  }

  async setAlias(model: string, alias: string, version: string): Promise<void> {
    this.storedVersion(model, version);
    this.model(model).aliases.set(alias, version);
  }

  /** Test helper: how many versions `model` has. */
  versionCount(model: string): number {
    return this.models.get(model)?.versions.length ?? 0;
  }
}
