// The shared live tail writes a message that every in-step stream shares as
// one ready-made HTTP/1.1 chunk, straight to each socket (lib/writer.ts,
// directSocket). What a client sees must not change: the chunked framing,
// read here byte for byte by a raw socket client, the events and their ids,
// heartbeats and the last chunk, and a response whose write() a layer
// replaced (compression) still sees every byte through it.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { kafkaSse } from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/wait.ts';

/** A raw HTTP/1.1 client that decodes the chunked body strictly and keeps every chunk. */
class RawClient {
  head = '';
  readonly chunks: Buffer[] = [];
  ended = false;
  #buf = Buffer.alloc(0);
  #inBody = false;
  readonly socket: Socket;

  constructor(url: string, path: string, accept: string) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect(Number(port), hostname, () =>
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: ${accept}\r\n\r\n`),
    );
    this.socket.on('data', (d: Buffer) => this.#feed(d));
  }

  #feed(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    if (!this.#inBody) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.#buf.subarray(0, end).toString('latin1');
      this.#buf = this.#buf.subarray(end + 4);
      this.#inBody = true;
    }
    for (;;) {
      const eol = this.#buf.indexOf('\r\n');
      if (eol < 0) return;
      const sizeLine = this.#buf.subarray(0, eol).toString('latin1');
      assert.match(sizeLine, /^[0-9a-f]+$/, `a chunk starts with its size in hex, got ${JSON.stringify(sizeLine)}`);
      const size = Number.parseInt(sizeLine, 16);
      if (this.#buf.length < eol + 2 + size + 2) return;
      const body = this.#buf.subarray(eol + 2, eol + 2 + size);
      assert.equal(this.#buf.subarray(eol + 2 + size, eol + 4 + size).toString('latin1'), '\r\n', 'CRLF after a chunk');
      this.#buf = this.#buf.subarray(eol + 4 + size);
      if (size === 0) {
        this.ended = true;
        return;
      }
      this.chunks.push(Buffer.from(body));
    }
  }

  body(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  /** The message events (not heartbeats' position events). */
  events(): EventSourceMessage[] {
    const out: EventSourceMessage[] = [];
    createParser({ onEvent: (e) => (e.event === 'message' ? out.push(e) : undefined) }).feed(this.body());
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('HTTP/1.1 chunks of shared frames, on the wire', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;
  const clients: RawClient[] = [];
  const realWrite = net.Socket.prototype.write;
  /** Buffers written straight to a socket that hold a message event or line. */
  let direct = new Map<Socket, number>();

  beforeEach(() => {
    direct = new Map();
    net.Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(chunk) && /^[0-9a-f]+\r\n/.test(chunk.subarray(0, 12).toString('latin1'))) {
        direct.set(this, (direct.get(this) ?? 0) + 1);
      }
      return (realWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof realWrite;
  });

  afterEach(async () => {
    net.Socket.prototype.write = realWrite;
    for (const c of clients.splice(0)) c.close();
    await closeBridge(bridge);
    bridge = undefined;
  });

  function open(path: string, accept = 'text/event-stream'): RawClient {
    const c = new RawClient((bridge as BridgeServer).url, path, accept);
    clients.push(c);
    return c;
  }

  it('SSE and NDJSON: valid chunks, every message once with the tail’s ids, written as shared chunks', async () => {
    const topic = uniqueTopic('wire-chunks');
    await createTopic(topic, 2);
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ heartbeatMs: 200 }) }));
    const sse = [open('/a'), open('/b'), open('/c')];
    const ndjson = open('/d', 'application/x-ndjson');
    await waitFor(() => sse.every((c) => c.body().startsWith(':ok')) && ndjson.head !== '', 10_000, 'streams open');
    // Wait out one heartbeat so they interleave with the messages.
    await new Promise((r) => setTimeout(r, 300));
    const values = Array.from({ length: 40 }, (_, n) => ({
      value: JSON.stringify({ n, s: 'é€😀' }),
      partition: n % 2,
    }));
    // One at a time (one message per write, as live traffic mostly is), then a burst (batches).
    for (const v of values.slice(0, 10)) await produce(topic, [v]);
    await produce(topic, values.slice(10));
    await waitFor(
      () => sse.every((c) => c.events().length >= 40) && ndjson.body().split('\n').filter(Boolean).length >= 40,
      15_000,
      'every message',
    );
    for (const c of sse) {
      assert.match(c.head, /^HTTP\/1\.1 200 /);
      assert.match(c.head, /\r\ntransfer-encoding: chunked/i);
      const events = c.events();
      assert.deepEqual(
        events.map((e) => (JSON.parse(e.data) as { n: number }).n).sort((a, b) => a - b),
        values.map((_, n) => n),
      );
      // Every event carries the id of the tail's positions after it: the same for every stream.
      assert.deepEqual(
        events.map((e) => e.id),
        (sse[0] as RawClient).events().map((e) => e.id),
      );
      const last = JSON.parse(events.at(-1)?.id as string) as { partition: number; offset: number }[];
      assert.deepEqual(last.map((p) => p.offset).sort(), [20, 20]);
    }
    const lines = ndjson
      .body()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { n: number; s: string });
    assert.deepEqual(
      lines.map((l) => l.n).sort((a, b) => a - b),
      values.map((_, n) => n),
    );
    assert.ok(lines.every((l) => l.s === 'é€😀'));
    // The path under test was taken: most messages went out as shared chunks.
    const servers = [...direct.entries()].filter(([, n]) => n > 0);
    assert.ok(servers.length >= 4, `four sockets got shared chunks (${servers.length})`);
    for (const [, n] of servers) assert.ok(n >= 10, `a socket got ${n} shared chunks`);
  });

  it('ends with the last chunk after shared chunks, and a replaced res.write sees every byte', async () => {
    const topic = uniqueTopic('wire-chunks-end');
    await createTopic(topic, 1);
    const seen: string[] = [];
    const layeredSockets = new Set<Socket>();
    const streams: Promise<void>[] = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/layered') {
        // What a compression layer does: it replaces write() and must see every byte.
        const write = res.write;
        res.write = function (this: typeof res, chunk: unknown, ...rest: unknown[]) {
          seen.push(String(chunk));
          return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
        } as typeof res.write;
        layeredSockets.add(req.socket);
      }
      streams.push(kafkaSse(req, res, topic, baseOptions({ maxDurationMs: req.url === '/short' ? 3000 : null })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const plain = new RawClient(url, '/short', 'text/event-stream');
      const layered = new RawClient(url, '/layered', 'text/event-stream');
      clients.push(plain, layered);
      await waitFor(() => plain.body().startsWith(':ok') && layered.body().startsWith(':ok'), 10_000, 'open');
      await produce(topic, [{ value: '{"n":0}' }, { value: '{"n":1}' }]);
      await waitFor(() => layered.events().length === 2, 15_000, 'two events through the layer');
      await waitFor(() => plain.ended, 15_000, 'the short stream ended with the last chunk');
      assert.deepEqual(
        plain.events().map((e) => (JSON.parse(e.data) as { n: number }).n),
        [0, 1],
      );
      assert.ok(plain.body().endsWith('\n\n'), 'the last event is complete before the last chunk');
      assert.ok(
        [...direct.keys()].some((s) => !layeredSockets.has(s)),
        'the plain stream got shared chunks',
      );
      for (const s of layeredSockets) assert.equal(direct.get(s) ?? 0, 0, 'nothing bypassed the layer');
      assert.deepEqual(
        layered.events().map((e) => (JSON.parse(e.data) as { n: number }).n),
        [0, 1],
      );
      assert.ok(seen.join('').includes('"n":0') && seen.join('').includes('"n":1'), 'the layer saw both events');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(streams);
    }
  });
});
