// One per-message path for every source, on a real broker: a filterer's edit
// (KafkaSSE's way to redact) reaches the client on the shared tail, from its
// log, on a private replay and after the hand-off from tail to private; a
// stream without a filterer never sees another stream's edit. Also the scope
// of Last-Event-ID, a misconfigured allowedTopics, and stalled readers.
import assert from 'node:assert/strict';
import {
  type DeserializedMessage,
  type KafkaMessage,
  type KafkaSseOptions,
  openConsumerCount,
  SharedTail,
} from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const redact = (m: DeserializedMessage) => {
  (m.message as { user: string }).user = 'REDACTED';
  return true;
};
/** A custom deserializer shared by two routes, as a server with two endpoints would. */
const sharedDeserializer = (m: KafkaMessage) => {
  (m as DeserializedMessage).message = JSON.parse(String(m.value));
  return m as DeserializedMessage;
};
const users = (c: StreamClient) => c.messages().map((m) => (JSON.parse(m.data) as { user: string }).user);
const msg = (n: number, extra: Record<string, unknown> = {}) => ({
  value: JSON.stringify({ n, user: `secret-${n}`, ...extra }),
});

describe('one pipeline on every path', function () {
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

  /** Routes: /redact (filterer), /plain (none); both with `options`. */
  function serve(topic: string, options: (redacted: boolean) => KafkaSseOptions) {
    return startBridge((req) => {
      const redacted = (req.url ?? '').startsWith('/redact');
      return { assignments: topic, options: baseOptions(options(redacted)) };
    });
  }

  for (const deserializer of ['default', 'shared custom'] as const) {
    it(`redacts live on the shared tail and from its log; the other route keeps the original (${deserializer} deserializer)`, async () => {
      const topic = uniqueTopic('redact-tail');
      await createTopic(topic, 1);
      const sharedTail = new SharedTail();
      bridge = await serve(topic, (redacted) => ({
        sharedTail,
        ...(redacted ? { filterer: redact } : {}),
        ...(deserializer === 'shared custom' ? { deserializer: sharedDeserializer } : {}),
      }));
      const red = await open('/redact');
      const plain = await open('/plain');
      await Promise.all([red, plain].map((c) => c.until(() => c.raw().startsWith(':ok'), 5000, ':ok')));
      await produce(topic, [msg(0), msg(1)]);
      await red.until(() => red.messages().length === 2, 10_000, 'two redacted');
      await plain.until(() => plain.messages().length === 2, 10_000, 'two plain');
      assert.equal(sharedTail.size, 1, 'one shared consumer for both routes');
      assert.deepEqual(users(red), ['REDACTED', 'REDACTED']);
      assert.deepEqual(users(plain), ['secret-0', 'secret-1']);
      assert.ok(!red.raw().includes('secret-'), 'no original bytes on the redacted stream');
      // A resume the tail's log holds reads from it, redacted too.
      const resumed = await open('/redact', {
        'Last-Event-ID': JSON.stringify([{ topic, partition: 0, offset: 0 }]),
      });
      await resumed.until(() => resumed.messages().length === 2, 10_000, 'two from the log');
      assert.deepEqual(users(resumed), ['REDACTED', 'REDACTED']);
      assert.equal(sharedTail.size, 1);
    });
  }

  it('redacts on a private replay and after the hand-off from the tail to a consumer of its own', async () => {
    const topic = uniqueTopic('redact-private');
    await createTopic(topic, 1);
    await produce(topic, [msg(0), msg(1), msg(2)]);
    const sharedTail = new SharedTail({ ringMessages: 20 });
    bridge = await startBridge((req) => ({
      assignments: (req.url ?? '').startsWith('/replay') ? [{ topic, partition: 0, offset: 0 }] : topic,
      options: baseOptions({
        sharedTail,
        filterer: redact,
        ...((req.url ?? '').includes('null') ? { sharedTail: null } : {}),
      }),
    }));
    const replay = await open('/replay?null');
    await replay.until(() => replay.messages().length === 3, 10_000, 'replay');
    assert.deepEqual(users(replay), ['REDACTED', 'REDACTED', 'REDACTED']);
    // A live client that stops reading while far more than the log holds is produced.
    const slow = await open('/live');
    await slow.until(() => slow.raw().startsWith(':ok'), 5000, ':ok');
    slow.pause();
    const filler = 'f'.repeat(4000);
    for (let from = 3; from < 1503; from += 300) {
      await produce(
        topic,
        Array.from({ length: 300 }, (_, i) => msg(from + i, { filler })),
      );
    }
    slow.resume();
    await slow.until(() => slow.messages().length === 1500, 30_000, 'all 1,500 after the hand-off');
    assert.ok(users(slow).every((u) => u === 'REDACTED'));
    assert.ok(!slow.raw().includes('secret-'));
    assert.deepEqual(
      slow.messages().map((m) => (JSON.parse(m.data) as { n: number }).n),
      Array.from({ length: 1500 }, (_, i) => i + 3),
    );
  });
});

describe('Last-Event-ID scope and allowedTopics', function () {
  this.timeout(30_000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('lets a Last-Event-ID name only the assigned topics when allowedTopics is unset, unless opted out', async () => {
    const pub = uniqueTopic('scope-public');
    const other = uniqueTopic('scope-other');
    await createTopic(pub, 1);
    await createTopic(other, 1);
    await produce(other, [msg(0)]);
    bridge = await startBridge((req) => ({
      assignments: [pub],
      options: baseOptions((req.url ?? '').includes('any') ? { lastEventIdTopics: 'any' } : {}),
    }));
    const id = JSON.stringify([{ topic: other, partition: 0, offset: 0 }]);
    const refused = await getJson(`${bridge.url}/`, { 'Last-Event-ID': id });
    assert.equal(refused.status, 404);
    assert.equal((refused.body as { error?: unknown; code?: string }).code, 'TOPIC_NOT_AVAILABLE');
    const viaQuery = await getJson(`${bridge.url}/?lastEventId=${encodeURIComponent(id)}`);
    assert.equal(viaQuery.status, 404);
    const ok = await openStream(`${bridge.url}/?any`, { 'Last-Event-ID': id });
    try {
      await ok.until(() => ok.messages().length === 1, 10_000, 'the other topic, opted in');
      assert.equal(ok.status, 200);
    } finally {
      ok.close();
    }
    // Its own topic is always fine.
    const own = await openStream(`${bridge.url}/`, {
      'Last-Event-ID': JSON.stringify([{ topic: pub, partition: 0, offset: 0 }]),
    });
    assert.equal(own.status, 200);
    own.close();
  });

  it('answers 500 ALLOWED_TOPICS_MISCONFIGURED when allowedTopics names no existing topic', async () => {
    const missing = uniqueTopic('never-created');
    bridge = await startBridge(() => ({
      assignments: missing,
      options: baseOptions({ allowedTopics: [missing], sharedTail: null }),
    }));
    const r = await getJson(`${bridge.url}/`);
    assert.equal(r.status, 500);
    assert.deepEqual(r.body, {
      name: 'AllowedTopicsMisconfiguredError',
      code: 'ALLOWED_TOPICS_MISCONFIGURED',
      message: 'The server is misconfigured: none of its allowed topics exists',
      status: 500,
      statusCode: 500,
    });
    await waitFor(() => openConsumerCount() === 0, 5000, 'released');
  });
});

describe('stalled readers', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('ends replays whose client reads nothing for stalledWriteTimeoutMs and releases their consumers', async () => {
    const topic = uniqueTopic('stalled');
    await createTopic(topic, 1);
    const filler = 's'.repeat(8000);
    for (let i = 0; i < 4; i++)
      await produce(
        topic,
        Array.from({ length: 250 }, (_, j) => msg(i * 250 + j, { filler })),
      );
    const before = openConsumerCount();
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ stalledWriteTimeoutMs: 1000, sharedTail: null }),
    }));
    const stalled: StreamClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await openStream(`${bridge.url}/`);
      c.pause();
      stalled.push(c);
    }
    await waitFor(() => openConsumerCount() === before + 5, 10_000, 'five consumers');
    // Each fills its socket and the writer's buffer, then the timeout lets it go.
    await waitFor(() => openConsumerCount() === before, 30_000, 'every consumer released');
    await (bridge as BridgeServer).settled();
    // A client that reads resumes where its id says.
    for (const c of stalled) c.close();
  });
});
