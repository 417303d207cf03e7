/**
 * How the gateway's HTTP framework was chosen: the same handler (read a JSON body, parse it, answer
 * JSON) on node:http and on fastify, one process each, loaded by the same autocannon settings one
 * after the other in interleaved rounds in one run; each server runs in its own child process so the load generator does not
 * share its event loop. Prints requests/s and latency percentiles of both and their ratio.
 *
 *   npx tsx test/bench/gateway-framework.ts
 */
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Seconds each server is loaded for. */
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 6);
/** Interleaved rounds; each server keeps its best. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Concurrent keep-alive connections of the load generator. */
const CONNECTIONS = 32;
const BODY = JSON.stringify({ features: { amount: 12.5, merchant_category: 'grocery', hour_of_day: 13 } });

function answer(parsed: unknown): string {
  const f = (parsed as { features?: Record<string, unknown> }).features ?? {};
  return JSON.stringify({ keys: Object.keys(f).length, ok: true });
}

async function nodeHttp(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const out = answer(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) };
}

async function fastify(): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.post('/', async (req, reply) => {
    reply.header('content-type', 'application/json');
    return answer(req.body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => app.close() };
}

async function load(url: string) {
  const r = await autocannon({
    url,
    method: 'POST',
    body: BODY,
    headers: { 'content-type': 'application/json' },
    connections: CONNECTIONS,
    duration: DURATION_S,
  });
  return {
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
  };
}

/** Starts one candidate in a child process; resolves with its URL once it listens. */
function serveInChild(name: string): Promise<{ url: string; close(): Promise<void> }> {
  const child = fork(__filename, ['serve', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (url) =>
      resolve({
        url: String(url),
        close: () =>
          new Promise((r) => {
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      }),
    );
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') {
    const s = await (process.argv[3] === 'fastify' ? fastify() : nodeHttp());
    process.send?.(s.url);
    process.on('SIGTERM', () => void s.close().then(() => process.exit(0)));
    return;
  }
  // Both servers stay up and are loaded in interleaved rounds; each keeps its best round, so a burst
  // of load from elsewhere on a shared machine does not decide the comparison.
  const results: Record<string, Awaited<ReturnType<typeof load>>> = {};
  const servers = { node_http: await serveInChild('node_http'), fastify: await serveInChild('fastify') };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, s] of Object.entries(servers)) {
      await load(s.url); // warm-up pass, discarded
      const r = await load(s.url);
      console.log(`round ${round}`, name, r);
      if (!results[name] || r.rps > (results[name]?.rps ?? 0)) results[name] = r;
    }
  }
  for (const s of Object.values(servers)) await s.close();
  const ratio = (results.fastify?.rps ?? 0) / (results.node_http?.rps ?? 1);
  console.log(JSON.stringify({ ...results, fastify_over_node_http: Number(ratio.toFixed(3)) }));
}

void main();
