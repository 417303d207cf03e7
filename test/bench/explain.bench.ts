/**
 * bench:explain: KernelSHAP for 100 rows of the reference model (the GradientBoosting pipeline of
 * deploy/trainer/train.py, exported by skl2onnx), ours and shap's KernelExplainer in the same run, on the same
 * exported ONNX model (shap calls onnxruntime's Python binding), the same 100 background rows and the same
 * budget (shap's default, 2M + 2048 coalitions, which for 9 features enumerates all 510). Ours runs twice: with
 * the value function it picks for the model (the tree structure, for this tree ensemble) and with onnxruntime on
 * the hybrid rows (what any ONNX model gets). Last line: one JSON object.
 *
 *   npm run bench:explain [-- --rows 100 --background 100]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';
import { parseInputSchema } from '../../src/eval/score';
import { defaultKernelSamples, kernelShap } from '../../src/explain/kernel-shap';
import { ExplainableModel, type Row } from '../../src/explain/model';
import { rowFromFeatures } from '../../src/explain/rows';
import { generateFraudDataset, writeCsv } from '../../src/workload/generator';
import { runReference } from '../explain/helpers';

/** Rows explained: the figure. */
const DEFAULT_ROWS = 100;
/** Background rows (both sides). */
const DEFAULT_BACKGROUND = 100;
/** The fixture models' recipe (test/fixtures/models/make_models.py). */
const HYPERPARAMS = { n_estimators: 60, max_depth: 3 };

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const nRows = arg('rows', DEFAULT_ROWS);
  const nBackground = arg('background', DEFAULT_BACKGROUND);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-explain-'));
  try {
    const data = generateFraudDataset({ rows: 4000, seed: 5 });
    const csv = path.join(dir, 'train.csv');
    await writeCsv(csv, data);
    const background = Array.from({ length: nBackground }, (_, i) => i);
    const explain = Array.from({ length: nRows }, (_, i) => nBackground + i);
    const nsamples = defaultKernelSamples(FRAUD_FEATURE_SPEC.features.length);
    console.log(
      `shap.KernelExplainer: ${nRows} rows, ${nBackground} background rows, nsamples ${nsamples} ...`,
    );
    const ref = runReference<{ kernel: Array<{ seconds: number; values: number[][] }> }>(
      'explain_ref.py',
      {
        csv,
        spec: JSON.stringify(FRAUD_FEATURE_SPEC),
        out: dir,
        hyperparams: HYPERPARAMS,
        background,
        explain,
        kernel: [{ nsamples, seed: 1 }],
      },
      [],
      3_600_000,
    );
    const shap = ref.kernel[0];
    if (!shap) throw new Error('no shap timing');
    console.log(`shap: ${shap.seconds.toFixed(2)} s`);

    const schema = parseInputSchema(readFileSync(path.join(dir, 'input_schema.json')));
    const model = await ExplainableModel.load(readFileSync(path.join(dir, 'model.onnx')), schema);
    const rows = data.map((r) => rowFromFeatures(schema, r as unknown as Record<string, unknown>));
    const pick = (idx: number[]): Row[] => idx.map((i) => rows[i] as Row);
    // Warm-up: session creation, the tree path's parity check and JIT, on two rows.
    await kernelShap(model, pick(explain.slice(0, 2)), pick(background), { nsamples });
    const t0 = performance.now();
    const ours = await kernelShap(model, pick(explain), pick(background), { nsamples });
    const oursS = (performance.now() - t0) / 1000;
    console.log(`ours (${ours.valueFunction} value function): ${oursS.toFixed(2)} s`);
    const t1 = performance.now();
    const viaOrt = await kernelShap(model, pick(explain), pick(background), {
      nsamples,
      valueFunction: 'onnxruntime',
    });
    const ortS = (performance.now() - t1) / 1000;
    console.log(`ours (onnxruntime value function): ${ortS.toFixed(2)} s`);
    let diff = 0;
    let diffOrt = 0;
    ours.values.forEach((v, i) => {
      v.forEach((x, j) => {
        const s = (shap.values[i] as number[])[j] as number;
        diff = Math.max(diff, Math.abs(x - s));
        diffOrt = Math.max(diffOrt, Math.abs(((viaOrt.values[i] as Float64Array)[j] as number) - s));
      });
    });
    await model.release();
    console.log(
      JSON.stringify({
        rows: nRows,
        background: nBackground,
        nsamples,
        coalitions_per_row: ours.coalitions[0],
        value_function: ours.valueFunction,
        ours_s: Number(oursS.toFixed(3)),
        ours_onnxruntime_s: Number(ortS.toFixed(3)),
        shap_s: Number(shap.seconds.toFixed(3)),
        speedup: Number((shap.seconds / oursS).toFixed(2)),
        speedup_onnxruntime: Number((shap.seconds / ortS).toFixed(2)),
        max_abs_diff_vs_shap: diff,
        max_abs_diff_onnxruntime_vs_shap: diffOrt,
        load_avg_1m: Number(os.loadavg()[0]?.toFixed(2)),
        cores: os.cpus().length,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
