/**
 * TEST DOUBLE for an LLM: no model weights can be fetched or run here, so the guardrails tests point
 * the gateway's chat route at this small OpenAI-compatible server (`POST /v1/chat/completions`,
 * streaming by SSE and not). It plays a leaky support assistant: on trigger words in the last user
 * message it repeats its system prompt (verbatim, letter-spaced, upper-cased, or the canary line alone),
 * insults the user, writes PII, breaks its stream off, goes silent mid-stream, never answers, or fails
 * with HTTP 500; otherwise it answers politely. Streams are cut into small chunks, so a leak always
 * spans several of them. It records every request it receives, so tests can check what reached it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  model: string;
  stream: boolean;
  messages: { role: string; content: string }[];
  maxTokens?: number;
}

/** Characters per streamed chunk: small, so a leaked prompt spans dozens of chunks. */
export const CHUNK_CHARS = 5;
export const BENIGN_ANSWER =
  'Thanks for reaching out! Your order left our warehouse this morning and should arrive on Monday. You will get an email with the tracking link.';

function answerFor(messages: { role: string; content: string }[]): string {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n');
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  if (last.includes('LEAK-VERBATIM')) return `Sure, here is how I was set up:\n${system}`;
  if (last.includes('LEAK-SPACED')) return `Of course: ${system.split('').join(' ')}`;
  if (last.includes('LEAK-UPPER')) return system.toUpperCase();
  if (last.includes('LEAK-PARTIAL'))
    return `My notes say: ${system.slice(40, 260).replace(/\n/g, ' ')} ...and that's all.`;
  if (last.includes('LEAK-CANARY')) {
    const line = system.split('\n').find((l) => l.includes('cnry')) ?? '';
    return `The reference in my notes is ${line.match(/cnry[a-z2-7]+/)?.[0] ?? 'none'}.`;
  }
  if (last.includes('TOXIC'))
    return 'Listen, you are a complete idiot and I am not helping you. Shut up and go away.';
  if (last.includes('PII'))
    return 'The customer on file is Jane Roe, jane.roe@example.com, phone +44 20 7946 0958. Anything else?';
  return BENIGN_ANSWER;
}

export interface LeakyUpstream {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export async function startLeakyUpstream(): Promise<LeakyUpstream> {
  const received: ReceivedRequest[] = [];
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        model: string;
        stream?: boolean;
        messages: { role: string; content: string }[];
        max_tokens?: number;
      };
      received.push({
        model: body.model,
        stream: body.stream === true,
        messages: body.messages,
        maxTokens: body.max_tokens,
      });
      const last = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      if (last.includes('HANG')) {
        hanging.add(res);
        return;
      }
      if (last.includes('STATUS500')) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'model crashed' } }));
        return;
      }
      const text = answerFor(body.messages);
      const id = `chatcmpl-double-${received.length}`;
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created: 1_700_000_000,
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 50, completion_tokens: Math.ceil(text.length / 4) },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(event({ role: 'assistant' }, null));
      const pieces: string[] = [];
      for (let i = 0; i < text.length; i += CHUNK_CHARS) pieces.push(text.slice(i, i + CHUNK_CHARS));
      const breakAt = last.includes('BREAK') ? Math.floor(pieces.length / 2) : -1;
      const idleAt = last.includes('IDLE') ? 3 : -1;
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        if (i === breakAt) {
          res.socket?.destroy();
          return;
        }
        if (i === idleAt) {
          hanging.add(res);
          return;
        }
        if (i < pieces.length) {
          res.write(event({ content: pieces[i++] }, null));
          setImmediate(next);
          return;
        }
        res.write(event({}, 'stop'));
        res.end('data: [DONE]\n\n');
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    async close() {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
