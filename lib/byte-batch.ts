// The bytes of a stream's pending events, written in place: a frame made from
// a message's own bytes (see StreamPipeline.frameBytes) is copied in once and
// sent as it is, with no string made of the payload and no batch string to
// encode again before the write (~1.6 of the ~3.2 µs the library's own JS
// spent per 600-byte message, bench/pipeline-micro.ts).

/** The smallest slab: under half of Buffer.poolSize, so it comes from Node's shared pool. */
const MIN_SLAB = 2048;

/** A slab is never sized from past batches beyond this (one message may still need more). */
const MAX_SLAB = 256 * 1024;

const EMPTY = Buffer.alloc(0);

type Utf8Write = (this: Buffer, text: string, offset: number) => number;

/**
 * Writes `text` into `buf` at `offset` as UTF-8, returning the bytes written
 * (the caller made room). Buffer's own utf8Write where it has one: write()'s
 * argument handling was a third of what writing a frame's short texts cost.
 */
export const writeUtf8: Utf8Write =
  (Buffer.prototype as unknown as { utf8Write?: Utf8Write }).utf8Write ??
  function (this: Buffer, text: string, offset: number): number {
    return this.write(text, offset);
  };

/**
 * A growable run of bytes in a slab, taken out in pieces by take(). Bytes
 * before `end` are never written again once taken: a piece handed to a
 * socket stays intact while the socket holds it, and the slab's rest serves
 * the next batch. A slab is sized from the last batch taken, so a replay
 * fills large slabs and a live stream small ones from Node's shared pool.
 */
export class ByteBatch {
  /** The slab; write at `end`, after room(). */
  buf: Buffer = EMPTY;
  /** Where the pending bytes start and end in `buf`. */
  start = 0;
  end = 0;
  /** The sizes of the last two batches taken: a slab is sized from the larger. */
  #lastBatch = 0;
  #batchBefore = 0;

  /** Pending bytes. */
  get length(): number {
    return this.end - this.start;
  }

  /** Makes room for `n` more bytes at `end` (moving what is pending to a larger slab if needed). */
  room(n: number): void {
    if (this.end + n <= this.buf.length) return;
    const pending = this.end - this.start;
    // From the larger of the last two batches: a replay's batches alternate
    // between full ones and the rest of a turn, and a slab sized from a short
    // one was grown (copied) within the next.
    const sized = Math.min(MAX_SLAB, Math.max(MIN_SLAB, 2 * Math.max(this.#lastBatch, this.#batchBefore)));
    const size = Math.max(sized, 2 * pending, pending + n);
    const next = Buffer.allocUnsafe(size);
    if (pending > 0) this.buf.copy(next, 0, this.start, this.end);
    this.buf = next;
    this.start = 0;
    this.end = pending;
  }

  /** Appends `text` as UTF-8. */
  text(text: string): void {
    if (text === '') return;
    this.room(3 * text.length);
    this.end += writeUtf8.call(this.buf, text, this.end);
  }

  /** Appends a copy of `bytes`. */
  append(bytes: Buffer): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }

  /** The pending bytes (a view of the slab), no longer pending. */
  take(): Buffer {
    const piece = this.buf.subarray(this.start, this.end);
    this.#batchBefore = this.#lastBatch;
    this.#lastBatch = piece.length;
    this.start = this.end;
    // The rest of the slab is kept for the next batch if one like this fits
    // in it; a slab far larger than what is now written (a replay that
    // reached the live end) is let go.
    const rest = this.buf.length - this.end;
    if (rest < piece.length || this.buf.length > 4 * Math.max(MIN_SLAB, piece.length)) this.drop();
    return piece;
  }

  /** Forgets the slab and anything pending. */
  drop(): void {
    this.buf = EMPTY;
    this.start = 0;
    this.end = 0;
  }
}

/** How many digits the non-negative safe integer `v` has in decimal. */
export function digitCount(v: number): number {
  let n = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) n++;
  return n;
}

/**
 * Writes the integer `v` in decimal, as `String(v)` would, into `buf` at
 * `at` (room for 24 bytes); returns the index after it. Digits computed in
 * place: a number made a string, then written, cost twice as much.
 */
export function writeInt(buf: Buffer, at: number, v: number): number {
  if (!Number.isSafeInteger(v)) return at + writeUtf8.call(buf, String(v), at);
  if (v < 0) {
    buf[at++] = 45; // -
    v = -v;
  }
  if (v < 10) {
    buf[at] = 48 + v;
    return at + 1;
  }
  const end = at + digitCount(v);
  for (let j = end - 1; j >= at; j--) {
    const q = Math.floor(v / 10);
    buf[j] = 48 + (v - q * 10);
    v = q;
  }
  return end;
}
