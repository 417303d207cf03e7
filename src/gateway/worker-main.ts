/** Entry of a forked cluster worker (see cluster.ts). */
import { runClusterWorker } from './cluster';

runClusterWorker().catch((err: Error) => {
  console.error(`gateway worker: ${err.message}`);
  process.exit(1);
});
