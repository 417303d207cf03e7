/**
 * HTTP helpers of the gateway tests: JSON requests with fetch, raw socket requests for what fetch
 * will not send (truncated bodies, slow headers), and metric lookups in the Prometheus text format.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { hashApiKey } from '../../src/gateway/auth';

export interface Reply {
  status: number;
  headers: Headers;
  json: Record<string, unknown> & { error?: { code: string; message: string } };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Reply['json']) : {} };
}

export async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<Reply & { text: string }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json: Reply['json'] = {};
  try {
    json = JSON.parse(text) as Reply['json'];
  } catch {
    // not JSON (metrics)
  }
  return { status: res.status, headers: res.headers, json, text };
}

export async function put(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Reply['json']) : {} };
}

/** Sends raw bytes, optionally half-closing; resolves with what the server sent before closing. */
export function raw(
  port: number,
  chunks: Array<string | { waitMs: number }>,
  opts: { end?: boolean; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, opts.timeoutMs ?? 10_000);
    s.on('data', (d) => (got += d.toString()));
    s.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('connect', () => {
      void (async () => {
        for (const c of chunks) {
          if (typeof c === 'string') s.write(c);
          else await new Promise((r) => setTimeout(r, c.waitMs));
        }
        if (opts.end) s.end();
      })();
    });
  });
}

/** The value of one sample in Prometheus text: the metric name and every given label must match. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export function newKey(principal: string, roles: Array<'predict' | 'admin'>) {
  const key = `mk_${randomBytes(24).toString('base64url')}`;
  return { key, entry: { principal, sha256: hashApiKey(key), roles } };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
