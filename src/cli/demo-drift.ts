/**
 * The demo's drift chapter (called by `npm run demo` once the November pipeline has finished, while
 * its worker still runs): customers change. The generator's injected data drift (`dataDrift`) shapes a
 * batch of December transactions; they are sent through the gateway as customer traffic (the gateway
 * writes them to its inference log), then `driftMonitor` runs on that window, exactly as its hourly
 * schedule would: it reads the champion's reference profile from MLflow, finds the drift, logs its
 * summary to MLflow and starts one `retrainingPipeline` (trigger `drift`, with the report link). A
 * second monitor run on the same window finds the drift again and starts none (the model's lock and
 * the cool-down). The started retraining trains on December's labelled batch (no holdout: it ends
 * registered) and is awaited, bounded.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { FRAUD_FEATURE_SPEC } from '../core/contracts/fraud';
import { WORKFLOW_TYPES, type PipelineResult } from '../core/contracts/retraining';
import { generateFraudDataset, writeCsv } from '../workload/generator';
import type { DriftMonitorInput, DriftMonitorResult } from '../../workflows/drift-monitor';

/** Strength of the injected data drift (the generator's `dataDrift`, 0..1). */
export const DEMO_DRIFT_STRENGTH = 0.3;
/** Drifted customer requests sent through the gateway: a window the monitor judges with confidence. */
export const DEMO_DRIFT_REQUESTS = 800;
/** December's labelled batch the drift retraining trains on. */
export const DEMO_DRIFT_TRAINING_ROWS = 4000;
/** Requests per second, under the gateway's per-principal rate limit (50/s). */
const DEMO_DRIFT_RATE = 40;
/** Concurrent senders. */
const DEMO_DRIFT_CLIENTS = 4;
/** How long the demo waits for the drift retraining to finish before cancelling it. */
const DEMO_DRIFT_RETRAIN_WAIT_MS = 4 * 60_000;
/** Longest a 429's Retry-After is honoured. */
const MAX_RETRY_AFTER_MS = 2_000;

export interface DriftChapterOptions {
  client: Client;
  taskQueue: string;
  model: string;
  gatewayUrl: string;
  /** The predict key file DemoServing wrote (0600). */
  keyFile: string;
  dataDir: string;
  seed: number;
  initiator: string;
  mlflowUrl: string;
}

/** Sends `rows` through the gateway at a bounded pace; returns how many were answered 200. */
async function sendTraffic(
  url: string,
  key: string,
  rows: ReadonlyArray<Record<string, unknown>>,
): Promise<number> {
  let next = 0;
  let ok = 0;
  const started = Date.now();
  const one = async (features: Record<string, unknown>): Promise<void> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ features }),
      });
      await res.arrayBuffer();
      if (res.status === 200) {
        ok++;
        return;
      }
      if (res.status !== 429) return;
      const wait = Math.min(MAX_RETRY_AFTER_MS, 1000 * Number(res.headers.get('retry-after') ?? '1'));
      await new Promise((r) => setTimeout(r, wait));
    }
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= rows.length) return;
      const due = started + (i * 1000) / DEMO_DRIFT_RATE;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      await one(rows[i]!);
    }
  };
  await Promise.all(Array.from({ length: DEMO_DRIFT_CLIENTS }, worker));
  return ok;
}

/** How long a cancelled demo pipeline is given to close. */
const CANCEL_GRACE_MS = 30_000;

/**
 * A demo pipeline's result within `ms`: the result, the error it failed with, or undefined after
 * cancelling it (and giving it a bounded grace to close), so a demo chapter never hangs.
 */
export async function resultWithin(
  handle: WorkflowHandle,
  ms: number,
): Promise<PipelineResult | Error | undefined> {
  const done = handle.result().then(
    (r) => r as PipelineResult,
    (err: unknown) => err as Error,
  );
  const after = (t: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), t).unref());
  const result = await Promise.race([done, after(ms)]);
  if (result !== undefined) return result;
  await handle.cancel();
  await Promise.race([done, after(CANCEL_GRACE_MS)]);
  return undefined;
}

function describeMonitorRun(label: string, r: DriftMonitorResult, mlflowUrl: string): void {
  console.log(
    `   ${label}: ${r.status.toUpperCase()} on ${r.rows} requests against v${r.version ?? '?'}'s reference profile (MLflow)`,
  );
  if (r.drifted.length > 0) console.log(`     drifted: ${r.drifted.join(', ')}`);
  if (r.mlflowRunId)
    console.log(`     summary logged to MLflow run ${r.mlflowRunId} (${mlflowUrl}/#/experiments)`);
  console.log(`     report: ${r.reportUri ?? r.reportHtml}`);
  if (r.retraining?.started)
    console.log(`     started retraining ${r.retraining.workflowId} (trigger ${r.decision.trigger?.kind})`);
  else console.log(`     no retraining started: ${r.retraining?.reason ?? r.decision.reason}`);
}

/** The drift chapter; returns the number of retrainings the two monitor runs started. */
export async function runDriftChapter(o: DriftChapterOptions): Promise<number> {
  console.log(
    `\n== December: customers change (injected data drift, strength ${DEMO_DRIFT_STRENGTH}); ${DEMO_DRIFT_REQUESTS} requests go through the gateway`,
  );
  const key = readFileSync(o.keyFile, 'utf8').trim();
  const traffic = generateFraudDataset({
    rows: DEMO_DRIFT_REQUESTS,
    seed: o.seed + 3000,
    dataDrift: DEMO_DRIFT_STRENGTH,
  }).map((r) => {
    const out: Record<string, unknown> = {};
    for (const f of FRAUD_FEATURE_SPEC.features)
      out[f.name] = (r as unknown as Record<string, unknown>)[f.name];
    return out;
  });
  const december = path.join(o.dataDir, 'fraud-2026-12.csv');
  await writeCsv(
    december,
    generateFraudDataset({
      rows: DEMO_DRIFT_TRAINING_ROWS,
      seed: o.seed + 2,
      dataDrift: DEMO_DRIFT_STRENGTH,
    }),
  );
  const from = new Date().toISOString();
  const answered = await sendTraffic(`${o.gatewayUrl}/v1/models/${o.model}/predict`, key, traffic);
  // The gateway's inference log flushes every second: wait for the last records to land.
  await new Promise((r) => setTimeout(r, 2_500));
  const to = new Date().toISOString();
  console.log(`   ${answered} answered; the inference log window is ${from} .. ${to}`);

  const input: DriftMonitorInput = {
    model: o.model,
    from,
    to,
    retrain: {
      dataset: { uri: pathToFileURL(december).href },
      initiator: o.initiator,
      codeVersion: process.env.MLOPS_CODE_VERSION ?? 'demo',
    },
  };
  const monitor = (n: number): Promise<DriftMonitorResult> =>
    o.client.workflow.execute(WORKFLOW_TYPES.driftMonitor, {
      taskQueue: o.taskQueue,
      workflowId: `drift-${o.model}-demo-${n}`,
      args: [input],
    });
  console.log(`\n== ${WORKFLOW_TYPES.driftMonitor}: what the hourly schedule drift-${o.model} runs`);
  const first = await monitor(1);
  describeMonitorRun('first monitor run', first, o.mlflowUrl);
  const second = await monitor(2);
  describeMonitorRun('second monitor run', second, o.mlflowUrl);
  const started = [first, second].filter((r) => r.retraining?.started).length;
  console.log(`   retrainings started by the monitor: ${started}`);

  if (first.retraining?.started) {
    const result = await resultWithin(
      o.client.workflow.getHandle(first.retraining.workflowId),
      DEMO_DRIFT_RETRAIN_WAIT_MS,
    );
    if (result === undefined) {
      console.log(
        `   the drift retraining did not finish within ${DEMO_DRIFT_RETRAIN_WAIT_MS / 60_000} min: cancelled`,
      );
    } else if (result instanceof Error) {
      console.log(`   the drift retraining failed: ${result.message}`);
    } else {
      console.log(
        `   the drift retraining ended ${result.outcome}${result.status.candidate ? `: v${result.status.candidate.version} (alias challenger), trigger report ${JSON.stringify(result.status.trigger)}` : ''}`,
      );
    }
  }
  return started;
}
