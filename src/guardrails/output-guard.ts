/**
 * The output guard of one answer: leak detection and moderation over a stream of deltas (or one
 * whole text), releasing only text both have judged.
 *
 * Holding back: the leak detector says how much raw output is settled (see leak.ts); of that, the last
 * {@link MODERATION_HOLDBACK_CHARS} are kept too, and a release ends at a space that does not sit inside
 * a number, so a word, an e-mail address or a card number is never judged or redacted in two halves.
 * Releases smaller than {@link MIN_RELEASE_CHARS} wait for more text (fewer classifier runs).
 *
 * On a detection under policy `block` the guard stops: nothing more is released and the caller sends
 * the safe message instead. Under `flag` the detection is recorded and text flows on; `pass` only
 * measures. PII is redacted from released text under policy `redact` (the default).
 */
import type { LeakDetector, LeakVerdict } from './leak';
import type { ModerationCategory, ModerationVerdict, OutputModerator } from './moderation';

/** Raw characters kept back for moderation and PII redaction: longer than any card number or IBAN. */
export const MODERATION_HOLDBACK_CHARS = 40;
/** Fewest characters released at once while streaming. */
export const MIN_RELEASE_CHARS = 48;
/** Characters of already released text given to moderation as context for the next piece. */
export const MODERATION_CONTEXT_CHARS = 240;

export type GuardAction = 'block' | 'flag' | 'pass';
export type PiiAction = 'redact' | 'block' | 'flag' | 'pass';

export interface OutputPolicy {
  leak: GuardAction;
  moderation: GuardAction;
  pii: PiiAction;
}

export interface OutputEvent {
  kind: 'leak' | 'moderation';
  action: GuardAction;
  reason: string;
  score: number;
  category?: ModerationCategory;
  source?: string;
}

export interface OutputStep {
  /** Text to send to the client now (possibly redacted). */
  emit: string;
  /** Set when the guard stopped the answer. */
  stopped?: OutputEvent;
}

export class OutputGuard {
  private raw = '';
  private released = 0;
  private stoppedBy: OutputEvent | undefined;
  private leakFlagged = false;
  private readonly flaggedCategories = new Set<string>();
  readonly events: OutputEvent[] = [];
  /** Moderation time spent, milliseconds (leak detection is counted in {@link leakMs}). */
  moderationMs = 0;
  leakMs = 0;
  worstModeration = 0;
  piiFound = 0;

  constructor(
    private readonly leak: LeakDetector,
    private readonly moderator: OutputModerator,
    private readonly policy: OutputPolicy,
  ) {}

  get stopped(): OutputEvent | undefined {
    return this.stoppedBy;
  }

  get leakVerdict(): LeakVerdict {
    return this.leak.verdict;
  }

  async push(delta: string): Promise<OutputStep> {
    if (this.stoppedBy) return { emit: '', stopped: this.stoppedBy };
    this.raw += delta;
    const t = performance.now();
    const lv = this.leak.push(delta);
    this.leakMs += performance.now() - t;
    const stop = this.onLeak(lv);
    if (stop) return { emit: '', stopped: stop };
    let safe = this.leakFlagged || this.policy.leak === 'pass' ? this.raw.length : lv.safeLength;
    safe = Math.min(safe, this.raw.length - MODERATION_HOLDBACK_CHARS);
    safe = this.snap(safe);
    if (safe - this.released < MIN_RELEASE_CHARS) return { emit: '' };
    return this.release(safe);
  }

  /** The answer ended: judges and releases the rest. */
  async finish(): Promise<OutputStep> {
    if (this.stoppedBy) return { emit: '', stopped: this.stoppedBy };
    const t = performance.now();
    const lv = this.leak.finish();
    this.leakMs += performance.now() - t;
    const stop = this.onLeak(lv);
    if (stop) return { emit: '', stopped: stop };
    return this.release(this.raw.length);
  }

  /** Whole-answer use (non-streaming): push, then finish; returns the text to send or the stop. */
  async checkWhole(text: string): Promise<{ text: string; stopped?: OutputEvent }> {
    const a = await this.push(text);
    if (a.stopped) return { text: '', stopped: a.stopped };
    const b = await this.finish();
    if (b.stopped) return { text: '', stopped: b.stopped };
    return { text: a.emit + b.emit };
  }

  private onLeak(lv: LeakVerdict): OutputEvent | undefined {
    if (!lv.leak || this.leakFlagged || this.policy.leak === 'pass') return undefined;
    const ev: OutputEvent = {
      kind: 'leak',
      action: this.policy.leak,
      reason: lv.reason ?? 'overlap',
      score: Math.max(lv.coverage, lv.reason === 'canary' ? 1 : Math.min(1, lv.longestRun / 160)),
    };
    this.events.push(ev);
    if (this.policy.leak === 'block') {
      this.stoppedBy = ev;
      return ev;
    }
    this.leakFlagged = true;
    return undefined;
  }

  /** The largest release end <= `end` that falls on a space outside a number (or the current end). */
  private snap(end: number): number {
    for (let i = end; i > this.released; i--) {
      const c = this.raw.charCodeAt(i - 1);
      if (c === 32 || c === 10) {
        const before = this.raw.charCodeAt(i - 2);
        const after = this.raw.charCodeAt(i);
        const digit = (x: number) => x >= 48 && x <= 57;
        if (!(digit(before) && (digit(after) || Number.isNaN(after)))) return i;
      }
    }
    return this.released;
  }

  private async release(end: number): Promise<OutputStep> {
    const piece = this.raw.slice(this.released, end);
    if (piece.length === 0) return { emit: '' };
    const context = this.raw.slice(Math.max(0, this.released - MODERATION_CONTEXT_CHARS), end);
    const t = performance.now();
    const mv: ModerationVerdict = await this.moderator.moderate(context);
    const pieceVerdict = mv.pii.length > 0 ? await this.moderator.moderate(piece, { classify: false }) : mv;
    this.moderationMs += performance.now() - t;
    this.worstModeration = Math.max(this.worstModeration, mv.score);
    if (mv.detected && mv.category !== 'privacy' && this.policy.moderation !== 'pass') {
      const key = `${mv.category}`;
      const ev: OutputEvent = {
        kind: 'moderation',
        action: this.policy.moderation,
        reason: `${mv.category} (${mv.source})`,
        score: mv.score,
        category: mv.category,
        source: mv.source,
      };
      if (this.policy.moderation === 'block') {
        this.events.push(ev);
        this.stoppedBy = ev;
        return { emit: '', stopped: ev };
      }
      if (!this.flaggedCategories.has(key)) {
        this.flaggedCategories.add(key);
        this.events.push(ev);
      }
    }
    let emit = piece;
    if (pieceVerdict.pii.length > 0) {
      this.piiFound += pieceVerdict.pii.length;
      if (this.policy.pii === 'block') {
        const ev: OutputEvent = {
          kind: 'moderation',
          action: 'block',
          reason: 'privacy (pii)',
          score: 0.9,
          category: 'privacy',
          source: 'pii',
        };
        this.events.push(ev);
        this.stoppedBy = ev;
        return { emit: '', stopped: ev };
      }
      if (this.policy.pii === 'flag' && !this.flaggedCategories.has('privacy')) {
        this.flaggedCategories.add('privacy');
        this.events.push({
          kind: 'moderation',
          action: 'flag',
          reason: 'privacy (pii)',
          score: 0.9,
          category: 'privacy',
          source: 'pii',
        });
      }
      if (this.policy.pii === 'redact') emit = pieceVerdict.redacted;
    }
    this.released = end;
    return { emit };
  }
}
