/**
 * Champion/challenger evaluation. Both models are fetched from MLflow and digest-verified before
 * use, scored with onnxruntime-node on the same frozen holdout (its own snapshot, checked to share
 * no row with the training data), and compared on per-example outcomes (paired bootstrap or
 * McNemar). Measuring happens here; judging is the pure gate in src/core/policy/gate.ts.
 *
 * Per-example outcomes stay out of workflow history: they go to MLflow as an artifact.
 */
import { ApplicationFailure } from '@temporalio/common';
import { stringify } from 'csv-stringify/sync';
import type { FeatureSpec } from '../src/core/contracts/feature-spec';
import type { GatePolicy, ModelEvaluation } from '../src/core/contracts/gate';
import type { EvaluationSummary } from '../src/core/contracts/evaluation';
import { FailureType } from '../src/core/contracts/failures';
import { Aliases, MODEL_ARTIFACT_PATH, VersionTags } from '../src/core/contracts/registry';
import type { DatasetSnapshot } from '../src/core/contracts/retraining';
import { DatasetFormatError, DatasetReadError, sharedRowsWithTraining } from '../src/data/profile';
import { HoldoutError, loadHoldout } from '../src/eval/holdout';
import {
  ModelContractError,
  parseInputSchema,
  scoreModels,
  type ModelToScore,
  type ScoreResult,
} from '../src/eval/score';
import type { ModelRegistry, RegistryVersion } from '../src/ports/model-registry';
import { fetchVerifiedModel } from '../src/registry/verified-model';
import type { ModelTrust } from '../src/security/model-trust';
import { mcnemar, pairedBootstrap } from '../src/core/stats/bootstrap';
import { latencyRatioInterval } from '../src/core/stats/latency';
import { evaluateModel, predictAt } from '../src/core/stats/metrics';
import { fairnessReport } from '../src/core/stats/fairness';
import { explainEvaluation } from '../src/explain/evaluation';
import { mapped } from './errors';

/** Evaluation artifacts inside the challenger's run. */
export const EVALUATION_DIR = 'evaluation';
/**
 * Minimum group count of the fairness report when the policy names none: every group with a case is judged, as
 * the point-estimate gate judged them (a policy opts into "too small to judge" with `fairnessMinGroupCount`).
 */
export const POLICY_DEFAULT_MIN_GROUP_COUNT = 1;
/** Attribution artifacts inside the challenger's (the version's) run. */
export const EXPLAIN_DIR = 'explain';

export type { EvaluationSummary };

function file(files: Array<{ path: string; content: Buffer }>, name: string): Buffer {
  const f = files.find((x) => x.path === `${MODEL_ARTIFACT_PATH}/${name}`);
  if (!f) {
    throw ApplicationFailure.nonRetryable(
      `model artifacts lack ${MODEL_ARTIFACT_PATH}/${name} (see the job contract)`,
      FailureType.ArtifactIntegrity,
    );
  }
  return f.content;
}

function metricsForMlflow(prefix: string, e: ModelEvaluation): Array<{ key: string; value: number }> {
  const out: Array<{ key: string; value: number }> = [];
  const add = (k: string, v: number | null | undefined) => {
    if (typeof v === 'number' && Number.isFinite(v)) out.push({ key: `${prefix}${k}`, value: v });
  };
  for (const [k, v] of Object.entries(e.metrics)) add(k, v);
  add('brier', e.calibration.brier);
  add('ece', e.calibration.ece);
  add('latency_p95_ms', e.latency.p95);
  add('dpd', e.fairness?.dpd);
  add('eod', e.fairness?.eod);
  return out;
}

export function createEvaluationActivities(cfg: {
  registry: ModelRegistry;
  snapshotDir: string;
  trust?: ModelTrust;
}) {
  const { registry } = cfg;

  function rethrowContract(version: RegistryVersion, err: unknown): never {
    if (err instanceof ModelContractError) {
      throw ApplicationFailure.nonRetryable(
        `${version.name} v${version.version}: ${err.message}`,
        FailureType.ArtifactIntegrity,
      );
    }
    throw err;
  }

  /**
   * Scores the challenger and (when given) the champion on the holdout; their latencies are timed
   * interleaved over the same rows, so background load lands on both alike (src/eval/score.ts).
   */
  async function scoreVersions(
    holdout: Awaited<ReturnType<typeof loadHoldout>>,
    challenger: RegistryVersion,
    champion?: RegistryVersion,
  ): Promise<{ challenger: ScoreResult; champion?: ScoreResult; models: ModelToScore[] }> {
    const versions = champion === undefined ? [challenger] : [challenger, champion];
    const models: ModelToScore[] = [];
    for (const version of versions) {
      const { files } = await mapped(() => fetchVerifiedModel(registry, version, { trust: cfg.trust }));
      try {
        const schema = parseInputSchema(file(files, 'input_schema.json'));
        models.push({ onnx: file(files, 'model.onnx'), schema });
      } catch (err) {
        rethrowContract(version, err);
      }
    }
    let results: ScoreResult[];
    try {
      results = await scoreModels(models, holdout);
    } catch (err) {
      const index = err instanceof ModelContractError ? (err.modelIndex ?? 0) : 0;
      rethrowContract(versions[index] ?? challenger, err);
    }
    const [a, b] = results;
    if (a === undefined) throw new Error('scoreModels returned fewer results than models');
    return b === undefined ? { challenger: a, models } : { challenger: a, champion: b, models };
  }

  return {
    async evaluateCandidate(input: {
      model: string;
      challengerVersion: string;
      holdout: DatasetSnapshot;
      trainingSnapshotPath: string;
      trainingSha256: string;
      spec: FeatureSpec;
      gate: GatePolicy;
    }): Promise<EvaluationSummary> {
      if (input.holdout.sha256 === input.trainingSha256) {
        throw ApplicationFailure.nonRetryable(
          'the holdout is the training dataset itself: evaluation needs a frozen holdout never used for training',
          FailureType.HoldoutLeak,
        );
      }
      let holdout;
      try {
        holdout = await loadHoldout(input.holdout.snapshotPath, input.spec);
      } catch (err) {
        if (err instanceof HoldoutError || (err as { code?: string }).code?.startsWith('CSV_')) {
          throw ApplicationFailure.nonRetryable(
            `holdout ${input.holdout.sourceUri}: ${(err as Error).message}`,
            FailureType.HoldoutInvalid,
          );
        }
        throw err;
      }
      // The training snapshot's row fingerprints were written when it was validated: it is not read again.
      const shared = await sharedRowsWithTraining(
        input.trainingSnapshotPath,
        input.holdout.snapshotPath,
        input.spec,
      ).catch((err: unknown) => {
        if (!(err instanceof DatasetFormatError || err instanceof DatasetReadError)) throw err;
        throw ApplicationFailure.nonRetryable(
          `holdout ${input.holdout.sourceUri}: ${(err as Error).message}`,
          FailureType.HoldoutInvalid,
        );
      });
      if (shared > 0) {
        throw ApplicationFailure.nonRetryable(
          `holdout shares ${shared} row(s) with the training snapshot: it is not a clean holdout`,
          FailureType.HoldoutLeak,
        );
      }

      const challengerMv = await mapped(() => registry.getVersion(input.model, input.challengerVersion));
      const championMv = await mapped(() => registry.findVersionByAlias(input.model, Aliases.champion));
      const threshold = input.gate.decisionThreshold;
      const championToScore =
        championMv && championMv.version !== input.challengerVersion ? championMv : undefined;
      const scored = await scoreVersions(holdout, challengerMv, championToScore);
      const challengerScore = scored.challenger;
      const challenger = evaluateModel({
        labels: holdout.labels,
        scores: challengerScore.scores,
        groups: holdout.groups,
        latenciesMs: challengerScore.latenciesMs,
        threshold,
      });
      const summary: EvaluationSummary = {
        holdout: { sha256: input.holdout.sha256, rows: holdout.rows, positives: challenger.positives },
        challenger: { version: input.challengerVersion, evaluation: challenger },
      };
      let championScores: Float64Array | undefined;
      if (championToScore && scored.champion) {
        const s = scored.champion;
        championScores = s.scores;
        summary.champion = {
          version: championToScore.version,
          evaluation: evaluateModel({
            labels: holdout.labels,
            scores: s.scores,
            groups: holdout.groups,
            latenciesMs: s.latenciesMs,
            threshold,
          }),
        };
        summary.latencyComparison = latencyRatioInterval({
          a: s.latenciesMs,
          b: challengerScore.latenciesMs,
          quantile: 0.95,
          alpha: input.gate.alpha,
        });
        summary.comparison =
          input.gate.method === 'mcnemar'
            ? mcnemar({
                labels: holdout.labels,
                predsA: predictAt(s.scores, threshold),
                predsB: predictAt(challengerScore.scores, threshold),
              })
            : pairedBootstrap({
                labels: holdout.labels,
                scoresA: s.scores,
                scoresB: challengerScore.scores,
                metric: input.gate.primaryMetric,
                iterations: input.gate.bootstrapIterations,
                seed: input.gate.bootstrapSeed,
                alpha: input.gate.alpha,
              });
      }

      // Fairness on intervals (the gate judges the report) and global attributions of both versions.
      if (holdout.groups && challenger.fairness) {
        challenger.fairness.report = fairnessReport({
          labels: holdout.labels,
          scores: challengerScore.scores,
          championScores,
          groups: holdout.groups,
          threshold,
          minGroupCount: input.gate.guardrails.fairnessMinGroupCount ?? POLICY_DEFAULT_MIN_GROUP_COUNT,
          alpha: input.gate.alpha,
          seed: input.gate.bootstrapSeed,
        });
      }
      let explained: Awaited<ReturnType<typeof explainEvaluation>> | undefined;
      try {
        explained = await explainEvaluation({
          models: scored.models,
          holdout,
          trainingSnapshotPath: input.trainingSnapshotPath,
          spec: input.spec,
        });
        challenger.attribution = explained.challenger;
        if (summary.champion && explained.champion)
          summary.champion.evaluation.attribution = explained.champion;
      } catch (err) {
        // Attributions inform a guardrail; a model they cannot explain is judged without them (logged).
        console.warn(`evaluation: attributions unavailable: ${(err as Error).message}`);
      }

      // Record in MLflow: metrics on the challenger's run, per-example outcomes and the summary as artifacts.
      const runId = challengerMv.runId;
      if (runId) {
        const metrics = metricsForMlflow('holdout_', challenger);
        if (summary.champion)
          metrics.push(...metricsForMlflow('champion_holdout_', summary.champion.evaluation));
        const c = summary.comparison;
        if (c?.method === 'bootstrap') {
          for (const [k, v] of [
            ['vs_champion_estimate', c.estimate],
            ['vs_champion_ci_low', c.ciLow],
            ['vs_champion_ci_high', c.ciHigh],
            ['vs_champion_p_value', c.pValue],
          ] as const) {
            if (typeof v === 'number' && Number.isFinite(v)) metrics.push({ key: k, value: v });
          }
        }
        await mapped(() => registry.logMetrics(runId, metrics));
        const rows = Array.from(holdout.labels, (y, i) => [
          i,
          y,
          holdout.groups?.[i] ?? '',
          championScores ? championScores[i] : '',
          challengerScore.scores[i],
        ]);
        const csv = stringify(rows, {
          header: true,
          columns: ['index', 'label', 'group', 'champion_score', 'challenger_score'],
        });
        await mapped(() => registry.uploadArtifact(runId, `${EVALUATION_DIR}/per_example.csv`, csv));
        await mapped(() =>
          registry.uploadArtifact(
            runId,
            `${EVALUATION_DIR}/summary.json`,
            `${JSON.stringify(summary, null, 2)}\n`,
          ),
        );
        if (challenger.fairness?.report) {
          const report = challenger.fairness.report;
          await mapped(() =>
            registry.uploadArtifact(
              runId,
              `${EVALUATION_DIR}/fairness.json`,
              `${JSON.stringify(report, null, 2)}\n`,
            ),
          );
        }
        if (explained) {
          const body = {
            challenger: { version: input.challengerVersion, ...explained.challenger },
            champion: explained.champion && { version: summary.champion?.version, ...explained.champion },
            drift: explained.drift,
          };
          const bg = { features: explained.features, rows: explained.background };
          await mapped(() =>
            registry.uploadArtifact(
              runId,
              `${EXPLAIN_DIR}/attributions.json`,
              `${JSON.stringify(body, null, 2)}\n`,
            ),
          );
          await mapped(() =>
            registry.uploadArtifact(runId, `${EXPLAIN_DIR}/background.json`, `${JSON.stringify(bg)}\n`),
          );
        }
        await mapped(() =>
          registry.setVersionTag(
            input.model,
            input.challengerVersion,
            VersionTags.holdoutSha256,
            input.holdout.sha256,
          ),
        );
      }
      return summary;
    },
  };
}
