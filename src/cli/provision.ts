/** `npm run provision`: builds or installs the local stack's tools (cached; a second run does no work). */
import { MissingPrerequisiteError, provisionAll } from '../stack/provision';

try {
  const { temporalCli, python, timeSkippingServer } = provisionAll();
  console.log(
    `[provision] ready: temporal=${temporalCli} python=${python} test-server=${timeSkippingServer}`,
  );
} catch (err) {
  if (err instanceof MissingPrerequisiteError) {
    console.error(`missing prerequisite: ${err.message}`);
  } else {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exit(1);
}
