/**
 * A real ONNX model for tests and benchmarks, encoded by hand in the protobuf wire format so that nothing needs
 * the Python trainer: `probabilities = Concat([x, x], axis=1)`, one float input `x` [N, 1] and a [N, 2] output
 * whose positive-class column is the input itself. It follows the job contract's input schema.
 */
import type { ModelInputSchema } from '../../src/eval/score';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, n: number) => [...key(field, 0), ...varint(n)];
const bytes = (field: number, b: number[]) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

/** ValueInfoProto of a float tensor [N, cols] (N symbolic). */
function floatTensor(name: string, cols: number): number[] {
  const dims = [...bytes(1, str(2, 'N')), ...bytes(1, int(1, cols))];
  const tensorType = [...int(1, 1 /* FLOAT */), ...bytes(2, dims)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

/** `probabilities = Concat([x, x], axis=1)`: a [N, 2] output whose positive-class column is the input. */
export function echoModel(): Buffer {
  const axis = [...str(1, 'axis'), ...int(3, 1), ...int(20, 2 /* INT */)];
  const node = [
    ...str(1, 'x'),
    ...str(1, 'x'),
    ...str(2, 'probabilities'),
    ...str(4, 'Concat'),
    ...bytes(5, axis),
  ];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'echo'),
    ...bytes(11, floatTensor('x', 1)),
    ...bytes(12, floatTensor('probabilities', 2)),
  ];
  const opset = [...str(1, ''), ...int(2, 13)];
  return Buffer.from([...int(1, 7 /* IR version */), ...bytes(8, opset), ...bytes(7, graph)]);
}

/** The job-contract input schema of {@link echoModel}. */
export const ECHO_MODEL_SCHEMA: ModelInputSchema = {
  inputs: [{ name: 'x', kind: 'numeric', dtype: 'float32', order: 0 }],
  probabilityOutput: 'probabilities',
  positiveClassIndex: 1,
};
