// createStreamHost() + connectStreamHost() against the real broker: the HTTP
// server runs in a worker thread (test/fixtures/stream-thread-server.ts), Kafka
// is read on this, the main, thread. Real clients read what the worker's
// sockets send: the same heads, events, ids and errors as kafkaSse() answers
// on one thread, resumes, backpressure, and every consumer released when
// clients, the worker or the host go.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { createStreamHost, openConsumerCount, type StreamHost, StreamRegistry } from '../../index.ts';
import { baseOptions, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

// test/fixtures/stream-thread-server.ts, through a loader that registers tsx first.
const FIXTURE = new URL('../fixtures/stream-thread-boot.mjs', import.meta.url);

interface Thread {
  worker: Worker;
  url: string;
  settled: () => number;
}

async function startThread(host: StreamHost): Promise<Thread> {
  const port = host.port();
  const worker = new Worker(FIXTURE, { workerData: { port }, transferList: [port] });
  let settled = 0;
  const listening = new Promise<number>((resolve, reject) => {
    worker.on('message', (m: { port?: number; settled?: number }) => {
      if (m.port !== undefined) resolve(m.port);
      if (m.settled !== undefined) settled = m.settled;
    });
    worker.once('error', reject);
  });
  const httpPort = await listening;
  return { worker, url: `http://127.0.0.1:${httpPort}`, settled: () => settled };
}

const values = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ value: JSON.stringify({ n: from + i, pad: 'x'.repeat(200) }) }));

describe('stream host: HTTP in a worker thread, Kafka on the main thread', function () {
  this.timeout(60_000);
  let host: StreamHost;
  let thread: Thread;
  let consumersBefore: number;

  beforeEach(async () => {
    consumersBefore = openConsumerCount();
    host = createStreamHost(baseOptions());
    thread = await startThread(host);
  });

  afterEach(async () => {
    await host.close();
    await thread.worker.terminate();
    await waitFor(() => openConsumerCount() === consumersBefore, 10_000, 'consumers released');
  });

  it('replays with the same head, events and ids as kafkaSse() on one thread, and resumes after Last-Event-ID', async () => {
    const topic = uniqueTopic('host-replay');
    await createTopic(topic, 1);
    await produce(topic, values(300));
    const assign = encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: 0 }]));
    const direct = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions(),
    }));
    try {
      const one = await openStream(`${direct.url}/`);
      const threaded = await openStream(`${thread.url}/stream?assign=${assign}`);
      await one.until(() => one.messages().length === 300, 20_000, 'direct: 300 messages');
      await threaded.until(() => threaded.messages().length === 300, 20_000, 'threaded: 300 messages');
      assert.equal(threaded.status, 200);
      for (const h of ['content-type', 'cache-control', 'x-accel-buffering', 'vary', 'transfer-encoding'])
        assert.equal(threaded.headers[h], one.headers[h], h);
      assert.deepEqual(threaded.events, one.events);
      assert.ok(threaded.raw().startsWith(':ok\n\n'), threaded.raw().slice(0, 40));
      assert.deepEqual(
        threaded.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
        Array.from({ length: 300 }, (_, i) => i),
      );
      one.close();
      threaded.close();

      // A reconnect with the 100th event's id gets exactly the 200 after it.
      const id = threaded.messages()[99]?.id as string;
      const resumed = await openStream(`${thread.url}/stream/${topic}`, { 'Last-Event-ID': id });
      await resumed.until(() => resumed.messages().length === 200, 20_000, '200 messages after the id');
      assert.deepEqual(resumed.messages(), threaded.messages().slice(100));
      resumed.close();
    } finally {
      await direct.close();
    }
    await waitFor(() => host.streams === 0, 10_000, 'the host to end its streams');
  });

  it('answers NDJSON to a client that asks for it, with its head before any message', async () => {
    const topic = uniqueTopic('host-ndjson');
    await createTopic(topic, 1);
    const client = await openStream(`${thread.url}/stream/${topic}`, { Accept: 'application/x-ndjson' });
    assert.equal(client.status, 200);
    assert.equal(client.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    await waitFor(() => host.streams === 1, 5000, 'the stream to be open');
    await produce(topic, values(3, 10));
    await client.until(() => client.lines.length === 3, 15_000, '3 lines');
    assert.deepEqual(
      client.lines.map((l) => (l as { n: number }).n),
      [10, 11, 12],
    );
    client.close();
  });

  it('answers errors with the same status and JSON body as kafkaSse(), and bad assignments with a 500 that names nothing', async () => {
    const missing = uniqueTopic('host-missing');
    const direct = await startBridge(() => ({ assignments: [missing], options: baseOptions() }));
    try {
      const want = await getJson(`${direct.url}/`);
      const got = await getJson(`${thread.url}/stream/${missing}`);
      assert.equal(got.status, want.status);
      assert.ok(got.status >= 400 && got.status < 500, `a 4xx: ${got.status}`);
      assert.equal(got.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(got.body, want.body);

      const badId = await getJson(`${thread.url}/stream/${missing}`, { 'Last-Event-ID': 'not an id' });
      const badIdDirect = await getJson(`${direct.url}/`, { 'Last-Event-ID': 'not an id' });
      assert.equal(badId.status, badIdDirect.status);
      assert.deepEqual(badId.body, badIdDirect.body);
    } finally {
      await direct.close();
    }
    const bad = await getJson(`${thread.url}/bad-assignments`);
    assert.equal(bad.status, 500);
    assert.deepEqual(bad.body, {
      name: 'ConfigurationError',
      code: 'CONFIGURATION',
      message: 'The server is misconfigured',
      status: 500,
      statusCode: 500,
    });
  });

  it('shares one live consumer between streams of the same topic, and delivers to each', async () => {
    const topic = uniqueTopic('host-live');
    await createTopic(topic, 1);
    const a = await openStream(`${thread.url}/stream/${topic}`);
    const b = await openStream(`${thread.url}/stream/${topic}`);
    await waitFor(() => host.streams === 2, 5000, 'two streams');
    await produce(topic, values(5));
    for (const c of [a, b]) await c.until(() => c.messages().length === 5, 15_000, '5 messages');
    assert.deepEqual(a.messages(), b.messages());
    a.close();
    await waitFor(() => host.streams === 1, 5000, 'the first stream ended');
    await produce(topic, values(1, 5));
    await b.until(() => b.messages().length === 6, 15_000, 'the 6th message');
    b.close();
    await waitFor(() => host.streams === 0 && thread.settled() === 2, 10_000, 'both streams settled in the worker');
  });

  it('pauses Kafka for a client that stops reading, and resumes with every message once, in order', async () => {
    await host.close();
    await thread.worker.terminate();
    const registry = new StreamRegistry();
    host = createStreamHost(baseOptions({ registry }));
    thread = await startThread(host);
    const topic = uniqueTopic('host-slow');
    await createTopic(topic, 1);
    // ~20 MB: far past what the sockets, the kernel's buffers and the writer's high-water mark hold.
    const total = 20_000;
    const pad = 'y'.repeat(1000);
    for (let from = 0; from < total; from += 5000)
      await produce(
        topic,
        Array.from({ length: 5000 }, (_, i) => ({ value: JSON.stringify({ n: from + i, pad }) })),
      );
    const assign = encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: 0 }]));
    const client = await openStream(`${thread.url}/stream?assign=${assign}`);
    client.pause();
    const sent = () => registry.list()[0]?.bytesSent ?? 0;
    // The host stops once the thread's socket stops taking bytes: what it sent stays put.
    let last = -1;
    await waitFor(
      async () => {
        const now = sent();
        await new Promise((r) => setTimeout(r, 500));
        const settledAt = sent() === now && now > 0;
        last = now;
        return settledAt;
      },
      20_000,
      'the host to stop sending',
    );
    assert.ok(last < (total * 1000) / 2, `the host sent ${last} bytes to a client that read nothing`);
    client.resume();
    await client.until(() => client.messages().length === total, 60_000, `${total} messages`);
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      Array.from({ length: total }, (_, i) => i),
    );
    client.close();
  });

  it('ends the streams of a worker that exits, and releases their consumers', async () => {
    const topic = uniqueTopic('host-exit');
    await createTopic(topic, 1);
    await produce(topic, values(10));
    const assign = encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: 0 }]));
    const client = await openStream(`${thread.url}/stream?assign=${assign}`);
    await client.until(() => client.messages().length === 10, 15_000, '10 messages');
    assert.equal(host.streams, 1);
    await thread.worker.terminate();
    await waitFor(() => host.streams === 0, 10_000, 'the host to end the stream');
    await waitFor(() => openConsumerCount() === consumersBefore, 10_000, 'its consumer released');
  });

  it('on close(), ends every open stream and answers later requests 503 with Retry-After', async () => {
    const topic = uniqueTopic('host-close');
    await createTopic(topic, 1);
    const client = await openStream(`${thread.url}/stream/${topic}`);
    await waitFor(() => host.streams === 1, 5000, 'the stream to be open');
    await host.close();
    await client.ended;
    assert.equal(host.streams, 0);
    const later = await getJson(`${thread.url}/stream/${topic}`);
    assert.equal(later.status, 503);
    assert.equal(later.headers['retry-after'], '1');
    assert.equal((later.body as { code: string }).code, 'BROKER_UNAVAILABLE');
  });

  it('keeps serving other clients when one resets its connection mid-stream', async () => {
    const topic = uniqueTopic('host-reset');
    await createTopic(topic, 1);
    await produce(topic, values(50));
    const { port } = new URL(thread.url);
    const assign = encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: 0 }]));
    const raw = net.connect(Number(port), '127.0.0.1');
    raw.write(`GET /stream?assign=${assign} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    await new Promise((r) => raw.once('data', r));
    raw.resetAndDestroy();
    await waitFor(() => host.streams === 0, 10_000, 'the reset stream to end');
    const client = await openStream(`${thread.url}/stream?assign=${assign}`);
    await client.until(() => client.messages().length === 50, 15_000, '50 messages');
    client.close();
  });
});
