// The writer against a real node:http server on port 0, read by a raw TCP client,
// so the assertions are about the bytes a client receives: status, headers, and
// the HTTP chunks (one chunk per res.write()).
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { InvalidAssignmentError } from '../../lib/errors.ts';
import {
  endUnreadRequest,
  httpChunk,
  mergeHeaders,
  SSE_HEADERS,
  writeHead,
  writeJsonError,
} from '../../lib/http-response.ts';
import { StreamWriter } from '../../lib/writer.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** What a raw client has received so far. */
interface Received {
  status: number | undefined;
  headers: Record<string, string>;
  /** The decoded body chunks, in order (chunked transfer encoding). */
  chunks: string[];
  /** The body when it is not chunked (Content-Length). */
  body: string;
  /** The chunked body's terminating zero-length chunk was received. */
  ended: boolean;
  /** The server closed the connection. */
  closed: boolean;
}

/** A raw HTTP/1.1 client: sends one GET and parses whatever arrives, byte for byte. */
class RawClient {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(port: number, headers: Record<string, string> = {}) {
    this.socket = net.connect(port, '127.0.0.1');
    const lines = ['GET /stream HTTP/1.1', 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    this.socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#notify();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
    this.socket.on('error', () => {});
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Parses everything received so far. */
  get received(): Received {
    const out: Received = { status: undefined, headers: {}, chunks: [], body: '', ended: false, closed: this.closed };
    const headEnd = this.#buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return out;
    const [statusLine = '', ...headerLines] = this.#buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    out.status = Number(statusLine.split(' ')[1]);
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      out.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let body = this.#buffer.subarray(headEnd + 4);
    if (out.headers['transfer-encoding'] !== 'chunked') {
      out.body = body.toString('utf8');
      return out;
    }
    for (;;) {
      const lineEnd = body.indexOf('\r\n');
      if (lineEnd < 0) break;
      const size = Number.parseInt(body.subarray(0, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        out.ended = true;
        break;
      }
      if (body.length < lineEnd + 2 + size + 2) break;
      out.chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8'));
      body = body.subarray(lineEnd + 2 + size + 2);
    }
    out.body = out.chunks.join('');
    return out;
  }

  /** Resolves with what was received once `predicate` holds; rejects after `timeoutMs`. */
  async until(predicate: (r: Received) => boolean, timeoutMs = 2000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.received;
      if (predicate(r)) return r;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(r)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function parseSse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  createParser({ onEvent: (e) => events.push(e) }).feed(text);
  return events;
}

describe('response', () => {
  let server: http.Server;
  let port: number;
  let handler: Handler = () => {};
  const clients: RawClient[] = [];
  const writers: StreamWriter[] = [];

  before(async () => {
    server = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(() => {
    for (const w of writers.splice(0)) w.dispose();
    for (const c of clients.splice(0)) c.close();
    handler = () => {};
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  interface Opened {
    writer: StreamWriter;
    res: ServerResponse;
    client: RawClient;
    full: number;
    drained: number;
    flushed: number[];
  }

  /**
   * Connects a raw client; the server side builds a StreamWriter (not opened
   * unless `open` is given) and hands it back.
   */
  async function connect(
    mode: 'sse' | 'ndjson',
    options: {
      heartbeatMs?: number | null;
      open?: { headers?: Record<string, string>; retryMs?: number | null };
      requestHeaders?: Record<string, string>;
      beforeWriter?: (res: ServerResponse) => void;
    } = {},
  ): Promise<Opened> {
    const opened = new Promise<Opened>((resolve) => {
      handler = (_req, res) => {
        options.beforeWriter?.(res);
        const state: Opened = {
          writer: undefined as unknown as StreamWriter,
          res,
          client,
          full: 0,
          drained: 0,
          flushed: [],
        };
        state.writer = new StreamWriter(res, mode, {
          heartbeatMs: options.heartbeatMs === undefined ? null : options.heartbeatMs,
          onFull: () => state.full++,
          onDrain: () => state.drained++,
          onFlush: (bytes) => state.flushed.push(bytes),
        });
        writers.push(state.writer);
        if (options.open) state.writer.open(options.open.headers ?? {}, options.open.retryMs ?? null);
        resolve(state);
      };
    });
    const client = new RawClient(port, options.requestHeaders);
    clients.push(client);
    return opened;
  }

  describe('StreamWriter, SSE', () => {
    it('opens with status 200, the SSE headers and `:ok` as the first bytes', async () => {
      const { client } = await connect('sse', { open: {} });
      const r = await client.until((x) => x.chunks.length >= 1);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.match(r.headers['cache-control'] ?? '', /(^|,\s*)no-cache(,|$)/);
      assert.equal(r.headers['x-accel-buffering'], 'no');
      assert.equal(r.headers.vary, 'Accept');
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      assert.equal(r.headers['content-length'], undefined);
      assert.deepEqual(r.chunks, [':ok\n\n']);
    });

    it("adds the caller's headers, without letting them change the stream's own", async () => {
      const { client } = await connect('sse', {
        open: {
          headers: { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'text/plain', 'X-Custom': 'yes' },
        },
      });
      const r = await client.until((x) => x.chunks.length >= 1);
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.equal(r.headers['x-custom'], 'yes');
      assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
    });

    it('sends the retry hint right after `:ok` when retryMs is set', async () => {
      const { client } = await connect('sse', { open: { retryMs: 3000 } });
      const r = await client.until((x) => x.chunks.length >= 1);
      assert.deepEqual(r.chunks, [':ok\n\nretry: 3000\n\n']);
    });

    it('sends the messages queued in one tick as one chunk, in order, with their ids', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      await client.until((x) => x.chunks.length >= 1);
      writer.message('{"n":1}', '[{"topic":"t","partition":0,"offset":1}]');
      writer.message('line1\nline2', '[{"topic":"t","partition":0,"offset":2}]');
      writer.message('{"n":3}', '[{"topic":"t","partition":0,"offset":3}]');
      const r = await client.until((x) => x.chunks.length >= 2);
      await sleep(20);
      assert.equal(client.received.chunks.length, 2, 'nothing more than one chunk');
      assert.equal(
        r.chunks[1],
        'event: message\nid: [{"topic":"t","partition":0,"offset":1}]\ndata: {"n":1}\n\n' +
          'event: message\nid: [{"topic":"t","partition":0,"offset":2}]\ndata: line1\ndata: line2\n\n' +
          'event: message\nid: [{"topic":"t","partition":0,"offset":3}]\ndata: {"n":3}\n\n',
      );
      assert.deepEqual(parseSse(r.body), [
        { event: 'message', id: '[{"topic":"t","partition":0,"offset":1}]', data: '{"n":1}' },
        { event: 'message', id: '[{"topic":"t","partition":0,"offset":2}]', data: 'line1\nline2' },
        { event: 'message', id: '[{"topic":"t","partition":0,"offset":3}]', data: '{"n":3}' },
      ]);
    });

    it('sends messages queued in different ticks as different chunks', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      writer.message('a', '1');
      await nextTurn();
      await nextTurn();
      writer.message('b', '2');
      const r = await client.until((x) => x.chunks.length >= 3);
      assert.deepEqual(r.chunks.slice(1), ['event: message\nid: 1\ndata: a\n\n', 'event: message\nid: 2\ndata: b\n\n']);
    });

    it('flushes at once, without waiting for the tick to end, when a batch grows large', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      const before = writer.bytesWritten;
      writer.message('x'.repeat(300 * 1024), '1');
      assert.ok(writer.bytesWritten > before + 300 * 1024, 'written synchronously');
      writer.message('small', '2');
      assert.ok(writer.bytesWritten < before + 301 * 1024, 'a small message waits for the end of the tick');
      const r = await client.until((x) => x.chunks.length >= 3);
      assert.equal(r.chunks[2], 'event: message\nid: 2\ndata: small\n\n');
    });

    it('counts events and UTF-8 bytes, and reports each write', async () => {
      const { writer, client, flushed } = await connect('sse', { open: {} });
      writer.message('é😀', '1');
      writer.control('lost', { lost: 3 });
      await client.until((x) => x.chunks.length >= 2);
      const r = client.received;
      const expectedBytes = r.chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
      assert.equal(writer.eventsWritten, 2);
      assert.equal(writer.bytesWritten, expectedBytes);
      assert.deepEqual(
        flushed,
        r.chunks.map((c) => Buffer.byteLength(c)),
      );
    });

    it('writes control events with their name, JSON data and no id', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      writer.control('lost', { topic: 't', partition: 0, lost: 60 });
      const r = await client.until((x) => x.chunks.length >= 2);
      assert.equal(r.chunks[1], 'event: lost\ndata: {"topic":"t","partition":0,"lost":60}\n\n');
      assert.deepEqual(parseSse(r.chunks[1] ?? ''), [
        { event: 'lost', id: undefined, data: '{"topic":"t","partition":0,"lost":60}' },
      ]);
    });

    it('writes errors as `event: error` with the public fields only', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      const err = new InvalidAssignmentError('assignments[0] is not a valid topic name: "a b"', {
        cause: new Error('secret'),
      });
      writer.error(err.toJSON());
      writer.end();
      const r = await client.until((x) => x.ended);
      assert.equal(
        r.chunks[1],
        'event: error\ndata: {"name":"InvalidAssignmentError","code":"INVALID_ASSIGNMENT",' +
          '"message":"assignments[0] is not a valid topic name: \\"a b\\"","status":400,"statusCode":400}\n\n',
      );
      assert.ok(!r.body.includes('secret'));
    });

    it('ends the response after writing what is pending, once', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      writer.message('last', '9');
      writer.end();
      writer.end();
      writer.message('after end', '10');
      const r = await client.until((x) => x.ended);
      assert.deepEqual(r.chunks, [':ok\n\n', 'event: message\nid: 9\ndata: last\n\n']);
      await sleep(20);
      assert.ok(!client.received.body.includes('after end'));
    });

    it('writes nothing more after dispose(), not even what was pending', async () => {
      const { writer, client, res } = await connect('sse', { open: {}, heartbeatMs: 20 });
      await client.until((x) => x.chunks.length >= 1);
      writer.message('dropped', '1');
      writer.dispose();
      await sleep(80);
      assert.deepEqual(client.received.chunks, [':ok\n\n']);
      assert.equal(res.writableEnded, false);
      writer.end();
      assert.equal(res.writableEnded, false, 'end() after dispose() does nothing');
      res.end();
    });

    it("calls a framework's res.flush() after each write (compression middleware)", async () => {
      let flushes = 0;
      const { writer, client } = await connect('sse', {
        beforeWriter: (res) => {
          (res as ServerResponse & { flush: () => void }).flush = () => flushes++;
        },
        open: {},
      });
      writer.message('a', '1');
      await client.until((x) => x.chunks.length >= 2);
      assert.equal(flushes, 2);
    });
  });

  describe('StreamWriter, frames written as bytes', () => {
    it('keeps the order of text and bytes queued in one tick, sends them as one chunk, and counts them', async () => {
      const { writer, client, flushed } = await connect('sse', { open: {} });
      await client.until((x) => x.chunks.length >= 1);
      writer.control('lost', { lost: 1 });
      writer.bytes().text('event: message\nid: 1\ndata: {"é":1}\n\n');
      writer.framedBytes();
      writer.control('lost', { lost: 2 });
      writer.framed('event: message\nid: 2\ndata: {}\n\n');
      writer.bytes().text('event: message\nid: 3\ndata: {}\n\n');
      writer.framedBytes();
      const r = await client.until((x) => x.chunks.length >= 2);
      await sleep(20);
      assert.equal(client.received.chunks.length, 2, 'one chunk');
      assert.equal(
        r.chunks[1],
        'event: lost\ndata: {"lost":1}\n\n' +
          'event: message\nid: 1\ndata: {"é":1}\n\n' +
          'event: lost\ndata: {"lost":2}\n\n' +
          'event: message\nid: 2\ndata: {}\n\n' +
          'event: message\nid: 3\ndata: {}\n\n',
      );
      assert.equal(writer.eventsWritten, 5);
      assert.equal(flushed.at(-1), Buffer.byteLength(r.chunks[1] as string));
    });

    it('writes at once when the bytes pending pass the batch size, the rest at the end of the tick', async () => {
      const { writer, client } = await connect('ndjson', { open: {} });
      const line = `{"x":"${'x'.repeat(1000)}"}\n`;
      for (let i = 0; i < 200; i++) {
        writer.bytes().text(line);
        writer.framedBytes();
      }
      assert.ok(writer.bytesWritten >= 96 * 1024, `written before the tick ended: ${writer.bytesWritten}`);
      assert.ok(writer.bytesWritten < 200 * line.length, 'the rest waits for the end of the tick');
      const r = await client.until((x) => x.chunks.reduce((n, c) => n + c.length, 0) >= 200 * line.length);
      assert.equal(r.chunks.length, 3, 'two full batches and the rest');
      assert.equal(r.chunks.join(''), line.repeat(200));
    });
  });

  describe("StreamWriter, a shared log's frames (HTTP/1.1 chunks)", () => {
    const frames = ['event: message\nid: [1]\ndata: {"é":"☃"}\n\n', 'event: message\nid: [2]\ndata: {}\n\n'];

    it('writes them to the socket as the chunks they are, and counts their payload', async () => {
      const { writer, client, flushed } = await connect('sse', { open: {} });
      await client.until((x) => x.chunks.length >= 1);
      for (const f of frames) writer.framed(httpChunk(f));
      writer.flush();
      const r = await client.until((x) => x.chunks.length >= 3);
      assert.deepEqual(r.chunks.slice(1), frames, 'one HTTP chunk per frame, byte for byte');
      assert.equal(writer.eventsWritten, 2);
      assert.equal(flushed.at(-1), Buffer.byteLength(frames.join('')));
      assert.equal(writer.bytesWritten, Buffer.byteLength(`:ok\n\n${frames.join('')}`));
    });

    it('keeps their order among text and bytes queued in the same tick', async () => {
      const { writer, client } = await connect('sse', { open: {} });
      await client.until((x) => x.chunks.length >= 1);
      writer.framed(httpChunk(frames[0] as string));
      writer.control('lost', { lost: 1 });
      writer.framed(httpChunk(frames[1] as string));
      writer.bytes().text('event: message\nid: [3]\ndata: {}\n\n');
      writer.framedBytes();
      writer.framed(httpChunk('event: message\nid: [4]\ndata: {}\n\n'));
      const want = `${frames[0]}event: lost\ndata: {"lost":1}\n\n${frames[1]}event: message\nid: [3]\ndata: {}\n\nevent: message\nid: [4]\ndata: {}\n\n`;
      const r = await client.until((x) => x.chunks.slice(1).join('').length >= want.length);
      assert.equal(r.chunks.slice(1).join(''), want);
      assert.equal(writer.eventsWritten, 5);
      assert.equal(writer.bytesWritten, Buffer.byteLength(`:ok\n\n${want}`));
    });

    it('writes at once when the chunks pending pass the batch size', async () => {
      const { writer, client } = await connect('ndjson', { open: {} });
      const line = `{"x":"${'x'.repeat(1000)}"}\n`;
      const chunk = httpChunk(line);
      for (let i = 0; i < 200; i++) writer.framed(chunk);
      assert.ok(writer.bytesWritten >= 96 * 1024, `written before the batch ended: ${writer.bytesWritten}`);
      assert.ok(writer.bytesWritten < 200 * line.length, 'the rest waits for the caller to flush');
      writer.flush();
      const r = await client.until((x) => x.chunks.length >= 200);
      assert.equal(r.chunks.length, 200);
    });
  });

  describe("writeHead: what a stream's head holds while the stream lasts", () => {
    /** The head node:http keeps for a response's life, as written by `write`. */
    function keptHead(write: (res: ServerResponse) => void): string {
      const res = new http.ServerResponse(new http.IncomingMessage(new net.Socket()));
      write(res);
      return (res as unknown as { _header: string })._header;
    }

    /** Heap per head of `n` heads kept (their responses let go), as written by `write`. */
    function heapPerHead(n: number, write: (res: ServerResponse) => void): number {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const held: string[] = [];
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i++) held.push(keptHead(write));
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      assert.equal(held.length, n);
      return grown / n;
    }

    it('sends the same head, and keeps it as one string, not the rope node:http built (~0.7 KB more per stream)', () => {
      const headers = mergeHeaders({ 'X-Served-By': 'bridge-7' }, SSE_HEADERS);
      const nodeAlone = (res: ServerResponse) => res.writeHead(200, headers);
      const library = (res: ServerResponse) => writeHead(res, 200, headers);
      const withoutDate = (head: string) => head.replace(/^Date: .*\r\n/m, '');
      assert.equal(withoutDate(keptHead(library)), withoutDate(keptHead(nodeAlone)));
      const n = 5000;
      const rope = heapPerHead(n, nodeAlone);
      const flat = heapPerHead(n, library);
      const length = keptHead(library).length;
      assert.ok(
        flat < length + 150 && rope > flat + 250,
        `${flat.toFixed(0)} B per head against ${rope.toFixed(0)} B with node:http alone (${length} characters)`,
      );
    });
  });

  describe("endUnreadRequest: a stream's request ends at its start", () => {
    /** Records what the request emits once the client is gone. */
    function watch(req: IncomingMessage) {
      const seen = { aborted: 0, errors: [] as string[] };
      req.on('aborted', () => seen.aborted++);
      req.on('error', (err: NodeJS.ErrnoException) => seen.errors.push(String(err.code)));
      return seen;
    }

    it("lets a request nobody reads end at open: the client's leaving closes the response and aborts nothing", async () => {
      let seen: ReturnType<typeof watch> | undefined;
      const { res, client } = await connect('sse', {
        open: {},
        beforeWriter: (r) => {
          seen = watch(r.req);
          endUnreadRequest(r.req, r);
        },
      });
      await client.until((x) => x.chunks.length >= 1);
      assert.equal(res.req.readableEnded, true);
      const closed = new Promise<void>((resolve) => res.once('close', resolve));
      client.close();
      await closed;
      await sleep(20);
      assert.deepEqual(seen, { aborted: 0, errors: [] });
    });

    it('closes the stream when the client half-closes, as Node did, so a frame written after fails nowhere', async () => {
      const { writer, res, client } = await connect('sse', {
        open: {},
        beforeWriter: (r) => endUnreadRequest(r.req, r),
      });
      await client.until((x) => x.chunks.length >= 1);
      const socket = res.socket as net.Socket;
      const errors: string[] = [];
      socket.on('error', (err: NodeJS.ErrnoException) => errors.push(String(err.code)));
      const ended = new Promise<void>((resolve) =>
        socket.once('end', () => {
          writer.framed(httpChunk('event: message\nid: [1]\ndata: {}\n\n'));
          writer.flush();
          resolve();
        }),
      );
      const closed = new Promise<void>((resolve) => res.once('close', resolve));
      client.socket.end();
      await ended;
      await closed;
      await sleep(20);
      assert.equal(socket.destroyed, true);
      assert.deepEqual(errors, []);
    });

    it('leaves a request someone paused alone: Node aborts it when the client leaves, as before', async () => {
      let seen: ReturnType<typeof watch> | undefined;
      const { res, client } = await connect('ndjson', {
        open: {},
        beforeWriter: (r) => {
          r.req.pause();
          seen = watch(r.req);
          endUnreadRequest(r.req, r);
        },
      });
      await client.until((x) => x.status === 200);
      assert.equal(res.req.readableEnded, false);
      const closed = new Promise<void>((resolve) => res.once('close', resolve));
      client.close();
      await closed;
      await sleep(20);
      assert.deepEqual(seen, { aborted: 1, errors: ['ECONNRESET'] });
    });
  });

  describe('StreamWriter, heartbeats', () => {
    it('writes a comment after heartbeatMs of silence, and again after each silence', async () => {
      const { client } = await connect('sse', { open: {}, heartbeatMs: 40 });
      const r = await client.until((x) => x.chunks.length >= 3, 1000);
      assert.deepEqual(r.chunks.slice(0, 3), [':ok\n\n', ':\n\n', ':\n\n']);
    });

    it('does not write heartbeats while messages flow', async () => {
      const { writer, client } = await connect('sse', { open: {}, heartbeatMs: 80 });
      for (let i = 0; i < 25; i++) {
        writer.message(`m${i}`, String(i));
        await sleep(8);
      }
      const r = client.received;
      assert.ok(r.chunks.length > 10, `chunks: ${r.chunks.length}`);
      assert.ok(!r.chunks.includes(':\n\n'), JSON.stringify(r.chunks));
      // Once the flow stops, the heartbeat comes back.
      const later = await client.until((x) => x.chunks.includes(':\n\n'), 1000);
      assert.equal(later.chunks.at(-1), ':\n\n');
    });

    it('writes no heartbeat with heartbeatMs null', async () => {
      const { client } = await connect('sse', { open: {}, heartbeatMs: null });
      await sleep(120);
      assert.deepEqual(client.received.chunks, [':ok\n\n']);
    });

    it('stops heartbeats at end()', async () => {
      const { writer, client } = await connect('sse', { open: {}, heartbeatMs: 30 });
      writer.end();
      await client.until((x) => x.ended);
      await sleep(80);
      assert.deepEqual(client.received.chunks, [':ok\n\n']);
    });

    it('writes an empty line as the NDJSON heartbeat', async () => {
      const { client } = await connect('ndjson', { open: {}, heartbeatMs: 30 });
      const r = await client.until((x) => x.chunks.length >= 1, 1000);
      assert.equal(r.chunks[0], '\n');
    });
  });

  describe('StreamWriter, NDJSON', () => {
    it('opens with status 200 and the NDJSON headers, and writes no SSE bytes', async () => {
      const { writer, client } = await connect('ndjson', { open: { retryMs: 3000 } });
      writer.message('{"a":1}', 'ignored id');
      const r = await client.until((x) => x.chunks.length >= 1);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/x-ndjson; charset=utf-8');
      assert.match(r.headers['cache-control'] ?? '', /(^|,\s*)no-cache(,|$)/);
      assert.equal(r.headers['x-accel-buffering'], 'no');
      assert.equal(r.headers.vary, 'Accept');
      assert.deepEqual(r.chunks, ['{"a":1}\n']);
    });

    // BUG (lib/writer.ts, StreamWriter.open): in NDJSON mode nothing is written on open, and
    // Node only sends a head set by writeHead() together with the first body bytes (or
    // res.flushHeaders()). So an NDJSON client sees no status line and no headers until the
    // first message or heartbeat: up to heartbeatMs (15 s by default) on a quiet topic, and
    // never with heartbeatMs: null (fetch() stays pending until undici's headersTimeout). SSE is
    // not affected only because open() writes `:ok`.
    it('sends the status line and headers at once on open, even before any message', async () => {
      const { client } = await connect('ndjson', { open: {}, heartbeatMs: null });
      const r = await client.until((x) => x.status !== undefined, 300).catch(() => client.received);
      assert.equal(r.status, 200, 'no response head within 300 ms of open()');
      assert.equal(r.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    });

    it('writes one line per message, in one chunk per tick', async () => {
      const { writer, client } = await connect('ndjson', { open: {} });
      writer.message('{"n":1}', 'x');
      writer.message('"a\\nb"', 'x');
      writer.message('null', 'x');
      const r = await client.until((x) => x.chunks.length >= 1);
      await sleep(20);
      assert.deepEqual(client.received.chunks, ['{"n":1}\n"a\\nb"\nnull\n']);
      assert.deepEqual(
        r.body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
        [{ n: 1 }, 'a\nb', null],
      );
    });

    it('writes control and error events in the reserved envelope {"$kafkaSse": name, "data": …}', async () => {
      const { writer, client } = await connect('ndjson', { open: {} });
      writer.control('lost', { lost: 5 });
      writer.error(new InvalidAssignmentError('bad').toJSON());
      writer.end();
      const r = await client.until((x) => x.ended);
      const lines = r.body.split('\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines[0], '{"$kafkaSse":"lost","data":{"lost":5}}');
      assert.ok(lines[1]?.startsWith('{"$kafkaSse":"error","data":{'), lines[1]);
      assert.deepEqual(
        lines.map((l) => JSON.parse(l)),
        [
          { $kafkaSse: 'lost', data: { lost: 5 } },
          {
            $kafkaSse: 'error',
            data: new InvalidAssignmentError('bad').toJSON(),
          },
        ],
      );
    });
  });

  describe('StreamWriter, backpressure', () => {
    it('reports a full socket, keeps every byte, and reports the drain', async () => {
      const state = await connect('sse', { open: {} });
      const { writer, client, res } = state;
      await client.until((x) => x.chunks.length >= 1);
      client.socket.pause();
      const payload = 'y'.repeat(1024 * 1024);
      let sent = 0;
      while (!writer.full && sent < 256) {
        writer.message(payload, String(sent));
        sent++;
      }
      assert.ok(writer.full, 'the socket never filled');
      assert.equal(state.full, 1);
      assert.equal(state.drained, 0);
      // Queued while full: still written (buffered, never lost), and onFull is not called again.
      writer.message('tail', 'last');
      await nextTurn();
      assert.equal(state.full, 1);
      client.socket.resume();
      const r = await client.until((x) => x.body.includes('data: tail\n\n'), 10_000);
      for (let i = 0; i < 100 && writer.full; i++) await sleep(10);
      assert.equal(writer.full, false);
      // The kernel may take part of the backlog while the client is paused, so a drain can come
      // early; what matters is that every full was followed by exactly one drain.
      assert.equal(state.drained, state.full);
      const events = parseSse(r.body);
      assert.equal(events.length, sent + 1);
      assert.ok(events.slice(0, sent).every((e, i) => e.id === String(i) && e.data.length === payload.length));
      assert.equal(events.at(-1)?.data, 'tail');
      res.end();
    });
  });

  describe('writeJsonError', () => {
    it('answers with the status, a JSON body and no-store, plus the caller headers', async () => {
      handler = (_req, res) =>
        writeJsonError(res, new InvalidAssignmentError('bad').toJSON(), { 'Access-Control-Allow-Origin': '*' });
      const client = new RawClient(port);
      clients.push(client);
      const r = await client.until((x) => x.status !== undefined && x.body.length > 0 && x.body.endsWith('}'));
      assert.equal(r.status, 400);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.equal(r.headers.vary, 'Accept');
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.equal(r.headers['retry-after'], undefined);
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
      assert.deepEqual(JSON.parse(r.body), {
        name: 'InvalidAssignmentError',
        code: 'INVALID_ASSIGNMENT',
        message: 'bad',
        status: 400,
        statusCode: 400,
      });
    });

    it('adds Retry-After when given', async () => {
      handler = (_req, res) =>
        writeJsonError(
          res,
          { name: 'BrokerUnavailableError', code: 'BROKER_UNAVAILABLE', message: 'down', status: 503, statusCode: 503 },
          {},
          5,
        );
      const client = new RawClient(port);
      clients.push(client);
      const r = await client.until((x) => x.status !== undefined && x.body.endsWith('}'));
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '5');
    });

    it('does nothing once the stream has started', async () => {
      const { writer, client, res } = await connect('sse', { open: {} });
      writeJsonError(res, new InvalidAssignmentError('late').toJSON(), {});
      writer.end();
      const r = await client.until((x) => x.ended);
      assert.equal(r.status, 200);
      assert.deepEqual(r.chunks, [':ok\n\n']);
    });
  });

  describe('on HTTP/2 (node:http2 compatibility API)', () => {
    const HTTP1_ONLY = {
      Connection: 'keep-alive',
      'Keep-Alive': 'timeout=5',
      'Transfer-Encoding': 'chunked',
      Upgrade: 'h2c',
    };

    /** One request to an h2c server whose handler is `h2handler`; resolves with the head and the body. */
    async function h2Request(
      h2handler: (res: ServerResponse) => void,
    ): Promise<{ head: http2.IncomingHttpHeaders; body: string }> {
      const server = http2.createServer((_req, res) => h2handler(res as unknown as ServerResponse));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      try {
        return await new Promise((resolve, reject) => {
          const stream = session.request({ ':path': '/' });
          let body = '';
          let head: http2.IncomingHttpHeaders = {};
          stream.setEncoding('utf8');
          stream.on('response', (h) => {
            head = h;
          });
          stream.on('data', (c: string) => {
            body += c;
          });
          stream.on('end', () => resolve({ head, body }));
          stream.on('error', reject);
        });
      } finally {
        session.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    }

    it('leaves connection-specific headers out of the stream head, and keeps the others', async () => {
      const { head, body } = await h2Request((res) => {
        const writer = new StreamWriter(res, 'sse', { heartbeatMs: null, onFull: () => {}, onDrain: () => {} });
        writer.open({ ...HTTP1_ONLY, 'X-Extra': '1' }, null);
        writer.end();
      });
      assert.equal(head[':status'], 200);
      assert.equal(head['x-extra'], '1');
      assert.equal(head['content-type'], 'text/event-stream; charset=utf-8');
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade'])
        assert.equal(head[name], undefined);
      assert.equal(body, ':ok\n\n');
    });

    it("writes shared frames as views of their chunks' bytes, several corked together, never as copies", async () => {
      const frames = ['id: 1\nevent: message\ndata: {"a":"é☃"}\n\n', 'id: 2\ndata: 2\n\n', 'id: 3\ndata: 3\n\n'];
      const chunks = frames.map(httpChunk);
      const written: unknown[] = [];
      let corked = 0;
      const { body } = await h2Request((res) => {
        const write = res.write.bind(res) as (c: unknown) => boolean;
        (res as { write: unknown }).write = (c: unknown) => {
          written.push(c);
          if (res.writableCorked > 0) corked++;
          return write(c);
        };
        const writer = new StreamWriter(res, 'sse', { heartbeatMs: null, onFull: () => {}, onDrain: () => {} });
        writer.open({}, null);
        writer.framed(chunks[0] as Buffer);
        writer.flush();
        writer.framed(chunks[1] as Buffer);
        writer.framed(chunks[2] as Buffer);
        writer.flush();
        writer.framed(chunks[0] as Buffer);
        writer.message('4', 'id-4');
        writer.end();
        assert.equal(
          writer.bytesWritten,
          Buffer.byteLength(`:ok\n\n${frames.join('')}${frames[0]}event: message\nid: id-4\ndata: 4\n\n`),
        );
      });
      assert.equal(body, `:ok\n\n${frames.join('')}${frames[0]}event: message\nid: id-4\ndata: 4\n\n`);
      const buffers = written.filter((w) => Buffer.isBuffer(w)) as Buffer[];
      assert.deepEqual(
        buffers.slice(0, 3).map((b) => b.toString('utf8')),
        frames,
        'each frame, without its chunk framing',
      );
      for (const [i, b] of buffers.slice(0, 3).entries()) {
        assert.equal(b.buffer, chunks[i]?.buffer, "a view of the tail's chunk, not a copy");
      }
      assert.equal(corked, 2, 'the two frames pending together go out corked');
      assert.equal(
        buffers[3]?.toString('utf8'),
        `${frames[0]}event: message\nid: id-4\ndata: 4\n\n`,
        'a frame queued before text of its own goes out with it',
      );
      assert.ok(!written.some((w) => typeof w === 'string' && w.includes('\r\n')), 'no chunk framing in the body');
    });

    it('leaves them out of JSON errors too', async () => {
      const { head, body } = await h2Request((res) =>
        writeJsonError(res, new InvalidAssignmentError('bad').toJSON(), HTTP1_ONLY, 3),
      );
      assert.equal(head[':status'], 400);
      assert.equal(head['retry-after'], '3');
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade'])
        assert.equal(head[name], undefined);
      assert.equal((JSON.parse(body) as { code: string }).code, 'INVALID_ASSIGNMENT');
    });

    it('passes them untouched on HTTP/1.1, as before', async () => {
      handler = (_req, res) =>
        writeJsonError(res, new InvalidAssignmentError('bad').toJSON(), { 'Keep-Alive': 'timeout=5' });
      const client = new RawClient(port);
      clients.push(client);
      const r = await client.until((x) => x.status !== undefined && x.body.endsWith('}'));
      assert.equal(r.headers['keep-alive'], 'timeout=5');
    });
  });
});
