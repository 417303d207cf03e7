/**
 * Configuration of the guarded chat route (`POST /v1/chat/completions`): the OpenAI-compatible
 * upstream it proxies to, the system prompt it protects, the guard policy, and the limits. Loaded from
 * the JSON file named by `MLOPS_GATEWAY_LLM_CONFIG` (no file: no chat route); secrets (the upstream's API
 * key, the canary secret) come from environment variables named in the file, never the file itself.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatZodError } from '../../core/contracts/errors';

/** Time to the upstream's response headers: a cold vLLM/Ollama model can take several seconds. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
/** Longest silence between two streamed chunks before the stream counts as broken off. */
export const DEFAULT_UPSTREAM_IDLE_MS = 30_000;
/** Largest non-streaming upstream answer read: far above any chat completion. */
export const DEFAULT_UPSTREAM_MAX_BYTES = 4 * 1024 * 1024;
/** Largest request body: a long conversation with pasted documents fits in 1 MiB. */
export const DEFAULT_CHAT_MAX_BODY_BYTES = 1024 * 1024;
/** Deepest JSON nesting: messages -> content parts -> part fields is four levels. */
export const DEFAULT_CHAT_MAX_JSON_DEPTH = 8;
/** Most messages in one request: long conversations are a few hundred turns. */
export const DEFAULT_MAX_MESSAGES = 512;
/** Longest single message, in characters. */
export const DEFAULT_MAX_MESSAGE_CHARS = 64 * 1024;
/** Longest conversation, in characters (about 64k tokens). */
export const DEFAULT_MAX_TOTAL_CHARS = 256 * 1024;
/** Completion tokens asked of the upstream when the client names none, and the most it may ask for. */
export const DEFAULT_MAX_COMPLETION_TOKENS = 1024;
/** Per-principal token budget refill: 20k tokens a minute is a busy interactive user. */
export const DEFAULT_TOKENS_PER_MINUTE = 20_000;
/** Per-principal token bucket depth. */
export const DEFAULT_TOKEN_BURST = 40_000;
/** What a client sees instead of a blocked answer. */
export const DEFAULT_SAFE_MESSAGE =
  "I'm sorry, I can't help with that. Is there anything else about your order I can do?";

const Action = z.enum(['block', 'flag', 'pass']);

export const ChatRouteConfigSchema = z
  .object({
    upstream: z
      .object({
        /** Base URL of an OpenAI-compatible API, up to and including `/v1`. */
        baseUrl: z.url(),
        /** Environment variable holding the upstream's bearer token (hosted APIs). */
        apiKeyEnv: z
          .string()
          .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
          .optional(),
        /** Model name sent upstream, overriding the client's. */
        model: z.string().min(1).optional(),
        timeoutMs: z.number().int().positive().default(DEFAULT_UPSTREAM_TIMEOUT_MS),
        idleTimeoutMs: z.number().int().positive().default(DEFAULT_UPSTREAM_IDLE_MS),
        maxResponseBytes: z.number().int().positive().default(DEFAULT_UPSTREAM_MAX_BYTES),
      })
      .strict(),
    /** The deployment's system prompt: prepended to every conversation and protected from leaking. */
    systemPrompt: z.string().max(DEFAULT_MAX_MESSAGE_CHARS).optional(),
    /** Environment variable with a secret that makes canaries stable per `X-Conversation-Id`. */
    canarySecretEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    policy: z
      .object({
        input: Action.default('block'),
        leak: Action.default('block'),
        moderation: Action.default('block'),
        pii: z.enum(['redact', 'block', 'flag', 'pass']).default('redact'),
      })
      .strict()
      .default({ input: 'block', leak: 'block', moderation: 'block', pii: 'redact' }),
    thresholds: z
      .object({
        /** Input classifier probability that is a detection (default: its 1%-FPR threshold). */
        inputClassifier: z.number().min(0).max(1).optional(),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        maxBodyBytes: z.number().int().positive().default(DEFAULT_CHAT_MAX_BODY_BYTES),
        maxJsonDepth: z.number().int().positive().default(DEFAULT_CHAT_MAX_JSON_DEPTH),
        maxMessages: z.number().int().positive().default(DEFAULT_MAX_MESSAGES),
        maxMessageChars: z.number().int().positive().default(DEFAULT_MAX_MESSAGE_CHARS),
        maxTotalChars: z.number().int().positive().default(DEFAULT_MAX_TOTAL_CHARS),
        maxCompletionTokens: z.number().int().positive().default(DEFAULT_MAX_COMPLETION_TOKENS),
        tokensPerMinute: z.number().positive().default(DEFAULT_TOKENS_PER_MINUTE),
        tokenBurst: z.number().positive().default(DEFAULT_TOKEN_BURST),
      })
      .strict()
      .default({
        maxBodyBytes: DEFAULT_CHAT_MAX_BODY_BYTES,
        maxJsonDepth: DEFAULT_CHAT_MAX_JSON_DEPTH,
        maxMessages: DEFAULT_MAX_MESSAGES,
        maxMessageChars: DEFAULT_MAX_MESSAGE_CHARS,
        maxTotalChars: DEFAULT_MAX_TOTAL_CHARS,
        maxCompletionTokens: DEFAULT_MAX_COMPLETION_TOKENS,
        tokensPerMinute: DEFAULT_TOKENS_PER_MINUTE,
        tokenBurst: DEFAULT_TOKEN_BURST,
      }),
    safeMessage: z.string().min(1).default(DEFAULT_SAFE_MESSAGE),
    /** Trained guard artifacts; absent: built or found in the cache (src/guardrails/train/artifacts.ts). */
    models: z
      .object({
        inputModelDir: z.string().min(1),
        outputModelDir: z.string().min(1),
        lexiconPath: z.string().min(1),
      })
      .strict()
      .optional(),
    /** Hash-chained audit log that leak and block events are appended to. */
    auditLog: z.string().min(1).optional(),
  })
  .strict();
export type ChatRouteConfig = z.output<typeof ChatRouteConfigSchema>;
export type ChatRouteConfigInput = z.input<typeof ChatRouteConfigSchema>;

export class ChatRouteConfigError extends Error {
  override readonly name = 'ChatRouteConfigError';
}

export function parseChatRouteConfig(input: unknown): ChatRouteConfig {
  const r = ChatRouteConfigSchema.safeParse(input);
  if (!r.success) throw new ChatRouteConfigError(formatZodError(r.error, 'chat route config'));
  return r.data;
}

/** The chat route's configuration from `MLOPS_GATEWAY_LLM_CONFIG`, or undefined when unset. */
export function loadChatRouteConfig(env: NodeJS.ProcessEnv = process.env): ChatRouteConfig | undefined {
  const file = env.MLOPS_GATEWAY_LLM_CONFIG;
  if (!file) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ChatRouteConfigError(`MLOPS_GATEWAY_LLM_CONFIG=${file}: ${(err as Error).message}`);
  }
  return parseChatRouteConfig(raw);
}
