/**
 * Benchmark: fast paired bootstrap (presorted once, resample as counts) versus the naive reference
 * (materialise each resample, recompute both metrics from scratch), side by side in one run.
 *
 * Run: npx tsx test/bench/bootstrap.bench.ts [n=20000] [iterations=1000] [naiveIterations=100]
 * Prints, per metric, ms per bootstrap of `iterations` resamples for each implementation (the naive one is
 * timed on `naiveIterations` resamples and scaled, since it is linear in the count; pass the same number to
 * time it in full), ms per resample, the speed-up ratio, and whether both gave the same interval and p-value
 * for the same seed and `naiveIterations` resamples.
 */
import { naivePairedBootstrap, pairedBootstrap } from '../../src/core/stats/bootstrap';
import type { MetricName } from '../../src/core/stats/metrics';
import { createSeededRandom } from '../../src/core/stats/random';

const n = Number(process.argv[2] ?? 20_000);
const iterations = Number(process.argv[3] ?? 1000);
const naiveIterations = Number(process.argv[4] ?? 100);
const SEED = 12345;
const PREVALENCE = 0.05;

function syntheticHoldout(size: number): {
  labels: Uint8Array;
  scoresA: Float64Array;
  scoresB: Float64Array;
} {
  const rng = createSeededRandom(7);
  const labels = new Uint8Array(size);
  const scoresA = new Float64Array(size);
  const scoresB = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const y = rng.nextFloat() < PREVALENCE ? 1 : 0;
    labels[i] = y;
    // Rounded to 3 decimals so there are many ties, as with real model outputs.
    scoresA[i] = Math.round(Math.min(1, Math.max(0, 0.3 * y + 0.7 * rng.nextFloat())) * 1000) / 1000;
    scoresB[i] = Math.round(Math.min(1, Math.max(0, 0.4 * y + 0.6 * rng.nextFloat())) * 1000) / 1000;
  }
  return { labels, scoresA, scoresB };
}

function time<T>(fn: () => T): { ms: number; result: T } {
  const start = performance.now();
  const result = fn();
  return { ms: performance.now() - start, result };
}

const data = syntheticHoldout(n);
console.log(
  `paired bootstrap, n=${n}, prevalence=${PREVALENCE}, fast iterations=${iterations}, naive iterations=${naiveIterations}`,
);
console.log(
  [
    'metric',
    'fast ms/bootstrap',
    'naive ms/bootstrap',
    'fast ms/iter',
    'naive ms/iter',
    'ratio',
    'same CI & p',
  ].join('\t'),
);
const metrics: MetricName[] = ['pr_auc', 'roc_auc', 'recall_at_precision', 'brier', 'ece'];
for (const metric of metrics) {
  const input = { ...data, metric, seed: SEED };
  pairedBootstrap({ ...input, iterations: 20 }); // warm-up (JIT)
  const fast = time(() => pairedBootstrap({ ...input, iterations }));
  const naive = time(() => naivePairedBootstrap({ ...input, iterations: naiveIterations }));
  const fastPerIter = fast.ms / iterations;
  const naivePerIter = naive.ms / naiveIterations;
  const fastSameCount = pairedBootstrap({ ...input, iterations: naiveIterations });
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9;
  const same =
    close(fastSameCount.ciLow, naive.result.ciLow) &&
    close(fastSameCount.ciHigh, naive.result.ciHigh) &&
    fastSameCount.pValue === naive.result.pValue;
  console.log(
    [
      metric,
      fast.ms.toFixed(1),
      (naivePerIter * iterations).toFixed(1) + (naiveIterations === iterations ? '' : ' (scaled)'),
      fastPerIter.toFixed(3),
      naivePerIter.toFixed(3),
      `${(naivePerIter / fastPerIter).toFixed(1)}x`,
      String(same),
    ].join('\t'),
  );
}
