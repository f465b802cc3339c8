// The writer: batching, backpressure, heartbeats and the end of one stream
// (its head and the JSON errors before a stream are in http-response.ts).
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ByteBatch } from './byte-batch.ts';
import type { PublicError } from './errors.ts';
import { chunkBody, directSocket, mergeHeaders, NDJSON_HEADERS, SSE_HEADERS, writeHead } from './http-response.ts';
import type { Frame } from './pipeline.ts';
import { ndjsonControl, ndjsonLine, sseComment, sseEvent, sseMessage, sseRetry } from './sse-format.ts';
import type { StreamMode } from './types.ts';

export type { StreamMode } from './types.ts';

/**
 * Flush at once when this much is pending. Batching many events into one
 * res.write() is what makes replays fast (one syscall and one chunk per batch
 * instead of per event); the cap keeps a batch from growing unbounded. It
 * stays under V8's 128 Ki-character mark: a longer string is flattened into
 * the large-object space, which doubled what encoding a batch cost per
 * message (0.74 vs 1.46 µs for 700-byte events, bench/pipeline-micro.ts).
 */
const MAX_BATCH_CHARS = 96 * 1024;

/** The same for frames written as bytes (see bytes()). */
const MAX_BATCH_BYTES = 96 * 1024;

/** Batches at least this long are encoded to a Buffer once, in JS, before writing. */
const ENCODE_ONCE_CHARS = 16 * 1024;

/**
 * Bytes buffered in the response past which the stream stops reading Kafka
 * until the client drains them: with one batch, what a stalled client can
 * cost the server.
 *
 * On HTTP/2 (node:http2's Http2ServerResponse) the same check bounds each
 * stream on its own: write() returns false past the stream's 16 KiB mark, and
 * writableLength counts the bytes the session has not yet sent, including those
 * waiting for the peer's flow-control window (a client that stops reading one
 * stream stops granting window to it). 'drain' is re-emitted by the response
 * from its stream, so pausing and resuming work unchanged; other streams on the
 * connection are not affected (test/integration/http2.test.ts).
 */
export const HIGH_WATER_BYTES = 1024 * 1024;

/** Writes a stream to a ServerResponse, honouring backpressure. */
export class StreamWriter {
  readonly mode: StreamMode;
  readonly #res: ServerResponse;
  readonly #heartbeatMs: number | null;
  readonly #onFull: () => void;
  readonly #onDrain: () => void;
  readonly #onFlush: ((bytes: number) => void) | undefined;
  readonly #onIdle: (() => string | undefined) | undefined;
  readonly #contentType: string | undefined;
  #pending = '';
  /**
   * Pending bytes (see bytes()): while they hold anything, everything queued
   * is appended to them, in order.
   */
  #bytes: ByteBatch | undefined;
  /**
   * Pending shared frames, each an HTTP/1.1 chunk (see framed), written to the
   * socket as they are; `#chunkBytes` counts them. At most one of these, the
   * pending text and the pending bytes holds anything at a time.
   */
  #pendingChunks: Buffer[] | undefined;
  #chunkBytes = 0;
  /** The response's socket, when chunks may be written to it directly (see #directSocket). */
  #socket: Socket | undefined;
  #flushScheduled = false;
  #full = false;
  #ended = false;
  #lastWrite = 0;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** Bytes written to the response so far (UTF-8). */
  bytesWritten = 0;
  /** Events (messages and control events) written so far. */
  eventsWritten = 0;

  constructor(
    res: ServerResponse,
    mode: StreamMode,
    options: {
      heartbeatMs: number | null;
      onFull: () => void;
      onDrain: () => void;
      /** Called after each write with the bytes written. */
      onFlush?: ((bytes: number) => void) | undefined;
      /** At heartbeat time (SSE only): an event to write instead of the comment, or undefined. */
      onIdle?: (() => string | undefined) | undefined;
      /** NDJSON only: the Content-Type to answer (see ndjsonContentType). Default: `application/x-ndjson; charset=utf-8`. */
      contentType?: string | undefined;
    },
  ) {
    this.#res = res;
    this.mode = mode;
    this.#heartbeatMs = options.heartbeatMs;
    this.#onFull = options.onFull;
    this.#onDrain = options.onDrain;
    this.#onFlush = options.onFlush;
    this.#onIdle = options.onIdle;
    this.#contentType = options.contentType;
  }

  /** True while the socket is full and the writer waits for 'drain'. */
  get full(): boolean {
    return this.#full;
  }

  /** Sends the status line and headers, then the first bytes (`:ok` for SSE, so clients see the stream open). */
  open(extraHeaders: Record<string, string>, retryMs: number | null): void {
    const ours =
      this.mode === 'sse'
        ? SSE_HEADERS
        : this.#contentType === undefined
          ? NDJSON_HEADERS
          : { ...NDJSON_HEADERS, 'Content-Type': this.#contentType };
    const headers = mergeHeaders(extraHeaders, ours);
    writeHead(this.#res, 200, headers);
    this.#lastWrite = Date.now();
    // Small writes must leave at once: latency matters more than packet count here.
    this.#res.socket?.setNoDelay(true);
    this.#res.on('drain', this.#handleDrain);
    if (this.mode === 'sse') {
      // Written through the response, the first bytes leave with the head in
      // one write (node:http joins a head not yet sent to the first chunk),
      // one system call per new stream fewer (bench/results/2026-12-04-head-with-first-bytes).
      this.#queueText(':ok\n\n');
      if (retryMs !== null) this.#queueText(sseRetry(retryMs));
      this.flush();
    } else {
      // NDJSON has no first bytes of its own: without this the head would wait for the first message.
      this.#res.flushHeaders();
    }
    this.#socket = directSocket(this.#res);
    // Chunks written to the socket itself make it, not the response, emit 'drain'.
    this.#socket?.on('drain', this.#handleDrain);
    this.#scheduleHeartbeat();
  }

  /** Queues a message event (SSE) or line (NDJSON). `id` is a PositionTracker id (see sseMessage). */
  message(data: string, id: string): void {
    this.#queueText(this.mode === 'sse' ? sseMessage(data, id) : ndjsonLine(data));
    this.eventsWritten++;
    this.#afterQueue();
  }

  /**
   * Queues an event already framed for this stream's mode: text, or a shared
   * log's frame as the HTTP/1.1 chunk its streams share (see Frame), which
   * goes to the socket as it is when nothing else is pending, and as its
   * frame's bytes otherwise. With `scheduleFlush`, it is written right after
   * this turn of the event loop (with whatever else is queued in it);
   * without, the caller flushes after its batch (a shared tail's reader).
   */
  framed(frame: Frame, scheduleFlush = false): void {
    if (typeof frame === 'string') this.#queueText(frame);
    else if (this.#pending === '' && !(this.#bytes !== undefined && this.#bytes.length > 0)) {
      if (this.#pendingChunks === undefined) this.#pendingChunks = [frame];
      else this.#pendingChunks.push(frame);
      this.#chunkBytes += frame.length;
    } else this.bytes().append(chunkBody(frame));
    this.eventsWritten++;
    if (scheduleFlush) this.#afterQueue();
    else if (this.#batchFull()) this.flush();
  }

  /**
   * The bytes to write the next event into (see StreamPipeline.frameBytes);
   * pending text is moved into them first, so events keep their order. Call
   * framedBytes() after writing one.
   */
  bytes(): ByteBatch {
    const bytes = this.#bytes ?? new ByteBatch();
    this.#bytes = bytes;
    if (this.#pending !== '') {
      bytes.text(this.#pending);
      this.#pending = '';
    }
    const chunks = this.#takeChunks();
    if (chunks !== undefined) for (const c of chunks) bytes.append(chunkBody(c));
    return bytes;
  }

  /** The pending shared frames, no longer pending. */
  #takeChunks(): Buffer[] | undefined {
    const chunks = this.#pendingChunks;
    this.#pendingChunks = undefined;
    this.#chunkBytes = 0;
    return chunks;
  }

  /** One event was written into bytes(): it is written right after this turn of the event loop, as framed() with `scheduleFlush`. */
  framedBytes(): void {
    this.eventsWritten++;
    this.#afterQueue();
  }

  /**
   * Queues a named control event. In NDJSON it becomes the reserved envelope
   * `{"$kafkaSse":"<name>","data":…}`, which no message line can imitate (see ndjsonControl).
   */
  control(name: string, data: unknown): void {
    this.#queueText(this.mode === 'sse' ? sseEvent(name, JSON.stringify(data)) : ndjsonControl(name, data));
    this.eventsWritten++;
    this.#afterQueue();
  }

  /** Queues an error event: `event: error` in SSE, the reserved control envelope in NDJSON (see ndjsonControl). */
  error(error: PublicError): void {
    this.control('error', error);
  }

  /** Writes what is pending now. Returns false when the socket is full. */
  flush(): boolean {
    this.#flushScheduled = false;
    if (this.#ended) return !this.#full;
    const pendingBytes = this.#bytes;
    if (pendingBytes !== undefined && pendingBytes.length > 0) {
      this.#lastWrite = Date.now();
      return this.#write(pendingBytes.take());
    }
    const chunks = this.#takeChunks();
    if (chunks !== undefined) {
      this.#lastWrite = Date.now();
      const socket = this.#socket;
      if (socket !== undefined && !socket.destroyed) return this.#writeChunks(socket, chunks);
      // Any other response (HTTP/2, a layer that replaced write()): the
      // frames' bytes, views of the chunks the tail encoded once (an HTTP/2
      // stream's write of a string encodes it again: ~1 µs of ~9.5); several
      // are corked into one write. Joining them into a Buffer of their own
      // per write was 12% of the server's CPU with 50,000 HTTP/2 streams.
      if (chunks.length === 1) return this.#write(chunkBody(chunks[0] as Buffer));
      return this.#write(chunks.map(chunkBody));
    }
    if (this.#pending === '') return !this.#full;
    const chunk = this.#pending;
    this.#pending = '';
    this.#lastWrite = Date.now();
    // A replay's large batches are encoded once: Buffer.byteLength, then
    // write(string) encoding it again and chunked encoding measuring it once
    // more, were 9-12% of a replay's CPU. A live event's small chunk goes as
    // a string, which the socket encodes natively without a JS allocation.
    if (chunk.length >= ENCODE_ONCE_CHARS) return this.#write(Buffer.from(chunk, 'utf8'));
    return this.#write(chunk, Buffer.byteLength(chunk));
  }

  /**
   * Writes to the response (`bytes`: the UTF-8 length of a string; several
   * buffers: corked, one write of them all). Returns false when the socket is full.
   */
  #write(body: Buffer | string | readonly Buffer[], bytes = (body as Buffer).length): boolean {
    let ok: boolean;
    if (typeof body === 'string' || Buffer.isBuffer(body)) ok = this.#res.write(body);
    else {
      // A response-like object without cork() (an adapter's) gets the writes as they are.
      const res = this.#res as ServerResponse & { cork?: () => void; uncork?: () => void };
      const corks = typeof res.cork === 'function' && typeof res.uncork === 'function';
      if (corks) res.cork();
      ok = true;
      bytes = 0;
      for (const b of body) {
        ok = res.write(b);
        bytes += b.length;
      }
      if (corks) res.uncork();
    }
    this.bytesWritten += bytes;
    this.#onFlush?.(bytes);
    // Frameworks' compression middleware (e.g. Express's) buffers until told to flush.
    const maybeFlush = (this.#res as ServerResponse & { flush?: () => void }).flush;
    if (typeof maybeFlush === 'function') maybeFlush.call(this.#res);
    // A socket's own high-water mark (16 KiB) is reached all the time by a
    // client that parses a little slower than we read; stopping Kafka there
    // costs a refetch each time. Stop only past HIGH_WATER_BYTES buffered.
    if (!ok && !this.#full && this.#res.writableLength >= HIGH_WATER_BYTES) {
      this.#full = true;
      this.#onFull();
    }
    return ok;
  }

  /**
   * Writes shared frames, already HTTP/1.1 chunks, to the socket: the same
   * bytes res.write() would send (chunk size, CRLF, frame, CRLF), without its
   * per-write work (a string encoded per stream, four buffers gathered into
   * one writev). 6.5 vs 11.2 µs per 350-byte write to 2,000 sockets here.
   * Several go out in one writev.
   */
  #writeChunks(socket: Socket, chunks: readonly Buffer[]): boolean {
    let ok: boolean;
    let bytes = 0;
    if (chunks.length === 1) ok = socket.write(chunks[0] as Buffer);
    else {
      socket.cork();
      for (const c of chunks) socket.write(c);
      socket.uncork();
      ok = socket.writableLength < socket.writableHighWaterMark;
    }
    // The payload's bytes, without each chunk's framing (size line and CRLF).
    for (const c of chunks) bytes += c.length - c.indexOf(13) - 4;
    this.bytesWritten += bytes;
    this.#onFlush?.(bytes);
    if (!ok && !this.#full && socket.writableLength >= HIGH_WATER_BYTES) {
      this.#full = true;
      this.#onFull();
    }
    return ok;
  }

  /** Ends the response after writing what is pending. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.flush();
    this.#ended = true;
    this.#stopHeartbeat();
    this.#res.off('drain', this.#handleDrain);
    this.#socket?.off('drain', this.#handleDrain);
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.end();
  }

  /** Stops timers and listeners without writing (the client is gone). */
  dispose(): void {
    this.#ended = true;
    this.#pending = '';
    this.#takeChunks();
    this.#bytes = undefined;
    this.#stopHeartbeat();
    this.#res.off('drain', this.#handleDrain);
    this.#socket?.off('drain', this.#handleDrain);
  }

  /** Queues text that is no shared frame, after whatever is pending. */
  #queueText(text: string): void {
    if (this.#pendingChunks !== undefined) this.bytes().text(text);
    else if (this.#bytes !== undefined && this.#bytes.length > 0) this.#bytes.text(text);
    else this.#pending += text;
  }

  /** Whether what is pending should be written now, not at the end of the turn. */
  #batchFull(): boolean {
    return (
      this.#pending.length >= MAX_BATCH_CHARS ||
      this.#chunkBytes >= MAX_BATCH_BYTES ||
      (this.#bytes !== undefined && this.#bytes.length >= MAX_BATCH_BYTES)
    );
  }

  #afterQueue(): void {
    if (this.#batchFull()) {
      this.flush();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Everything node-rdkafka hands over in one turn of the event loop goes
      // out in one write; setImmediate runs right after that turn, adding no
      // measurable latency.
      setImmediate(() => this.flush());
    }
  }

  #handleDrain = (): void => {
    if (!this.#full) return;
    this.#full = false;
    this.flush();
    if (!this.#full) this.#onDrain();
  };

  #scheduleHeartbeat(): void {
    if (this.#heartbeatMs === null || this.#ended) return;
    const heartbeatMs = this.#heartbeatMs;
    const due = this.#lastWrite + heartbeatMs - Date.now();
    this.#heartbeatTimer = setTimeout(
      () => {
        if (this.#ended) return;
        if (Date.now() - this.#lastWrite >= heartbeatMs && !this.#full) {
          // SSE: a comment, ignored by clients, unless the stream has a moved
          // resume position to report. NDJSON: an empty line, which NDJSON readers skip.
          const position = this.mode === 'sse' ? this.#onIdle?.() : undefined;
          this.#queueText(position ?? (this.mode === 'sse' ? sseComment() : '\n'));
          this.flush();
        }
        this.#scheduleHeartbeat();
      },
      Math.max(due, 1),
    );
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer) clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }
}
