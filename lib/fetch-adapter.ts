// Node's request and response, as the library sees them, made from a Fetch
// `Request` and feeding a Fetch `Response` whose body is a ReadableStream. This
// lets kafkaSse() (written against node:http) serve Fetch-style handlers
// unchanged: kafkaSseResponse() in fetch.ts is built on it.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { CONNECTION_SPECIFIC_HEADERS } from './http-response.ts';

/**
 * Bytes queued in the body past which write() returns false, as a socket's
 * default high-water mark (16 KiB) does. The writer (writer.ts) keeps writing
 * up to its own HIGH_WATER_BYTES before it pauses Kafka.
 */
export const FETCH_HIGH_WATER_BYTES = 16 * 1024;

/** Statuses whose response has no body (a Response with one would throw). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** The peer, as far as it is known: only `remoteAddress` is ever read. */
export interface AdapterSocket {
  readonly remoteAddress: string | undefined;
  /** Nothing to do: there is no socket of ours to tune. */
  setNoDelay(noDelay?: boolean): this;
}

function socketOf(remoteAddress: string | undefined): AdapterSocket {
  return {
    remoteAddress,
    setNoDelay() {
      return this;
    },
  };
}

/**
 * A Fetch `Request` as node:http's IncomingMessage, for the members the library reads:
 *
 * - `headers`: names lower-cased, one string per header (Fetch joins repeated
 *   headers with `, `, which is also how Node joins all but a few);
 * - `url`: the path and query (`/v2/stream/a?since=…`), as Node gives it;
 * - `method`;
 * - `socket.remoteAddress`: the client's address when the caller knows it, else undefined
 *   (stream stats then say `unknown`, and StreamLimiter's default key is `'unknown'`).
 */
export class FetchRequestAdapter {
  readonly headers: IncomingHttpHeaders;
  readonly url: string;
  readonly method: string;
  readonly socket: AdapterSocket;

  constructor(request: Request, remoteAddress?: string) {
    const headers: IncomingHttpHeaders = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    this.headers = headers;
    const url = new URL(request.url);
    this.url = `${url.pathname}${url.search}`;
    this.method = request.method;
    this.socket = socketOf(remoteAddress);
  }
}

/**
 * node:http's ServerResponse as the library uses it, writing into the body of
 * a Fetch `Response`. Its members are exactly those lib/writer.ts,
 * lib/request.ts, lib/limits.ts and lib/kafka-sse.ts use on `res`:
 *
 * - `writeHead(status, headers)`: settles {@link response} with a Response of
 *   that status and headers (connection-specific ones left out: the server that
 *   sends the Response frames its body), whose body streams what is written next;
 * - `flushHeaders()`: nothing to do, the Response is out at writeHead;
 * - `write(chunk)`: queues the chunk for the body's reader; returns false once
 *   `writableLength` reaches {@link FETCH_HIGH_WATER_BYTES};
 * - `cork()` / `uncork()`: what is written in between reaches the body's reader
 *   together, at the last uncork();
 * - `writableLength`: bytes written and not yet taken by the body's reader. The
 *   body is pulled: nothing is taken until its reader asks, so a reader that
 *   does not read (a client that does not read, behind a server that honours
 *   backpressure) lets it grow, and the writer pauses Kafka as on a full socket;
 * - `'drain'`: emitted when the reader has taken everything after write() returned false;
 * - `end(chunk?)`: queues the last chunk; the body closes once the reader took everything;
 * - `'finish'` then `'close'`: when the body closed after end(); `'close'` alone
 *   when the body was cancelled or {@link destroy} was called (the client left);
 * - `headersSent`, `writableEnded`, `writableFinished`, `destroyed`;
 * - `socket`: `{ remoteAddress, setNoDelay() }` (setNoDelay does nothing);
 * - `on`, `once`, `off` and the rest of EventEmitter.
 */
export class FetchResponseAdapter extends EventEmitter {
  /** Resolves at writeHead with the Response. */
  readonly response: Promise<Response>;
  readonly socket: AdapterSocket;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  readonly #body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #resolve!: (response: Response) => void;
  /** Written and not yet taken by the reader. */
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  /** write() returned false: emit 'drain' when the queue empties. */
  #needDrain = false;
  /** A read is waiting for data: pull() returned this promise's resolver. */
  #wake: (() => void) | undefined;
  #closeEmitted = false;
  /** cork() calls not yet matched by uncork(): the reader is not woken meanwhile. */
  #corked = 0;

  constructor(remoteAddress?: string) {
    super();
    this.socket = socketOf(remoteAddress);
    this.response = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    // highWaterMark 0: the stream keeps nothing of its own, so pull() runs only
    // when the reader asks, and every byte not yet read is counted here.
    this.#body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => {
          if (this.#deliver()) return;
          return new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        },
        cancel: () => {
          this.destroy();
        },
      },
      { highWaterMark: 0 },
    );
  }

  get writableLength(): number {
    return this.#queuedBytes;
  }

  writeHead(status: number, headers: Record<string, string | string[] | number> = {}): this {
    if (this.headersSent) throw new Error('writeHead called twice');
    this.headersSent = true;
    const h = new Headers();
    for (const [name, value] of Object.entries(headers)) {
      if (CONNECTION_SPECIFIC_HEADERS.has(name.toLowerCase())) continue;
      if (Array.isArray(value)) for (const v of value) h.append(name, v);
      else h.set(name, String(value));
    }
    const body = NULL_BODY_STATUSES.has(status) ? null : this.#body;
    this.#resolve(new Response(body, { status, headers: h }));
    return this;
  }

  flushHeaders(): void {}

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0) return;
    this.#corked--;
    if (this.#corked === 0 && this.#wake && this.#queue.length > 0) this.#deliver();
  }

  /** Settles {@link response} with `response` when writeHead was never called (not a member Node has). */
  respondWith(response: Response): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.#resolve(response);
  }

  write(chunk: string | Uint8Array): boolean {
    if (this.writableEnded || this.destroyed) return false;
    // A copy: the bytes may be a frame shared by many streams (see StreamWriter.flush), and the body's
    // reader owns what it is given.
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    if (buffer.byteLength > 0) {
      this.#queue.push(buffer);
      this.#queuedBytes += buffer.byteLength;
      if (this.#wake && this.#corked === 0) this.#deliver();
    }
    const ok = this.#queuedBytes < FETCH_HIGH_WATER_BYTES;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  end(chunk?: string | Uint8Array): this {
    if (this.writableEnded || this.destroyed) return this;
    if (chunk !== undefined) this.write(chunk);
    this.writableEnded = true;
    if (this.#wake || this.#queuedBytes === 0) this.#deliver();
    return this;
  }

  /** The client is gone (the body was cancelled, or the request aborted): drop what is queued and emit 'close'. */
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    try {
      this.#controller.close();
    } catch {
      // Already closed or cancelled.
    }
    this.#emitClose();
    return this;
  }

  /**
   * Hands everything queued to the reader (one chunk: fewer, larger reads),
   * closes the body after end(), wakes a waiting read, emits 'drain' when due.
   * True when it enqueued or closed something.
   */
  #deliver(): boolean {
    if (this.destroyed) return true;
    let delivered = false;
    let drained = false;
    if (this.#queuedBytes > 0) {
      const queue = this.#queue;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#controller.enqueue(queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue));
      delivered = true;
      drained = this.#needDrain;
      this.#needDrain = false;
    }
    if (this.writableEnded && this.#queuedBytes === 0 && !this.writableFinished) {
      this.writableFinished = true;
      this.#controller.close();
      delivered = true;
      process.nextTick(() => this.emit('finish'));
      this.#emitClose();
    }
    if (delivered) {
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    }
    // Last: a 'drain' listener writes at once, and those writes wait for the next read.
    if (drained) this.emit('drain');
    return delivered;
  }

  /** Like Node's, 'close' comes on a later tick: listeners attached right after a destroy still hear it. */
  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    process.nextTick(() => this.emit('close'));
  }
}
