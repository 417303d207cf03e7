/**
 * Unsafe-format scanning of a model folder, by content and never by file name: an allowlist, not a
 * list of known attacks. A file is accepted only when it is positively one of
 *
 * - an ONNX model (protobuf `ModelProto` with an IR version and a graph) whose every operator domain
 *   (nodes, subgraphs, local functions, opset imports) is allowed ({@link DEFAULT_ALLOWED_DOMAINS})
 *   and whose external-data locations stay inside the folder and name files that exist there;
 * - a tensor file that an accepted ONNX model names as external data;
 * - metadata: JSON (without a Keras `Lambda` layer in it), or UTF-8 text with a metadata name
 *   (`.md`, `.txt`, `.yaml`, `.yml`, `.csv`) that is not a text-protocol pickle.
 *
 * Everything else is refused, and the reason names what it is when recognised: pickle (any
 * protocol; `dill` and `joblib` pickles named as such), compressed pickles (joblib's zlib, gzip,
 * xz, lz4, bz2), PyTorch zip archives (`data.pkl` inside), Keras archives and HDF5 files (a `Lambda`
 * layer named), other zip archives, binary of unknown kind.
 *
 * Node-only (Buffer); pure otherwise: no I/O, the caller hands in the bytes (the very bytes it will
 * load, as fetchVerifiedModel does).
 */
import { inflateRawSync } from 'node:zlib';
import { Reader } from 'protobufjs/minimal';

/** ONNX operator domains accepted by default: the standard operators and the traditional-ML ones. */
export const DEFAULT_ALLOWED_DOMAINS: readonly string[] = ['', 'ai.onnx', 'ai.onnx.ml'];
/** File names (by ending) that may hold plain-text metadata once their content is checked. */
export const TEXT_METADATA_SUFFIXES: readonly string[] = ['.md', '.txt', '.yaml', '.yml', '.csv'];
/** Most bytes of a zip member inflated to look inside (a Keras config); larger ones are not read. */
export const MAX_INFLATE_BYTES = 16 * 1024 * 1024;

export type FileKind =
  | 'onnx'
  | 'onnx-external-data'
  | 'json'
  | 'text'
  | 'pickle'
  | 'compressed-pickle'
  | 'pytorch-zip'
  | 'keras-archive'
  | 'hdf5'
  | 'zip'
  | 'unknown';

export interface ScanFinding {
  path: string;
  kind: FileKind;
  reason: string;
}

export interface ScanReport {
  ok: boolean;
  files: Array<{ path: string; kind: FileKind; accepted: boolean }>;
  findings: ScanFinding[];
}

const WIRE_LEN = 2;
const utf8 = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------------------------------
// Recognisers

const PICKLE_MAX_PROTOCOL = 5;
const PICKLE_PROTO = 0x80;
const PICKLE_STOP = 0x2e;

function isBinaryPickle(b: Buffer): boolean {
  return (
    b.length >= 3 && b[0] === PICKLE_PROTO && (b[1] ?? 99) <= PICKLE_MAX_PROTOCOL && b.includes(PICKLE_STOP)
  );
}

/** Text-protocol (0/1) pickle: opcodes such as GLOBAL `c<module>\n<name>\n`, ending with STOP. */
function isTextPickle(b: Buffer): boolean {
  const s = b.toString('latin1');
  const trimmed = s.trimEnd();
  if (!trimmed.endsWith('.')) return false;
  return /(^|[\n(])c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n/.test(s) || /^\(dp0\n|^\(lp0\n|^\(S'/.test(s);
}

function pickleFlavour(b: Buffer): string {
  const s = b.toString('latin1');
  if (s.includes('dill._dill') || s.includes('\ndill\n')) return 'dill pickle';
  if (s.includes('joblib.numpy_pickle') || s.includes('NumpyArrayWrapper')) return 'joblib pickle';
  if (s.includes('torch._utils') || s.includes('torch.storage')) return 'PyTorch pickle';
  return 'pickle';
}

function compressedKind(b: Buffer): string | undefined {
  if (b.length < 4) return undefined;
  if (b[0] === 0x78 && [0x01, 0x5e, 0x9c, 0xda].includes(b[1] ?? 0)) return 'zlib stream (joblib compress)';
  if (b.subarray(0, 2).toString('latin1') === 'ZF') return 'joblib ZF compressed pickle';
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip stream';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz stream';
  if (b.subarray(0, 4).equals(Buffer.from([0x04, 0x22, 0x4d, 0x18]))) return 'lz4 frame';
  if (b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2 stream';
  return undefined;
}

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_LOCAL = 0x04034b50;
const ZIP_CENTRAL = 0x02014b50;
const ZIP_EOCD = 0x06054b50;

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  localOffset: number;
}

/** Central-directory entries of a zip archive (best effort; undefined when it is not one). */
function zipEntries(b: Buffer): ZipEntry[] | undefined {
  if (b.length < 22 || b.readUInt32LE(0) !== ZIP_LOCAL) return undefined;
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 65_557); i--) {
    if (b.readUInt32LE(i) === ZIP_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return [];
  const count = b.readUInt16LE(eocd + 10);
  let p = b.readUInt32LE(eocd + 16);
  const out: ZipEntry[] = [];
  for (let i = 0; i < count && p + 46 <= b.length && b.readUInt32LE(p) === ZIP_CENTRAL; i++) {
    const nameLen = b.readUInt16LE(p + 28);
    const extraLen = b.readUInt16LE(p + 30);
    const commentLen = b.readUInt16LE(p + 32);
    out.push({
      name: b.subarray(p + 46, p + 46 + nameLen).toString('utf8'),
      method: b.readUInt16LE(p + 10),
      compressedSize: b.readUInt32LE(p + 20),
      localOffset: b.readUInt32LE(p + 42),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

function zipMember(b: Buffer, e: ZipEntry): Buffer | undefined {
  const p = e.localOffset;
  if (p + 30 > b.length || b.readUInt32LE(p) !== ZIP_LOCAL) return undefined;
  const start = p + 30 + b.readUInt16LE(p + 26) + b.readUInt16LE(p + 28);
  const data = b.subarray(start, start + e.compressedSize);
  try {
    if (e.method === 0) return data;
    if (e.method === 8) return inflateRawSync(data, { maxOutputLength: MAX_INFLATE_BYTES });
  } catch {
    return undefined;
  }
  return undefined;
}

/** A Keras `Lambda` layer (arbitrary Python code in the model) anywhere in a config text. */
function hasKerasLambda(text: string): boolean {
  return /"class_name"\s*:\s*"Lambda"/.test(text) || /"module"\s*:\s*"keras\.layers"[^}]*"Lambda"/.test(text);
}

// ---------------------------------------------------------------------------------------------------
// ONNX

interface OnnxFacts {
  domains: Set<string>;
  externalLocations: string[];
}

function readStringField(bytes: Uint8Array, field: number): string[] {
  const out: string[] = [];
  const r = Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === field && (tag & 7) === WIRE_LEN) out.push(r.string());
    else r.skipType(tag & 7);
  }
  return out;
}

/** TensorProto: external_data (13) entries {key 1, value 2}; `location` is the file. */
function tensorLocations(bytes: Uint8Array, into: string[]): void {
  const r = Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 13 && (tag & 7) === WIRE_LEN) {
      const entry = r.bytes();
      const [key] = readStringField(entry, 1);
      const [value] = readStringField(entry, 2);
      if (key === 'location' && value !== undefined) into.push(value);
    } else r.skipType(tag & 7);
  }
}

/** AttributeProto: t (5) tensor, g (6) graph, tensors (10), graphs (11). */
function readAttributeFacts(bytes: Uint8Array, facts: OnnxFacts, depth: number): void {
  const r = Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = tag >>> 3;
    if ((f === 6 || f === 11) && (tag & 7) === WIRE_LEN) readGraphFacts(r.bytes(), facts, depth + 1);
    else if ((f === 5 || f === 10) && (tag & 7) === WIRE_LEN)
      tensorLocations(r.bytes(), facts.externalLocations);
    else r.skipType(tag & 7);
  }
}

/** NodeProto: domain (7), attribute (5). */
function readNodeFacts(bytes: Uint8Array, facts: OnnxFacts, depth: number): void {
  const r = Reader.create(bytes);
  let domain = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = tag >>> 3;
    if (f === 7 && (tag & 7) === WIRE_LEN) domain = r.string();
    else if (f === 5 && (tag & 7) === WIRE_LEN) readAttributeFacts(r.bytes(), facts, depth);
    else r.skipType(tag & 7);
  }
  facts.domains.add(domain);
}

/** Deepest subgraph nesting read; deeper is refused (a crafted file could recurse without end). */
const MAX_GRAPH_DEPTH = 32;

/** GraphProto: node (1), initializer (5), sparse_initializer (15: values 1, indices 2). */
function readGraphFacts(bytes: Uint8Array, facts: OnnxFacts, depth: number): void {
  if (depth > MAX_GRAPH_DEPTH) throw new Error('subgraphs nested too deep');
  const r = Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = tag >>> 3;
    if (f === 1 && (tag & 7) === WIRE_LEN) readNodeFacts(r.bytes(), facts, depth);
    else if (f === 5 && (tag & 7) === WIRE_LEN) tensorLocations(r.bytes(), facts.externalLocations);
    else if (f === 15 && (tag & 7) === WIRE_LEN) {
      const sparse = r.bytes();
      const sr = Reader.create(sparse);
      while (sr.pos < sr.len) {
        const t = sr.uint32();
        if ((t >>> 3 === 1 || t >>> 3 === 2) && (t & 7) === WIRE_LEN)
          tensorLocations(sr.bytes(), facts.externalLocations);
        else sr.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
}

/**
 * Reads a ModelProto's operator domains and external-data locations, or undefined when the bytes
 * are not an ONNX model: ir_version (1), graph (7), opset_import (8: domain 1), functions (25:
 * node 3, opset_import 9, domain 10).
 */
export function readOnnxFacts(bytes: Buffer): OnnxFacts | undefined {
  const facts: OnnxFacts = { domains: new Set(), externalLocations: [] };
  let irVersion = false;
  let graph = false;
  try {
    const r = Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f === 0) return undefined;
      if (f === 1 && wire === 0) {
        r.int64();
        irVersion = true;
      } else if (f === 7 && wire === WIRE_LEN) {
        readGraphFacts(r.bytes(), facts, 0);
        graph = true;
      } else if (f === 8 && wire === WIRE_LEN) {
        for (const d of readStringField(r.bytes(), 1)) facts.domains.add(d);
      } else if (f === 25 && wire === WIRE_LEN) {
        const fn = r.bytes();
        const fr = Reader.create(fn);
        while (fr.pos < fr.len) {
          const t = fr.uint32();
          const ff = t >>> 3;
          if (ff === 3 && (t & 7) === WIRE_LEN) readNodeFacts(fr.bytes(), facts, 1);
          else if (ff === 9 && (t & 7) === WIRE_LEN)
            for (const d of readStringField(fr.bytes(), 1)) facts.domains.add(d);
          else if (ff === 10 && (t & 7) === WIRE_LEN) facts.domains.add(fr.string());
          else fr.skipType(t & 7);
        }
      } else r.skipType(wire);
    }
  } catch {
    return undefined;
  }
  return irVersion && graph ? facts : undefined;
}

/** The folder-relative path an external-data location names, or why it is refused. */
export function resolveExternalLocation(
  modelPath: string,
  location: string,
): { path: string } | { refused: string } {
  if (location.length === 0) return { refused: 'empty external-data location' };
  if (location.includes('\0')) return { refused: 'external-data location holds a NUL byte' };
  if (
    location.startsWith('/') ||
    location.startsWith('\\') ||
    /^[A-Za-z]:/.test(location) ||
    location.includes('://')
  )
    return { refused: `external-data location ${JSON.stringify(location)} is absolute` };
  const base = modelPath.split('/').slice(0, -1);
  for (const part of location.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (base.length === 0)
        return { refused: `external-data location ${JSON.stringify(location)} escapes the model folder` };
      base.pop();
    } else base.push(part);
  }
  return { path: base.join('/') };
}

// ---------------------------------------------------------------------------------------------------
// The scan

/** Bytes below 0x20 other than tab, newline, vertical tab, form feed and carriage return: not text. */
function hasControlBytes(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 && (c < 0x09 || c > 0x0d)) return true;
  return false;
}

/** What a file is, judged by content; `detail` says why a refused kind is refused. */
export function classify(path: string, b: Buffer): { kind: FileKind; detail?: string } {
  if (isBinaryPickle(b)) return { kind: 'pickle', detail: `${pickleFlavour(b)} (protocol ${b[1]})` };
  const zip = zipEntries(b);
  if (zip) {
    const names = zip.map((e) => e.name);
    if (names.some((n) => n === 'data.pkl' || n.endsWith('/data.pkl')))
      return { kind: 'pytorch-zip', detail: 'PyTorch zip archive holding a pickle (data.pkl)' };
    const config = zip.find((e) => e.name === 'config.json');
    if (config && names.some((n) => n.endsWith('.weights.h5') || n === 'metadata.json')) {
      const text = zipMember(b, config)?.toString('utf8') ?? '';
      return {
        kind: 'keras-archive',
        detail: hasKerasLambda(text) ? 'Keras archive with a Lambda layer (arbitrary code)' : 'Keras archive',
      };
    }
    if (names.some((n) => n.endsWith('.pkl') || n.endsWith('.pickle')))
      return { kind: 'zip', detail: 'zip archive holding pickles' };
    return { kind: 'zip', detail: 'zip archive' };
  }
  if (b.subarray(0, 8).equals(HDF5_MAGIC)) {
    const lambda = hasKerasLambda(b.toString('latin1'));
    return {
      kind: 'hdf5',
      detail: lambda ? 'Keras HDF5 model with a Lambda layer (arbitrary code)' : 'HDF5 file',
    };
  }
  const compressed = compressedKind(b);
  if (compressed)
    return {
      kind: 'compressed-pickle',
      detail: `${compressed}: compressed content (joblib pickles are stored so)`,
    };
  if (readOnnxFacts(b)) return { kind: 'onnx' };
  let text: string | undefined;
  try {
    text = utf8.decode(b);
  } catch {
    text = undefined;
  }
  if (text !== undefined && !hasControlBytes(b)) {
    if (isTextPickle(b)) return { kind: 'pickle', detail: `${pickleFlavour(b)} (text protocol)` };
    try {
      JSON.parse(text);
      return hasKerasLambda(text)
        ? { kind: 'json', detail: 'Keras model config with a Lambda layer (arbitrary code)' }
        : { kind: 'json' };
    } catch {
      if (TEXT_METADATA_SUFFIXES.some((s) => path.toLowerCase().endsWith(s))) return { kind: 'text' };
      return { kind: 'unknown', detail: 'text that is neither JSON nor a metadata file' };
    }
  }
  return { kind: 'unknown', detail: 'binary content of no allowed format' };
}

/** Scans a model folder's files (paths relative to the folder). */
export function scanModelFiles(
  files: ReadonlyArray<{ path: string; content: Buffer }>,
  options: { allowedDomains?: readonly string[] } = {},
): ScanReport {
  const allowed = new Set(options.allowedDomains ?? DEFAULT_ALLOWED_DOMAINS);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const findings: ScanFinding[] = [];
  const kinds = new Map<string, FileKind>();
  const externalData = new Set<string>();
  const classified = files.map((f) => ({ f, c: classify(f.path, f.content) }));
  for (const { f, c } of classified) {
    kinds.set(f.path, c.kind);
    if (c.kind !== 'onnx') continue;
    const facts = readOnnxFacts(f.content);
    if (!facts) continue;
    for (const d of facts.domains)
      if (!allowed.has(d))
        findings.push({
          path: f.path,
          kind: 'onnx',
          reason: `ONNX operator domain ${JSON.stringify(d)} is not allowed`,
        });
    for (const loc of facts.externalLocations) {
      const r = resolveExternalLocation(f.path, loc);
      if ('refused' in r) findings.push({ path: f.path, kind: 'onnx', reason: r.refused });
      else if (!byPath.has(r.path))
        findings.push({
          path: f.path,
          kind: 'onnx',
          reason: `external data ${JSON.stringify(loc)} is not in the model folder`,
        });
      else externalData.add(r.path);
    }
  }
  const report: ScanReport['files'] = [];
  for (const { f, c } of classified) {
    let kind = c.kind;
    let accepted: boolean;
    if (externalData.has(f.path) && (kind === 'unknown' || kind === 'text' || kind === 'json')) {
      kind = 'onnx-external-data';
      accepted = true;
    } else if (kind === 'onnx') accepted = !findings.some((x) => x.path === f.path);
    else if ((kind === 'json' || kind === 'text') && c.detail === undefined) accepted = true;
    else {
      accepted = false;
      findings.push({ path: f.path, kind, reason: `${c.detail ?? kind}: not an allowed model format` });
    }
    report.push({ path: f.path, kind, accepted });
  }
  return { ok: findings.length === 0, files: report, findings };
}
