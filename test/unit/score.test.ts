import { describe, expect, it } from 'vitest';
import type { Holdout } from '../../src/eval/holdout';
import {
  LATENCY_SAMPLE,
  ModelContractError,
  interleavedSchedule,
  scoreModels,
  type ModelInputSchema,
} from '../../src/eval/score';
import { ECHO_MODEL_SCHEMA, echoModel } from './onnx-echo';

const SCHEMA: ModelInputSchema = ECHO_MODEL_SCHEMA;

function holdout(rows: number): Holdout {
  const x = Array.from({ length: rows }, (_, i) => String((i % 8) / 8));
  return { rows, labels: Uint8Array.from(x, (_, i) => i % 2), columns: { x } };
}

describe('interleavedSchedule', () => {
  it.each([
    [
      'two models alternate A,B then B,A over the same rows',
      2,
      3,
      [
        [0, 0],
        [1, 0],
        [1, 1],
        [0, 1],
        [0, 2],
        [1, 2],
      ],
    ],
    [
      'one model is timed row after row',
      1,
      3,
      [
        [0, 0],
        [0, 1],
        [0, 2],
      ],
    ],
    ['no rows, no calls', 2, 0, []],
  ])('%s', (_label, models, rows, expected) => {
    expect(interleavedSchedule(models, rows).map((c) => [c.model, c.row])).toEqual(expected);
  });

  it('gives every model every row exactly once, and each model the first call on half the rows', () => {
    const calls = interleavedSchedule(2, 200);
    for (const model of [0, 1]) {
      const rows = calls.filter((c) => c.model === model).map((c) => c.row);
      expect(rows).toEqual(Array.from({ length: 200 }, (_, i) => i));
      const first = calls.filter((c, i) => i % 2 === 0 && c.model === model).length;
      expect(first).toBe(100);
    }
  });
});

describe('scoreModels (onnxruntime-node, real sessions)', () => {
  it('scores each model on the whole holdout and times both on the same rows', async () => {
    const h = holdout(40);
    const [a, b] = await scoreModels(
      [
        { onnx: echoModel(), schema: SCHEMA },
        { onnx: echoModel(), schema: SCHEMA },
      ],
      h,
    );
    const expected = h.columns.x?.map(Number);
    expect(Array.from(a?.scores ?? [])).toEqual(expected);
    expect(Array.from(b?.scores ?? [])).toEqual(expected);
    for (const r of [a, b]) {
      expect(r?.latenciesMs).toHaveLength(Math.min(LATENCY_SAMPLE, h.rows));
      expect(r?.latenciesMs.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
    }
  });

  it('names the model that breaks the contract by its index', async () => {
    const broken = { ...SCHEMA, probabilityOutput: 'nope' };
    const run = scoreModels(
      [
        { onnx: echoModel(), schema: SCHEMA },
        { onnx: echoModel(), schema: broken },
      ],
      holdout(10),
    );
    await expect(run).rejects.toBeInstanceOf(ModelContractError);
    await expect(run).rejects.toMatchObject({
      modelIndex: 1,
      message: expect.stringMatching(/not the declared "nope"/) as unknown,
    });
  });
});
