/**
 * Line batching for the gateway's logs (access log, inference log) that keeps lines off the JS heap:
 * each line is copied as UTF-8 into a fixed-size chunk (an off-heap Buffer) the moment it is written,
 * and a chunk leaves in one write once full or flushed.
 *
 * Why: holding the lines themselves as strings until a batch is written (arrays of strings, many of
 * them concatenation trees) kept thousands of young objects alive across scavenges; the profile of a
 * busy worker showed scavenges of 3-5 ms every ~100 ms, growing old space by about 1 MB each, where
 * the bare runtime's took 0.5 ms. A chunk is one small object whatever it holds.
 */

/** Bytes of one chunk: one write per this many bytes of lines (about 200 access-log lines). */
export const LINE_CHUNK_BYTES = 64 * 1024;
/** The line end written after a line pushed with `newline`. */
const NEWLINE = 0x0a;
/** Most UTF-8 bytes one UTF-16 code unit can take. */
const MAX_UTF8_BYTES_PER_UNIT = 3;

export class LineChunks {
  private chunk: Buffer;
  private used = 0;

  /** `emit` receives each full or flushed chunk, in order; it owns the bytes from then on. */
  constructor(
    private readonly emit: (bytes: Buffer) => void,
    private readonly chunkBytes: number = LINE_CHUNK_BYTES,
  ) {
    this.chunk = Buffer.allocUnsafe(chunkBytes);
  }

  /**
   * Copies a line into the current chunk, with a line end after it when `newline` (else the line
   * brings its own); a chunk it would overflow leaves first.
   */
  push(line: string, newline = false): void {
    const worst = line.length * MAX_UTF8_BYTES_PER_UNIT + 1;
    if (this.used + worst > this.chunkBytes) {
      this.flush();
      if (worst > this.chunkBytes) {
        this.emit(Buffer.from(newline ? `${line}\n` : line, 'utf8'));
        return;
      }
    }
    this.used += this.chunk.write(line, this.used, 'utf8');
    if (newline) this.chunk[this.used++] = NEWLINE;
  }

  /** Bytes waiting in the current chunk. */
  get pending(): number {
    return this.used;
  }

  /** Emits the current chunk, if it holds anything. */
  flush(): void {
    if (this.used === 0) return;
    const out = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.allocUnsafe(this.chunkBytes);
    this.used = 0;
    this.emit(out);
  }
}
