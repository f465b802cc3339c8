// The framework examples (examples/express.js, fastify.js, koa.js, nestjs/)
// streaming real messages to a real EventSource client, resuming with
// Last-Event-ID after a dropped connection, and ending their streams on close.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { NestFactory } from '@nestjs/core';
import { EventSource } from 'eventsource';
import pino from 'pino';
import { createApp as createExpressApp } from '../../examples/express.js';
import { createApp as createFastifyApp } from '../../examples/fastify.js';
import { createApp as createKoaApp } from '../../examples/koa.js';
import { StreamModule } from '../../examples/nestjs/app.module.ts';
import { type KafkaSseOptions, type Logger, openConsumerCount } from '../../index.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

/** An example app listening on a free port, with the node:http server under it. */
interface RunningApp {
  url: string;
  server: http.Server;
  /** The example's own shutdown: ends every stream, releases every consumer, stops listening. */
  close(): Promise<void>;
}

function urlOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

/** Express and Koa apps are request listeners: the caller owns the server, as in the examples' main blocks. */
async function serve(listener: http.RequestListener, closeStreams: () => Promise<void>): Promise<RunningApp> {
  const server = http.createServer(listener);
  await listen(server);
  return {
    url: urlOf(server),
    server,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStreams();
      // As the examples' main blocks do: every stream has ended, cut what is left.
      server.closeAllConnections();
      await closed;
    },
  };
}

const FRAMEWORKS: Record<string, (options: KafkaSseOptions) => Promise<RunningApp>> = {
  async express(options) {
    const { app, close } = createExpressApp(options);
    return serve(app, close);
  },
  async fastify(options) {
    const app = createFastifyApp(options);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { url: urlOf(app.server), server: app.server, close: () => app.close() };
  },
  async koa(options) {
    const { app, close } = createKoaApp(options);
    return serve(app.callback(), close);
  },
  async nestjs(options) {
    // forceCloseConnections as in examples/nestjs/main.ts.
    const app = await NestFactory.create(StreamModule.forRoot(options), { logger: false, forceCloseConnections: true });
    await app.listen(0, '127.0.0.1');
    const server = app.getHttpServer() as http.Server;
    return { url: urlOf(server), server, close: () => app.close() };
  },
};

interface Received {
  n: number;
  lastEventId: string;
}

for (const [name, start] of Object.entries(FRAMEWORKS)) {
  describe(`framework example: ${name}`, function () {
    this.timeout(30_000);
    let app: RunningApp | undefined;
    let source: EventSource | undefined;

    afterEach(async () => {
      source?.close();
      source = undefined;
      await app?.close();
      app = undefined;
      await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
    });

    it('streams messages, resumes with Last-Event-ID after a dropped connection, and ends streams on close', async () => {
      const topic = uniqueTopic(`framework-${name}`);
      await createTopic(topic, 2);
      app = await start({
        kafkaConfig: { 'metadata.broker.list': brokers() },
        // Long enough that the second batch is produced while the client is away.
        retryMs: 500,
        logger: pino({ level: 'silent' }) as unknown as Logger,
      });
      const requests: http.IncomingHttpHeaders[] = [];
      app.server.on('request', (req: http.IncomingMessage) => requests.push(req.headers));

      const received: Received[] = [];
      let opens = 0;
      const es = new EventSource(`${app.url}/v2/stream/${topic}`);
      source = es;
      es.addEventListener('open', () => opens++);
      es.addEventListener('message', (e) => {
        received.push({ n: (JSON.parse(e.data) as { n: number }).n, lastEventId: e.lastEventId });
      });
      await waitFor(() => opens === 1, 10_000, 'the stream to open');

      await produce(
        topic,
        [0, 1, 2, 3].map((n) => ({ value: JSON.stringify({ n }), partition: n % 2 })),
      );
      await waitFor(() => received.length === 4, 10_000, 'the first four messages');
      const resumeId = received.at(-1)?.lastEventId;

      // A network failure, as the client sees it; the next batch is produced while it is away.
      app.server.closeAllConnections();
      await produce(
        topic,
        [4, 5, 6, 7].map((n) => ({ value: JSON.stringify({ n }), partition: n % 2 })),
      );
      await waitFor(() => received.length >= 8 && opens === 2, 10_000, 'the next four messages after reconnecting');

      assert.deepEqual(
        received.map((r) => r.n).sort((a, b) => a - b),
        [0, 1, 2, 3, 4, 5, 6, 7],
        'no message lost or repeated',
      );
      assert.equal(requests.length, 2);
      assert.equal(requests[0]?.['last-event-id'], undefined);
      assert.equal(requests[1]?.['last-event-id'], resumeId, 'the reconnect carried the last id');
      assert.deepEqual(JSON.parse(received.at(-1)?.lastEventId ?? ''), [
        { topic, partition: 0, offset: 4 },
        { topic, partition: 1, offset: 4 },
      ]);

      // The dropped stream's consumer is released (its disconnect can finish after the resume
      // started: the machine may be busy); the example's shutdown ends the open stream and waits for its consumer.
      await waitFor(() => openConsumerCount() === 1, 10_000, "the dropped stream's consumer to be released");
      const running = app;
      app = undefined;
      await running.close();
      assert.equal(openConsumerCount(), 0);
    });

    it('starts at ?since= given as epoch milliseconds or as ISO-8601, like the example server', async () => {
      const topic = uniqueTopic(`framework-${name}-since-ok`);
      await createTopic(topic, 1);
      const now = Date.now();
      await produce(topic, [
        { value: JSON.stringify({ n: 0 }), timestamp: now - 3 * 3_600_000 },
        { value: JSON.stringify({ n: 1 }), timestamp: now - 3_600_000 },
        { value: JSON.stringify({ n: 2 }), timestamp: now - 60_000 },
      ]);
      app = await start({
        kafkaConfig: { 'metadata.broker.list': brokers() },
        logger: pino({ level: 'silent' }) as unknown as Logger,
      });
      const twoHoursAgo = now - 2 * 3_600_000;
      // Whole seconds with a zone, as people type it; and the same instant one hour east.
      const iso = new Date(twoHoursAgo).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const east = new Date(twoHoursAgo + 3_600_000).toISOString().replace(/\.\d{3}Z$/, '+01:00');
      for (const since of [String(twoHoursAgo), iso, east]) {
        const client = await openStream(`${app.url}/v2/stream/${topic}?since=${encodeURIComponent(since)}`);
        try {
          assert.equal(client.status, 200, `since=${since}`);
          await client.until(() => client.messages().length >= 2, 10_000, `two messages since=${since}`);
          assert.deepEqual(
            client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
            [1, 2],
            `since=${since}`,
          );
        } finally {
          client.close();
        }
      }
      // The form the demo prints: accepted (a stream, not a 400).
      const client = await openStream(`${app.url}/v2/stream/${topic}?since=2026-01-01T11:00:00Z`);
      client.close();
      assert.equal(client.status, 200);
      assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
    });

    it('shuts down promptly although a client opened a connection and sent nothing (a browser preconnect)', async () => {
      const topic = uniqueTopic(`framework-${name}-preconnect`);
      await createTopic(topic, 1);
      app = await start({
        kafkaConfig: { 'metadata.broker.list': brokers() },
        logger: pino({ level: 'silent' }) as unknown as Logger,
      });
      const client = await openStream(`${app.url}/v2/stream/${topic}`);
      assert.equal(client.status, 200);
      const idle = net.connect(Number(new URL(app.url).port), '127.0.0.1');
      await new Promise((resolve) => idle.once('connect', resolve));
      const running = app;
      app = undefined;
      const started = Date.now();
      await running.close();
      assert.ok(Date.now() - started < 5000, `close() took ${Date.now() - started} ms`);
      await client.ended;
      await new Promise((resolve) => (idle.destroyed ? resolve(undefined) : idle.once('close', resolve)));
      assert.equal(openConsumerCount(), 0);
    });

    it('answers a malformed ?since= with 400 and a JSON body', async () => {
      const topic = uniqueTopic(`framework-${name}-since`);
      await createTopic(topic, 1);
      app = await start({
        kafkaConfig: { 'metadata.broker.list': brokers() },
        logger: pino({ level: 'silent' }) as unknown as Logger,
      });
      const base = app.url;
      for (const since of ['tomorrow', '2026-01-01T11:00:00', '2026-02-30']) {
        const res: Response = await fetch(`${base}/v2/stream/${topic}?since=${encodeURIComponent(since)}`);
        assert.equal(res.status, 400, `since=${since}`);
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
        const body = (await res.json()) as { code: string; message: string; status: number };
        assert.equal(body.code, 'INVALID_TIMESTAMP');
        assert.equal(body.status, 400);
        assert.match(body.message, /^\?since must be milliseconds since the epoch or an ISO-8601 date/);
      }
    });
  });
}
