/**
 * Model-registry adapters and the factory that picks one by configuration.
 */
import { MlflowClient, mlflowAuthFromEnv } from '../mlflow';
import type { ModelRegistry } from '../ports/model-registry';
import { MemoryModelRegistry } from './memory';
import { MlflowModelRegistry } from './mlflow';

export { MemoryModelRegistry } from './memory';
export { MlflowModelRegistry } from './mlflow';

export type RegistryConfig = { kind: 'mlflow'; trackingUri: string } | { kind: 'memory' };

/** The registry named by configuration; MLflow credentials come from the environment, never the config. */
export function createModelRegistry(
  config: RegistryConfig,
  env: NodeJS.ProcessEnv = process.env,
): ModelRegistry {
  switch (config.kind) {
    case 'mlflow':
      return new MlflowModelRegistry(
        new MlflowClient({ trackingUri: config.trackingUri, auth: mlflowAuthFromEnv(env) }),
      );
    case 'memory':
      return new MemoryModelRegistry();
  }
}
