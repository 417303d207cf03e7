/**
 * The dataset activities judge what they cannot read as a failed report (the pipeline then ends as
 * `rejected-data`), never as a retry loop.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDataActivities } from '../../activities/data';
import { FRAUD_FEATURE_SPEC } from '../../src/core/contracts/fraud';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlops-data-acts-'));
const acts = createDataActivities({ snapshotDir: path.join(dir, 'snapshots') });

describe('validateDataset', () => {
  it('reports a vanished snapshot as a failed "readable" check naming the file', async () => {
    const missing = path.join(dir, 'gone.csv');
    const { report, profile } = await acts.validateDataset({
      snapshotPath: missing,
      spec: FRAUD_FEATURE_SPEC,
    });
    expect(profile).toBeUndefined();
    expect(report.ok).toBe(false);
    expect(report.checks).toHaveLength(1);
    expect(report.checks[0]).toMatchObject({ check: 'readable', passed: false });
    expect(report.checks[0]?.message).toContain('gone.csv');
  });

  it('reports a file that is not a CSV as a failed "format" check', async () => {
    const binary = path.join(dir, 'binary.csv');
    writeFileSync(binary, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a, 0x00]));
    const { report } = await acts.validateDataset({ snapshotPath: binary, spec: FRAUD_FEATURE_SPEC });
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['format', false]]);
    expect(report.checks[0]?.message).toMatch(/^dataset is not a readable CSV: /);
  });
});
