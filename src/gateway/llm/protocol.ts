/**
 * The OpenAI chat-completions wire format, as far as the guarded route reads it: the request (zod, every
 * refusal naming its field), the upstream's answers (whole and streamed), and the SSE framing.
 *
 * Rules: fields the route does not understand are dropped, not forwarded (a field the guard cannot
 * see, such as `n > 1` or tool definitions, could carry what it is there to stop); `n` must be 1.
 */
import { z } from 'zod';

const TextPart = z.object({ type: z.literal('text'), text: z.string() }).strict();

export const ChatMessageSchema = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: z.union([z.string(), z.array(TextPart).max(64), z.null()]),
    name: z.string().max(64).optional(),
    tool_call_id: z.string().max(128).optional(),
  })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const ChatRequestSchema = z
  .object({
    model: z.string().min(1).max(256).optional(),
    messages: z.array(ChatMessageSchema).min(1, 'must hold at least one message'),
    stream: z.boolean().optional(),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z.union([z.string().max(64), z.array(z.string().max(64)).max(4)]).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    seed: z.number().int().optional(),
    user: z.string().max(256).optional(),
    n: z.literal(1, 'only n = 1 is served (every choice would need its own guard)').optional(),
  })
  .strip();
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** The text of a message: a string, or its text parts joined. */
export function messageText(m: ChatMessage): string {
  if (m.content === null) return '';
  if (typeof m.content === 'string') return m.content;
  return m.content.map((p) => p.text).join('\n');
}

export const UpstreamCompletionSchema = z.object({
  id: z.string().optional(),
  model: z.string().optional(),
  created: z.number().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().optional(),
        message: z.object({ role: z.string().optional(), content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1, 'must hold at least one choice'),
  usage: z
    .object({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() })
    .partial()
    .optional(),
});
export type UpstreamCompletion = z.infer<typeof UpstreamCompletionSchema>;

export const UpstreamChunkSchema = z.object({
  id: z.string().optional(),
  model: z.string().optional(),
  created: z.number().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().optional(),
        delta: z
          .object({ role: z.string().optional(), content: z.string().nullable().optional() })
          .optional(),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .default([]),
  usage: z
    .object({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() })
    .partial()
    .nullable()
    .optional(),
});
export type UpstreamChunk = z.infer<typeof UpstreamChunkSchema>;

/** Longest SSE line accepted from the upstream: a chunk is a few hundred bytes. */
export const MAX_SSE_LINE_BYTES = 256 * 1024;

/**
 * Splits an SSE byte stream into `data:` payloads (comments, `event:` and `id:` lines are skipped;
 * multi-line data is joined with newlines as the spec says).
 */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private readonly decoder = new TextDecoder('utf-8');

  /** Feeds bytes; returns the complete events' data. Throws on a line over {@link MAX_SSE_LINE_BYTES}. */
  push(bytes: Uint8Array): string[] {
    this.buf += this.decoder.decode(bytes, { stream: true });
    const out: string[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) !== -1) {
      let line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length > 0) out.push(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
    }
    if (this.buf.length > MAX_SSE_LINE_BYTES) throw new Error('upstream SSE line too long');
    return out;
  }
}

export const sseEvent = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
export const SSE_DONE = 'data: [DONE]\n\n';
