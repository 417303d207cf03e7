/**
 * Entry point of the inference gateway (`npm run gateway`): configuration from the environment (see
 * src/gateway/config.ts and the README), one serving process per core unless MLOPS_GATEWAY_WORKERS
 * says otherwise, graceful shutdown on SIGTERM/SIGINT (readiness goes 503, in-flight requests finish).
 */
import { loadGatewayConfig, startGateway } from '../src/gateway';

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const gw = await startGateway(config);
  console.log(`gateway listening on ${gw.url} (${gw.workers} worker${gw.workers === 1 ? '' : 's'})`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`gateway: ${signal}, draining`);
    void gw.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: Error) => {
  console.error(`gateway: ${err.message}`);
  process.exit(1);
});
