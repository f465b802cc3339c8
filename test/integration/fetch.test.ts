// kafkaSseResponse() against the real broker: with plain `new Request(...)`
// objects consumed directly, and in Hono on @hono/node-server
// (examples/hono.js) read by real clients (eventsource, undici's fetch, and a
// raw node:http client that stops reading).
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createParser } from 'eventsource-parser';
import { Agent, fetch as undiciFetch } from 'undici';
import { createApp } from '../../examples/hono.js';
import {
  type Assignments,
  type KafkaSseOptions,
  type KafkaSseResponseOptions,
  kafkaSse,
  kafkaSseResponse,
  openConsumerCount,
  StreamRegistry,
} from '../../index.ts';
import { FetchRequestAdapter, FetchResponseAdapter } from '../../lib/fetch-adapter.ts';
import { HIGH_WATER_BYTES } from '../../lib/writer.ts';
import { baseOptions } from '../helpers/bridge-server.ts';
import { testCertificate } from '../helpers/http2.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { recordFigures } from '../helpers/soak.ts';
import { TrackedEventSource } from '../helpers/tracked-eventsource.ts';
import { waitFor } from '../helpers/wait.ts';

interface Event {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads a Response body as SSE, in the background, until cancelled or ended. */
class BodyReader {
  readonly events: Event[] = [];
  readonly comments: string[] = [];
  text = '';
  ended = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #parser = createParser({
    onEvent: (e) => this.events.push({ event: e.event ?? 'message', id: e.id, data: e.data }),
    onComment: (c) => this.comments.push(c),
  });

  constructor(response: { body: ReadableStream<Uint8Array> | null }) {
    this.#reader = (response.body as ReadableStream<Uint8Array>).getReader();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (let r = await this.#reader.read(); !r.done; r = await this.#reader.read()) {
        const chunk = decoder.decode(r.value, { stream: true });
        this.text += chunk;
        this.#parser.feed(chunk);
      }
    } catch {
      // Cancelled.
    }
    this.ended = true;
  }

  messages(): Event[] {
    return this.events.filter((e) => e.event === 'message');
  }

  ns(): number[] {
    return this.messages().map((e) => (JSON.parse(e.data) as { n: number }).n);
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

function json(n: number): string {
  return JSON.stringify({ n });
}

describe('Fetch entry point: kafkaSseResponse()', function () {
  this.timeout(30_000);
  const readers: BodyReader[] = [];

  afterEach(async () => {
    for (const r of readers.splice(0)) await r.cancel().catch(() => {});
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  function read(response: Response): BodyReader {
    const reader = new BodyReader(response);
    readers.push(reader);
    return reader;
  }

  describe('with plain Request objects', () => {
    const stream = (url: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
      new Request(`http://bridge.test${url}`, { headers: { accept: 'text/event-stream', ...headers }, ...init });

    it('streams SSE from the live end with heartbeats and ids, and resumes by Last-Event-ID', async () => {
      const topic = uniqueTopic('fetch-live');
      await createTopic(topic, 2);
      const options = baseOptions({ heartbeatMs: 200, retryMs: 700 });
      const response = await kafkaSseResponse(stream('/s'), topic, options);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform');
      const live = read(response);
      await waitFor(() => live.text.includes('retry: 700'), 5000, 'the retry hint');
      await waitFor(() => live.comments.length >= 2, 5000, 'heartbeat comments');
      await produce(
        topic,
        [0, 1, 2, 3].map((n) => ({ value: json(n), partition: n % 2 })),
      );
      await waitFor(() => live.messages().length === 4, 10_000, 'four messages');
      const lastId = live.messages().at(-1)?.id ?? '';
      assert.deepEqual(JSON.parse(lastId), [
        { topic, partition: 0, offset: 2 },
        { topic, partition: 1, offset: 2 },
      ]);
      await live.cancel();
      await produce(
        topic,
        [4, 5].map((n) => ({ value: json(n), partition: n % 2 })),
      );
      const resumed = read(await kafkaSseResponse(stream('/s', { 'last-event-id': lastId }), topic, options));
      await waitFor(() => resumed.messages().length === 2, 10_000, 'the two missed messages');
      assert.deepEqual(
        resumed.ns().sort((a, b) => a - b),
        [4, 5],
      );
    });

    it('answers NDJSON to Accept: application/x-ndjson', async () => {
      const topic = uniqueTopic('fetch-ndjson');
      await createTopic(topic, 1);
      await produce(
        topic,
        [0, 1, 2].map((n) => ({ value: json(n) })),
      );
      const response = await kafkaSseResponse(
        stream('/s', { accept: 'application/x-ndjson' }),
        [{ topic, partition: 0, offset: 0 }],
        baseOptions(),
      );
      assert.equal(response.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
      const body = read(response);
      await waitFor(() => body.text.split('\n').filter(Boolean).length === 3, 10_000, 'three lines');
      assert.deepEqual(
        body.text
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { n: number; _kafka: { offset: number } })._kafka.offset),
        [0, 1, 2],
      );
    });

    it('answers errors with their status and JSON body: 404 unknown topic, 400 bad Last-Event-ID, Kafka unavailable', async () => {
      const topic = uniqueTopic('fetch-errors');
      await createTopic(topic, 1);
      const missing = await kafkaSseResponse(stream('/s'), uniqueTopic('fetch-none'), baseOptions());
      assert.equal(missing.status, 404);
      assert.equal(missing.headers.get('content-type'), 'application/json; charset=utf-8');
      const body = (await missing.json()) as { code: string; status: number; message: string };
      assert.equal(body.code, 'TOPIC_NOT_AVAILABLE');
      assert.equal(body.status, 404);

      const badId = await kafkaSseResponse(stream('/s', { 'last-event-id': '[{"topic":' }), topic, baseOptions());
      assert.equal(badId.status, 400);
      assert.equal(((await badId.json()) as { code: string }).code, 'INVALID_LAST_EVENT_ID');
      // The query parameter works as for node:http.
      const badQuery = await kafkaSseResponse(stream('/s?lastEventId=nope'), topic, baseOptions());
      assert.equal(badQuery.status, 400);
      await badQuery.body?.cancel();

      // Kafka unavailable: SSE gets a 200 stream with an error event and a retry hint, NDJSON a 503.
      const down = baseOptions({
        kafkaConfig: { 'metadata.broker.list': '127.0.0.1:1' },
        connectTimeoutMs: 1000,
        unavailableRetryMs: 4000,
        sharedTail: null,
      });
      const [sse, nd] = await Promise.all([
        kafkaSseResponse(stream('/s'), topic, down),
        kafkaSseResponse(stream('/s', { accept: 'application/x-ndjson' }), topic, down),
      ]);
      assert.equal(sse.status, 200);
      const sseText = await sse.text();
      assert.match(sseText, /retry: 4000/);
      assert.match(sseText, /^event: error$/m);
      assert.equal(nd.status, 503);
      assert.equal(nd.headers.get('retry-after'), '4');
      assert.equal(((await nd.json()) as { code: string }).code, 'BROKER_UNAVAILABLE');
    });

    it("releases the consumer when the body is cancelled and when the request's signal aborts (also during setup)", async () => {
      const topic = uniqueTopic('fetch-cancel');
      await createTopic(topic, 1);
      const options = baseOptions({ sharedTail: null });
      const cancelled = read(await kafkaSseResponse(stream('/s'), topic, options));
      await waitFor(() => cancelled.text.startsWith(':ok'), 5000, ':ok');
      assert.equal(openConsumerCount(), 1);
      await cancelled.cancel();
      await waitFor(() => openConsumerCount() === 0, 10_000, 'released after cancel()');

      const controller = new AbortController();
      const aborted = read(await kafkaSseResponse(stream('/s', {}, { signal: controller.signal }), topic, options));
      await waitFor(() => aborted.text.startsWith(':ok'), 5000, ':ok');
      assert.equal(openConsumerCount(), 1);
      controller.abort();
      await waitFor(() => openConsumerCount() === 0, 10_000, 'released after abort');
      await waitFor(() => aborted.ended, 5000, 'the body ends');

      // Aborted while the consumer is still connecting (to a broker that does not answer):
      // no stream, nothing held, an answer no one reads.
      const early = new AbortController();
      const pending = kafkaSseResponse(stream('/s', {}, { signal: early.signal }), topic, {
        ...options,
        kafkaConfig: { 'metadata.broker.list': '127.0.0.1:1' },
        connectTimeoutMs: 1500,
      });
      await waitFor(() => openConsumerCount() === 1, 5000, 'the consumer is connecting');
      early.abort();
      const answer = await pending;
      assert.equal(answer.status, 503);
      assert.equal(((await answer.json()) as { code: string }).code, 'STREAM_ABORTED');
      assert.equal(openConsumerCount(), 0);
    });

    it('kafkaSse() uses only the request and response members the adapter documents', async () => {
      // If the library starts using another member of req/res, the adapter (lib/fetch-adapter.ts) must gain it.
      const documented = {
        req: new Set(['headers', 'url', 'method', 'socket']),
        res: new Set([
          'writeHead',
          'flushHeaders',
          'write',
          'cork',
          'uncork',
          'end',
          'writableLength',
          'headersSent',
          'writableEnded',
          'writableFinished',
          'destroyed',
          'socket',
          'on',
          'once',
          'off',
          // Read to call it when present (compression middleware); the adapter has none.
          'flush',
        ]),
      };
      const used = { req: new Set<string>(), res: new Set<string>() };
      function watched<T extends object>(target: T, into: Set<string>): T {
        return new Proxy(target, {
          get(t, key) {
            if (typeof key === 'string') into.add(key);
            const value = Reflect.get(t, key, t) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
          },
        });
      }
      async function run(
        request: Request,
        assignments: Assignments,
        options: KafkaSseOptions,
        read: (body: BodyReader) => Promise<void>,
        readLate = false,
      ): Promise<void> {
        const res = new FetchResponseAdapter('192.0.2.9');
        const done = kafkaSse(
          watched(new FetchRequestAdapter(request, '192.0.2.9'), used.req) as unknown as IncomingMessage,
          watched(res, used.res) as unknown as ServerResponse,
          assignments,
          options,
        );
        const response = await res.response;
        // Late: only once the library has paused for a full buffer, so it also sees 'drain'.
        if (readLate) await waitFor(() => res.writableLength >= HIGH_WATER_BYTES, 10_000, 'a full buffer');
        const body = new BodyReader(response);
        await read(body);
        await body.cancel();
        res.destroy();
        await done;
      }
      const topic = uniqueTopic('fetch-members');
      await createTopic(topic, 1);
      const registry = new StreamRegistry();
      // A live stream with heartbeats and a message, then the client leaves.
      await run(stream('/s'), topic, baseOptions({ heartbeatMs: 100, registry, sharedTail: null }), async (body) => {
        await waitFor(() => body.comments.length >= 1, 5000, 'a heartbeat');
        await produce(topic, [{ value: json(1) }]);
        await waitFor(() => body.messages().length === 1, 10_000, 'a message');
      });
      // An error answer, and a replay that fills the buffer and drains.
      await run(stream('/s'), uniqueTopic('fetch-members-none'), baseOptions(), async (body) => {
        await waitFor(() => body.ended, 5000, 'the error answer');
      });
      await produce(
        topic,
        Array.from({ length: 2000 }, (_, n) => ({ value: JSON.stringify({ n, padding: 'x'.repeat(1000) }) })),
      );
      await run(
        stream('/s'),
        [{ topic, partition: 0, offset: 0 }],
        baseOptions(),
        async (body) => {
          await waitFor(() => body.messages().length === 2001, 20_000, 'the replay');
        },
        true,
      );
      for (const side of ['req', 'res'] as const) {
        const extra = [...used[side]].filter((k) => !documented[side].has(k));
        assert.deepEqual(extra, [], `kafkaSse() used ${side}.${extra.join(`, ${side}.`)}: add it to the adapter`);
      }
    });

    it('pauses Kafka while nobody reads the body, and delivers everything once it is read', async () => {
      const topic = uniqueTopic('fetch-bulk');
      await createTopic(topic, 1);
      const padding = 'x'.repeat(1000);
      const total = 4000;
      for (let i = 0; i < total; i += 1000) {
        await produce(
          topic,
          Array.from({ length: 1000 }, (_, j) => ({ value: JSON.stringify({ n: i + j, padding }) })),
        );
      }
      const registry = new StreamRegistry();
      const response = await kafkaSseResponse(
        stream('/s'),
        [{ topic, partition: 0, offset: 0 }],
        baseOptions({ registry }),
      );
      const sent = () => registry.list()[0]?.bytesSent ?? 0;
      await waitFor(() => sent() > HIGH_WATER_BYTES, 10_000, 'the body buffer filled');
      await new Promise((r) => setTimeout(r, 1000));
      const plateau = sent();
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(sent(), plateau, 'nothing more is read from Kafka while nobody reads');
      assert.ok(plateau < HIGH_WATER_BYTES + 300 * 1024, `bounded: ${plateau} bytes of ${total * 1030}`);
      recordFigures('fetch: Request body not read', {
        messages: total,
        paddingBytes: 1000,
        writtenBeforePause: plateau,
      });
      const body = read(response);
      await waitFor(() => body.messages().length === total, 20_000, 'every message');
      assert.deepEqual(
        body.ns(),
        Array.from({ length: total }, (_, i) => i),
      );
    });
  });

  describe('in Hono on @hono/node-server (examples/hono.js)', () => {
    let server: ReturnType<typeof serve> | undefined;
    let close: (() => Promise<void>) | undefined;
    let url = '';
    const sources: TrackedEventSource[] = [];

    async function start(options: KafkaSseResponseOptions): Promise<void> {
      const example = createApp(options);
      close = example.close;
      const port = await new Promise<number>((resolve) => {
        server = serve({ fetch: example.app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
          resolve(info.port),
        );
      });
      url = `http://127.0.0.1:${port}`;
    }

    afterEach(async () => {
      for (const s of sources.splice(0)) s.close();
      await close?.();
      const s = server as http.Server | undefined;
      s?.closeAllConnections();
      await new Promise((r) => (s ? s.close(r) : r(undefined)));
      server = undefined;
      close = undefined;
    });

    it('serves an eventsource client, which resumes by Last-Event-ID when the stream ends: every message once', async () => {
      const topic = uniqueTopic('hono-es');
      await createTopic(topic, 2);
      const registry = new StreamRegistry();
      await start(baseOptions({ retryMs: 200, maxDurationMs: 1500, registry }));
      const es = new TrackedEventSource(`${url}/v2/stream/${topic}`);
      sources.push(es);
      await waitFor(() => registry.list().length === 1, 10_000, 'the stream opened');
      assert.equal(registry.list()[0]?.client, '127.0.0.1', 'remoteAddress from c.env.incoming');
      const total = 30;
      for (let n = 0; n < total; n++) {
        await produce(topic, [{ value: json(n), partition: n % 2 }]);
        await new Promise((r) => setTimeout(r, 100));
      }
      await es.until(() => es.messages.length >= total, 15_000, 'every message');
      const ns = es.messages.map((m) => (JSON.parse(m.data) as { n: number }).n);
      assert.deepEqual(
        [...ns].sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
        'each message exactly once',
      );
      assert.ok(es.connections.length >= 2, `reconnected (${es.connections.length} connections)`);
      assert.ok(
        es.connections.slice(1).every((c) => c.lastEventId !== null && c.status === 200),
        'each reconnect sent its Last-Event-ID and was answered 200',
      );
    });

    it('answers undici fetch: NDJSON, JSON errors, and a client abort releases the consumer', async () => {
      const topic = uniqueTopic('hono-fetch');
      await createTopic(topic, 1);
      await produce(
        topic,
        [0, 1].map((n) => ({ value: json(n) })),
      );
      await start(baseOptions({ sharedTail: null }));
      // ?since= as the example server takes it: an ISO-8601 date (or epoch milliseconds).
      const nd = await undiciFetch(`${url}/v2/stream/${topic}?since=2020-01-01T00:00:00Z`, {
        headers: { accept: 'application/x-ndjson' },
      });
      assert.equal(nd.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
      const ndBody = read(nd as unknown as Response);
      await waitFor(() => ndBody.text.split('\n').filter(Boolean).length === 2, 10_000, 'two lines');

      const badSince = await undiciFetch(`${url}/v2/stream/${topic}?since=yesterday`);
      assert.equal(badSince.status, 400);
      assert.equal(((await badSince.json()) as { code: string }).code, 'INVALID_TIMESTAMP');
      const missing = await undiciFetch(`${url}/v2/stream/${uniqueTopic('hono-none')}`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
      const badId = await undiciFetch(`${url}/v2/stream/${topic}`, { headers: { 'last-event-id': '{' } });
      assert.equal(badId.status, 400);
      assert.equal(((await badId.json()) as { code: string }).code, 'INVALID_LAST_EVENT_ID');

      await ndBody.cancel();
      await waitFor(() => openConsumerCount() === 0, 10_000, 'released after the first client left');
      const controller = new AbortController();
      const sse = await undiciFetch(`${url}/v2/stream/${topic}`, { signal: controller.signal });
      assert.equal(sse.status, 200);
      assert.equal(openConsumerCount(), 1);
      controller.abort();
      await waitFor(() => openConsumerCount() === 0, 10_000, 'released after the client aborted');
    });

    it('serves HTTP/2 over TLS too (undici allowH2), with no connection-specific headers in its answers', async () => {
      const topic = uniqueTopic('hono-h2');
      await createTopic(topic, 1);
      await produce(
        topic,
        [0, 1, 2].map((n) => ({ value: json(n) })),
      );
      const example = createApp(
        baseOptions({
          headers: { Connection: 'keep-alive', 'Keep-Alive': 'timeout=5', 'Transfer-Encoding': 'chunked' },
        }),
      );
      close = example.close;
      const sessions = new Set<import('node:http2').ServerHttp2Session>();
      const h2 = serve({
        fetch: example.app.fetch,
        port: 0,
        hostname: '127.0.0.1',
        createServer: createSecureServer,
        serverOptions: { ...(await testCertificate()), allowHTTP1: true },
      }) as Http2SecureServer;
      h2.on('session', (session) => sessions.add(session));
      await new Promise((resolve) => (h2.listening ? resolve(undefined) : h2.once('listening', resolve)));
      const h2url = `https://127.0.0.1:${(h2.address() as AddressInfo).port}`;
      // One connection per origin, as a browser would: both requests are streams on it.
      const dispatcher = new Agent({
        allowH2: true,
        connections: 1,
        pipelining: 10,
        connect: { ca: (await testCertificate()).cert },
      });
      try {
        const sse = await undiciFetch(`${h2url}/v2/stream/${topic}?since=0`, { dispatcher });
        assert.equal(sse.status, 200);
        for (const name of ['connection', 'keep-alive', 'transfer-encoding'])
          assert.equal(sse.headers.has(name), false);
        const body = read(sse as unknown as Response);
        await waitFor(() => body.messages().length === 3, 10_000, 'three messages');
        assert.deepEqual(body.ns(), [0, 1, 2]);
        const missing = await undiciFetch(`${h2url}/v2/stream/${uniqueTopic('hono-h2-none')}`, { dispatcher });
        assert.equal(missing.status, 404);
        assert.equal(missing.headers.has('connection'), false);
        assert.equal(((await missing.json()) as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
        assert.equal(sessions.size, 1, 'both requests on one HTTP/2 connection');
        await body.cancel();
      } finally {
        await dispatcher.destroy();
        for (const session of sessions) session.destroy();
        await new Promise((resolve) => h2.close(resolve));
      }
    });

    it('pauses Kafka for a client that stops reading, and it then gets everything', async () => {
      const topic = uniqueTopic('hono-bulk');
      await createTopic(topic, 1);
      const padding = 'x'.repeat(1000);
      const total = 10_000;
      for (let i = 0; i < total; i += 1000) {
        await produce(
          topic,
          Array.from({ length: 1000 }, (_, j) => ({ value: JSON.stringify({ n: i + j, padding }) })),
        );
      }
      const registry = new StreamRegistry();
      await start(baseOptions({ registry }));
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(`${url}/v2/stream/${topic}?since=0`, { agent: false }, resolve);
        req.on('error', reject);
      });
      res.pause();
      const sent = () => registry.list()[0]?.bytesSent ?? 0;
      await waitFor(() => sent() > HIGH_WATER_BYTES, 10_000, 'buffers filled');
      let plateau = sent();
      // The socket's kernel buffers take a few MB first; then the server stops reading Kafka.
      await waitFor(
        async () => {
          await new Promise((r) => setTimeout(r, 500));
          const now = sent();
          const still = now === plateau;
          plateau = now;
          return still;
        },
        10_000,
        'the stream stopped growing',
      );
      const produced = total * 1030;
      assert.ok(plateau < produced * 0.7, `bounded: ${plateau} bytes written of ${produced}`);
      recordFigures('fetch: Hono client not reading', {
        messages: total,
        paddingBytes: 1000,
        writtenBeforePause: plateau,
      });
      let text = '';
      let count = 0;
      const parser = createParser({
        onEvent: (e) => {
          if ((e.event ?? 'message') === 'message') {
            assert.equal((JSON.parse(e.data) as { n: number }).n, count);
            count++;
          }
        },
      });
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text = c;
        parser.feed(c);
      });
      res.resume();
      await waitFor(() => count === total, 20_000, `every message (got ${count}; last chunk ${text.length} chars)`);
      res.destroy();
    });
  });
});
