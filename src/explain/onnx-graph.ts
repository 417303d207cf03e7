/**
 * Reads what attributions need from an ONNX model's bytes, with protobufjs's wire reader (no schema): the
 * graph's nodes and their attributes, and the graph inputs and outputs by name. Writes one thing: a copy of the
 * model with an extra float graph output, so onnxruntime hands back an intermediate tensor (the input of a tree
 * ensemble) without anything being re-implemented here.
 *
 * Field numbers are those of onnx.proto (ModelProto.graph = 7; GraphProto.node = 1, input = 11, output = 12;
 * NodeProto input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7; AttributeProto name = 1,
 * f = 2, i = 3, s = 4, floats = 7, ints = 8, strings = 9; ValueInfoProto name = 1, type = 2).
 */
import { Reader, Writer } from 'protobufjs/minimal';

/** One attribute value, in the shape its ONNX type gives it. */
export interface OnnxAttribute {
  name: string;
  f?: number;
  i?: number;
  s?: string;
  floats: number[];
  ints: number[];
  strings: string[];
}

export interface OnnxNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  inputs: string[];
  outputs: string[];
}

/** An ONNX model that cannot be read (not protobuf, or no graph). */
export class OnnxGraphError extends Error {
  override readonly name = 'OnnxGraphError';
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextDecoder();

function readAttribute(bytes: Uint8Array): OnnxAttribute {
  const r = Reader.create(bytes);
  const a: OnnxAttribute = { name: '', floats: [], ints: [], strings: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LEN) a.name = r.string();
    else if (field === 2 && wire === WIRE_I32) a.f = r.float();
    else if (field === 3 && wire === WIRE_VARINT) a.i = Number(r.int64().toString());
    else if (field === 4 && wire === WIRE_LEN) a.s = utf8.decode(r.bytes());
    else if (field === 7 && wire === WIRE_LEN) {
      const end = r.uint32() + r.pos;
      while (r.pos < end) a.floats.push(r.float());
    } else if (field === 7 && wire === WIRE_I32) a.floats.push(r.float());
    else if (field === 8 && wire === WIRE_LEN) {
      const end = r.uint32() + r.pos;
      while (r.pos < end) a.ints.push(Number(r.int64().toString()));
    } else if (field === 8 && wire === WIRE_VARINT) a.ints.push(Number(r.int64().toString()));
    else if (field === 9 && wire === WIRE_LEN) a.strings.push(utf8.decode(r.bytes()));
    else r.skipType(wire);
  }
  return a;
}

function readNode(bytes: Uint8Array): OnnxNode {
  const r = Reader.create(bytes);
  const n: OnnxNode = { opType: '', domain: '', name: '', inputs: [], outputs: [], attributes: new Map() };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire !== WIRE_LEN) {
      r.skipType(wire);
      continue;
    }
    if (field === 1) n.inputs.push(r.string());
    else if (field === 2) n.outputs.push(r.string());
    else if (field === 3) n.name = r.string();
    else if (field === 4) n.opType = r.string();
    else if (field === 7) n.domain = r.string();
    else if (field === 5) {
      const a = readAttribute(r.bytes());
      n.attributes.set(a.name, a);
    } else r.skipType(wire);
  }
  return n;
}

function valueInfoName(bytes: Uint8Array): string {
  const r = Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) return r.string();
    r.skipType(tag & 7);
  }
  return '';
}

/** Byte range of ModelProto.graph inside the model (the embedded message, without tag and length). */
function graphRange(model: Uint8Array): { tagStart: number; start: number; end: number } {
  const r = Reader.create(model);
  while (r.pos < r.len) {
    const tagStart = r.pos;
    const tag = r.uint32();
    const wire = tag & 7;
    if (tag >>> 3 === 7 && wire === WIRE_LEN) {
      const length = r.uint32();
      return { tagStart, start: r.pos, end: r.pos + length };
    }
    if (wire !== WIRE_VARINT && wire !== WIRE_I64 && wire !== WIRE_LEN && wire !== WIRE_I32)
      throw new OnnxGraphError(`unsupported protobuf wire type ${wire} in ModelProto`);
    r.skipType(wire);
  }
  throw new OnnxGraphError('model has no graph (ModelProto.graph missing): not an ONNX model');
}

/** Parses the model's graph: nodes in file order, graph inputs and outputs by name. */
export function readOnnxGraph(model: Uint8Array): OnnxGraph {
  let range;
  try {
    range = graphRange(model);
  } catch (err) {
    if (err instanceof OnnxGraphError) throw err;
    throw new OnnxGraphError(`not an ONNX model: ${(err as Error).message}`);
  }
  const r = Reader.create(model.subarray(range.start, range.end));
  const graph: OnnxGraph = { nodes: [], inputs: [], outputs: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire !== WIRE_LEN) {
      r.skipType(wire);
      continue;
    }
    if (field === 1) graph.nodes.push(readNode(r.bytes()));
    else if (field === 11) graph.inputs.push(valueInfoName(r.bytes()));
    else if (field === 12) graph.outputs.push(valueInfoName(r.bytes()));
    else r.skipType(wire);
  }
  return graph;
}

/** ONNX TensorProto.DataType of float32. */
const ONNX_FLOAT = 1;

/**
 * A copy of `model` with `tensor` added as a float graph output, so a session can return it. Appends one
 * repeated GraphProto.output entry (protobuf allows repeated fields anywhere) and rewrites the graph's length.
 */
export function withExtraOutput(model: Uint8Array, tensor: string): Uint8Array {
  const { tagStart, start, end } = graphRange(model);
  const tensorType = Writer.create()
    .uint32((1 << 3) | WIRE_VARINT)
    .int32(ONNX_FLOAT)
    .finish();
  const typeProto = Writer.create()
    .uint32((1 << 3) | WIRE_LEN)
    .bytes(tensorType)
    .finish();
  const valueInfo = Writer.create()
    .uint32((1 << 3) | WIRE_LEN)
    .string(tensor)
    .uint32((2 << 3) | WIRE_LEN)
    .bytes(typeProto)
    .finish();
  const extra = Writer.create()
    .uint32((12 << 3) | WIRE_LEN)
    .bytes(valueInfo)
    .finish();
  const graphBody = new Uint8Array(end - start + extra.length);
  graphBody.set(model.subarray(start, end), 0);
  graphBody.set(extra, end - start);
  const graphField = Writer.create()
    .uint32((7 << 3) | WIRE_LEN)
    .bytes(graphBody)
    .finish();
  const out = new Uint8Array(tagStart + graphField.length + (model.length - end));
  out.set(model.subarray(0, tagStart), 0);
  out.set(graphField, tagStart);
  out.set(model.subarray(end), tagStart + graphField.length);
  return out;
}
