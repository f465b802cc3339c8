// Tail replay and maxDurationMs against the broker: what a client receives.
import assert from 'node:assert/strict';
import { StreamRegistry } from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

interface Received {
  n: number;
  _kafka: { partition: number; offset: number };
}

/** Messages per partition of the 3-partition topic below: more than the history, exactly the history, fewer. */
const COUNTS = [12, 5, 3];
const T0 = 1_760_000_000_000;

describe('history replay (historyMessages)', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;
  let topic: string;

  // Each test reads a fresh copy, so a live message one test adds is not seen by the next.
  beforeEach(async () => {
    topic = uniqueTopic('historyMessages');
    await createTopic(topic, 3);
    let n = 0;
    for (const [partition, count] of COUNTS.entries()) {
      await produce(
        topic,
        Array.from({ length: count }, (_, i) => ({
          value: JSON.stringify({ n: n++ }),
          partition,
          timestamp: T0 + i * 1000,
        })),
      );
    }
  });

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  function offsetsByPartition(messages: Received[]): number[][] {
    const out: number[][] = COUNTS.map(() => []);
    for (const m of messages) out[m._kafka.partition]?.push(m._kafka.offset);
    return out;
  }

  it('historyMessages: 5 on a 3-partition topic sends the last 5 messages of each partition (fewer when it has fewer)', async () => {
    bridge = await startBridge(() => ({ assignments: [topic], options: baseOptions({ historyMessages: 5 }) }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 13, 10000, '5 + 5 + 3 messages');
    await new Promise((r) => setTimeout(r, 200));
    const got = client.messages().map((e) => JSON.parse(e.data) as Received);
    assert.deepEqual(offsetsByPartition(got), [
      [7, 8, 9, 10, 11],
      [0, 1, 2, 3, 4],
      [0, 1, 2],
    ]);
    // Then live: a new message arrives after the replay.
    await produce(topic, [{ value: JSON.stringify({ n: 100 }), partition: 1 }]);
    await client.until(() => client.messages().length === 14, 10000, 'the live message');
    client.close();
  });

  it('Last-Event-ID wins over historyMessages', async () => {
    bridge = await startBridge(() => ({ assignments: [topic], options: baseOptions({ historyMessages: 5 }) }));
    const id = JSON.stringify([
      { topic, partition: 0, offset: 10 },
      { topic, partition: 1, offset: 5 },
      { topic, partition: 2, offset: 1 },
    ]);
    const client = await openStream(`${bridge.url}/`, { 'Last-Event-ID': id });
    await client.until(() => client.messages().length === 4, 10000, 'four messages');
    await new Promise((r) => setTimeout(r, 300));
    const got = client.messages().map((e) => JSON.parse(e.data) as Received);
    assert.deepEqual(
      offsetsByPartition(got),
      [[10, 11], [5], [1, 2]].slice(0, 3).map((o, p) => (p === 1 ? [] : o)),
    );
    client.close();
  });

  it('atTimestamp wins over historyMessages, and explicit offsets too', async () => {
    bridge = await startBridge((req) =>
      req.url === '/offsets'
        ? {
            assignments: [
              { topic, partition: 0, offset: 2 },
              { topic, partition: 1, offset: 4 },
            ],
            options: baseOptions({ historyMessages: 5 }),
          }
        : { assignments: [topic], options: baseOptions({ historyMessages: 5 }), atTimestamp: T0 + 10_000 },
    );
    const since = await openStream(`${bridge.url}/since`);
    await since.until(() => since.messages().length === 2, 10000, 'two messages at or after T0 + 10 s');
    const explicit = await openStream(`${bridge.url}/offsets`);
    await explicit.until(() => explicit.messages().length === 11, 10000, '10 + 1 messages');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(offsetsByPartition(since.messages().map((e) => JSON.parse(e.data) as Received)), [
      [10, 11],
      [],
      [],
    ]);
    assert.deepEqual(offsetsByPartition(explicit.messages().map((e) => JSON.parse(e.data) as Received)), [
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      [4],
      [],
    ]);
    since.close();
    explicit.close();
  });
});

describe('maxDurationMs', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('ends a stream after maxDurationMs; the client resumes from its last id without loss', async () => {
    const topic = uniqueTopic('maxdur');
    await createTopic(topic, 1);
    const registry = new StreamRegistry();
    const reasons: string[] = [];
    registry.on('close', (_s, reason) => reasons.push(reason));
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ maxDurationMs: 600, registry }),
    }));
    await produce(topic, [{ value: JSON.stringify({ n: 0 }) }, { value: JSON.stringify({ n: 1 }) }]);
    const started = Date.now();
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.messages().length === 2, 10000, 'two messages');
    await client.ended;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 550 && elapsed < 3000, `ended after ${elapsed} ms`);
    await waitFor(() => reasons.length === 1, 5000, 'the close event');
    assert.deepEqual(reasons, ['max-duration']);
    assert.ok(!client.events.some((e) => e.event === 'error'), 'a clean end, not an error');

    await produce(topic, [{ value: JSON.stringify({ n: 2 }) }]);
    const lastId = client.messages().at(-1)?.id ?? '';
    const next = await openStream(`${bridge.url}/`, { 'Last-Event-ID': lastId });
    await next.until(() => next.messages().length === 1, 10000, 'the next message');
    assert.equal((JSON.parse(next.messages()[0]?.data ?? '{}') as { n: number }).n, 2);
    next.close();
  });
});

describe('StreamRegistry ids', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('keeps two streams with the same (client-chosen) X-Request-ID apart, and disconnects the one named', async () => {
    const topic = uniqueTopic('regids');
    await createTopic(topic, 1);
    const registry = new StreamRegistry();
    bridge = await startBridge(() => ({ assignments: topic, options: baseOptions({ registry }) }));
    const first = await openStream(`${bridge.url}/`, { 'X-Request-ID': 'same-id' });
    await waitFor(() => registry.size === 1, 10000, 'the first stream registered');
    const second = await openStream(`${bridge.url}/`, { 'X-Request-ID': 'same-id' });
    await waitFor(() => registry.size === 2, 10000, 'both streams registered');
    assert.deepEqual(
      registry.list().map((s) => s.id),
      ['same-id', 'same-id~2'],
    );
    assert.equal(registry.disconnect('same-id~2'), true);
    await second.ended;
    assert.deepEqual(
      registry.list().map((s) => s.id),
      ['same-id'],
    );
    first.close();
    await waitFor(() => registry.size === 0, 5000, 'the registry empty');
  });
});
