/**
 * Typed MLflow REST client: tracking (experiments, runs, metrics, artifacts) and model registry (registered
 * models, versions, tags, aliases). Node-only; workflow code may import its types only.
 */
export * from './client';
export * from './credentials';
export * from './errors';
export * from './schemas';
