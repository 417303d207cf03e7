/**
 * The business KPI's outcome source on real files: the gateway's JSONL inference log writer and a
 * label folder, joined by request id into confusion counts per version; the worker's configuration
 * attaches it beside the gateway's metrics.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKpiActivities, NO_LABEL_SOURCE } from '../../activities/kpi';
import { loadWorkerConfig } from '../../src/config';
import { JsonlInferenceLog } from '../../src/gateway/inference-log';
import { fileDelayedLabels, withDelayedLabels } from '../../src/kpi/delayed-labels';
import { GatewayMetricsKpiSource } from '../../src/kpi/gateway-metrics';
import type { InferenceRecord } from '../../src/ports/inference-log';
import { controlPlaneDeps } from '../../workers/worker';
import { tempDir } from '../helpers/env';

const dir = tempDir('delayed-labels');
const logDir = path.join(dir, 'log');
const labelsDir = path.join(dir, 'labels');
const T0 = Date.parse('2026-12-01T10:59:00.000Z');

const rec = (
  id: string,
  version: string,
  route: InferenceRecord['route'],
  prediction: number,
  atMs: number,
): InferenceRecord => ({
  time: new Date(T0 + atMs).toISOString(),
  requestId: id,
  model: 'fraud',
  version,
  route,
  features: { amount: 1 },
  prediction,
  ood: false,
});

async function writeFixture(): Promise<void> {
  const log = new JsonlInferenceLog(logDir);
  // Crosses an hour boundary (10:59 -> 11:00), so two partitions are read.
  const records = [
    rec('a1', '1', 'stable', 0.9, 0), // flagged, fraud: TP
    rec('a2', '1', 'stable', 0.5, 1_000), // flagged, legit: FP
    rec('a3', '1', 'stable', 0.1, 2_000), // not flagged, fraud: FN
    rec('a4', '1', 'stable', 0.2, 61_000), // at the threshold counts as flagged, legit: FP (next hour)
    rec('a5', '1', 'stable', 0.05, 62_000), // no label yet
    rec('b1', '2', 'canary', 0.1, 3_000), // not flagged, legit: TN
    rec('b2', '2', 'canary', 0.7, 63_000), // flagged, fraud: TP
    rec('a1', '2', 'shadow', 0.05, 0), // mirrored a1: the canary would have missed it: FN
    rec('s1', '2', 'staging', 0.9, 4_000), // a staging probe: not a decision
    rec('c1', '3', 'stable', 0.9, 5_000), // another version: not asked for
    rec('late', '1', 'stable', 0.9, 600_000), // after the window
  ];
  for (const r of records) log.append(r);
  await log.close();
  mkdirSync(path.join(labelsDir, 'fraud'), { recursive: true });
  const labels = { a1: 1, a2: 0, a3: 1, a4: 0, b1: 0, b2: 1, s1: 0, c1: 1, late: 1 };
  writeFileSync(
    path.join(labelsDir, 'fraud', 'chargebacks.jsonl'),
    Object.entries(labels)
      .map(([requestId, label]) => JSON.stringify({ requestId, label }))
      .join('\n') + '\n',
  );
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('delayed-label outcomes', () => {
  it('joins each version’s decisions in the window to the labels that arrived', async () => {
    await writeFixture();
    const source = fileDelayedLabels({ inferenceLogDir: logDir, labelsDir });
    const got = await source.outcomes({
      model: 'fraud',
      versions: ['1', '2', '9'],
      from: new Date(T0),
      to: new Date(T0 + 300_000),
      threshold: 0.2,
    });
    expect(got['1']).toEqual({ predictions: 5, labelled: 4, tp: 1, fp: 2, tn: 0, fn: 1 });
    expect(got['2']).toEqual({ predictions: 3, labelled: 3, tp: 1, fp: 0, tn: 1, fn: 1 });
    expect(got['9']).toEqual({ predictions: 0, labelled: 0, tp: 0, fp: 0, tn: 0, fn: 0 });
  });

  it('the KPI activity answers through the port: counts, or why there are none', async () => {
    const metrics = new GatewayMetricsKpiSource('http://127.0.0.1:9/metrics');
    const withLabels = createKpiActivities({
      kpi: withDelayedLabels(metrics, fileDelayedLabels({ inferenceLogDir: logDir, labelsDir })),
    });
    const req = {
      model: 'fraud',
      canary: '2',
      stable: '1',
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 300_000).toISOString(),
      threshold: 0.2,
    };
    const o = await withLabels.measureLabelledOutcomes(req);
    expect(o).toMatchObject({ available: true, canary: { labelled: 3 }, stable: { labelled: 4 } });
    expect(await createKpiActivities({ kpi: metrics }).measureLabelledOutcomes(req)).toEqual({
      available: false,
      reason: NO_LABEL_SOURCE,
    });
    await expect(withLabels.measureLabelledOutcomes({ ...req, threshold: 2 })).rejects.toThrow(/threshold/);
  });

  it('a worker configured with both folders reads labels beside the gateway metrics; with one, not', () => {
    const base = { MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000', MLOPS_GATEWAY_URL: 'http://127.0.0.1:8080' };
    const both = loadWorkerConfig({ ...base, MLOPS_INFERENCE_LOG_DIR: logDir, MLOPS_LABELS_DIR: labelsDir });
    expect(both.delayedLabels).toEqual({ inferenceLogDir: logDir, labelsDir });
    const kpi = controlPlaneDeps(both, {
      registry: {} as never,
      jobs: {} as never,
      audit: {} as never,
      trust: {} as never,
    }).kpi;
    expect(kpi?.kind).toBe('gateway-metrics+inference-log+labels');
    expect(typeof kpi?.outcomes).toBe('function');
    const one = loadWorkerConfig({ ...base, MLOPS_LABELS_DIR: labelsDir });
    expect(one.delayedLabels).toBeUndefined();
    const plain = controlPlaneDeps(one, {
      registry: {} as never,
      jobs: {} as never,
      audit: {} as never,
      trust: {} as never,
    }).kpi;
    expect(plain?.kind).toBe('gateway-metrics');
    expect(plain?.outcomes).toBeUndefined();
  });
});
