// The shared live tail (lib/shared-tail.ts): streams of the same topics from
// their end share one consumer, resumes inside its log join it, a client too
// slow for its log moves to a consumer of its own without losing anything.
import assert from 'node:assert/strict';
import { defaultDeserializer, type KafkaMessage, openConsumerCount, SharedTail } from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { addPartitions, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { TrackedEventSource } from '../helpers/tracked-eventsource.ts';
import { waitFor } from '../helpers/wait.ts';

function ns(client: StreamClient): number[] {
  return client.messages().map((m) => (JSON.parse(m.data) as { n: number }).n);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Messages {n} spread round-robin over `partitions`. */
function batch(from: number, to: number, partitions: number, extra: Record<string, unknown> = {}) {
  return range(from, to).map((n) => ({ value: JSON.stringify({ n, ...extra }), partition: n % partitions }));
}

describe('shared live tail', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;
  const clients: StreamClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await closeBridge(bridge);
    bridge = undefined;
  });

  async function open(path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const c = await openStream(`${(bridge as BridgeServer).url}${path}`, headers);
    clients.push(c);
    return c;
  }

  it('serves many live clients from one consumer, each getting every message once with the same ids', async () => {
    const topic = uniqueTopic('shared-many');
    await createTopic(topic, 3);
    await produce(topic, batch(0, 30, 3)); // history: not for live clients
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const many = await Promise.all(range(0, 20).map(() => open('/')));
    for (const c of many) await c.until(() => c.raw().startsWith(':ok'), 5000, ':ok');
    assert.equal(openConsumerCount(), before + 1, 'one consumer for 20 streams');
    await produce(topic, batch(100, 160, 3));
    for (const c of many) await c.until(() => c.messages().length >= 60, 10_000, '60 messages');
    const ids = many[0]?.messages().map((m) => m.id);
    for (const c of many) {
      assert.deepEqual(
        [...ns(c)].sort((a, b) => a - b),
        range(100, 160),
        'every live message once, no history',
      );
      assert.deepEqual(
        c.messages().map((m) => m.id),
        ids,
      );
    }
    // The last id names every partition at the next offset: 10 history + 20 live each.
    const last = JSON.parse(ids?.at(-1) ?? '[]') as { partition: number; offset: number }[];
    assert.deepEqual(
      last,
      [0, 1, 2].map((partition) => ({ topic, partition, offset: 30 })),
    );
    for (const c of many) c.close();
    await waitFor(() => openConsumerCount() === before, 5000, 'the tail released after the last stream');
  });

  it('resumes a Last-Event-ID inside the log from the tail, without a consumer of its own', async () => {
    const topic = uniqueTopic('shared-resume');
    await createTopic(topic, 2);
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const first = await open('/');
    await first.until(() => first.raw().startsWith(':ok'), 5000, ':ok');
    await produce(topic, batch(0, 40, 2));
    await first.until(() => first.messages().length === 40, 10_000, '40 messages');
    const resumeAt = first.messages()[14];
    const second = await open('/', { 'Last-Event-ID': resumeAt?.id ?? '' });
    await second.until(() => second.messages().length === 25, 10_000, 'the 25 after the id');
    assert.equal(openConsumerCount(), before + 1, 'the resumed stream reads the tail');
    assert.deepEqual(
      second.messages().map((m) => m.id),
      first
        .messages()
        .slice(15)
        .map((m) => m.id),
    );
    await produce(topic, batch(40, 50, 2));
    await second.until(() => second.messages().length === 35, 10_000, 'then live ones');
    await first.until(() => first.messages().length === 50, 10_000, 'first gets them too');
    assert.deepEqual(
      second.messages().map((m) => m.id),
      first
        .messages()
        .slice(15)
        .map((m) => m.id),
      'in step with the tail: identical ids',
    );
  });

  it('a resume older than the log gets a consumer of its own and still every message', async () => {
    const topic = uniqueTopic('shared-old');
    await createTopic(topic, 1);
    await produce(topic, batch(0, 10, 1));
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const live = await open('/');
    await live.until(() => live.raw().startsWith(':ok'), 5000, ':ok');
    const old = await open('/', { 'Last-Event-ID': JSON.stringify([{ topic, partition: 0, offset: 3 }]) });
    await old.until(() => old.messages().length === 7, 10_000, 'history from offset 3');
    assert.equal(openConsumerCount(), before + 2, 'tail + a private consumer');
    await produce(topic, batch(10, 15, 1));
    await old.until(() => old.messages().length === 12, 10_000, 'then live');
    assert.deepEqual(ns(old), range(3, 15));
    await live.until(() => live.messages().length === 5, 10_000, 'live');
    assert.deepEqual(ns(live), range(10, 15));
  });

  it('after a server restart, clients resuming with their ids share one new tail', async () => {
    const topic = uniqueTopic('shared-restart');
    await createTopic(topic, 2);
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const firstLife = await Promise.all(range(0, 8).map(() => open('/')));
    for (const c of firstLife) await c.until(() => c.raw().startsWith(':ok'), 5000, ':ok');
    await produce(topic, batch(0, 40, 2));
    for (const c of firstLife) await c.until(() => c.messages().length === 40, 10_000, '40');
    // One client lags: its id is 6 messages older than the others'.
    const ids = firstLife.map((c, i) => c.messages()[i === 0 ? 33 : 39]?.id ?? '');
    await closeBridge(bridge);
    clients.splice(0);
    await produce(topic, batch(40, 50, 2)); // while the server is down
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions() }));
    const secondLife = await Promise.all(ids.map((id) => open('/', { 'Last-Event-ID': id })));
    await produce(topic, batch(50, 60, 2));
    for (const [i, c] of secondLife.entries()) {
      const cut = i === 0 ? 34 : 40;
      const had = new Set(ns(firstLife[i] as StreamClient).slice(0, cut));
      const expected = range(0, 60).filter((n) => !had.has(n));
      await c.until(() => c.messages().length === expected.length, 10_000, `client ${i}: the rest`);
      assert.deepEqual(
        [...ns(c)].sort((a, b) => a - b),
        expected,
        `client ${i}`,
      );
    }
    assert.equal(openConsumerCount(), before + 1, 'eight resumes, one consumer');
    assert.equal(
      secondLife[0]?.messages().at(-1)?.id,
      secondLife[1]?.messages().at(-1)?.id,
      'the straggler caught up: same ids',
    );
  });

  it('a resume far behind the end opens no tail: it gets a consumer of its own', async () => {
    const topic = uniqueTopic('shared-far');
    await createTopic(topic, 1);
    await produce(topic, batch(0, 30, 1));
    const sharedTail = new SharedTail({ ringMessages: 10 });
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail }) }));
    // Sampled every millisecond while the request sets up: a tail opened for the lookup would show as a second consumer.
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, openConsumerCount() - before);
    }, 1);
    const far = await open('/', { 'Last-Event-ID': JSON.stringify([{ topic, partition: 0, offset: 3 }]) });
    await far.until(() => far.messages().length === 27, 10_000, 'from offset 3');
    clearInterval(sampler);
    assert.deepEqual(ns(far), range(3, 30));
    assert.equal(peak, 1, 'one consumer for the request, never a tail first');
    await waitFor(
      () => sharedTail.size === 0 && openConsumerCount() === before + 1,
      5000,
      'only the private consumer left: the tail opened for the lookup is gone',
    );
  });

  it('when partitions are added, reads them without ending its streams', async () => {
    const topic = uniqueTopic('shared-grow');
    await createTopic(topic, 1);
    const sharedTail = new SharedTail({}, { partitionCheckMs: 500 });
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail }) }));
    const es = new TrackedEventSource(`${bridge.url}/`);
    try {
      await waitFor(() => es.es.readyState === 1, 5000, 'EventSource open');
      await produce(topic, batch(0, 3, 1));
      await es.until(() => es.messages.length === 3, 10_000, 'three');
      await addPartitions(topic, 2);
      await produce(topic, [{ value: JSON.stringify({ n: 3 }), partition: 1 }]);
      // The tail notices within its check and reads partition 1 from its start; the stream goes on.
      await es.until(() => es.messages.length === 4, 20_000, 'the message in the new partition');
      await produce(topic, [{ value: JSON.stringify({ n: 4 }), partition: 0 }]);
      await es.until(() => es.messages.length === 5, 10_000, 'a message in the old partition after it');
      assert.deepEqual(
        es.messages.map((m) => (JSON.parse(m.data) as { n: number }).n),
        [0, 1, 2, 3, 4],
      );
      assert.equal(es.connections.length, 1, 'no reconnect');
      assert.equal(sharedTail.size, 1, 'the same tail');
      // The ids name the new partition from then on, so a resume reads on from both.
      assert.deepEqual(JSON.parse(es.messages[4]?.lastEventId ?? ''), [
        { topic, partition: 0, offset: 4 },
        { topic, partition: 1, offset: 1 },
      ]);
    } finally {
      es.close();
    }
  });

  it('moves a client too slow for the log to a consumer of its own, losing nothing', async () => {
    const topic = uniqueTopic('shared-slow');
    await createTopic(topic, 2);
    const sharedTail = new SharedTail({ ringMessages: 100 });
    const N = 5000;
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail }) }));
    const slow = await open('/');
    await slow.until(() => slow.raw().startsWith(':ok'), 5000, ':ok');
    slow.pause();
    // ~20 MB: past what the paused client's socket buffers (kernel and the
    // server's 1 MiB) hold, and far past the log's 100 messages.
    const filler = 'x'.repeat(4000);
    for (let from = 0; from < N; from += 500) await produce(topic, batch(from, from + 500, 2, { filler }));
    slow.resume();
    await slow.until(() => slow.messages().length === N, 30_000, 'slow client: all');
    // Exactly once, in order per partition, across the move.
    for (const p of [0, 1]) {
      const got = ns(slow).filter((n) => n % 2 === p);
      assert.deepEqual(
        got,
        range(0, N).filter((n) => n % 2 === p),
        `partition ${p}`,
      );
    }
    assert.equal(openConsumerCount(), before + 1, 'the slow client now owns a consumer; the tail was released');
    assert.equal(sharedTail.size, 0);
    assert.equal(
      slow.messages().at(-1)?.id,
      JSON.stringify([0, 1].map((partition) => ({ topic, partition, offset: N / 2 }))),
    );
  });

  it('applies each client’s filters and format to the same shared messages', async () => {
    const topic = uniqueTopic('shared-filters');
    await createTopic(topic, 1);
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ queryFilters: true }) }));
    const all = await open('/');
    const even = await open('/?filter[even]=true');
    const ndjson = await open('/', { Accept: 'application/x-ndjson' });
    await even.until(() => even.raw().startsWith(':ok'), 5000, ':ok');
    await produce(
      topic,
      range(0, 10).map((n) => ({ value: JSON.stringify({ n, even: n % 2 === 0 }) })),
    );
    await all.until(() => all.messages().length === 10, 10_000, 'all');
    await even.until(() => even.messages().length === 5, 10_000, 'even');
    await ndjson.until(() => ndjson.lines.length === 10, 10_000, 'ndjson');
    assert.equal(openConsumerCount(), before + 1);
    assert.deepEqual(ns(even), [0, 2, 4, 6, 8]);
    assert.deepEqual(
      even.messages().map((m) => m.id),
      all
        .messages()
        .filter((_, i) => i % 2 === 0)
        .map((m) => m.id),
      'a filtered client gets the same ids for what it receives',
    );
    assert.deepEqual(
      ndjson.lines.map((l) => (l as { n: number }).n),
      range(0, 10),
    );
    assert.deepEqual((ndjson.lines[0] as { _kafka: { offset: number } })._kafka.offset, 0);
  });

  it('runs each deserializer once per message and keeps their results apart', async () => {
    const topic = uniqueTopic('shared-deser');
    await createTopic(topic, 1);
    let upperCalls = 0;
    const upper = (m: KafkaMessage) => {
      upperCalls++;
      return { ...m, message: String(m.value).toUpperCase() };
    };
    bridge = await startBridge((req) => ({
      assignments: topic,
      options: baseOptions(req.url === '/upper' ? { deserializer: upper } : {}),
    }));
    const plain = await open('/');
    const up1 = await open('/upper');
    const up2 = await open('/upper');
    await up2.until(() => up2.raw().startsWith(':ok'), 5000, ':ok');
    await produce(topic, [{ value: '{"a":"x"}' }, { value: '{"a":"y"}' }]);
    for (const c of [plain, up1, up2]) await c.until(() => c.messages().length === 2, 10_000, 'two');
    assert.deepEqual(
      up1.messages().map((m) => m.data),
      ['{"A":"X"}', '{"A":"Y"}'],
    );
    assert.deepEqual(
      up2.messages().map((m) => m.data),
      ['{"A":"X"}', '{"A":"Y"}'],
    );
    assert.deepEqual(
      plain.messages().map((m) => (JSON.parse(m.data) as { a: string }).a),
      ['x', 'y'],
    );
    assert.equal(upperCalls, 2, 'once per message for both streams');
  });

  it('sends what a deserializer wrapping the default one changed, shared or not', async () => {
    const topic = uniqueTopic('shared-wrap');
    await createTopic(topic, 1);
    const wrapped = (m: KafkaMessage) => {
      const d = defaultDeserializer(m);
      (d.message as Record<string, unknown>).added = true;
      return d;
    };
    bridge = await startBridge((req) => ({
      assignments: req.url === '/replay' ? [{ topic, partition: 0, offset: 0 }] : topic,
      options: baseOptions({ deserializer: wrapped }),
    }));
    const live = await open('/');
    await live.until(() => live.raw().startsWith(':ok'), 5000, ':ok');
    await produce(topic, [{ value: '{"a":1}' }]);
    const replay = await open('/replay');
    for (const c of [live, replay]) {
      await c.until(() => c.messages().length === 1, 10_000, 'one');
      const data = JSON.parse(c.messages()[0]?.data ?? '{}') as Record<string, unknown>;
      assert.equal(data.added, true);
      assert.equal(data.a, 1);
    }
  });

  it('with sharedTail: null, every stream owns a consumer (KafkaSSE behaviour)', async () => {
    const topic = uniqueTopic('shared-off');
    await createTopic(topic, 1);
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail: null }) }));
    const a = await open('/');
    const b = await open('/');
    await a.until(() => a.raw().startsWith(':ok'), 5000, ':ok');
    await b.until(() => b.raw().startsWith(':ok'), 5000, ':ok');
    assert.equal(openConsumerCount(), before + 2);
    await produce(topic, batch(0, 3, 1));
    await a.until(() => a.messages().length === 3, 10_000, 'a');
    await b.until(() => b.messages().length === 3, 10_000, 'b');
  });

  it('keeps a tail for lingerMs after its last stream, and reuses it', async () => {
    const topic = uniqueTopic('shared-linger');
    await createTopic(topic, 1);
    const sharedTail = new SharedTail({ lingerMs: 400 });
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail }) }));
    const a = await open('/');
    await a.until(() => a.raw().startsWith(':ok'), 5000, ':ok');
    a.close();
    await (bridge as BridgeServer).streams[0];
    assert.equal(sharedTail.size, 1, 'still open');
    const b = await open('/');
    await b.until(() => b.raw().startsWith(':ok'), 5000, ':ok');
    assert.equal(openConsumerCount(), before + 1, 'reused');
    b.close();
    await waitFor(() => sharedTail.size === 0 && openConsumerCount() === before, 5000, 'released after linger');
  });

  it('answers an unknown topic 404 and leaves no consumer', async () => {
    const before = openConsumerCount();
    bridge = await startBridge(() => ({ assignments: uniqueTopic('shared-missing'), options: baseOptions() }));
    const res = await getJson(`${bridge.url}/`);
    assert.equal(res.status, 404);
    assert.equal((res.body as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
    await waitFor(() => openConsumerCount() === before, 5000, 'released');
  });

  it('ends its streams with an error event when the SharedTail is closed', async () => {
    const topic = uniqueTopic('shared-close');
    await createTopic(topic, 1);
    const sharedTail = new SharedTail();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ sharedTail }) }));
    const a = await open('/');
    await a.until(() => a.raw().startsWith(':ok'), 5000, ':ok');
    await sharedTail.close();
    await a.ended;
    const error = a.events.find((e) => e.event === 'error');
    assert.equal((JSON.parse(error?.data ?? '{}') as { code: string }).code, 'CONSUME_FAILED');
  });
});
