// Issue 6, part 5: payloads that try to break the wire formats. An SSE client
// (the real `eventsource`) and an NDJSON client receive exactly what was
// produced, up to the documented mappings, and every event after a hostile one
// arrives intact with the right id:
//   - SSE data cannot carry CR: CR and CRLF arrive as LF (NDJSON keeps them);
//   - bytes that are not UTF-8 arrive as U+FFFD (the text is decoded once, as
//     Node's Buffer#toString('utf8') does);
//   - a tombstone and a zero-length value both arrive as null (node-rdkafka
//     hands a zero-length value over as null): `null` in SSE and NDJSON with a
//     text deserializer, `{value: null, _kafka}` with the default one;
//   - with the default deserializer, a value that is not JSON is skipped (its
//     offset still advances the id).
import assert from 'node:assert/strict';
import { openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/process-stats.ts';
import { recordFigures } from '../helpers/soak.ts';
import { openStream } from '../helpers/sse-client.ts';
import { TrackedEventSource } from '../helpers/tracked-eventsource.ts';

/** Just under the default message.max.bytes (1,000,000) with the record's overhead. */
const ONE_MB = 999_000;

const TEXT_CASES: [name: string, value: Buffer | null][] = [
  ['LF', Buffer.from('a\nb')],
  ['CR', Buffer.from('a\rb')],
  ['CRLF', Buffer.from('a\r\nb')],
  ['blank lines', Buffer.from('\n\n\r\n\r\rx')],
  ['trailing CR', Buffer.from('end\r')],
  ['leading LF', Buffer.from('\nstart')],
  ['NUL', Buffer.from('x\u0000y\u0000')],
  ['U+2028 U+2029 U+0085', Buffer.from('p\u2028q\u2029r\u0085s')],
  ['invalid UTF-8', Buffer.from([0x61, 0xff, 0xfe, 0x62])],
  ['overlong encoding', Buffer.from([0xc0, 0xaf, 0x41])],
  ['encoded lone surrogate', Buffer.from([0xed, 0xa0, 0x80, 0x42])],
  ['truncated sequence', Buffer.from([0x43, 0xe2, 0x82])],
  [
    'SSE injection',
    Buffer.from(
      'x\n\nevent: error\ndata: {"code":"FAKE"}\nid: [{"topic":"evil","partition":0,"offset":0}]\nretry: 1\n\n',
    ),
  ],
  ['leading space', Buffer.from(' lead')],
  ['leading colon', Buffer.from(':not a comment')],
  ['field-like', Buffer.from('id: 7\nevent: x\nretry: 5')],
  ['emoji and ZWJ', Buffer.from('😀 👨‍👩‍👧 é')],
  ['1 MB single line', Buffer.from('y'.repeat(ONE_MB))],
  ['1 MB multi-byte', Buffer.from('é€😀'.repeat(Math.floor(ONE_MB / 9)))],
  ['tombstone', null],
  ['zero-length', Buffer.alloc(0)],
];

/** What the text deserializer hands the library: the value decoded once, or null. */
function decoded(value: Buffer | null): string | null {
  return value === null || value.length === 0 ? null : value.toString('utf8');
}

/** What an EventSource's `data` is for a message: SSE turns CR and CRLF into LF; null is written as JSON. */
function sseExpected(value: Buffer | null): string {
  const text = decoded(value);
  return text === null ? 'null' : text.replace(/\r\n|\r/g, '\n');
}

describe('reliability: framing of hostile payloads', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;
  const sources: TrackedEventSource[] = [];

  afterEach(async () => {
    for (const s of sources.splice(0)) s.close();
    await bridge?.close();
    bridge = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  it('text payloads: SSE and NDJSON clients get exactly what was produced, and every event after', async () => {
    const topic = uniqueTopic('framing-text');
    await createTopic(topic, 1);
    const produced: { name: string; value: Buffer | null }[] = [];
    for (const [name, value] of TEXT_CASES) {
      produced.push({ name, value }, { name: `after ${name}`, value: Buffer.from(`SENTINEL after ${name}`) });
    }
    await produce(
      topic,
      produced.map((p) => ({ value: p.value })),
    );
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({
        deserializer: (m) => Object.assign(m, { message: m.value === null ? null : m.value.toString('utf8') }),
      }),
    }));

    const es = new TrackedEventSource(`${bridge.url}/`);
    sources.push(es);
    const nd = await openStream(`${bridge.url}/`, { Accept: 'application/x-ndjson' });
    await es.until(() => es.messages.length >= produced.length, 30_000, 'every SSE message');
    await nd.until(() => nd.lines.length >= produced.length, 30_000, 'every NDJSON line');
    await new Promise((r) => setTimeout(r, 200));

    assert.equal(es.messages.length, produced.length, 'no extra or missing SSE event');
    assert.equal(es.errorEvents.length, 0, 'no injected error event');
    assert.equal(es.connections.length, 1, 'no reconnect (an injected retry or a broken stream would cause one)');
    produced.forEach((p, i) => {
      const got = es.messages[i];
      assert.equal(got?.data, sseExpected(p.value), `SSE data of ${p.name}`);
      assert.equal(got?.lastEventId, JSON.stringify([{ topic, partition: 0, offset: i + 1 }]), `SSE id of ${p.name}`);
    });

    assert.equal(nd.lines.length, produced.length, 'no extra or missing NDJSON line');
    produced.forEach((p, i) => {
      assert.deepEqual(nd.lines[i], decoded(p.value), `NDJSON value of ${p.name}`);
    });
    // One physical line per message: no raw line break inside a line.
    assert.equal(nd.raw().split('\n').length, produced.length + 1);
    nd.close();
    recordFigures('framing (text)', {
      cases: TEXT_CASES.length,
      events: produced.length,
      bytes: produced.reduce((a, p) => a + (p.value?.length ?? 0), 0),
      corrupted: 0,
    });
  });

  it('JSON payloads (default deserializer): escapes, lone surrogates, tombstones, spoofed _kafka, 1 MB values', async () => {
    const topic = uniqueTopic('framing-json');
    await createTopic(topic, 1);
    const t0 = 1_770_000_000_000;
    const deep = '['.repeat(500) + ']'.repeat(500);
    const cases: { name: string; value: string | null; key?: string; expected: unknown }[] = [
      { name: 'escaped CR LF', value: '{"s":"a\\r\\nb\\rc"}', expected: { s: 'a\r\nb\rc' } },
      { name: 'escaped NUL', value: '{"s":"x\\u0000y"}', expected: { s: 'x\u0000y' } },
      { name: 'lone surrogates', value: '{"s":"\\ud800x\\udfff"}', expected: { s: '\ud800x\udfff' } },
      { name: 'raw U+2028', value: '{"s":"\u2028\u2029"}', expected: { s: '\u2028\u2029' } },
      { name: 'scalar', value: '42', expected: { value: 42 } },
      { name: 'string', value: '"text\\n"', expected: { value: 'text\n' } },
      { name: 'array', value: '[1,"2",null]', expected: { value: [1, '2', null] } },
      { name: 'JSON null', value: 'null', expected: { value: null } },
      { name: 'tombstone', value: null, expected: { value: null } },
      { name: 'zero-length', value: '', expected: { value: null } },
      { name: 'not JSON (skipped)', value: '{oops', expected: undefined },
      { name: 'spoofed _kafka', value: '{"_kafka":{"topic":"evil","offset":-1},"a":1}', expected: { a: 1 } },
      {
        name: '__proto__ key',
        value: '{"__proto__":{"polluted":true},"a":1}',
        expected: JSON.parse('{"__proto__":{"polluted":true},"a":1}'),
      },
      { name: 'key with CR LF NUL', value: '{"k":1}', key: 'k\r\n\u0000ey', expected: { k: 1 } },
      { name: 'nested 500 deep', value: deep, expected: { value: JSON.parse(deep) } },
      {
        name: '1 MB string',
        value: JSON.stringify({ s: 'z'.repeat(ONE_MB - 20) }),
        expected: { s: 'z'.repeat(ONE_MB - 20) },
      },
    ];
    await produce(
      topic,
      // Keys as bytes: node-rdkafka's producer cuts a string key at its first NUL.
      cases.map((c, i) => ({
        value: c.value,
        key: c.key === undefined ? undefined : Buffer.from(c.key),
        timestamp: t0 + i,
      })),
    );
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options: baseOptions() }));
    const kept = cases.map((c, offset) => ({ ...c, offset })).filter((c) => c.expected !== undefined);
    const full = kept.map((c) => ({
      ...(c.expected as object),
      _kafka: { topic, partition: 0, offset: c.offset, timestamp: t0 + c.offset, key: c.key ?? null },
    }));

    const es = new TrackedEventSource(`${bridge.url}/`);
    sources.push(es);
    const nd = await openStream(`${bridge.url}/`, { Accept: 'application/x-ndjson' });
    await es.until(() => es.messages.length >= kept.length, 30_000, 'every SSE message');
    await nd.until(() => nd.lines.length >= kept.length, 30_000, 'every NDJSON line');
    await new Promise((r) => setTimeout(r, 200));

    assert.equal(es.messages.length, kept.length);
    assert.equal(nd.lines.length, kept.length);
    kept.forEach((c, i) => {
      assert.deepEqual(JSON.parse(es.messages[i]?.data ?? ''), full[i], `SSE ${c.name}`);
      assert.equal(
        es.messages[i]?.lastEventId,
        JSON.stringify([{ topic, partition: 0, offset: c.offset + 1 }]),
        `SSE id of ${c.name}`,
      );
      assert.deepEqual(nd.lines[i], full[i], `NDJSON ${c.name}`);
    });
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
    nd.close();
    recordFigures('framing (JSON)', {
      cases: cases.length,
      delivered: kept.length,
      skippedAsInvalid: cases.length - kept.length,
    });
  });

  // A value JSON.stringify cannot serialize (here nested 10,000 deep) is skipped
  // and logged; it must never throw into node-rdkafka's callback (a poison pill).
  it('a message too deeply nested to serialize is skipped; the stream and the process go on', async () => {
    const topic = uniqueTopic('framing-deep');
    await createTopic(topic, 1);
    const depth = 10_000;
    await produce(topic, [
      { value: '{"n":0}' },
      { value: '['.repeat(depth) + ']'.repeat(depth) },
      { value: '{"n":2}' },
    ]);
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options: baseOptions() }));
    for (const accept of ['text/event-stream', 'application/x-ndjson']) {
      const client = await openStream(`${bridge.url}/`, { Accept: accept });
      const count = () => (accept === 'text/event-stream' ? client.messages().length : client.lines.length);
      await client.until(() => count() === 2, 10_000, 'the two serializable messages');
      const ns =
        accept === 'text/event-stream'
          ? client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n)
          : client.lines.map((l) => (l as { n: number }).n);
      assert.deepEqual(ns, [0, 2]);
      client.close();
    }
  });
});
