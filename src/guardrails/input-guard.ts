/**
 * The input guard: three layers over the messages a client sends, each scored and reported on its own.
 *
 *   normalisation (hiding tricks found) -> patterns (hand-written rules) -> classifier (trained, ONNX)
 *
 * The patterns and the classifier run over every segment normalisation produced (the visible text and
 * each decoded or hidden payload), keeping the worst. Each layer's score is put on one scale by
 * {@link calibrate}: 0.5 is that layer's detection threshold, so `score >= 0.5` means "detected" and the
 * layer with the highest calibrated score is the one reported as having fired.
 *
 * Only the last {@link MAX_SCANNED_MESSAGES} non-system messages are scanned (earlier turns were
 * scanned when they were sent), each cut to {@link MAX_SCANNED_CHARS}; the route bounds message count
 * and size before this runs.
 */
import type { LinearTextClassifier } from './classifier';
import { findingScore, normalise, type NormalisationFinding } from './normalize';
import { matchPatterns } from './patterns';

/** Trailing conversation turns scanned per request. */
export const MAX_SCANNED_MESSAGES = 16;
/** Characters of one message scanned: the head and tail beyond this go unscanned by the patterns. */
export const MAX_SCANNED_CHARS = 32_768;
/** Normalisation score at which hiding alone is a detection (tag characters are). */
export const DEFAULT_NORMALISATION_THRESHOLD = 0.9;
/** Patterns score at which the rules alone are a detection: one strong rule, or two middling ones. */
export const DEFAULT_PATTERNS_THRESHOLD = 0.8;

export const INPUT_LAYERS = ['normalisation', 'patterns', 'classifier'] as const;
export type InputLayer = (typeof INPUT_LAYERS)[number];

export interface LayerReport {
  /** The layer's own score (0..1). */
  raw: number;
  /** On the common scale: 0.5 is the layer's threshold. */
  score: number;
}

export interface InputVerdict {
  detected: boolean;
  /** The highest calibrated layer score. */
  score: number;
  /** The layer with the highest calibrated score (the one that fired when detected). */
  layer: InputLayer;
  layers: Record<InputLayer, LayerReport>;
  findings: Partial<Record<NormalisationFinding, number>>;
  hits: string[];
  ms: number;
}

/** Maps a layer score onto the common scale: [0, t) -> [0, 0.5), [t, 1] -> [0.5, 1]. Monotone. */
export function calibrate(x: number, threshold: number): number {
  const t = Math.min(Math.max(threshold, 1e-6), 1 - 1e-6);
  return x < t ? (0.5 * x) / t : 0.5 + (0.5 * (x - t)) / (1 - t);
}

export interface InputGuardOptions {
  classifier?: LinearTextClassifier;
  /** Classifier probability that is a detection; default the model's 1%-FPR threshold on benign validation. */
  classifierThreshold?: number;
  normalisationThreshold?: number;
  patternsThreshold?: number;
}

export interface ScannedMessage {
  role: string;
  content: string;
}

const cut = (s: string) =>
  s.length > MAX_SCANNED_CHARS
    ? `${s.slice(0, MAX_SCANNED_CHARS / 2)}\n${s.slice(-MAX_SCANNED_CHARS / 2)}`
    : s;

export class InputGuard {
  readonly classifierThreshold: number;
  private readonly normThreshold: number;
  private readonly patternsThreshold: number;

  constructor(private readonly opts: InputGuardOptions = {}) {
    this.classifierThreshold =
      opts.classifierThreshold ?? opts.classifier?.meta.thresholds.attack?.fpr1 ?? Number.POSITIVE_INFINITY;
    this.normThreshold = opts.normalisationThreshold ?? DEFAULT_NORMALISATION_THRESHOLD;
    this.patternsThreshold = opts.patternsThreshold ?? DEFAULT_PATTERNS_THRESHOLD;
  }

  /** Scans one text (a message's content). */
  async checkText(text: string): Promise<InputVerdict> {
    return this.check([{ role: 'user', content: text }]);
  }

  async check(messages: readonly ScannedMessage[]): Promise<InputVerdict> {
    const started = performance.now();
    let norm = 0;
    let pat = 0;
    let clf = 0;
    const hits = new Set<string>();
    const findings: Partial<Record<NormalisationFinding, number>> = {};
    let scanned = 0;
    for (let i = messages.length - 1; i >= 0 && scanned < MAX_SCANNED_MESSAGES; i--) {
      const m = messages[i] as ScannedMessage;
      if (m.role === 'system' || m.content.length === 0) continue;
      scanned++;
      const n = normalise(cut(m.content));
      for (const k in n.findings) {
        const f = k as NormalisationFinding;
        findings[f] = (findings[f] ?? 0) + (n.findings[f] as number);
      }
      norm = Math.max(norm, findingScore(n.findings));
      for (const seg of n.segments) {
        const p = matchPatterns(seg.text);
        pat = Math.max(pat, p.score);
        for (const h of p.hits) hits.add(seg.source === 'visible' ? h : `${h}@${seg.source}`);
        if (this.opts.classifier) {
          const [s] = await this.opts.classifier.score(seg.text);
          clf = Math.max(clf, s ?? 0);
        }
      }
    }
    const layers: Record<InputLayer, LayerReport> = {
      normalisation: { raw: norm, score: calibrate(norm, this.normThreshold) },
      patterns: { raw: pat, score: calibrate(pat, this.patternsThreshold) },
      classifier: { raw: clf, score: this.opts.classifier ? calibrate(clf, this.classifierThreshold) : 0 },
    };
    let layer: InputLayer = 'normalisation';
    for (const l of INPUT_LAYERS) if (layers[l].score > layers[layer].score) layer = l;
    const score = layers[layer].score;
    return {
      detected: score >= 0.5,
      score,
      layer,
      layers,
      findings,
      hits: [...hits],
      ms: performance.now() - started,
    };
  }
}
