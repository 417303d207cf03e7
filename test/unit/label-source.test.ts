import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileLabelSource } from '../../src/drift/inference-source';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('FileLabelSource', () => {
  it('skips and counts malformed lines instead of failing the whole join', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'labels-'));
    await mkdir(path.join(dir, 'fraud'));
    await writeFile(
      path.join(dir, 'fraud', '2026-12-01.jsonl'),
      [
        JSON.stringify({ requestId: 'a', label: 1 }),
        '{"requestId": "b", "label": ', // cut off mid-write
        JSON.stringify({ requestId: 'c', label: 2 }), // not a label
        'not json at all',
        JSON.stringify({ requestId: 'd', label: 0 }),
        JSON.stringify({ requestId: 'z', label: 1 }), // not asked for
        '',
      ].join('\n'),
    );
    const source = new FileLabelSource(dir);
    const labels = await source.labels('fraud', new Set(['a', 'b', 'c', 'd']));
    expect([...labels.entries()].sort()).toEqual([
      ['a', 1],
      ['d', 0],
    ]);
    expect(source.malformed).toBe(3);
  });

  it('answers an empty map for a model with no label folder', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'labels-'));
    const source = new FileLabelSource(dir);
    expect((await source.labels('fraud', new Set(['a']))).size).toBe(0);
    expect(source.malformed).toBe(0);
  });
});
