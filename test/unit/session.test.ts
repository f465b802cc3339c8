// The session, both sources and the shared tail's log, driven through the
// consumer-factory seam against a fake Kafka: no broker, no network. What is
// asserted is what a client would receive (events, ids, the end) and that
// every consumer is released.
import assert from 'node:assert/strict';
import { runStream } from '../../lib/kafka-sse.ts';
import type { KafkaSseOptions } from '../../lib/options.ts';
import { SharedTail } from '../../lib/shared-tail.ts';
import { watchForStall } from '../../lib/stall-watch.ts';
import { TailLog } from '../../lib/tail-log.ts';
import type { DeserializedMessage, KafkaMessage } from '../../lib/types.ts';
import { asResponse, FakeKafka, FakeResponse, fakeRequest } from '../helpers/fake-kafka.ts';

const quiet = { child: () => quiet, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const json = (n: number, extra: Record<string, unknown> = {}) => JSON.stringify({ n, user: `u${n}`, ...extra });
const ns = (res: FakeResponse) => res.events().map((e) => (JSON.parse(e.data) as { n: number }).n);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('session (fake Kafka)', () => {
  let kafka: FakeKafka;
  let tail: SharedTail;
  const running: Promise<void>[] = [];
  const responses: FakeResponse[] = [];

  beforeEach(() => {
    kafka = new FakeKafka();
    tail = new SharedTail({ ringMessages: 50 }, { createConsumer: kafka.factory, partitionCheckMs: 20 });
  });

  afterEach(async () => {
    for (const r of responses.splice(0)) if (!r.destroyed) r.hangUp();
    await tail.close();
    await Promise.all(running.splice(0));
  });

  /** Starts a stream; returns its response and its promise. */
  function stream(
    assignments: Parameters<typeof runStream>[2],
    options: Partial<KafkaSseOptions> = {},
    headers: Record<string, string> = {},
    res = new FakeResponse(),
  ): { res: FakeResponse; done: Promise<void> } {
    const done = runStream(
      fakeRequest(headers),
      asResponse(res),
      assignments,
      {
        kafkaConfig: { 'metadata.broker.list': 'fake:9092' },
        logger: quiet,
        heartbeatMs: null,
        sharedTail: tail,
        ...options,
      },
      undefined,
      { createConsumer: kafka.factory },
    );
    running.push(done);
    responses.push(res);
    return { res, done };
  }

  it('replays from explicit offsets with a consumer of its own, and releases it when the client leaves', async () => {
    kafka.createTopic('t', 1);
    kafka.produce(
      't',
      0,
      range(0, 100).map((n) => json(n)),
    );
    // Far from the end (a resume close to it would open a shared tail for the others coming back).
    const { res, done } = stream([{ topic: 't', partition: 0, offset: 4 }]);
    await until(() => res.events().length === 96, '96 events');
    assert.deepEqual(ns(res), range(4, 100));
    assert.equal(res.events().at(-1)?.id, '[{"topic":"t","partition":0,"offset":100}]');
    assert.equal(tail.size, 0, 'no shared tail for a replay');
    assert.equal(kafka.open, 1);
    res.hangUp();
    await done;
    assert.equal(kafka.open, 0);
  });

  it('serves live streams from one shared consumer, the same frames with the same ids', async () => {
    kafka.createTopic('live', 2);
    const a = stream('live');
    const b = stream('live', {}, { Accept: 'application/json' });
    await until(() => a.res.headersSent && b.res.headersSent, 'both heads');
    kafka.produce('live', 0, [json(0), json(1)]);
    kafka.produce('live', 1, [json(2)]);
    await until(() => a.res.events().length === 3 && b.res.body.split('\n').filter(Boolean).length === 3, 'all');
    assert.equal(kafka.open, 1, 'one consumer for both');
    assert.equal(b.res.headers['Content-Type'], 'application/json; charset=utf-8');
    assert.deepEqual(
      a.res.events().map((e) => e.id),
      [
        '[{"topic":"live","partition":0,"offset":1},{"topic":"live","partition":1,"offset":0}]',
        '[{"topic":"live","partition":0,"offset":2},{"topic":"live","partition":1,"offset":0}]',
        '[{"topic":"live","partition":0,"offset":2},{"topic":"live","partition":1,"offset":1}]',
      ],
    );
    a.res.hangUp();
    b.res.hangUp();
    await Promise.all([a.done, b.done]);
    assert.equal(kafka.open, 0, 'the tail closes with its last stream');
  });

  describe('a filterer that edits the message', () => {
    const redact = (m: DeserializedMessage) => {
      (m.message as { user: string }).user = 'REDACTED';
      return true;
    };
    const users = (res: FakeResponse) => res.events().map((e) => (JSON.parse(e.data) as { user: string }).user);

    it('is honoured on the shared tail, and never shows in a stream without one', async () => {
      kafka.createTopic('r', 1);
      // One deserializer shared by both streams, as two routes of one server would.
      const deserializer = (m: KafkaMessage) => {
        (m as DeserializedMessage).message = JSON.parse(String(m.value));
        return m as DeserializedMessage;
      };
      const redacted = stream('r', { filterer: redact, deserializer });
      const plain = stream('r', { deserializer });
      await until(() => redacted.res.headersSent && plain.res.headersSent, 'heads');
      kafka.produce('r', 0, [json(0), json(1)]);
      await until(() => redacted.res.events().length === 2 && plain.res.events().length === 2, 'both');
      assert.deepEqual(users(redacted.res), ['REDACTED', 'REDACTED']);
      assert.deepEqual(users(plain.res), ['u0', 'u1']);
      assert.equal(kafka.open, 1, 'still one shared consumer');
    });

    it('is honoured with the default deserializer (no original bytes sent) on every source', async () => {
      kafka.createTopic('d', 1);
      kafka.produce(
        'd',
        0,
        range(0, 3).map((n) => json(n)),
      );
      const live = stream('d', { filterer: redact });
      await until(() => live.res.headersSent, 'head');
      kafka.produce('d', 0, [json(3)]);
      await until(() => live.res.events().length === 1, 'live');
      // A resume the tail's log covers reads from it; one it does not gets a consumer.
      const fromLog = stream(
        'd',
        { filterer: redact },
        { 'Last-Event-ID': '[{"topic":"d","partition":0,"offset":3}]' },
      );
      const replay = stream([{ topic: 'd', partition: 0, offset: 0 }], { filterer: redact });
      await until(() => fromLog.res.events().length === 1 && replay.res.events().length === 4, 'resume and replay');
      assert.equal(kafka.open, 2, 'the tail and the replay');
      for (const r of [live.res, fromLog.res, replay.res]) for (const u of users(r)) assert.equal(u, 'REDACTED');
      assert.doesNotMatch(`${live.res.body}${fromLog.res.body}${replay.res.body}`, /"u\d/);
    });
  });

  it('moves a client too slow for the log to a consumer of its own, losing nothing', async () => {
    kafka.createTopic('slow', 2);
    const big = 'x'.repeat(20_000);
    const res = new FakeResponse({ reading: false });
    const { done } = stream('slow', {}, {}, res);
    await until(() => res.headersSent, 'head');
    // ~4 MB: past the writer's 1 MiB and far past the log's 50 messages.
    for (let i = 0; i < 200; i += 10) {
      kafka.produce(
        'slow',
        i % 2,
        range(i, i + 10).map((n) => json(n, { big })),
      );
      await new Promise((r) => setImmediate(r));
    }
    await until(() => tail.size === 1 && kafka.open === 1, 'produced');
    res.reading = true;
    res.read();
    const pump = setInterval(() => res.read(), 1);
    try {
      await until(() => res.events().length === 200, 'all 200', 10_000);
    } finally {
      clearInterval(pump);
    }
    const byPartition = [0, 1].map((p) => ns(res).filter((n) => Math.floor(n / 10) % 2 === p));
    assert.deepEqual(
      byPartition[0],
      range(0, 200).filter((n) => Math.floor(n / 10) % 2 === 0),
    );
    assert.deepEqual(
      byPartition[1],
      range(0, 200).filter((n) => Math.floor(n / 10) % 2 === 1),
    );
    assert.equal(kafka.consumers.length, 2, 'the tail, then one consumer of its own');
    res.hangUp();
    await done;
    assert.equal(kafka.open, 0);
  });

  it('rewinds a private consumer to the first message dropped while the client was full', async () => {
    kafka.createTopic('rw', 3);
    kafka.inflightAfterPause = 7;
    const big = 'y'.repeat(30_000);
    for (let p = 0; p < 3; p++)
      kafka.produce(
        'rw',
        p,
        range(p * 100, p * 100 + 60).map((n) => json(n, { big })),
      );
    const res = new FakeResponse({ reading: false });
    const assignments = [0, 1, 2].map((partition) => ({ topic: 'rw', partition, offset: 0 }));
    const { done } = stream(assignments, {}, {}, res);
    // Read in bursts so that the writer blocks and drains many times.
    for (let i = 0; i < 400 && res.events().length < 180; i++) {
      await new Promise((r) => setTimeout(r, 2));
      if (i % 3 === 0) res.read();
    }
    res.reading = true;
    res.read();
    await until(() => res.events().length === 180, 'all 180');
    for (let p = 0; p < 3; p++) {
      assert.deepEqual(
        ns(res).filter((n) => Math.floor(n / 100) === p),
        range(p * 100, p * 100 + 60),
        `partition ${p} exactly once, in order`,
      );
    }
    res.hangUp();
    await done;
    assert.equal(kafka.open, 0);
  });

  it('reads partitions added to a topic without ending its live streams', async () => {
    kafka.createTopic('grow', 1);
    const { res } = stream('grow');
    await until(() => res.headersSent, 'head');
    kafka.produce('grow', 0, [json(0)]);
    await until(() => res.events().length === 1, 'first');
    kafka.addPartitions('grow', 2);
    await new Promise((r) => setTimeout(r, 60));
    kafka.produce('grow', 1, [json(1)]);
    await until(() => res.events().length === 2, 'the new partition');
    assert.equal(
      res.events()[1]?.id,
      '[{"topic":"grow","partition":0,"offset":1},{"topic":"grow","partition":1,"offset":1}]',
    );
    assert.ok(!res.writableEnded, 'the stream goes on');
    assert.equal(kafka.consumers.length, 1);
  });

  it('after a restart, eight resumes near the end make one lookup and share one new tail', async () => {
    kafka.createTopic('back', 2);
    kafka.produce(
      'back',
      0,
      range(0, 20).map((n) => json(n)),
    );
    kafka.produce(
      'back',
      1,
      range(20, 40).map((n) => json(n)),
    );
    const id = JSON.stringify([
      { topic: 'back', partition: 0, offset: 18 },
      { topic: 'back', partition: 1, offset: 17 },
    ]);
    const resumes = range(0, 8).map(() => stream('back', {}, { 'Last-Event-ID': id }));
    await until(() => resumes.every((r) => r.res.events().length === 5), 'each the 5 after its id');
    for (const r of resumes) assert.deepEqual(ns(r.res), [18, 19, 37, 38, 39]);
    assert.equal(kafka.consumers.length, 2, 'one lookup consumer, then the tail');
    await until(() => kafka.open === 1, 'the lookup consumer released');
    assert.equal(tail.size, 1);
  });

  it('resumes from the log get exactly what follows their id, framed as the live stream framed it', async () => {
    kafka.createTopic('log', 2);
    const live = stream('log');
    await until(() => live.res.headersSent, 'the live head');
    for (let k = 0; k < 10; k++) {
      kafka.produce('log', 0, [json(k)]);
      kafka.produce('log', 1, [json(10 + k)]);
    }
    await until(() => live.res.events().length === 20, 'the live stream has all 20');
    const seen = live.res.events();
    // In step: the id of one of the live stream's events (the first, middle ones, the last).
    for (const k of [0, 6, 13, 19]) {
      const r = stream('log', {}, { 'Last-Event-ID': seen[k]?.id as string });
      if (k < 19) await until(() => r.res.events().length === 19 - k, `the ${19 - k} after event ${k}`);
      else await until(() => r.res.headersSent, 'the head of a resume at the end');
      assert.deepEqual(r.res.events(), seen.slice(k + 1), `after event ${k}`);
    }
    // Out of step: each partition from a point of its own.
    const mixed = stream(
      'log',
      {},
      {
        'Last-Event-ID': JSON.stringify([
          { topic: 'log', partition: 0, offset: 3 },
          { topic: 'log', partition: 1, offset: 7 },
        ]),
      },
    );
    const wanted = seen.filter((e) => {
      const n = (JSON.parse(e.data) as { n: number }).n;
      return n < 10 ? n >= 3 : n - 10 >= 7;
    });
    await until(() => mixed.res.events().length === wanted.length, `the ${wanted.length} it lacks`);
    // Its own ids: its positions after each message.
    const next = [3, 7];
    const ownIds = wanted.map((e) => {
      const n = (JSON.parse(e.data) as { n: number }).n;
      if (n < 10) next[0] = n + 1;
      else next[1] = n - 10 + 1;
      return JSON.stringify(next.map((offset, partition) => ({ topic: 'log', partition, offset })));
    });
    assert.deepEqual(
      mixed.res.events().map((e) => [e.data, e.id]),
      wanted.map((e, i) => [e.data, ownIds[i]]),
    );
    assert.equal(mixed.res.events().at(-1)?.id, seen.at(-1)?.id, 'in step with the log once it has caught up');
    // More live messages reach every resume, with the log's ids.
    kafka.produce('log', 1, [json(99)]);
    await until(() => mixed.res.events().length === wanted.length + 1, 'the next live message');
    assert.equal(mixed.res.events().at(-1)?.id, live.res.events().at(-1)?.id);
    assert.equal(kafka.consumers.length, 1, 'every resume read the shared log');
  });

  it('a resume far behind the end makes one consumer, and no tail', async () => {
    kafka.createTopic('far', 1);
    kafka.produce(
      'far',
      0,
      range(0, 200).map((n) => json(n)),
    );
    const { res } = stream('far', {}, { 'Last-Event-ID': '[{"topic":"far","partition":0,"offset":5}]' });
    await until(() => res.events().length === 195, 'from offset 5');
    assert.equal(kafka.consumers.length, 1);
    assert.equal(tail.size, 0);
  });

  describe('every exit releases the consumer', () => {
    it('the client leaves while the consumer connects', async () => {
      kafka.createTopic('e1', 1);
      kafka.connectDelayMs = 30;
      const { res, done } = stream([{ topic: 'e1', partition: 0, offset: 0 }]);
      setTimeout(() => res.hangUp(), 5);
      await done;
      assert.equal(res.headersSent, false);
      assert.equal(kafka.open, 0);
    });

    it('the server aborts during setup: a retryable answer', async () => {
      kafka.createTopic('e2', 1);
      kafka.connectDelayMs = 30;
      const ac = new AbortController();
      const { res, done } = stream([{ topic: 'e2', partition: 0, offset: 0 }], { signal: ac.signal });
      setTimeout(() => ac.abort(), 5);
      await done;
      assert.match(res.body, /"code":"BROKER_UNAVAILABLE"/);
      assert.equal(kafka.open, 0);
    });

    it('maxDurationMs, a throwing filterer, a consume error, a stalled client and a failed tail', async () => {
      kafka.createTopic('e3', 1);
      kafka.produce('e3', 0, [json(0)]);
      const own = { sharedTail: null };
      const from0 = [{ topic: 'e3', partition: 0, offset: 0 }];
      const ends: Promise<void>[] = [];
      ends.push(stream(from0, { ...own, maxDurationMs: 20 }).done);
      const throwing = stream(from0, {
        ...own,
        filterer: () => {
          throw new Error('boom');
        },
      });
      ends.push(throwing.done);
      const failing = stream(from0, own);
      ends.push(failing.done);
      await until(() => failing.res.events().length > 0, 'the failing stream started');
      const failingConsumer = kafka.consumers.at(-1);
      const stalled = new FakeResponse({ reading: false });
      ends.push(stream(from0, { ...own, stalledWriteTimeoutMs: 30 }, {}, stalled).done);
      kafka.produce(
        'e3',
        0,
        range(1, 80).map((n) => json(n, { big: 'z'.repeat(20_000) })),
      );
      const live = stream('e3');
      ends.push(live.done);
      await until(() => live.res.headersSent, 'the live stream started');
      failingConsumer?.failWith(new Error('x'));
      // The tail's consumer is the one made with event handlers.
      kafka.consumers.find((c) => c.handlers !== undefined)?.failWith(new Error('tail broke'));
      await Promise.all(ends);
      assert.match(throwing.res.body, /event: error\n.*"code":"FILTER_FAILED"/s);
      assert.match(failing.res.body, /event: error\n.*"code":"CONSUME_FAILED"/s);
      assert.match(live.res.body, /event: error\n.*"code":"CONSUME_FAILED"/s);
      assert.ok(stalled.destroyed, 'the stalled client was let go');
      assert.equal(kafka.open, 0);
    });
  });

  it('answers 503 to NDJSON clients and a retry event to SSE clients when Kafka is down', async () => {
    kafka.createTopic('down', 1);
    kafka.down = true;
    const sse = stream([{ topic: 'down', partition: 0, offset: 0 }]);
    const nd = stream([{ topic: 'down', partition: 0, offset: 0 }], {}, { Accept: 'application/x-ndjson' });
    await Promise.all([sse.done, nd.done]);
    assert.equal(sse.res.statusCode, 200);
    assert.match(sse.res.body, /^:ok\n\nretry: 5000\n\nevent: error\n/);
    assert.equal(nd.res.statusCode, 503);
    assert.equal(kafka.open, 0);
  });
});

describe('watchForStall (fake consumer)', () => {
  it('fires once when nothing arrives for two checks while the partition end moved, never while paused', async () => {
    const kafka = new FakeKafka();
    kafka.createTopic('s', 1);
    const consumer = kafka.factory({}, undefined);
    await consumer.connect(100);
    let stalls = 0;
    let paused = true;
    const timer = watchForStall(
      consumer,
      () => [{ topic: 's', partition: 0, nextOffset: 0 }],
      () => paused,
      () => stalls++,
      10,
    );
    kafka.produce('s', 0, [json(0)]);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(stalls, 0, 'paused: no stall');
    paused = false;
    // While the cluster cannot confirm the partition's end (a leader election), no stall.
    kafka.lookupsFail = true;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(stalls, 0, 'lookups failing: no stall');
    kafka.lookupsFail = false;
    await new Promise((r) => setTimeout(r, 80));
    clearInterval(timer);
    assert.equal(stalls, 1);
  });
});

describe('TailLog', () => {
  const msg = (partition: number, offset: number, bytes = 10) =>
    ({ topic: 't', partition, offset, value: Buffer.alloc(bytes), key: null }) as unknown as KafkaMessage;

  it('trims to its message bound, oldest first, and tracks what each partition still holds', () => {
    const log = new TailLog(5, 1e9);
    log.addPartition(0);
    log.addPartition(100);
    for (let i = 0; i < 10; i++) log.append(msg(i % 2, i % 2 === 0 ? i / 2 : 100 + (i - 1) / 2), i % 2, `id${i}`);
    log.trim();
    assert.equal(log.size, 5);
    assert.equal(log.oldestSeq, 5);
    assert.equal(log.headSeq, 10);
    assert.equal(log.at(5).id, 'id5');
    assert.equal(log.retainedFrom(0), 3, 'partition 0 dropped offsets 0..2');
    assert.equal(log.retainedFrom(1), 102, 'partition 1 dropped offsets 100, 101');
  });

  it('finds where a partition reaches an offset, across trimming and compaction', () => {
    const log = new TailLog(1500, 1e9);
    log.addPartition(0);
    log.addPartition(0);
    // Partition 0 takes the even seqs at offsets 0, 2, 4…; partition 1 the odd ones at 0, 1, 2…
    for (let seq = 0; seq < 5000; seq++) {
      if (seq % 2 === 0) log.append(msg(0, seq), 0, `a${seq}`);
      else log.append(msg(1, (seq - 1) / 2), 1, `b${seq}`);
      log.trim();
    }
    assert.equal(log.oldestSeq, 3500);
    assert.equal(log.at(log.firstFrom(0, 0)).seq, 3500, 'before what it holds: its oldest entry');
    assert.equal(log.firstFrom(0, 4000), 4000);
    assert.equal(log.firstFrom(0, 4001), 4002, 'between offsets: the next one');
    assert.equal(log.firstFrom(1, 2000), 4001);
    assert.equal(log.firstFrom(0, 4998), 4998);
    assert.equal(log.firstFrom(0, 4999), 5000, 'past its last entry: the head');
    assert.equal(log.firstFrom(1, 10_000), 5000);
    log.clear();
    assert.equal(log.firstFrom(0, 0), log.headSeq, 'nothing held');
  });

  it('counts cached frames against its byte bound', () => {
    const log = new TailLog(1000, 2000);
    log.addPartition(0);
    const a = log.append(msg(0, 0, 100), 0, 'a');
    log.append(msg(0, 1, 100), 0, 'b');
    log.trim();
    assert.equal(log.size, 2);
    a.grow(2000);
    log.trim();
    assert.equal(log.size, 1, 'the entry whose frames grew is dropped first');
    assert.equal(log.retainedFrom(0), 1);
  });
});
