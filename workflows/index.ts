/** The workflow bundle: every workflow type the worker registers. */
export { retrainingPipeline } from './retraining-pipeline';
export { canaryRollout } from './canary-rollout';
export { driftMonitor, modelLock, newDataCheck } from './drift-monitor';
