/**
 * `npm run demo`: the main job on embedded defaults. Provisions and starts the local stack and a
 * worker, generates a synthetic fraud dataset, runs `retrainingPipeline` through the Temporal
 * client exactly as `temporal workflow start` would, and prints where the result lives.
 *
 * Options: --rows N (dataset size), --seed N, --keep (leave the stack running until Ctrl-C).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fetchVerifiedModel } from '../../activities/registry';
import { createWorker } from '../../workers/worker';
import { loadWorkerConfig } from '../config';
import {
  retrainWorkflowId,
  WORKFLOW_TYPES,
  type PipelineResult,
  type RetrainingInput,
} from '../contracts/retraining';
import { MlflowClient } from '../mlflow';
import { STATE_DIR } from '../stack/paths';
import { startStack } from '../stack/launcher';
import { generateFraudDataset, writeCsv } from '../workload/generator';

/** Demo dataset size: big enough for a meaningful model, small enough to train in seconds. */
export const DEMO_ROWS = 6000;
export const DEMO_SEED = 7;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: String(DEMO_ROWS) },
      seed: { type: 'string', default: String(DEMO_SEED) },
      keep: { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const seed = Number(values.seed);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`--rows must be a positive integer, got ${values.rows}`);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);

  const stateDir = path.join(STATE_DIR, 'local');
  console.log('== starting the local stack (first run builds tools; later runs reuse them)');
  const stack = await startStack({ stateDir, persistent: true, ui: true });
  try {
    console.log(`   Temporal ${stack.temporal.address}  UI ${stack.temporal.uiUrl}`);
    console.log(`   MLflow   ${stack.mlflow.trackingUri}`);

    const dataDir = path.join(stateDir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const datasetPath = path.join(dataDir, `fraud-seed${seed}-${rows}.csv`);
    await writeCsv(datasetPath, generateFraudDataset({ rows, seed }));
    console.log(`== generated ${rows} synthetic transactions -> ${datasetPath}`);

    const config = loadWorkerConfig({
      ...process.env,
      MLFLOW_TRACKING_URI: stack.mlflow.trackingUri,
      MLOPS_STATE_DIR: stateDir,
    });
    const workerConnection = await NativeConnection.connect({ address: stack.temporal.address });
    const worker = await createWorker({ connection: workerConnection, config });
    const connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection });

    const model = 'fraud';
    const input: RetrainingInput = {
      model,
      dataset: { uri: pathToFileURL(datasetPath).href },
      trigger: { kind: 'manual', by: 'demo' },
      initiator: 'demo',
      codeVersion: process.env.MLOPS_CODE_VERSION ?? 'demo',
    };
    const workflowId = retrainWorkflowId(model);
    const result = await worker.runUntil(async () => {
      const handle = await client.workflow.start(WORKFLOW_TYPES.retrainingPipeline, {
        taskQueue: config.taskQueue,
        workflowId,
        args: [input],
        // A demo left running by an interrupted earlier demo is replaced, not joined.
        workflowIdConflictPolicy: 'TERMINATE_EXISTING',
      });
      console.log(`== started ${WORKFLOW_TYPES.retrainingPipeline} ${workflowId}`);
      console.log(
        `   ${stack.temporal.uiUrl}/namespaces/default/workflows/${workflowId}/${handle.firstExecutionRunId}/history`,
      );
      return { runId: handle.firstExecutionRunId, value: (await handle.result()) as PipelineResult };
    });
    const { status } = result.value;
    console.log(`== pipeline finished: ${result.value.outcome}`);
    for (const d of status.decisions) console.log(`   [${d.stage}] ${d.decision}: ${d.reason}`);
    if (status.candidate) {
      const mlflow = new MlflowClient({ trackingUri: stack.mlflow.trackingUri });
      const version = await mlflow.getModelVersionByAlias(model, status.candidate.alias ?? 'challenger');
      const verified = await fetchVerifiedModel(mlflow, version);
      console.log('');
      console.log(`model   : ${model}`);
      console.log(`version : ${version.version}`);
      console.log(`alias   : ${status.candidate.alias}`);
      console.log(`dataset : sha256 ${version.tags['mlops.dataset_sha256']}`);
      console.log(
        `digests : ${verified.manifest.files.length} file(s) match manifest ${version.tags['mlops.manifest_sha256']}`,
      );
      console.log(`MLflow  : ${stack.mlflow.trackingUri}/#/models/${model}/versions/${version.version}`);
    }
    console.log(
      `Temporal: ${stack.temporal.uiUrl}/namespaces/default/workflows/${workflowId}/${result.runId}/history`,
    );
    await connection.close();
    await workerConnection.close();
    if (values.keep) {
      console.log('\n--keep: the stack stays up; Ctrl-C stops it.');
      await new Promise(() => {});
    }
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
