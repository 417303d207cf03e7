/** The workflow bundle: every workflow type the worker registers. */
export { retrainingPipeline } from './retraining-pipeline';
