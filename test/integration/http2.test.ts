// kafkaSse() over HTTP/2 (node:http2's compatibility API), cleartext (h2c) and
// TLS, against the real broker, read by real HTTP/2 clients: node:http2's own
// client (several streams on one connection, RST_STREAM of one of them, a
// stream that stops reading) and undici with allowH2 over TLS.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { Agent, fetch as undiciFetch } from 'undici';
import { type Assignments, type KafkaSseOptions, kafkaSse, openConsumerCount, StreamRegistry } from '../../index.ts';
import { HIGH_WATER_BYTES } from '../../lib/writer.ts';
import { baseOptions } from '../helpers/bridge-server.ts';
import { connectHttp2, type Http2TestServer, listenHttp2, openH2Stream, testCertificate } from '../helpers/http2.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { recordFigures } from '../helpers/soak.ts';
import { waitFor } from '../helpers/wait.ts';

/** Headers HTTP/2 forbids; servers written for HTTP/1.1 often set them. */
const HTTP1_HEADERS = { Connection: 'keep-alive', 'Keep-Alive': 'timeout=5', 'Transfer-Encoding': 'chunked' };
const FORBIDDEN = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade'];

function json(n: number): string {
  return JSON.stringify({ n });
}

function ns(client: { messages(): { data: string }[] }): number[] {
  return client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n);
}

function assertNoForbiddenHeaders(headers: Record<string, unknown> | Headers, what: string): void {
  for (const name of FORBIDDEN) {
    const present = headers instanceof Headers ? headers.has(name) : headers[name] !== undefined;
    assert.equal(present, false, `${what}: HTTP/2 forbids ${name}`);
  }
}

type Route = (req: http2.Http2ServerRequest) => {
  assignments: Assignments;
  options?: KafkaSseOptions;
};

describe('HTTP/2 (node:http2 compatibility API)', function () {
  this.timeout(30_000);
  let server: Http2TestServer | undefined;
  /** Every kafkaSse() promise, and the HTTP version each request came in with. */
  let streams: Promise<void>[] = [];
  let versions: string[] = [];

  async function start(route: Route, h2c: boolean): Promise<string> {
    server = await listenHttp2(
      (req, res) => {
        versions.push(req.httpVersion);
        const r = route(req);
        // The compat request/response stand in for node:http's (the same members kafkaSse uses).
        streams.push(
          kafkaSse(req as unknown as IncomingMessage, res as unknown as ServerResponse, r.assignments, r.options),
        );
      },
      { h2c },
    );
    return server.url;
  }

  afterEach(async () => {
    await server?.close();
    server = undefined;
    await Promise.all(streams);
    streams = [];
    versions = [];
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  it('h2c: streams SSE with no forbidden headers (even when options.headers has them), and resumes by Last-Event-ID', async () => {
    const topic = uniqueTopic('h2c-live');
    await createTopic(topic, 2);
    const url = await start(
      () => ({
        assignments: topic,
        options: baseOptions({ headers: { ...HTTP1_HEADERS, 'Access-Control-Allow-Origin': '*' }, retryMs: 500 }),
      }),
      true,
    );
    const session = await connectHttp2(url);
    const first = await openH2Stream(session, '/stream');
    assert.equal(first.status, 200);
    assert.equal(first.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(first.headers['access-control-allow-origin'], '*');
    assertNoForbiddenHeaders(first.headers, 'the stream head');
    await first.until(() => first.raw().includes('retry: 500'), 5000, 'the retry hint');
    await produce(
      topic,
      [0, 1, 2, 3].map((n) => ({ value: json(n), partition: n % 2 })),
    );
    await first.until(() => first.messages().length === 4, 10_000, 'four messages');
    const lastId = first.messages().at(-1)?.id ?? '';
    assert.deepEqual(JSON.parse(lastId), [
      { topic, partition: 0, offset: 2 },
      { topic, partition: 1, offset: 2 },
    ]);
    first.cancel();
    await first.closed;

    // Missed while disconnected, then resumed on the same connection from the last id.
    await produce(
      topic,
      [4, 5, 6, 7].map((n) => ({ value: json(n), partition: n % 2 })),
    );
    const resumed = await openH2Stream(session, '/stream', { 'last-event-id': lastId });
    await resumed.until(() => resumed.messages().length === 4, 10_000, 'the four missed messages');
    assert.deepEqual(
      ns(resumed).sort((a, b) => a - b),
      [4, 5, 6, 7],
    );
    assert.deepEqual(versions, ['2.0', '2.0']);
  });

  it('h2c: error answers and the unavailable answer carry no forbidden headers', async () => {
    const topic = uniqueTopic('h2c-errors');
    await createTopic(topic, 1);
    const url = await start((req) => {
      const path = req.url ?? '/';
      if (path.startsWith('/down')) {
        // Nothing listens on port 1: Kafka is unavailable.
        return {
          assignments: topic,
          options: baseOptions({
            headers: HTTP1_HEADERS,
            kafkaConfig: { 'metadata.broker.list': '127.0.0.1:1' },
            connectTimeoutMs: 1000,
            unavailableRetryMs: 3000,
            sharedTail: null,
          }),
        };
      }
      return {
        assignments: path.startsWith('/missing') ? uniqueTopic('h2c-none') : topic,
        options: baseOptions({ headers: HTTP1_HEADERS }),
      };
    }, true);
    const session = await connectHttp2(url);

    const notFound = await openH2Stream(session, '/missing');
    await notFound.closed;
    assert.equal(notFound.status, 404);
    assert.equal(notFound.headers['content-type'], 'application/json; charset=utf-8');
    assertNoForbiddenHeaders(notFound.headers, 'the 404 answer');
    assert.equal((JSON.parse(notFound.raw()) as { code: string }).code, 'TOPIC_NOT_AVAILABLE');

    const badId = await openH2Stream(session, '/stream', { 'last-event-id': 'not json' });
    await badId.closed;
    assert.equal(badId.status, 400);
    assertNoForbiddenHeaders(badId.headers, 'the 400 answer');
    assert.equal((JSON.parse(badId.raw()) as { code: string }).code, 'INVALID_LAST_EVENT_ID');

    // EventSource never reconnects after a non-200, so SSE gets a 200 stream with an error event and a retry hint…
    const downSse = await openH2Stream(session, '/down');
    await downSse.closed;
    assert.equal(downSse.status, 200);
    assertNoForbiddenHeaders(downSse.headers, 'the unavailable stream');
    assert.match(downSse.raw(), /retry: 3000/);
    assert.equal(downSse.events.find((e) => e.event === 'error') !== undefined, true, 'an error event');
    // …and NDJSON a 503 with Retry-After.
    const downJson = await openH2Stream(session, '/down', { accept: 'application/x-ndjson' });
    await downJson.closed;
    assert.equal(downJson.status, 503);
    assert.equal(downJson.headers['retry-after'], '3');
    assertNoForbiddenHeaders(downJson.headers, 'the 503 answer');
  });

  it('h2c: RST_STREAM of one stream releases its consumer; the other stream on the connection goes on', async () => {
    const topic = uniqueTopic('h2c-rst');
    await createTopic(topic, 1);
    const registry = new StreamRegistry();
    const url = await start(
      // A consumer of its own per stream (no shared tail), so releasing one is visible.
      (req) =>
        req.url === '/setup'
          ? {
              assignments: topic,
              options: baseOptions({
                sharedTail: null,
                kafkaConfig: { 'metadata.broker.list': '127.0.0.1:1' },
                connectTimeoutMs: 1500,
              }),
            }
          : { assignments: topic, options: baseOptions({ registry, sharedTail: null }) },
      true,
    );
    const session = await connectHttp2(url);
    const a = await openH2Stream(session, '/a');
    const b = await openH2Stream(session, '/b');
    await waitFor(() => registry.list().length === 2, 10_000, 'two streams registered');
    assert.equal(openConsumerCount(), 2);
    await produce(topic, [{ value: json(1) }]);
    await a.until(() => a.messages().length === 1, 10_000, 'a: first message');
    await b.until(() => b.messages().length === 1, 10_000, 'b: first message');

    a.cancel();
    await waitFor(() => openConsumerCount() === 1, 10_000, "a's consumer released");
    assert.equal(registry.list().length, 1);
    assert.equal(streams.length, 2);
    await streams[0];

    await produce(topic, [{ value: json(2) }]);
    await b.until(() => b.messages().length === 2, 10_000, 'b: the message after the reset');
    assert.deepEqual(ns(b), [1, 2]);
    assert.equal(session.closed, false, 'the connection is still open');

    // A reset while the stream is still being set up (its consumer connecting to a broker
    // that does not answer) leaks nothing either, and no head is ever sent.
    const c = session.request({ ':path': '/setup', accept: 'text/event-stream' });
    c.on('error', () => {});
    let answered = false;
    c.on('response', () => {
      answered = true;
    });
    await waitFor(() => streams.length === 3 && openConsumerCount() === 2, 10_000, "the third stream's consumer");
    c.close(http2.constants.NGHTTP2_CANCEL);
    await streams[2];
    await waitFor(() => openConsumerCount() === 1, 10_000, 'only b still holds a consumer');
    assert.equal(answered, false);
  });

  it('h2c: a stream that stops reading is bounded (Kafka paused), others on the connection stay live, and it loses nothing', async () => {
    const bulk = uniqueTopic('h2c-bulk');
    const live = uniqueTopic('h2c-bulk-live');
    await createTopic(bulk, 1);
    await createTopic(live, 1);
    const padding = 'x'.repeat(1000);
    const total = 4000;
    for (let i = 0; i < total; i += 1000) {
      await produce(
        bulk,
        Array.from({ length: 1000 }, (_, j) => ({ value: JSON.stringify({ n: i + j, padding }) })),
      );
    }
    const registry = new StreamRegistry();
    const url = await start(
      (req) => ({
        assignments: req.url === '/bulk' ? [{ topic: bulk, partition: 0, offset: 0 }] : live,
        options: baseOptions({ registry }),
      }),
      true,
    );
    // A large connection window (as browsers use) makes the final catch-up fast; the other
    // stream stays live without it too (Node's default 64 KiB took twice as long to catch up).
    const session = await connectHttp2(url);
    session.setLocalWindowSize(16 * 1024 * 1024);
    const slow = await openH2Stream(session, '/bulk');
    slow.stream.pause();
    const fast = await openH2Stream(session, '/live');

    // The slow stream's server side stops growing about HIGH_WATER_BYTES past what the client took.
    const sent = () => registry.list().find((s) => s.topics[0] === bulk)?.bytesSent ?? 0;
    await waitFor(() => sent() > HIGH_WATER_BYTES, 10_000, 'the slow stream filled its buffer');
    await new Promise((r) => setTimeout(r, 1000));
    const plateau = sent();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(sent(), plateau, 'nothing more is read from Kafka for the stalled stream');
    const bulkBytes = total * 1030;
    assert.ok(plateau < 2.5 * 1024 * 1024, `bounded: ${plateau} bytes written of ${bulkBytes}`);
    recordFigures('http2: h2c stream not reading', {
      messages: total,
      paddingBytes: 1000,
      writtenBeforePause: plateau,
    });

    // Meanwhile the other stream on the same connection gets live messages.
    await produce(live, [{ value: json(1) }, { value: json(2) }]);
    await fast.until(() => fast.messages().length === 2, 10_000, 'live messages beside the stalled stream');

    // Reading again drains it, and every message arrives once, in order.
    slow.stream.resume();
    await slow.until(() => slow.messages().length === total, 20_000, 'every bulk message');
    assert.deepEqual(
      ns(slow),
      Array.from({ length: total }, (_, i) => i),
    );
  });

  it('TLS: undici with allowH2 streams SSE and NDJSON over HTTP/2 and gets JSON errors', async () => {
    const topic = uniqueTopic('h2-tls');
    await createTopic(topic, 1);
    await produce(
      topic,
      [0, 1, 2].map((n) => ({ value: json(n) })),
    );
    const url = await start(
      (req) => ({
        assignments: req.url?.startsWith('/missing')
          ? uniqueTopic('h2-tls-none')
          : [{ topic, partition: 0, offset: 0 }],
        options: baseOptions({ headers: HTTP1_HEADERS }),
      }),
      false,
    );
    const dispatcher = new Agent({ allowH2: true, connect: { ca: (await testCertificate()).cert } });
    try {
      const sse = await undiciFetch(`${url}/stream`, { dispatcher, headers: { accept: 'text/event-stream' } });
      assert.equal(sse.status, 200);
      assertNoForbiddenHeaders(sse.headers, 'the SSE head');
      const text = await readUntil(sse, (t) => (t.match(/^event: message$/gm) ?? []).length === 3);
      assert.deepEqual(
        [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1] ?? '') as { n: number }).n),
        [0, 1, 2],
      );

      const nd = await undiciFetch(`${url}/stream`, { dispatcher, headers: { accept: 'application/x-ndjson' } });
      assert.equal(nd.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
      const lines = await readUntil(nd, (t) => t.split('\n').filter(Boolean).length >= 3);
      assert.deepEqual(
        lines
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { n: number }).n),
        [0, 1, 2],
      );

      const missing = await undiciFetch(`${url}/missing`, { dispatcher });
      assert.equal(missing.status, 404);
      assertNoForbiddenHeaders(missing.headers, 'the 404 answer');
      assert.equal(((await missing.json()) as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
      assert.deepEqual(versions, ['2.0', '2.0', '2.0'], 'undici spoke HTTP/2');
    } finally {
      await dispatcher.destroy();
    }
  });
});

/** Reads a fetch body until `done(text)` holds, then cancels it. */
async function readUntil(res: Response | import('undici').Response, done: (text: string) => boolean): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 10_000;
  while (!done(text)) {
    if (Date.now() > deadline) throw new Error(`timed out reading; got ${JSON.stringify(text.slice(0, 500))}`);
    const { value, done: end } = await reader.read();
    if (end) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}
