/**
 * Replays committed histories of retrainingPipeline (test/fixtures/histories, recorded by
 * test/replay/record-histories.ts) against the current workflow code: a change that would break
 * running workflows (a reordered or removed step, a different command) fails here, in CI, before
 * it reaches a worker. Such a change needs `patched()` and a re-recording.
 */
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const HISTORIES = path.resolve(__dirname, '..', 'fixtures', 'histories');
const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));

function load(file: string): unknown {
  return JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));
}

describe('replay of recorded retrainingPipeline histories', () => {
  it('has the recorded scenarios', () => {
    expect(files.sort()).toEqual(['expired.json', 'promoted.json', 'registered.json', 'rejected-data.json']);
  });

  it('replays every history deterministically against the current workflow code', async () => {
    const results = Worker.runReplayHistories(
      { workflowsPath: path.resolve(__dirname, '..', '..', 'workflows') },
      files.map((f) => ({ workflowId: f, history: load(f) })),
    );
    const seen: string[] = [];
    for await (const r of results) {
      expect(r.error, `${r.workflowId}: ${String(r.error)}`).toBeUndefined();
      seen.push(r.workflowId);
    }
    expect(seen.sort()).toEqual(files.sort());
  });

  it('fails the replay of a workflow whose commands changed', async () => {
    await expect(
      Worker.runReplayHistory(
        { workflowsPath: path.resolve(__dirname, '..', 'fixtures', 'workflows', 'changed-pipeline.ts') },
        load('promoted.json'),
      ),
    ).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});
