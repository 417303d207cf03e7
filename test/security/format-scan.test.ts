/**
 * The unsafe-format scanner on a corpus of malicious and benign samples generated here
 * (test/security/fixtures/make_corpus.py for the Python formats, protobuf by hand for ONNX), judged
 * by content only, compared with PyPI `modelscan` (reference venv `scanner`) on the same files. The
 * comparison table is printed; every malicious sample must be caught by ours, every benign one
 * accepted. modelscan's verdicts are reported, not asserted (it is a denylist of unsafe pickle
 * globals; its Keras check needs its TensorFlow extras, which the reference venv leaves out).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Writer } from 'protobufjs/minimal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, resolveExternalLocation, scanModelFiles } from '../../src/security/format-scan';
import { ensureReferenceEnv } from '../../src/stack/provision';

const run = promisify(execFile);
const FIXTURE_ONNX = path.join(__dirname, '..', 'fixtures', 'models', 'good', 'model.onnx');
const LEN = 2;
const key = (field: number, wire: number) => (field << 3) | wire;

/** A minimal ONNX ModelProto: one Relu node in `domain`, optionally an initializer stored externally. */
function onnxModel(opts: { domain?: string; externalLocation?: string } = {}): Buffer {
  const domain = opts.domain ?? '';
  const node = Writer.create()
    .uint32(key(1, LEN))
    .string('x')
    .uint32(key(2, LEN))
    .string('y')
    .uint32(key(4, LEN))
    .string('Relu')
    .uint32(key(7, LEN))
    .string(domain)
    .finish();
  const graph = Writer.create().uint32(key(1, LEN)).bytes(node).uint32(key(2, LEN)).string('g');
  if (opts.externalLocation !== undefined) {
    const entry = Writer.create()
      .uint32(key(1, LEN))
      .string('location')
      .uint32(key(2, LEN))
      .string(opts.externalLocation)
      .finish();
    const tensor = Writer.create()
      .uint32(key(8, LEN))
      .string('w')
      .uint32(key(13, LEN))
      .bytes(entry)
      .uint32(key(14, 0))
      .int32(1)
      .finish();
    graph.uint32(key(5, LEN)).bytes(tensor);
  }
  const opset = Writer.create().uint32(key(1, LEN)).string(domain).uint32(key(2, 0)).int64(17).finish();
  return Buffer.from(
    Writer.create()
      .uint32(key(1, 0))
      .int64(8)
      .uint32(key(7, LEN))
      .bytes(graph.finish())
      .uint32(key(8, LEN))
      .bytes(opset)
      .finish(),
  );
}

interface Sample {
  name: string;
  malicious: boolean;
  files: Array<{ path: string; content: Buffer }>;
}

let work: string;
let corpus: string;
const samples: Sample[] = [];
let modelscanVerdicts = new Map<string, string>();

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'mlops-scan-'));
  corpus = path.join(work, 'corpus');
  const python = ensureReferenceEnv('scanner');
  await run(python, [path.join(__dirname, 'fixtures', 'make_corpus.py'), corpus]);
  for (const file of readdirSync(corpus).sort()) {
    const [name = file, inner = file] = file.split('__');
    samples.push({
      name,
      malicious: !name.startsWith('benign'),
      files: [{ path: inner, content: readFileSync(path.join(corpus, file)) }],
    });
  }
  const onnx: Sample[] = [
    {
      name: 'benign-onnx-sklearn',
      malicious: false,
      files: [{ path: 'model.onnx', content: readFileSync(FIXTURE_ONNX) }],
    },
    {
      name: 'benign-onnx-with-metadata',
      malicious: false,
      files: [
        { path: 'model.onnx', content: readFileSync(FIXTURE_ONNX) },
        { path: 'input_schema.json', content: Buffer.from('{"features":["amount"]}') },
        { path: 'README.md', content: Buffer.from('# fraud model\n') },
      ],
    },
    {
      name: 'benign-onnx-external-data',
      malicious: false,
      files: [
        { path: 'model.onnx', content: onnxModel({ externalLocation: 'weights/w.bin' }) },
        { path: 'weights/w.bin', content: Buffer.from(new Float32Array([1, 2, 3, 4]).buffer) },
      ],
    },
    {
      name: 'onnx-custom-domain',
      malicious: true,
      files: [{ path: 'model.onnx', content: onnxModel({ domain: 'com.evil.ops' }) }],
    },
    {
      name: 'onnx-external-escape',
      malicious: true,
      files: [{ path: 'model.onnx', content: onnxModel({ externalLocation: '../../../etc/passwd' }) }],
    },
    {
      name: 'onnx-external-absolute',
      malicious: true,
      files: [{ path: 'model.onnx', content: onnxModel({ externalLocation: '/etc/shadow' }) }],
    },
    {
      name: 'onnx-external-pickle',
      malicious: true,
      files: [
        { path: 'model.onnx', content: onnxModel({ externalLocation: 'w.bin' }) },
        { path: 'w.bin', content: readFileSync(path.join(corpus, 'pickle-os-system__model.pkl')) },
      ],
    },
  ];
  samples.push(...onnx);
  // modelscan sees each sample as a folder of its own files, all under one root.
  const msRoot = path.join(work, 'modelscan');
  for (const s of samples) {
    for (const f of s.files) {
      const target = path.join(msRoot, s.name, f.path);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, f.content);
    }
  }
  const report = path.join(work, 'modelscan.json');
  await run(path.join(path.dirname(python), 'modelscan'), ['-p', msRoot, '-r', 'json', '-o', report]).catch(
    () => undefined,
  );
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    issues: Array<{ source: string; description: string }>;
    errors: Array<{ source?: string; category: string }>;
    summary: {
      scanned?: { scanned_files?: string[] };
      skipped?: { skipped_files?: Array<{ source: string }> };
    };
  };
  const of = (source: string | undefined) => (source ?? '').split(/[/:]/)[0] ?? '';
  modelscanVerdicts = new Map(samples.map((s) => [s.name, 'not scanned']));
  for (const f of json.summary.skipped?.skipped_files ?? [])
    modelscanVerdicts.set(of(f.source), 'not scanned');
  for (const f of json.summary.scanned?.scanned_files ?? []) modelscanVerdicts.set(of(f), 'passed');
  for (const e of json.errors) if (e.source) modelscanVerdicts.set(of(e.source), `error (${e.category})`);
  for (const i of json.issues) modelscanVerdicts.set(of(i.source), 'flagged');
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('unsafe-format scanner', () => {
  it('catches every malicious sample, accepts every benign one, and prints the table against modelscan', () => {
    const rows = samples.map((s) => {
      const r = scanModelFiles(s.files);
      return {
        sample: s.name,
        expected: s.malicious ? 'refuse' : 'accept',
        ours: r.ok ? 'accepted' : 'refused',
        why: r.findings[0]?.reason ?? '',
        modelscan: modelscanVerdicts.get(s.name) ?? 'not scanned',
      };
    });
    const caughtMs = rows.filter((r) => r.expected === 'refuse' && r.modelscan === 'flagged').length;
    const malicious = rows.filter((r) => r.expected === 'refuse').length;
    const line = (c: string[]) => `| ${c.join(' | ')} |`;
    console.log(
      [
        line(['sample', 'expected', 'ours', 'modelscan 0.8.8', 'our reason']),
        line(['---', '---', '---', '---', '---']),
        ...rows.map((r) => line([r.sample, r.expected, r.ours, r.modelscan, r.why])),
        `caught: ours ${rows.filter((r) => r.expected === 'refuse' && r.ours === 'refused').length}/${malicious}, modelscan ${caughtMs}/${malicious}; benign accepted: ours ${rows.filter((r) => r.expected === 'accept' && r.ours === 'accepted').length}/${rows.length - malicious}`,
      ].join('\n'),
    );
    for (const r of rows)
      expect(`${r.sample}: ${r.ours}`).toBe(
        `${r.sample}: ${r.expected === 'refuse' ? 'refused' : 'accepted'}`,
      );
    expect(malicious).toBeGreaterThanOrEqual(15);
  });

  it('judges by content, not by name', () => {
    const evil = samples.find((s) => s.name === 'pickle-renamed-onnx')?.files[0];
    expect(evil?.path).toBe('model.onnx');
    expect(classify('model.onnx', evil!.content).kind).toBe('pickle');
    expect(classify('model.pkl', readFileSync(FIXTURE_ONNX)).kind).toBe('onnx');
    expect(classify('data.bin', Buffer.from('{"a":1}')).kind).toBe('json');
  });

  it('resolves external-data locations inside the folder only', () => {
    expect(resolveExternalLocation('sub/model.onnx', '../w.bin')).toEqual({ path: 'w.bin' });
    expect(resolveExternalLocation('model.onnx', '../w.bin')).toHaveProperty('refused');
    expect(resolveExternalLocation('model.onnx', 'C:\\w.bin')).toHaveProperty('refused');
    expect(resolveExternalLocation('model.onnx', 'file:///w.bin')).toHaveProperty('refused');
  });
});
