/**
 * The demo's poisoning chapter (called by `npm run demo` after the drift chapter, while its worker still
 * runs): someone tampers with January's labelled batch. Rows copied from November's data (the champion's
 * training snapshot) come back with their fraud label flipped, all in one region: a label-flipping attack
 * that looks clean inside the batch, since every row is a plausible transaction. `retrainingPipeline`
 * validates the batch against the champion's training snapshot, blocks it as `rejected-data` and prints
 * the evidence (counts, segment, Holm-adjusted p-value, sample row ids). Nothing is trained and no alias
 * moves.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import { WORKFLOW_TYPES } from '../core/contracts/retraining';
import type { HistoryCheck, HistoryScreen } from '../core/contracts/poisoning-history';
import { generateFraudDataset, writeCsv } from '../workload/generator';
import { resultWithin } from './demo-drift';

/** January's labelled batch. */
export const DEMO_POISON_ROWS = 4000;
/** Share of January's rows replaced by flipped copies of November's rows. */
export const DEMO_POISON_FRACTION = 0.03;
/** The region whose rows the attacker replays with flipped labels. */
export const DEMO_POISON_REGION = 'east';
/** Findings printed (the validation report in the workflow result holds all of them). */
const DEMO_FINDINGS_SHOWN = 4;
/** How long the demo waits for the poisoned pipeline before cancelling it (it ends at validation). */
const DEMO_POISON_WAIT_MS = 3 * 60_000;

export interface PoisonChapterOptions {
  client: Client;
  taskQueue: string;
  model: string;
  dataDir: string;
  seed: number;
  initiator: string;
  /** The champion's training data by its generator options (November's batch). */
  champion: { rows: number; seed: number };
}

function describeFinding(c: HistoryCheck): string {
  const e = c.evidence;
  const where = e.segment ? ` in ${e.segment.column}=${e.segment.value}` : '';
  const p =
    e.adjustedPValue !== undefined
      ? `, ${e.correction?.method ?? 'adjusted'} p ${e.adjustedPValue.toExponential(2)}`
      : '';
  const counts = Object.entries(e.counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const sample = e.sampleRows?.length ? `; e.g. rows ${e.sampleRows.slice(0, 3).join(', ')}` : '';
  return `${c.action.toUpperCase()} ${c.check}${where}: ${counts}${p}${sample}`;
}

/** The poisoning chapter; returns the pipeline's outcome. */
export async function runPoisonChapter(o: PoisonChapterOptions): Promise<string> {
  const january = path.join(o.dataDir, 'fraud-2027-01-poisoned.csv');
  await writeCsv(
    january,
    generateFraudDataset({
      rows: DEMO_POISON_ROWS,
      seed: o.seed + 4,
      historyPoison: {
        reference: o.champion,
        mode: 'replay-flip',
        fraction: DEMO_POISON_FRACTION,
        region: DEMO_POISON_REGION,
      },
    }),
  );
  console.log(
    `\n== January: a tampered labelled batch (${DEMO_POISON_FRACTION * 100}% of ${DEMO_POISON_ROWS} rows are November's ${DEMO_POISON_REGION} transactions replayed with the fraud label flipped)`,
  );
  const workflowId = `retrain-${o.model}-2027-01`;
  const handle = await o.client.workflow.start(WORKFLOW_TYPES.retrainingPipeline, {
    taskQueue: o.taskQueue,
    workflowId,
    args: [
      {
        model: o.model,
        dataset: { uri: pathToFileURL(january).href },
        trigger: { kind: 'new-data', batch: '2027-01' },
        initiator: o.initiator,
        codeVersion: process.env.MLOPS_CODE_VERSION ?? 'demo',
      },
    ],
  });
  console.log(`   started ${WORKFLOW_TYPES.retrainingPipeline} ${workflowId}`);
  const result = await resultWithin(handle, DEMO_POISON_WAIT_MS);
  if (result === undefined) {
    console.log(`   the pipeline did not finish within ${DEMO_POISON_WAIT_MS / 60_000} min: cancelled`);
    return 'cancelled';
  }
  if (result instanceof Error) {
    console.log(`   the pipeline failed: ${result.message}`);
    return 'failed';
  }
  const history = (result.validation as { history?: HistoryScreen } | undefined)?.history;
  console.log(`   outcome: ${result.outcome}`);
  if (history?.status === 'compared' && history.champion) {
    console.log(
      `   screened against the champion v${history.champion.version}'s training snapshot (sha256 ${history.champion.sha256.slice(0, 12)}…, ${history.champion.rows} rows): ${history.blocked} blocking, ${history.warnings} warning`,
    );
    const failed = history.checks
      .filter((x) => !x.passed)
      .sort((a, b) => (a.action === b.action ? 0 : a.action === 'block' ? -1 : 1));
    for (const c of failed.slice(0, DEMO_FINDINGS_SHOWN)) console.log(`     ${describeFinding(c)}`);
    if (failed.length > DEMO_FINDINGS_SHOWN)
      console.log(`     … and ${failed.length - DEMO_FINDINGS_SHOWN} more findings in the validation report`);
  } else if (history) {
    console.log(`   history screen ${history.status}: ${history.reason ?? ''}`);
  }
  console.log(
    `   candidate: ${result.status.candidate ? `v${result.status.candidate.version}` : 'none trained, no alias moved'}`,
  );
  return result.outcome;
}
