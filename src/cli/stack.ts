/**
 * `npm run stack [-- --worker]`: starts the local stack (Temporal dev server with UI, MLflow) on free
 * ports of 127.0.0.1 with state kept under .state/local, prints where everything is, optionally runs
 * a worker, and stops it all on Ctrl-C.
 */
import { NativeConnection } from '@temporalio/worker';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadWorkerConfig } from '../config';
import { STATE_DIR } from '../stack/paths';
import { startStack } from '../stack/launcher';
import { createWorker } from '../../workers/worker';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { worker: { type: 'boolean', default: false } } });
  const stateDir = path.join(STATE_DIR, 'local');
  const stack = await startStack({ stateDir, persistent: true, ui: true });
  console.log(`Temporal address : ${stack.temporal.address}`);
  console.log(`Temporal UI      : ${stack.temporal.uiUrl}`);
  console.log(`MLflow UI        : ${stack.mlflow.trackingUri}`);
  console.log('');
  console.log('In another shell:');
  console.log(
    `  export TEMPORAL_ADDRESS=${stack.temporal.address} MLFLOW_TRACKING_URI=${stack.mlflow.trackingUri}`,
  );
  console.log(`  export TEMPORAL_CLI=${stack.temporal.cli}`);
  if (!values.worker) console.log('  npm run worker');
  console.log('Ctrl-C stops everything.');
  if (values.worker) {
    const connection = await NativeConnection.connect({ address: stack.temporal.address });
    const config = loadWorkerConfig({
      ...process.env,
      MLFLOW_TRACKING_URI: stack.mlflow.trackingUri,
      MLOPS_STATE_DIR: stateDir,
    });
    const worker = await createWorker({ connection, config });
    console.log(`worker polling task queue "${config.taskQueue}"`);
    await worker.run();
  } else {
    await new Promise(() => {});
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
