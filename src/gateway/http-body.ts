import type http from 'node:http';
import { HttpError } from './http-error';

/** The unread rest of a refused body is not drained: the connection closes after the answer. */
const CLOSE = { connection: 'close' };

/**
 * Reads a request body of at most `limit` bytes. A declared or streamed size over the limit is a
 * 413, a body cut short or unreadable a 400; each refusal closes the connection. The one body
 * reader of every gateway route (predict, chat, explain).
 */
export function readBodyBytes(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(
      new HttpError(413, 'body_too_large', `request body of ${declared} bytes exceeds ${limit} bytes`, CLOSE),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (e: HttpError): void => {
      if (done) return;
      done = true;
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        fail(new HttpError(413, 'body_too_large', `request body exceeds ${limit} bytes`, CLOSE));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    req.on('aborted', () =>
      fail(new HttpError(400, 'body_truncated', 'request body ended before its declared length', CLOSE)),
    );
    req.on('error', (err) =>
      fail(new HttpError(400, 'body_truncated', `request body could not be read: ${err.message}`, CLOSE)),
    );
  });
}

/** {@link readBodyBytes} decoded as UTF-8 (invalid sequences become U+FFFD, as JSON.parse then refuses). */
export async function readBodyText(req: http.IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBytes(req, limit)).toString('utf8');
}
