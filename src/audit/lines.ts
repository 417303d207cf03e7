/**
 * Streams the lines of a JSONL file from a byte offset, with each line's byte extent, without loading the whole
 * file. Splitting is on the `\n` byte, which never occurs inside a multi-byte UTF-8 character.
 */
import { createReadStream } from 'node:fs';

/** Read-buffer size for scanning the log (large enough to amortise syscalls, small enough to stay cheap). */
export const AUDIT_READ_CHUNK_BYTES = 64 * 1024;

export interface RawLine {
  /** Line text without its newline (UTF-8 decoded). */
  text: string;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** Bytes taken by the line including its newline. */
  bytes: number;
  /** False for a final line with no newline. */
  terminated: boolean;
}

/** Yields the lines of `path` starting at byte `start` (which must be a line start). */
export async function* readRawLines(path: string, start = 0): AsyncGenerator<RawLine> {
  const stream = createReadStream(path, { start, highWaterMark: AUDIT_READ_CHUNK_BYTES });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = start;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let from = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, from)) {
      const piece = chunk.subarray(from, i);
      const lineBuf = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
      const bytes = lineBuf.length + 1;
      yield { text: lineBuf.toString('utf8'), offset, bytes, terminated: true };
      offset += bytes;
      pending = [];
      pendingBytes = 0;
      from = i + 1;
    }
    if (from < chunk.length) {
      pending.push(chunk.subarray(from));
      pendingBytes += chunk.length - from;
    }
  }
  if (pendingBytes > 0) {
    const lineBuf = Buffer.concat(pending);
    yield { text: lineBuf.toString('utf8'), offset, bytes: lineBuf.length, terminated: false };
  }
}
