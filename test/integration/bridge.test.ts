// kafkaSse() against the real broker, seen from real clients.
import assert from 'node:assert/strict';
import http from 'node:http';
import { EventSource } from 'eventsource';
import { openConsumerCount } from '../../index.ts';
import { HIGH_WATER_BYTES } from '../../lib/writer.ts';
import { type BridgeServer, baseOptions, closeBridge, quietLogger, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, deleteRecordsBefore, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

function json(n: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ n, ...extra });
}

describe('kafkaSse: streaming', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('writes the SSE head, :ok, then message events with KafkaSSE ids and _kafka metadata', async () => {
    const topic = uniqueTopic('head');
    await createTopic(topic, 1);
    await produce(topic, [
      { value: json(0), key: 'k0', timestamp: 1_700_000_000_000 },
      { value: json(1), key: 'k1', timestamp: 1_700_000_000_001 },
    ]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ headers: { 'X-Extra': 'yes' } }),
    }));
    const client = await openStream(`${bridge.url}/`);
    assert.equal(client.status, 200);
    assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.match(String(client.headers['cache-control']), /no-cache/);
    assert.equal(client.headers['x-accel-buffering'], 'no');
    assert.equal(client.headers.vary, 'Accept');
    assert.equal(client.headers['x-extra'], 'yes');
    await client.until(() => client.messages().length === 2, 10000, 'two messages');
    assert.ok(client.raw().startsWith(':ok\n\n'), 'first bytes are :ok');
    const [first, second] = client.messages();
    assert.equal(first?.id, JSON.stringify([{ topic, partition: 0, offset: 1 }]));
    assert.equal(second?.id, JSON.stringify([{ topic, partition: 0, offset: 2 }]));
    assert.deepEqual(JSON.parse(first?.data ?? ''), {
      n: 0,
      _kafka: { topic, partition: 0, offset: 0, timestamp: 1_700_000_000_000, key: 'k0' },
    });
    assert.ok(client.raw().includes(`event: message\nid: ${first?.id}\ndata: {"n":0,`), 'event, id, data order');
    client.close();
  });

  it("lets the request end once its stream starts: the client's leaving closes the response and aborts nothing", async () => {
    const topic = uniqueTopic('request-ends');
    await createTopic(topic, 1);
    const requests: http.IncomingMessage[] = [];
    const seen = { aborted: 0, errors: 0 };
    bridge = await startBridge((req) => {
      requests.push(req);
      req.on('aborted', () => seen.aborted++);
      req.on('error', () => seen.errors++);
      return { assignments: topic, options: baseOptions() };
    });
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.raw().startsWith(':ok'), 10000, ':ok');
    await waitFor(() => requests[0]?.readableEnded === true, 5000, 'the request to end');
    client.close();
    await bridge.settled();
    assert.deepEqual(seen, { aborted: 0, errors: 0 });
  });

  it('streams a multi-partition topic live from the end, with every partition in every id', async () => {
    const topic = uniqueTopic('live');
    await createTopic(topic, 3);
    await produce(
      topic,
      [0, 1, 2].map((p) => ({ value: json(-1), partition: p })),
    );
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.raw().startsWith(':ok'), 5000, ':ok');
    const sent = Array.from({ length: 30 }, (_, i) => ({ value: json(i), partition: i % 3, key: `key-${i}` }));
    await produce(topic, sent);
    await client.until(() => client.messages().length === 30, 10000, '30 messages');
    const got = client
      .messages()
      .map((e) => JSON.parse(e.data) as { n: number; _kafka: { key: string; partition: number } });
    assert.deepEqual(
      got.map((m) => m.n).sort((a, b) => a - b),
      sent.map((_, i) => i),
      'no pre-existing message, every new one',
    );
    for (const m of got) assert.equal(m._kafka.key, `key-${m.n}`);
    const lastId = JSON.parse(client.messages().at(-1)?.id ?? '[]') as { partition: number; offset: number }[];
    assert.deepEqual(
      lastId.map((e) => [e.partition, e.offset]),
      [
        [0, 11],
        [1, 11],
        [2, 11],
      ],
    );
    client.close();
  });

  it('starts plain topics at atTimestamp', async () => {
    const topic = uniqueTopic('since');
    await createTopic(topic, 2);
    const t0 = 1_750_000_000_000;
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ value: json(i), partition: i % 2, timestamp: t0 + i * 1000 })),
    );
    bridge = await startBridge(() => ({
      assignments: [topic],
      options: baseOptions(),
      atTimestamp: String(t0 + 6000),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 4, 10000, 'four messages');
    const ns = client
      .messages()
      .map((e) => (JSON.parse(e.data) as { n: number }).n)
      .sort((a, b) => a - b);
    assert.deepEqual(ns, [6, 7, 8, 9]);
    client.close();
  });

  it('resumes exactly from Last-Event-ID after a dropped connection (eventsource client): no loss, no duplicate', async () => {
    const topic = uniqueTopic('resume');
    await createTopic(topic, 2);
    await produce(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ value: json(i), partition: i % 2 })),
    );
    bridge = await startBridge(() => ({
      assignments: [
        { topic, partition: 0, offset: 0 },
        { topic, partition: 1, offset: 0 },
      ],
      options: baseOptions({ retryMs: 100 }),
    }));
    const seen: number[] = [];
    const lastIds: string[] = [];
    const es = new EventSource(`${bridge.url}/`);
    try {
      es.addEventListener('message', (e) => {
        seen.push((JSON.parse(e.data) as { n: number }).n);
        lastIds.push(e.lastEventId);
      });
      await waitFor(() => seen.length === 20, 10000, 'first 20');
      bridge.dropConnections();
      await produce(
        topic,
        Array.from({ length: 20 }, (_, i) => ({ value: json(20 + i), partition: i % 2 })),
      );
      await waitFor(() => seen.length >= 40, 15000, 'the next 20 after reconnecting');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(bridge.streams.length, 2, 'reconnected once');
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        Array.from({ length: 40 }, (_, i) => i),
        'every message exactly once',
      );
      const perPartition = [0, 1].map((p) => seen.filter((n) => n % 2 === p));
      for (const list of perPartition) {
        assert.deepEqual(
          list,
          [...list].sort((a, b) => a - b),
          'in order per partition',
        );
      }
    } finally {
      es.close();
    }
  });

  it('accepts the resume id as a lastEventId query parameter', async () => {
    const topic = uniqueTopic('qid');
    await createTopic(topic, 1);
    await produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ value: json(i) })),
    );
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const id = JSON.stringify([{ topic, partition: 0, offset: 3 }]);
    const client = await openStream(`${bridge.url}/?lastEventId=${encodeURIComponent(id)}`);
    await client.until(() => client.messages().length === 2, 10000, 'two messages');
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [3, 4],
    );
    client.close();
  });

  it('starts partitions added since the id was written at their beginning', async () => {
    const topic = uniqueTopic('grown');
    await createTopic(topic, 2);
    await produce(topic, [
      { value: json(0), partition: 0 },
      { value: json(1), partition: 1 },
      { value: json(2), partition: 1 },
    ]);
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    // An id written when the topic had one partition.
    const id = JSON.stringify([{ topic, partition: 0, offset: 1 }]);
    const client = await openStream(`${bridge.url}/`, { 'Last-Event-ID': id });
    await client.until(() => client.messages().length === 2, 10000, 'partition 1 from its beginning');
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [1, 2],
    );
    client.close();
  });

  it('clamps an offset below retention to the low watermark and tells the client what was lost', async () => {
    const topic = uniqueTopic('lost');
    await createTopic(topic, 1);
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ value: json(i) })),
    );
    await deleteRecordsBefore(topic, 0, 6);
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 2 }], options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 4, 10000, 'the retained four');
    const lost = client.events.find((e) => e.event === 'lost');
    assert.ok(lost, 'a lost event');
    assert.deepEqual(JSON.parse(lost.data), { topic, partition: 0, requestedOffset: 2, resumedOffset: 6, lost: 4 });
    assert.equal(client.events.indexOf(lost), 0, 'the lost event comes before any message');
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [6, 7, 8, 9],
    );
    client.close();
  });

  it('starts an offset past the end at the end, without a lost event', async () => {
    const topic = uniqueTopic('past');
    await createTopic(topic, 1);
    await produce(topic, [{ value: json(0) }]);
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 500 }], options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.raw().startsWith(':ok'), 5000, ':ok');
    await produce(topic, [{ value: json(1) }]);
    await client.until(() => client.messages().length === 1, 10000, 'the new message');
    assert.equal((JSON.parse(client.messages()[0]?.data ?? '') as { n: number }).n, 1);
    assert.equal(client.messages()[0]?.id, JSON.stringify([{ topic, partition: 0, offset: 2 }]));
    assert.equal(client.events.filter((e) => e.event === 'lost').length, 0);
    client.close();
  });

  it('writes NDJSON when the client accepts application/json', async () => {
    const topic = uniqueTopic('ndjson');
    await createTopic(topic, 1);
    await produce(topic, [{ value: json(0, { text: 'line1\nline2' }) }, { value: json(1) }]);
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`, { Accept: 'application/json' });
    // KafkaSSE's Content-Type for Accept: application/json; application/x-ndjson gets its own (same body).
    assert.equal(client.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(client.headers.vary, 'Accept');
    await client.until(() => client.lines.length === 2, 10000, 'two lines');
    const nd = await openStream(`${bridge.url}/`, { Accept: 'application/x-ndjson' });
    assert.equal(nd.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    await nd.until(() => nd.lines.length === 2, 10000, 'two lines');
    assert.deepEqual(nd.lines, client.lines);
    nd.close();
    assert.equal((client.lines[0] as { text: string }).text, 'line1\nline2');
    assert.equal(client.raw().split('\n').length, 3, `exactly one line per message: ${JSON.stringify(client.raw())}`);
    client.close();
  });

  it('keeps every line of a text payload, empty lines included (custom deserializer)', async () => {
    const topic = uniqueTopic('lines');
    await createTopic(topic, 1);
    const payloads = ['a\n\nb', 'c\r\nd\re', '\n\nstart', 'end\n', 'plain'];
    await produce(
      topic,
      payloads.map((p) => ({ value: p })),
    );
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({
        deserializer: (m) => Object.assign(m, { message: m.value?.toString('utf8') }),
      }),
    }));
    const received: string[] = [];
    const es = new EventSource(`${bridge.url}/`);
    try {
      es.addEventListener('message', (e) => received.push(e.data));
      await waitFor(() => received.length === payloads.length, 10000, 'all payloads');
      assert.deepEqual(
        received,
        payloads.map((p) => p.replace(/\r\n|\r/g, '\n')),
      );
    } finally {
      es.close();
    }
  });

  it('skips messages the deserializer rejects and goes on', async () => {
    const topic = uniqueTopic('badjson');
    await createTopic(topic, 1);
    await produce(topic, [{ value: json(0) }, { value: '{not json' }, { value: json(2) }]);
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 2, 10000, 'the two valid messages');
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [0, 2],
    );
    assert.equal(client.messages()[1]?.id, JSON.stringify([{ topic, partition: 0, offset: 3 }]));
    client.close();
  });

  it('filters with the filterer; filtered-out messages still advance the id', async () => {
    const topic = uniqueTopic('filter');
    await createTopic(topic, 1);
    await produce(
      topic,
      Array.from({ length: 6 }, (_, i) => ({ value: json(i) })),
    );
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ filterer: (m) => (m.message as { n: number }).n % 3 === 2 }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 2, 10000, 'two kept');
    assert.deepEqual(
      client.messages().map((e) => [(JSON.parse(e.data) as { n: number }).n, e.id]),
      [
        [2, JSON.stringify([{ topic, partition: 0, offset: 3 }])],
        [5, JSON.stringify([{ topic, partition: 0, offset: 6 }])],
      ],
    );
    client.close();
  });

  it('reports a resume position moved by filtered-out messages at heartbeat time', async () => {
    const topic = uniqueTopic('position');
    await createTopic(topic, 1);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ heartbeatMs: 150, filterer: (m) => (m.message as { n: number }).n >= 100 }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ value: json(i) })),
    );
    const expectedId = JSON.stringify([{ topic, partition: 0, offset: 5 }]);
    await client.until(
      () => client.events.some((e) => e.event === 'position' && e.id === expectedId),
      5000,
      'position',
    );
    assert.equal(client.messages().length, 0);
    const position = client.events.find((e) => e.id === expectedId);
    assert.deepEqual(position, { event: 'position', id: expectedId, data: '{}' });
    client.close();
  });

  it('ends the stream with an error event when the filterer throws, without leaking the message', async () => {
    const topic = uniqueTopic('filterthrow');
    await createTopic(topic, 1);
    await produce(topic, [{ value: json(0, { secret: 'do-not-leak' }) }]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({
        filterer: () => {
          throw new Error('boom');
        },
      }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.ended;
    const errors = client.events.filter((e) => e.event === 'error');
    assert.equal(errors.length, 1);
    assert.deepEqual(JSON.parse(errors[0]?.data ?? ''), {
      name: 'FilterError',
      code: 'FILTER_FAILED',
      message: 'The stream filter failed',
      status: 500,
      statusCode: 500,
    });
    assert.ok(!client.raw().includes('do-not-leak'));
    assert.ok(!client.raw().includes('boom'));
  });

  it('writes timestamp ids (+1 ms) with useTimestampForId', async () => {
    const topic = uniqueTopic('tsid');
    await createTopic(topic, 1);
    await produce(topic, [
      { value: json(0), timestamp: 1_760_000_000_000 },
      { value: json(1), timestamp: 1_760_000_000_500 },
    ]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ useTimestampForId: true }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 2, 10000, 'two messages');
    assert.deepEqual(
      client.messages().map((e) => e.id),
      [
        JSON.stringify([{ topic, partition: 0, timestamp: 1_760_000_000_001 }]),
        JSON.stringify([{ topic, partition: 0, timestamp: 1_760_000_000_501 }]),
      ],
    );
    client.close();
    // Resuming from a timestamp id delivers the rest.
    const again = await openStream(`${bridge.url}/`, { 'Last-Event-ID': client.messages()[0]?.id ?? '' });
    await again.until(() => again.messages().length === 1, 10000, 'the second message');
    assert.equal((JSON.parse(again.messages()[0]?.data ?? '') as { n: number }).n, 1);
    again.close();
  });

  it('sends the retry hint and heartbeats while idle', async () => {
    const topic = uniqueTopic('heartbeat');
    await createTopic(topic, 1);
    bridge = await startBridge(() => ({
      assignments: topic,
      options: baseOptions({ heartbeatMs: 150, retryMs: 2500 }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.comments.length >= 3, 5000, 'heartbeats');
    assert.ok(client.raw().startsWith(':ok\n\nretry: 2500\n\n'));
    assert.ok(client.raw().includes('\n:\n\n'));
    client.close();
  });

  it('ends the stream and releases the consumer when the signal aborts', async () => {
    const topic = uniqueTopic('abort');
    await createTopic(topic, 1);
    const controller = new AbortController();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ signal: controller.signal }) }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.raw().startsWith(':ok'), 5000, ':ok');
    assert.equal(openConsumerCount(), 1);
    controller.abort();
    await client.ended;
    await bridge.settled();
    assert.equal(openConsumerCount(), 0);
  });

  it('holds bounded memory for a paused reader and resumes without loss', async function () {
    this.timeout(60000);
    const topic = uniqueTopic('slow');
    await createTopic(topic, 1);
    const filler = 'x'.repeat(1000);
    const total = 20000;
    for (let start = 0; start < total; start += 5000) {
      await produce(
        topic,
        Array.from({ length: 5000 }, (_, i) => ({ value: json(start + i, { filler }) })),
      );
    }
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options: baseOptions() }));
    const client = await openStream(`${bridge.url}/`);
    client.pause();
    // ~21 MB are waiting in Kafka; the server must stop reading instead of buffering them.
    await new Promise((r) => setTimeout(r, 1500));
    const res = bridge.responses[0];
    assert.ok(res, 'a response');
    const held = res.writableLength;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(res.writableLength, held, 'nothing more is read while the client does not read');
    // At most the high-water mark and the batch that crossed it: what arrives
    // after it is dropped and read again later.
    assert.ok(held < HIGH_WATER_BYTES + 512 * 1024, `server buffers ${held} bytes for a paused client`);
    client.resume();
    await client.until(() => client.messages().length >= total, 40000, 'every message after resuming');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      client.events.filter((e) => e.event !== 'message'),
      [],
      'no control event',
    );
    const ns = client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n);
    assert.deepEqual(
      ns,
      Array.from({ length: total }, (_, i) => i),
    );
    client.close();
  });
  it('delivers every message exactly once, in order, to a reader that keeps stalling (3 partitions)', async function () {
    this.timeout(60000);
    const topic = uniqueTopic('stall');
    await createTopic(topic, 3);
    const filler = 'y'.repeat(800);
    const total = 15000;
    for (let start = 0; start < total; start += 5000) {
      await produce(
        topic,
        Array.from({ length: 5000 }, (_, i) => ({ value: json(start + i, { filler }), partition: (start + i) % 3 })),
      );
    }
    bridge = await startBridge(() => ({
      assignments: [0, 1, 2].map((partition) => ({ topic, partition, offset: 0 })),
      options: baseOptions(),
    }));
    const client = await openStream(`${bridge.url}/`);
    let stalls = 0;
    while (client.messages().length < total && stalls < 400) {
      client.pause();
      await new Promise((r) => setTimeout(r, 60));
      client.resume();
      await new Promise((r) => setTimeout(r, 15));
      stalls++;
    }
    await client.until(() => client.messages().length >= total, 30000, 'every message');
    await new Promise((r) => setTimeout(r, 200));
    const byPartition: number[][] = [[], [], []];
    for (const e of client.messages()) {
      const n = (JSON.parse(e.data) as { n: number }).n;
      byPartition[n % 3]?.push(n);
    }
    for (const [p, list] of byPartition.entries()) {
      assert.deepEqual(
        list,
        Array.from({ length: total / 3 }, (_, i) => i * 3 + p),
        `partition ${p}: every message once, in order`,
      );
    }
    client.close();
  });
});

describe('kafkaSse: errors before the stream', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('answers 404 for an unknown topic and for a topic not allowed, identically', async () => {
    const topic = uniqueTopic('secret');
    await createTopic(topic, 1);
    bridge = await startBridge((req) => ({
      assignments: (req.url ?? '/').slice(1),
      options: baseOptions({ allowedTopics: ['public-topic'] }),
    }));
    const unknown = await getJson(`${bridge.url}/no-such-topic-${Date.now()}`);
    const hidden = await getJson(`${bridge.url}/${topic}`);
    for (const [r, t] of [
      [unknown, 'no-such-topic'],
      [hidden, topic],
    ] as const) {
      assert.equal(r.status, 404);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      const body = r.body as { name: string; code: string; message: string };
      assert.equal(body.code, 'TOPIC_NOT_AVAILABLE');
      assert.equal(body.name, 'TopicNotAvailableError');
      assert.match(body.message, new RegExp(`^Topic ${t}.* is not available$`));
      assert.ok(!r.text.includes('public-topic'), 'never lists the allowed topics');
    }
  });

  it('answers 404 for a topic named in Last-Event-ID that is not allowed', async () => {
    const topic = uniqueTopic('allowed');
    const other = uniqueTopic('other');
    await createTopic(topic, 1);
    await createTopic(other, 1);
    bridge = await startBridge(() => ({
      assignments: topic,
      options: baseOptions({ allowedTopics: async () => [topic] }),
    }));
    const r = await getJson(`${bridge.url}/`, {
      'Last-Event-ID': JSON.stringify([{ topic: other, partition: 0, offset: 0 }]),
    });
    assert.equal(r.status, 404);
    assert.equal((r.body as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
  });

  it('answers 400 with a JSON body naming what was wrong', async () => {
    const topic = uniqueTopic('bad');
    await createTopic(topic, 2);
    bridge = await startBridge((req) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const a = u.searchParams.get('a');
      return {
        assignments: a ? (JSON.parse(a) as never) : topic,
        options: baseOptions({ maxPartitions: 1 }),
        atTimestamp: u.searchParams.get('since'),
      };
    });
    const cases: [string, Record<string, string>, string, RegExp][] = [
      ['/', { 'Last-Event-ID': 'not json' }, 'INVALID_LAST_EVENT_ID', /not valid JSON/],
      ['/', { 'Last-Event-ID': '{"topic":"x"}' }, 'INVALID_LAST_EVENT_ID', /array/],
      ['/?since=yesterday', {}, 'INVALID_TIMESTAMP', /milliseconds/],
      [
        `/?a=${encodeURIComponent(JSON.stringify([{ topic, partition: 7, offset: 0 }]))}`,
        {},
        'INVALID_ASSIGNMENT',
        /no partition 7/,
      ],
      [
        `/?a=${encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: -5 }]))}`,
        {},
        'INVALID_ASSIGNMENT',
        /assignments\[0\]\.offset/,
      ],
      [`/?a=${encodeURIComponent(JSON.stringify(['bad topic!']))}`, {}, 'INVALID_ASSIGNMENT', /not a valid topic name/],
      ['/', {}, 'TOO_MANY_PARTITIONS', /2 partitions; at most 1/],
    ];
    for (const [path, headers, code, message] of cases) {
      const r = await getJson(`${bridge.url}${path}`, headers);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(headers)}`);
      const body = r.body as { code: string; message: string; status: number };
      assert.equal(body.code, code);
      assert.equal(body.status, 400);
      assert.match(body.message, message);
      assert.ok(!r.text.includes('    at '), 'no stack trace');
    }
  });

  it('answers 500 for invalid options, naming the option in the log only', async () => {
    const logged: unknown[] = [];
    const logger = {
      child: () => logger,
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error: (obj: unknown) => void logged.push(obj),
    };
    bridge = await startBridge(() => ({
      assignments: 'x',
      options: baseOptions({ heartbeatMs: -1, logger }),
    }));
    const r = await getJson(`${bridge.url}/`);
    assert.equal(r.status, 500);
    // A client learns that the server is misconfigured, not how (no option names or values).
    assert.deepEqual(r.body, {
      name: 'ConfigurationError',
      code: 'CONFIGURATION',
      message: 'The server is misconfigured',
      status: 500,
      statusCode: 500,
    });
    assert.match(JSON.stringify(logged), /options\.heartbeatMs must be a non-negative integer or null, got -1/);
  });

  it('lets EventSource clients retry and answers NDJSON clients 503 when Kafka cannot be reached', async () => {
    bridge = await startBridge(() => ({
      assignments: 'anything',
      options: {
        logger: quietLogger,
        kafkaConfig: { 'metadata.broker.list': '127.0.0.1:1' },
        connectTimeoutMs: 800,
        unavailableRetryMs: 3000,
      },
    }));
    const sse = await openStream(`${bridge.url}/`);
    await sse.ended;
    assert.equal(sse.status, 200, 'EventSource would not reconnect after a non-200');
    assert.ok(sse.raw().startsWith(':ok\n\nretry: 3000\n\n'));
    assert.deepEqual(
      sse.events.map((e) => [e.event, (JSON.parse(e.data) as { code: string }).code]),
      [['error', 'BROKER_UNAVAILABLE']],
    );
    const nd = await getJson(`${bridge.url}/`, { Accept: 'application/json' });
    assert.equal(nd.status, 503);
    assert.equal(nd.headers['retry-after'], '3');
    assert.equal((nd.body as { code: string }).code, 'BROKER_UNAVAILABLE');
  });

  it('releases the consumer when the client leaves during setup, at every stage', async () => {
    const topic = uniqueTopic('early');
    await createTopic(topic, 4);
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    for (const delay of [0, 1, 5, 20, 50, 100]) {
      const req = http.get(`${bridge.url}/`);
      req.on('error', () => {});
      await new Promise((r) => setTimeout(r, delay));
      req.destroy();
    }
    // A request destroyed at once may never reach the server; wait until arrivals stop.
    let seen = -1;
    while (seen !== bridge.streams.length) {
      seen = bridge.streams.length;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(bridge.streams.length >= 3, `${bridge.streams.length} requests reached the server`);
    await bridge.close();
    bridge = undefined;
    assert.equal(openConsumerCount(), 0);
  });
});
