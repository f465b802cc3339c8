// createStreamHost(): kafkaSse() on the main thread for HTTP servers running in
// worker threads. node-rdkafka consumes only on the main thread, and on one
// thread the socket writes and the consumer's hand-over share a core; with the
// HTTP server in a worker, the main thread reads Kafka and frames events while
// the worker writes them (see stream-thread.ts for the worker's side, and
// stream-port.ts for what they say to each other).
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { BrokerUnavailableError } from './errors.ts';
import type { AdapterSocket } from './fetch-adapter.ts';
import { writeJsonError } from './http-response.ts';
import { kafkaSse } from './kafka-sse.ts';
import { type KafkaSseOptions, normalizeOptionsOnce } from './options.ts';
import {
  type BatchMessage,
  type HeadOp,
  OP_DESTROY,
  OP_END,
  OP_WRITE,
  type OpenMessage,
  type ThreadMessage,
} from './stream-port.ts';

/**
 * Bytes a stream may have sent to its thread, not yet taken by the thread's
 * socket, before write() returns false: a socket's own default high-water
 * mark. The writer (writer.ts) pauses Kafka only once `writableLength` passes
 * its HIGH_WATER_BYTES.
 */
export const PORT_HIGH_WATER_BYTES = 16 * 1024;

/**
 * Bytes sent and not yet taken that `writableLength` does not count: what may
 * be in flight between the threads, or waiting in the thread for its socket,
 * when the consumer's thread reads fast. Counted, they made the writer pause
 * Kafka (which drops librdkafka's prefetch, a refetch each time) 25 times in
 * a run of replays where it now pauses 5 (bench/results/2026-12-04-stream-host).
 * A client that stops reading holds up to this much more than on one thread.
 */
export const PORT_IN_FLIGHT_BYTES = 2 * 1024 * 1024;

/** Pending bytes past which a batch goes at once, not at the end of the turn: the thread writes while this one reads on. */
export const PORT_BATCH_BYTES = 256 * 1024;

/** What {@link createStreamHost} returns. */
export interface StreamHost {
  /**
   * A new port for one HTTP thread: pass it to the worker (in `workerData`,
   * listed in `transferList`) and, there, to connectStreamHost(). Each call
   * makes a new one; a port whose thread exits ends that thread's streams.
   */
  port(): MessagePort;
  /** Streams open through this host's ports (set up or streaming). */
  readonly streams: number;
  /**
   * Ends every open stream, as a server's shutdown does (each response ends:
   * EventSource clients reconnect, elsewhere if a balancer moves them), then
   * closes the ports once every stream has settled and its consumer is
   * released. Requests that arrive meanwhile, or at a thread that has seen
   * its port close, are answered 503 with Retry-After.
   */
  close(): Promise<void>;
}

/**
 * Serves kafkaSse() to HTTP servers in worker threads: this thread (the main
 * one: node-rdkafka reads Kafka only there) reads Kafka, checks and frames the
 * messages, and hands each turn's bytes to the thread that owns the socket,
 * which writes them. `options` are kafkaSse()'s, for every stream of the host
 * (its hooks, limits, metrics and shared tail run here); they are checked now,
 * and a ConfigurationError is thrown if they are invalid.
 *
 * ```js
 * // main thread
 * const host = createStreamHost({ kafkaConfig: { 'metadata.broker.list': 'localhost:9092' } });
 * const port = host.port();
 * new Worker(new URL('./http-server.js', import.meta.url), { workerData: { port }, transferList: [port] });
 * // http-server.js, in the worker
 * const stream = connectStreamHost(workerData.port);
 * http.createServer((req, res) => stream(req, res, ['mytopic'])).listen(8080);
 * ```
 */
export function createStreamHost(options: KafkaSseOptions = {}): StreamHost {
  normalizeOptionsOnce(options);
  // close() ends the streams as a server's shutdown does: each ends its response, and clients reconnect.
  const shutdown = new AbortController();
  const signal = options.signal === undefined ? shutdown.signal : AbortSignal.any([options.signal, shutdown.signal]);
  const streamOptions: KafkaSseOptions = { ...options, signal };
  normalizeOptionsOnce(streamOptions);
  const links = new Set<HostLink>();
  let closing: Promise<void> | undefined;
  return {
    port(): MessagePort {
      if (closing) throw new Error('this stream host is closed');
      const { port1, port2 } = new MessageChannel();
      const link = new HostLink(port1, streamOptions, () => links.delete(link));
      links.add(link);
      return port2;
    },
    get streams(): number {
      let n = 0;
      for (const link of links) n += link.open;
      return n;
    },
    close(): Promise<void> {
      shutdown.abort();
      closing ??= Promise.all([...links].map((link) => link.close())).then(() => {});
      return closing;
    },
  };
}

/** The host's end of one port: the streams of one HTTP thread. */
class HostLink {
  readonly #port: MessagePort;
  readonly #options: KafkaSseOptions;
  readonly #onClosed: () => void;
  readonly #responses = new Map<number, PortResponse>();
  readonly #running = new Set<Promise<void>>();
  #closing = false;
  // This turn's batch (see stream-port.ts).
  #heads: HeadOp[] = [];
  /** [op, id, buffer index or -1] per operation, in order. */
  #ops: number[] = [];
  /** The buffers written this turn, each once, by identity. */
  #buffers: Uint8Array[] = [];
  #bufferIndex = new Map<Uint8Array, number>();
  #bufferBytes = 0;
  #settled: number[] = [];
  #scheduled = false;

  constructor(port: MessagePort, options: KafkaSseOptions, onClosed: () => void) {
    this.#port = port;
    this.#options = options;
    this.#onClosed = onClosed;
    port.on('message', (m: ThreadMessage) => this.#onMessage(m));
    // The thread exited or closed its end: its clients are gone.
    port.on('close', () => this.#lost());
  }

  get open(): number {
    return this.#responses.size;
  }

  /** After the shutdown signal: waits for every stream to settle, sends what is left, closes the port. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#running);
    this.#flush();
    this.#port.close();
  }

  #onMessage(m: ThreadMessage): void {
    switch (m.t) {
      case 'open':
        this.#open(m);
        break;
      case 'gone':
        this.#responses.get(m.id)?.gone();
        break;
      case 'finished':
        this.#responses.get(m.id)?.finished();
        break;
      case 'acks':
        for (const id of m.ids) this.#responses.get(id)?.taken();
        break;
    }
  }

  #open(m: OpenMessage): void {
    const req = new PortRequest(m.method, m.url, m.headers, m.remoteAddress);
    const res = new PortResponse(this, m.id, req.socket, m.taken);
    this.#responses.set(m.id, res);
    if (this.#closing) {
      const error = new BrokerUnavailableError('The server is shutting down; try again shortly', {
        retryAfterSeconds: 1,
      });
      writeJsonError(res as unknown as ServerResponse, error.toJSON(), {}, 1);
      this.#settle(m.id);
      return;
    }
    // The adapters stand in for node:http's objects: they have every member the library uses.
    const done = kafkaSse(
      req as unknown as IncomingMessage,
      res as unknown as ServerResponse,
      m.assignments,
      this.#options,
      m.atTimestamp,
    ).then(() => {
      this.#running.delete(done);
      this.#settle(m.id);
    });
    this.#running.add(done);
  }

  #settle(id: number): void {
    this.#responses.delete(id);
    this.#settled.push(id);
    this.#schedule();
  }

  #lost(): void {
    for (const res of this.#responses.values()) res.gone();
    this.#closing = true;
    void Promise.all(this.#running).then(() => this.#onClosed());
  }

  head(id: number, status: number, headers: Record<string, string | string[] | number>): void {
    this.#heads.push({ id, status, headers });
    this.#schedule();
  }

  write(id: number, bytes: Uint8Array): void {
    let index = this.#bufferIndex.get(bytes);
    if (index === undefined) {
      index = this.#buffers.length;
      this.#buffers.push(bytes);
      this.#bufferIndex.set(bytes, index);
      this.#bufferBytes += bytes.byteLength;
    }
    this.#ops.push(OP_WRITE, id, index);
    if (this.#bufferBytes >= PORT_BATCH_BYTES) this.#flush();
    else this.#schedule();
  }

  end(id: number): void {
    this.#ops.push(OP_END, id, -1);
    this.#schedule();
  }

  destroy(id: number): void {
    this.#ops.push(OP_DESTROY, id, -1);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Every stream's writer flushes in this turn's setImmediate phase; the batch goes right after.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#heads.length === 0 && this.#ops.length === 0 && this.#settled.length === 0) return;
    const bytes = new ArrayBuffer(this.#bufferBytes);
    const view = new Uint8Array(bytes);
    const offsets: number[] = [];
    let at = 0;
    for (const b of this.#buffers) {
      offsets.push(at);
      view.set(b, at);
      at += b.byteLength;
    }
    const src = this.#ops;
    const ops = new Int32Array((src.length / 3) * 4);
    for (let i = 0, j = 0; i < src.length; i += 3, j += 4) {
      const index = src[i + 2] as number;
      ops[j] = src[i] as number;
      ops[j + 1] = src[i + 1] as number;
      if (index >= 0) {
        ops[j + 2] = offsets[index] as number;
        ops[j + 3] = (this.#buffers[index] as Uint8Array).byteLength;
      }
    }
    const batch: BatchMessage = { t: 'batch', heads: this.#heads, ops, bytes, settled: this.#settled };
    this.#heads = [];
    this.#ops = [];
    this.#buffers = [];
    this.#bufferIndex = new Map();
    this.#bufferBytes = 0;
    this.#settled = [];
    try {
      this.#port.postMessage(batch, [bytes, ops.buffer]);
    } catch {
      // The port is closed: its thread is gone, and so are its clients (see #lost).
    }
  }
}

/** The request as the library reads it: method, url, headers and the client's address. */
class PortRequest {
  readonly socket: AdapterSocket;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: IncomingHttpHeaders,
    remoteAddress: string | undefined,
  ) {
    this.socket = {
      remoteAddress,
      setNoDelay() {
        return this;
      },
    };
  }
}

/**
 * node:http's ServerResponse as the library uses it (the members listed on
 * FetchResponseAdapter), writing to a response in an HTTP thread: what is
 * written is sent there at the end of the turn. `writableLength` counts the
 * bytes sent that the thread's socket has not yet taken (the thread
 * acknowledges them as it hands them over without filling the socket, or when
 * it drains), so a client that stops reading makes the writer pause Kafka as a
 * full socket does.
 */
class PortResponse extends EventEmitter {
  readonly socket: AdapterSocket;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  readonly #link: HostLink;
  readonly #id: number;
  /** Bytes the thread's socket took, modulo 2^32 (see OpenMessage.taken). */
  readonly #taken: Int32Array;
  /** Bytes sent, modulo 2^32. */
  #sent = 0;
  #needDrain = false;
  #closeEmitted = false;

  constructor(link: HostLink, id: number, socket: AdapterSocket, taken: Int32Array) {
    super();
    this.#link = link;
    this.#id = id;
    this.socket = socket;
    this.#taken = taken;
  }

  /** Bytes written that the thread's socket has not taken yet, past PORT_IN_FLIGHT_BYTES. */
  get writableLength(): number {
    return Math.max(0, this.#untaken() - PORT_IN_FLIGHT_BYTES);
  }

  /** Bytes written that the thread's socket has not taken yet (in flight, or buffered there). */
  #untaken(): number {
    return (this.#sent - Atomics.load(this.#taken, 0)) | 0;
  }

  writeHead(status: number, headers: Record<string, string | string[] | number> = {}): this {
    if (this.headersSent) throw new Error('writeHead called twice');
    this.headersSent = true;
    if (!this.destroyed) this.#link.head(this.#id, status, headers);
    return this;
  }

  /** The head goes with this turn's batch. */
  flushHeaders(): void {}

  cork(): void {}

  uncork(): void {}

  write(chunk: string | Uint8Array): boolean {
    if (this.writableEnded || this.destroyed) return false;
    // A string is encoded here; bytes are copied into the turn's batch (a frame shared by many streams once).
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (bytes.byteLength > 0) {
      this.#sent = (this.#sent + bytes.byteLength) | 0;
      this.#link.write(this.#id, bytes);
    }
    const ok = this.#untaken() < PORT_HIGH_WATER_BYTES;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  end(chunk?: string | Uint8Array): this {
    if (this.writableEnded || this.destroyed) return this;
    if (chunk !== undefined) this.write(chunk);
    this.writableEnded = true;
    this.#link.end(this.#id);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#link.destroy(this.#id);
    this.#emitClose();
    return this;
  }

  /** The thread's socket took more: 'drain' once little enough is left, as a socket emits it. */
  taken(): void {
    if (this.#needDrain && this.#untaken() < PORT_HIGH_WATER_BYTES && !this.destroyed) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  /** The thread's response finished, after end(). */
  finished(): void {
    if (this.writableFinished || this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    this.#emitClose();
  }

  /** The client left (or the thread, or the host is closing). */
  gone(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#emitClose();
  }

  /** Like Node's, 'close' comes on a later tick. */
  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    process.nextTick(() => this.emit('close'));
  }
}
