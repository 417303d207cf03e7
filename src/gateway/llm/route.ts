/**
 * The guarded chat route: `POST /v1/chat/completions`, OpenAI-compatible, streaming (SSE) and not,
 * proxied to the configured upstream. One request runs:
 *
 *   auth -> request limit -> body (size, UTF-8, depth, JSON, schema, message bounds) -> token limit
 *     -> input guard (normalisation, patterns, classifier) -> system prompt + canary -> upstream
 *     -> output guard on every delta (leak, moderation, PII) -> client
 *
 * The gateway's own authenticator, request limiter, access log and metrics registry are handed in per
 * request ({@link ChatContext}), so this route shares them with the predict route. A refusal is JSON
 * `{error: {code, type, message}}` naming the problem; once a stream has started, a failure is one last
 * SSE event with an `error` object and then `[DONE]`. A blocked answer ends with the safe message and
 * `finish_reason: "content_filter"`. Nothing a user or the model wrote is logged: the access log gets
 * scores, layers, categories, sizes and (redacted) reasons only; leaks go to the audit log.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from 'pino';
import type client from 'prom-client';
import { formatZodError } from '../../core/contracts/errors';
import type { AuditSink } from '../../audit/sink';
import { JsonlAuditSink } from '../../audit/jsonl-sink';
import { LinearTextClassifier } from '../../guardrails/classifier';
import { InputGuard, type InputVerdict } from '../../guardrails/input-guard';
import { canaryFor, canaryLine, LeakDetector } from '../../guardrails/leak';
import { OutputModerator } from '../../guardrails/moderation';
import { OutputGuard, type OutputEvent } from '../../guardrails/output-guard';
import { ensureGuardArtifacts, readLexicon } from '../../guardrails/train/artifacts';
import type { Authenticator, Principal } from '../auth';
import { redactText } from '../pii';
import { readBodyBytes } from '../http-body';
import { admitRate, authenticateRequest, requireJson, requireRole } from '../admission';
import type { RateLimiter } from '../rate-limit';
import { jsonDepthExceeds } from '../validation';
import type { ChatRouteConfig } from './config';
import { ChatMetrics } from './metrics';
import {
  ChatRequestSchema,
  messageText,
  SSE_DONE,
  SseParser,
  sseEvent,
  UpstreamChunkSchema,
  UpstreamCompletionSchema,
  type ChatMessage,
  type ChatRequest,
} from './protocol';
import { estimateTokens, TokenLimiter } from './token-limit';
import { HttpError } from '../http-error';

export const CHAT_COMPLETIONS_PATH = '/v1/chat/completions';
/** Header naming the conversation: with a canary secret configured, its canary stays the same across turns. */
export const CONVERSATION_HEADER = 'x-conversation-id';
/** Header telling the client what the guard flagged (never what was written). */
export const GUARD_HEADER = 'x-guardrails';
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const CONVERSATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Most characters of an upstream error body passed on to the client (redacted). */
const UPSTREAM_ERROR_CHARS = 200;

/** What the route takes from the gateway it is mounted in. */
export interface ChatContext {
  auth: Authenticator;
  limiter: RateLimiter;
  metrics: { registry: client.Registry };
  accessLog?: Logger;
  config: { redaction: boolean };
}

export interface ChatRoute {
  handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: ChatContext): Promise<void>;
  close(): Promise<void>;
}

export interface Guards {
  input: InputGuard;
  moderator: OutputModerator;
  close(): Promise<void>;
}

/** Loads the trained guard models (from the config, or the cache, training them on first use). */
export async function loadGuards(config: ChatRouteConfig): Promise<Guards> {
  const models =
    config.models ??
    (() => {
      const a = ensureGuardArtifacts();
      return { inputModelDir: a.inputModelDir, outputModelDir: a.outputModelDir, lexiconPath: a.lexiconPath };
    })();
  const inputClf = await LinearTextClassifier.load(models.inputModelDir);
  const outputClf = await LinearTextClassifier.load(models.outputModelDir);
  return {
    input: new InputGuard({ classifier: inputClf, classifierThreshold: config.thresholds.inputClassifier }),
    moderator: new OutputModerator({
      lexicon: readLexicon(models.lexiconPath),
      classifier: outputClf,
      piiDetects: config.policy.pii === 'block' || config.policy.pii === 'flag',
    }),
    async close() {
      await inputClf.close();
      await outputClf.close();
    },
  };
}

const errorJson = (code: string, message: string) =>
  JSON.stringify({
    error: { code, type: code.startsWith('upstream') ? 'upstream_error' : 'invalid_request_error', message },
  });

/** Parses and bounds the request; every refusal names the field. */
function parseRequest(body: Buffer, config: ChatRouteConfig): ChatRequest {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new HttpError(400, 'invalid_utf8', 'request body is not valid UTF-8');
  }
  if (text.trim() === '') throw new HttpError(400, 'empty_body', 'request body is empty');
  const lim = config.limits;
  if (jsonDepthExceeds(text, lim.maxJsonDepth))
    throw new HttpError(400, 'too_deep', `JSON nesting deeper than ${lim.maxJsonDepth} levels`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'malformed_json', `body is not valid JSON: ${(err as Error).message}`);
  }
  const count = (raw as { messages?: unknown } | null)?.messages;
  if (Array.isArray(count) && count.length > lim.maxMessages) {
    throw new HttpError(
      413,
      'too_many_messages',
      `messages: ${count.length} messages exceed the limit of ${lim.maxMessages}`,
    );
  }
  const r = ChatRequestSchema.safeParse(raw);
  if (!r.success) throw new HttpError(400, 'invalid_request', formatZodError(r.error).replace(/\n/g, '; '));
  let total = 0;
  let userText = 0;
  r.data.messages.forEach((m, i) => {
    const t = messageText(m);
    if (t.length > lim.maxMessageChars) {
      throw new HttpError(
        413,
        'message_too_long',
        `messages[${i}].content: ${t.length} characters exceed the limit of ${lim.maxMessageChars}`,
      );
    }
    if (LONE_SURROGATE.test(t))
      throw new HttpError(400, 'invalid_utf8', `messages[${i}].content holds an unpaired UTF-16 surrogate`);
    total += t.length;
    if (m.role === 'user') userText += t.trim().length;
  });
  if (total > lim.maxTotalChars)
    throw new HttpError(
      413,
      'conversation_too_long',
      `messages: ${total} characters exceed the limit of ${lim.maxTotalChars}`,
    );
  if (userText === 0) throw new HttpError(400, 'empty_messages', 'messages: no user message has any text');
  return r.data;
}

interface Outcome {
  status: number;
  outcome: string;
  input?: InputVerdict;
  output?: {
    events: OutputEvent[];
    leakRun: number;
    leakCoverage: number;
    moderation: number;
    pii: number;
    ms: number;
  };
  promptTokens?: number;
  completionTokens?: number;
  upstreamStatus?: number;
  reason?: string;
}

export async function createChatRoute(
  config: ChatRouteConfig,
  opts: { guards?: Guards; audit?: AuditSink; env?: NodeJS.ProcessEnv } = {},
): Promise<ChatRoute> {
  const env = opts.env ?? process.env;
  const guards = opts.guards ?? (await loadGuards(config));
  const audit = opts.audit ?? (config.auditLog ? new JsonlAuditSink(config.auditLog) : undefined);
  const tokens = new TokenLimiter(config.limits.tokensPerMinute, config.limits.tokenBurst);
  const canarySecret =
    config.canarySecretEnv && env[config.canarySecretEnv]
      ? Buffer.from(env[config.canarySecretEnv] as string)
      : undefined;
  const upstreamKey = config.upstream.apiKeyEnv ? env[config.upstream.apiKeyEnv] : undefined;
  const completionsUrl = `${config.upstream.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const metricsByRegistry = new WeakMap<client.Registry, ChatMetrics>();
  const metricsFor = (r: client.Registry) => {
    let m = metricsByRegistry.get(r);
    if (!m) metricsByRegistry.set(r, (m = new ChatMetrics(r)));
    return m;
  };

  async function auditEvent(
    requestId: string,
    principal: string,
    model: string,
    ev: OutputEvent,
    stream: boolean,
  ) {
    if (!audit) return;
    await audit.append({
      eventId: `chat/${requestId}/${ev.kind}`,
      type: ev.kind === 'leak' ? 'guardrails.leak' : 'guardrails.output-blocked',
      workflowId: 'gateway-chat',
      model,
      actor: principal,
      at: new Date().toISOString(),
      details: {
        requestId,
        reason: ev.reason,
        action: ev.action,
        score: Number(ev.score.toFixed(4)),
        category: ev.category,
        stream,
      },
    });
  }

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: ChatContext,
  ): Promise<void> {
    const started = performance.now();
    const metrics = metricsFor(ctx.metrics.registry);
    const headerId = req.headers['x-request-id'];
    const requestId = typeof headerId === 'string' && REQUEST_ID.test(headerId) ? headerId : randomUUID();
    const out: Outcome = { status: 200, outcome: 'ok' };
    let principal: Principal | undefined;
    let stream = false;
    let upstreamModel = config.upstream.model ?? 'unknown';
    let reserved = 0;
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      if (req.method !== 'POST')
        throw new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' });
      principal = await authenticateRequest(ctx.auth, req);
      requireRole(principal, ['predict'], 'use the chat route');
      await admitRate(ctx.limiter, principal.id, undefined, 'request rate limit');
      requireJson(req);
      const request = parseRequest(await readBodyBytes(req, config.limits.maxBodyBytes), config);
      stream = request.stream === true;
      upstreamModel = config.upstream.model ?? request.model ?? 'default';

      const chars = request.messages.reduce((n, m) => n + messageText(m).length, 0);
      const promptEstimate = estimateTokens(
        chars + (config.systemPrompt?.length ?? 0),
        request.messages.length + 1,
      );
      const maxCompletion = Math.min(
        request.max_completion_tokens ?? request.max_tokens ?? config.limits.maxCompletionTokens,
        config.limits.maxCompletionTokens,
      );
      const tk = tokens.reserve(principal.id, promptEstimate + maxCompletion);
      if (!tk.allowed) {
        const retry = Math.max(1, Math.ceil(tk.retryAfterS));
        throw new HttpError(
          429,
          'token_rate_limited',
          `token rate limit exceeded (${promptEstimate + maxCompletion} tokens asked); retry in ${retry} s`,
          { 'retry-after': String(retry) },
        );
      }
      reserved = promptEstimate + maxCompletion;
      out.promptTokens = promptEstimate;

      // Input guard.
      const verdict = await guards.input.check(
        request.messages.map((m) => ({ role: m.role, content: messageText(m) })),
      );
      out.input = verdict;
      metrics.guardLatency.labels('input').observe(verdict.ms / 1000);
      for (const [layer, r] of Object.entries(verdict.layers))
        metrics.guardScore.labels('input', layer).observe(r.score);
      if (verdict.detected && config.policy.input !== 'pass') {
        metrics.detections.labels('input', verdict.layer, config.policy.input).inc();
        if (config.policy.input === 'block') {
          out.outcome = 'input_blocked';
          throw new HttpError(
            400,
            'input_blocked',
            `the request was refused by the input guard (layer ${verdict.layer}, score ${verdict.score.toFixed(2)})`,
            { [GUARD_HEADER]: `input=blocked; layer=${verdict.layer}` },
          );
        }
        res.setHeader(GUARD_HEADER, `input=flagged; layer=${verdict.layer}`);
      }

      // System prompt with this conversation's canary; the leak detector knows every system text.
      const convHeader = req.headers[CONVERSATION_HEADER];
      const conversationId =
        typeof convHeader === 'string' && CONVERSATION_ID.test(convHeader) ? convHeader : undefined;
      const canary = canaryFor(canarySecret, conversationId);
      const messages: { role: string; content: string }[] = request.messages.map((m: ChatMessage) => ({
        role: m.role,
        content: messageText(m),
      }));
      if (config.systemPrompt)
        messages.unshift({ role: 'system', content: `${config.systemPrompt}\n\n${canaryLine(canary)}` });
      else {
        const first = messages.find((m) => m.role === 'system' || m.role === 'developer');
        if (first) first.content = `${first.content}\n\n${canaryLine(canary)}`;
      }
      const secrets = messages
        .filter((m) => m.role === 'system' || m.role === 'developer')
        .map((m) => m.content);
      const guard = new OutputGuard(
        new LeakDetector(secrets, secrets.length > 0 ? [canary] : []),
        guards.moderator,
        config.policy,
      );

      const upstreamBody = {
        model: upstreamModel,
        messages,
        stream,
        max_tokens: maxCompletion,
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.top_p !== undefined ? { top_p: request.top_p } : {}),
        ...(request.stop !== undefined ? { stop: request.stop } : {}),
        ...(request.presence_penalty !== undefined ? { presence_penalty: request.presence_penalty } : {}),
        ...(request.frequency_penalty !== undefined ? { frequency_penalty: request.frequency_penalty } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(request.user !== undefined ? { user: request.user } : {}),
      };
      const upstream = await callUpstream(upstreamBody, abort, metrics, out);
      const finishOutput = () => {
        out.output = {
          events: guard.events,
          leakRun: guard.leakVerdict.longestRun,
          leakCoverage: guard.leakVerdict.coverage,
          moderation: guard.worstModeration,
          pii: guard.piiFound,
          ms: guard.leakMs + guard.moderationMs,
        };
        metrics.guardLatency.labels('output').observe(out.output.ms / 1000);
        metrics.guardScore.labels('output', 'moderation').observe(guard.worstModeration);
        for (const ev of guard.events) {
          if (ev.kind === 'leak') metrics.leaks.labels(ev.reason, ev.action).inc();
          metrics.detections
            .labels('output', ev.kind === 'leak' ? 'leak' : (ev.category ?? 'moderation'), ev.action)
            .inc();
          if (ev.kind === 'leak' || ev.action === 'block') {
            auditEvent(requestId, principal?.id ?? 'unknown', upstreamModel, ev, stream).catch((err: Error) =>
              ctx.accessLog?.error({
                reqId: requestId,
                decision: 'audit_failed',
                reason: redactText(err.message).text,
              }),
            );
          }
        }
        if (guard.stopped) out.outcome = 'output_blocked';
      };

      if (!stream) {
        const completion = await readCompletion(upstream, abort, metrics);
        const content = completion.choices[0]?.message.content ?? '';
        const judged = await guard.checkWhole(content);
        finishOutput();
        const usage = completion.usage ?? {};
        out.completionTokens = usage.completion_tokens ?? estimateTokens(content.length, 0);
        if (usage.prompt_tokens !== undefined) out.promptTokens = usage.prompt_tokens;
        const body = {
          id: completion.id ?? `chatcmpl-${requestId}`,
          object: 'chat.completion',
          created: completion.created ?? Math.floor(Date.now() / 1000),
          model: completion.model ?? upstreamModel,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: judged.stopped ? config.safeMessage : judged.text },
              finish_reason: judged.stopped
                ? 'content_filter'
                : (completion.choices[0]?.finish_reason ?? 'stop'),
            },
          ],
          usage: {
            prompt_tokens: out.promptTokens,
            completion_tokens: out.completionTokens,
            total_tokens: (out.promptTokens ?? 0) + out.completionTokens,
          },
        };
        if (judged.stopped) res.setHeader(GUARD_HEADER, `output=blocked; reason=${judged.stopped.kind}`);
        sendJson(res, 200, JSON.stringify(body), { 'x-request-id': requestId });
      } else {
        await relayStream(upstream, res, guard, abort, metrics, out, requestId, upstreamModel);
        finishOutput();
      }
    } catch (err) {
      if (err instanceof HttpError) {
        out.status = err.status;
        if (out.outcome === 'ok')
          out.outcome = err.code.startsWith('upstream') ? 'upstream_error' : 'refused';
        out.reason = err.message;
        sendJson(res, err.status, errorJson(err.code, err.message), {
          'x-request-id': requestId,
          ...err.headers,
        });
      } else {
        out.status = 500;
        out.outcome = 'error';
        out.reason = (err as Error).message;
        sendJson(res, 500, errorJson('internal', 'chat completion failed'), { 'x-request-id': requestId });
      }
    } finally {
      if (principal && reserved > 0) {
        const used = (out.promptTokens ?? 0) + (out.completionTokens ?? 0);
        tokens.settle(principal.id, used - reserved);
      }
      if (out.promptTokens) metrics.tokens.labels('prompt').inc(out.promptTokens);
      if (out.completionTokens) metrics.tokens.labels('completion').inc(out.completionTokens);
      const ms = performance.now() - started;
      metrics.requests.labels(String(out.status), out.outcome, String(stream)).inc();
      metrics.duration.labels(String(stream)).observe(ms / 1000);
      const redact = (s: string) => (ctx.config.redaction ? redactText(s).text : s);
      ctx.accessLog?.info({
        reqId: requestId,
        route: 'chat',
        principal: principal ? redact(principal.id) : undefined,
        model: upstreamModel,
        stream,
        status: out.status,
        decision: out.outcome,
        ms: Number(ms.toFixed(3)),
        input: out.input
          ? {
              detected: out.input.detected,
              layer: out.input.layer,
              score: Number(out.input.score.toFixed(4)),
              hits: out.input.hits,
              findings: out.input.findings,
              ms: Number(out.input.ms.toFixed(3)),
            }
          : undefined,
        output: out.output
          ? {
              events: out.output.events.map((e) => ({
                kind: e.kind,
                reason: e.reason,
                action: e.action,
                score: Number(e.score.toFixed(4)),
              })),
              leakRun: out.output.leakRun,
              leakCoverage: Number(out.output.leakCoverage.toFixed(4)),
              moderation: Number(out.output.moderation.toFixed(4)),
              pii: out.output.pii,
              ms: Number(out.output.ms.toFixed(3)),
            }
          : undefined,
        tokens: { prompt: out.promptTokens, completion: out.completionTokens },
        upstreamStatus: out.upstreamStatus,
        ...(out.reason ? { reason: redact(out.reason) } : {}),
      });
    }
  }

  async function callUpstream(
    body: unknown,
    abort: AbortController,
    metrics: ChatMetrics,
    out: Outcome,
  ): Promise<Response> {
    const timer = setTimeout(() => abort.abort(new Error('timeout')), config.upstream.timeoutMs);
    try {
      const r = await fetch(completionsUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(upstreamKey ? { authorization: `Bearer ${upstreamKey}` } : {}),
        },
        body: JSON.stringify(body),
        signal: abort.signal,
      });
      out.upstreamStatus = r.status;
      if (!r.ok) {
        metrics.upstreamErrors.labels('status').inc();
        const text = (await r.text().catch(() => '')).slice(0, UPSTREAM_ERROR_CHARS);
        throw new HttpError(
          502,
          'upstream_error',
          `upstream answered HTTP ${r.status}${text ? `: ${redactText(text).text}` : ''}`,
        );
      }
      return r;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (abort.signal.aborted && (abort.signal.reason as Error | undefined)?.message === 'timeout') {
        metrics.upstreamErrors.labels('timeout').inc();
        throw new HttpError(
          504,
          'upstream_timeout',
          `upstream did not answer within ${config.upstream.timeoutMs} ms`,
        );
      }
      if (abort.signal.aborted) throw new HttpError(499, 'client_closed', 'client closed the request');
      metrics.upstreamErrors.labels('unreachable').inc();
      throw new HttpError(
        502,
        'upstream_unreachable',
        `upstream unreachable: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  async function readCompletion(r: Response, abort: AbortController, metrics: ChatMetrics) {
    const timer = setTimeout(() => abort.abort(new Error('timeout')), config.upstream.timeoutMs);
    let text = '';
    try {
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      const dec = new TextDecoder();
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > config.upstream.maxResponseBytes) {
          await reader.cancel();
          metrics.upstreamErrors.labels('malformed').inc();
          throw new HttpError(
            502,
            'upstream_malformed',
            `upstream answer exceeds ${config.upstream.maxResponseBytes} bytes`,
          );
        }
        text += dec.decode(value, { stream: true });
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      metrics.upstreamErrors.labels(abort.signal.aborted ? 'timeout' : 'broken_stream').inc();
      throw abort.signal.aborted
        ? new HttpError(
            504,
            'upstream_timeout',
            `upstream answer not complete within ${config.upstream.timeoutMs} ms`,
          )
        : new HttpError(
            502,
            'upstream_broken',
            'upstream connection broke off before the answer was complete',
          );
    } finally {
      clearTimeout(timer);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      metrics.upstreamErrors.labels('malformed').inc();
      throw new HttpError(502, 'upstream_malformed', 'upstream answer is not JSON');
    }
    const c = UpstreamCompletionSchema.safeParse(parsed);
    if (!c.success) {
      metrics.upstreamErrors.labels('malformed').inc();
      throw new HttpError(
        502,
        'upstream_malformed',
        `upstream answer is not a chat completion: ${formatZodError(c.error).replace(/\n/g, '; ')}`,
      );
    }
    return c.data;
  }

  async function relayStream(
    r: Response,
    res: http.ServerResponse,
    guard: OutputGuard,
    abort: AbortController,
    metrics: ChatMetrics,
    out: Outcome,
    requestId: string,
    model: string,
  ): Promise<void> {
    const id = `chatcmpl-${requestId}`;
    const created = Math.floor(Date.now() / 1000);
    let upstreamModel = model;
    const chunk = (delta: Record<string, string>, finish: string | null) =>
      sseEvent({
        id,
        object: 'chat.completion.chunk',
        created,
        model: upstreamModel,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': requestId,
      'x-accel-buffering': 'no',
    });
    res.write(chunk({ role: 'assistant' }, null));
    const parser = new SseParser();
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let idle: NodeJS.Timeout | undefined;
    let idleFired = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        reader.cancel().catch(() => {});
      }, config.upstream.idleTimeoutMs);
    };
    let finishReason: string | null = null;
    let completionChars = 0;
    let sawDone = false;
    let failure: { code: string; message: string } | undefined;
    const stopWith = (_ev: OutputEvent) => {
      res.write(chunk({ content: config.safeMessage }, null));
      res.write(chunk({}, 'content_filter'));
      res.write(SSE_DONE);
      res.end();
    };
    try {
      arm();
      outer: for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        let events: string[];
        try {
          events = parser.push(value);
        } catch (e) {
          failure = { code: 'upstream_malformed', message: (e as Error).message };
          break;
        }
        for (const data of events) {
          if (data.trim() === '[DONE]') {
            sawDone = true;
            break outer;
          }
          let parsed: unknown;
          try {
            parsed = JSON.parse(data);
          } catch {
            failure = { code: 'upstream_malformed', message: 'upstream sent an SSE event that is not JSON' };
            break outer;
          }
          const c = UpstreamChunkSchema.safeParse(parsed);
          if (!c.success) {
            failure = {
              code: 'upstream_malformed',
              message: 'upstream sent an event that is not a chat completion chunk',
            };
            break outer;
          }
          if (c.data.model) upstreamModel = c.data.model;
          if (c.data.usage?.completion_tokens !== undefined)
            out.completionTokens = c.data.usage.completion_tokens;
          const choice = c.data.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) finishReason = choice.finish_reason;
          const delta = choice.delta?.content;
          if (delta) {
            completionChars += delta.length;
            const step = await guard.push(delta);
            if (step.emit) res.write(chunk({ content: step.emit }, null));
            if (step.stopped) {
              stopWith(step.stopped);
              await reader.cancel().catch(() => {});
              out.completionTokens ??= estimateTokens(completionChars, 0);
              return;
            }
          }
        }
      }
    } catch {
      if (!abort.signal.aborted || idleFired)
        failure = { code: idleFired ? 'upstream_idle' : 'upstream_broken', message: '' };
    } finally {
      clearTimeout(idle);
    }
    out.completionTokens ??= estimateTokens(completionChars, 0);
    if (res.destroyed) {
      out.status = 499;
      out.outcome = 'client_closed';
      return;
    }
    if (!failure && !sawDone && !finishReason)
      failure = { code: idleFired ? 'upstream_idle' : 'upstream_broken', message: '' };
    // What the guard still holds is judged as a whole answer, also when the upstream broke off.
    const last = await guard.finish();
    if (last.stopped) return stopWith(last.stopped);
    if (last.emit) res.write(chunk({ content: last.emit }, null));
    if (failure) {
      const kind =
        failure.code === 'upstream_idle'
          ? 'idle'
          : failure.code === 'upstream_malformed'
            ? 'malformed'
            : 'broken_stream';
      metrics.upstreamErrors.labels(kind).inc();
      const message =
        failure.message ||
        (failure.code === 'upstream_idle'
          ? `upstream sent nothing for ${config.upstream.idleTimeoutMs} ms; the answer is incomplete`
          : 'upstream stream broke off before it was complete; the answer is incomplete');
      out.outcome = 'upstream_error';
      out.reason = message;
      res.write(sseEvent({ error: { code: failure.code, type: 'upstream_error', message } }));
      res.write(SSE_DONE);
      res.end();
      return;
    }
    res.write(chunk({}, finishReason ?? 'stop'));
    res.write(SSE_DONE);
    res.end();
  }

  return {
    handle,
    async close() {
      await guards.close();
    },
  };
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}
