/**
 * Benchmark: how often the p95 latency ratio guardrail would reject a model against *itself* when the two are
 * timed one after the other (the old way) versus interleaved (src/eval/score.ts), with and without a CPU-heavy
 * process beside it, and how many of those rejections the gate's floor (latencyRatioFloorMs) leaves.
 *
 * Run: npx tsx test/bench/latency-timing.bench.ts [trials=20] [--load] [--models dirA dirB --holdout file.csv]
 * - Without --models both sides are the hand-encoded echo model (test/unit/onnx-echo.ts) on a synthetic
 *   holdout. With --models, each dir holds a trained model's model.onnx and input_schema.json (e.g. two versions
 *   from a demo run's MLflow artifacts) and --holdout a fraud holdout CSV; dirA plays the champion, dirB the
 *   challenger.
 * - --load runs one busy-looping child process for the duration of the benchmark (bounded by LOAD_MAX_MS).
 * Prints per timing mode: the median and maximum challenger/champion p95 ratio, and in how many trials the
 * ratio exceeds the default limit, without and with the default floor.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import {
  DEFAULT_LATENCY_RATIO_FLOOR_MS,
  DEFAULT_MAX_LATENCY_REGRESSION_RATIO,
} from '../../src/core/contracts/gate';
import { latencySummary } from '../../src/core/stats/metrics';
import { loadHoldout, type Holdout } from '../../src/eval/holdout';
import { parseInputSchema, scoreModel, scoreModels, type ModelToScore } from '../../src/eval/score';
import { ECHO_MODEL_SCHEMA, echoModel } from '../unit/onnx-echo';

/** Longest the --load child may run, whatever happens to this process. */
const LOAD_MAX_MS = 600_000;
/** Rows of the synthetic holdout (more than the latency sample, so timing sees LATENCY_SAMPLE rows). */
const SYNTHETIC_ROWS = 2000;

const args = process.argv.slice(2);
const trials = Number(args.find((a) => /^\d+$/.test(a)) ?? 20);
const load = args.includes('--load');
const modelsAt = args.indexOf('--models');
const holdoutAt = args.indexOf('--holdout');

function modelFrom(dir: string): ModelToScore {
  return {
    onnx: readFileSync(path.join(dir, 'model.onnx')),
    schema: parseInputSchema(readFileSync(path.join(dir, 'input_schema.json'))),
  };
}

async function setup(): Promise<{ a: ModelToScore; b: ModelToScore; holdout: Holdout; label: string }> {
  if (modelsAt >= 0) {
    const dirA = args[modelsAt + 1];
    const dirB = args[modelsAt + 2];
    const csv = holdoutAt >= 0 ? args[holdoutAt + 1] : undefined;
    if (dirA === undefined || dirB === undefined || csv === undefined) {
      throw new Error('--models needs two model dirs and --holdout a CSV');
    }
    const holdout = await loadHoldout(csv, FRAUD_FEATURE_SPEC);
    return { a: modelFrom(dirA), b: modelFrom(dirB), holdout, label: `${dirA} vs ${dirB}` };
  }
  const x = Array.from({ length: SYNTHETIC_ROWS }, (_, i) => String((i % 97) / 97));
  const holdout: Holdout = { rows: SYNTHETIC_ROWS, labels: new Uint8Array(SYNTHETIC_ROWS), columns: { x } };
  const echo = { onnx: echoModel(), schema: ECHO_MODEL_SCHEMA };
  return { a: echo, b: echo, holdout, label: 'echo model vs itself' };
}

interface Trial {
  champion: number;
  challenger: number;
}

function report(mode: string, results: Trial[]): void {
  const ratios = results.map((r) => r.challenger / r.champion).sort((x, y) => x - y);
  const over = results.filter((r) => r.challenger / r.champion > DEFAULT_MAX_LATENCY_REGRESSION_RATIO);
  const overFloor = over.filter((r) => r.challenger > DEFAULT_LATENCY_RATIO_FLOOR_MS);
  const p95s = results.flatMap((r) => [r.champion, r.challenger]).sort((x, y) => x - y);
  const fmt = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));
  console.log(
    `${mode.padEnd(12)} p95 ms [${fmt(p95s[0])}, ${fmt(p95s[p95s.length - 1])}]  ratio median ${fmt(ratios[Math.floor(ratios.length / 2)])} max ${fmt(ratios[ratios.length - 1])}  ` +
      `ratio > ${DEFAULT_MAX_LATENCY_REGRESSION_RATIO}: ${over.length}/${results.length}  ` +
      `and above the ${DEFAULT_LATENCY_RATIO_FLOOR_MS} ms floor: ${overFloor.length}/${results.length}`,
  );
}

async function main(): Promise<void> {
  const { a, b, holdout, label } = await setup();
  const hog = load
    ? spawn(
        process.execPath,
        ['-e', `const end = Date.now() + ${LOAD_MAX_MS}; while (Date.now() < end) {}`],
        {
          stdio: 'ignore',
        },
      )
    : undefined;
  try {
    const sequential: Trial[] = [];
    const interleaved: Trial[] = [];
    for (let t = 0; t < trials; t++) {
      const champion = await scoreModel(a.onnx, a.schema, holdout);
      const challenger = await scoreModel(b.onnx, b.schema, holdout);
      sequential.push({
        champion: latencySummary(champion.latenciesMs).p95,
        challenger: latencySummary(challenger.latenciesMs).p95,
      });
      const [c, d] = await scoreModels([a, b], holdout);
      if (c === undefined || d === undefined) throw new Error('scoreModels returned too few results');
      interleaved.push({
        champion: latencySummary(c.latenciesMs).p95,
        challenger: latencySummary(d.latenciesMs).p95,
      });
    }
    console.log(`${label}, ${trials} trials, ${load ? 'one busy process beside it' : 'no extra load'}`);
    report('sequential', sequential);
    report('interleaved', interleaved);
  } finally {
    hog?.kill();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
