/**
 * A scripted job runner: the job-runner port's fake for the workflow-logic layer. It stands in for
 * the reference trainer (a Python process that needs MLflow) so that a pipeline's branches run in
 * seconds; the real runner and trainer are exercised by the mlflow, workflows and e2e layers.
 *
 * Each image names an outcome: `fixture/good` and `fixture/weak` "train" by copying the committed
 * ONNX fixture (test/fixtures/models/<name>) into the job's registry run, as the trainer would log
 * it; `fixture/exit-3` fails with an exit code; `fixture/deadline` ends past its deadline;
 * `fixture/lost-once` vanishes on its first submission and then succeeds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { JobReason } from '../../src/core/contracts/jobs';
import { MODEL_ARTIFACT_PATH } from '../../src/core/contracts/registry';
import {
  JobOwnershipError,
  JobSpecError,
  OWNER_LABEL,
  type JobRunner,
  type JobSpec,
  type JobStatus,
} from '../../src/jobs/types';
import type { ModelRegistry } from '../../src/ports/model-registry';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'models');

export class ScriptedJobRunner implements JobRunner {
  readonly kind = 'scripted';
  readonly submissions: string[] = [];
  private readonly jobs = new Map<string, JobStatus>();
  private readonly lostOnce = new Set<string>();

  constructor(private readonly registry: ModelRegistry) {}

  async submit(spec: JobSpec): Promise<{ created: boolean; status: JobStatus }> {
    const existing = this.jobs.get(spec.name);
    if (existing) {
      if (existing.labels[OWNER_LABEL] !== spec.labels[OWNER_LABEL]) {
        throw new JobOwnershipError(`job ${spec.name} belongs to another owner`);
      }
      return { created: false, status: existing };
    }
    this.submissions.push(spec.name);
    const base = { name: spec.name, labels: spec.labels, startedAt: new Date().toISOString() };
    const outcome = spec.image.replace(/:.*$/, '');
    let status: JobStatus;
    switch (outcome) {
      case 'fixture/good':
      case 'fixture/weak':
        await this.logModel(spec, outcome.slice('fixture/'.length));
        status = { ...base, phase: 'succeeded', reason: JobReason.exitCode, exitCode: 0 };
        break;
      case 'fixture/exit-3':
        status = {
          ...base,
          phase: 'failed',
          reason: JobReason.exitCode,
          exitCode: 3,
          message: 'exited with code 3',
        };
        break;
      case 'fixture/deadline':
        status = {
          ...base,
          phase: 'failed',
          reason: JobReason.deadlineExceeded,
          message: 'killed at its deadline',
        };
        break;
      case 'fixture/lost-once':
        if (!this.lostOnce.has(spec.name)) {
          this.lostOnce.add(spec.name);
          status = { ...base, phase: 'failed', reason: JobReason.lost, message: 'node went away' };
        } else {
          await this.logModel(spec, 'good');
          status = { ...base, phase: 'succeeded', reason: JobReason.exitCode, exitCode: 0 };
        }
        break;
      default:
        throw new JobSpecError(`scripted runner has no outcome for image ${spec.image}`);
    }
    this.jobs.set(spec.name, status);
    return { created: true, status };
  }

  private async logModel(spec: JobSpec, fixture: string): Promise<void> {
    const runId = spec.env.MLFLOW_RUN_ID;
    if (!runId) throw new JobSpecError('job spec has no MLFLOW_RUN_ID');
    for (const file of ['model.onnx', 'input_schema.json', 'feature_spec.json']) {
      const content = readFileSync(path.join(FIXTURES, fixture, file));
      await this.registry.uploadArtifact(runId, `${MODEL_ARTIFACT_PATH}/${file}`, content);
    }
    await this.registry.logMetrics(runId, [{ key: 'val_pr_auc', value: fixture === 'good' ? 0.6 : 0.03 }]);
  }

  async status(name: string): Promise<JobStatus | undefined> {
    return this.jobs.get(name);
  }

  async logs(name: string, tailLines: number): Promise<string> {
    const s = this.jobs.get(name);
    return s ? [`scripted job ${name}`, s.message ?? s.phase].slice(-tailLines).join('\n') : '';
  }

  async delete(name: string): Promise<void> {
    this.jobs.delete(name);
  }
}
