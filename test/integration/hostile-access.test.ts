// Issue 6, part 6: access. No input path (URL, Last-Event-ID, lastEventId)
// reads a topic outside allowedTopics; a refusal is the same whether the topic
// exists or not; the consumer group and client id never come from the client;
// no stack trace or internal detail reaches a client; maxPartitions holds on
// every path.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { type KafkaSseOptions, openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/process-stats.ts';
import { knob, recordFigures } from '../helpers/soak.ts';
import { getJson, openStream } from '../helpers/sse-client.ts';

const ACCESS_RUNS = knob('ACCESS_RUNS', 150, 2000);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('hostile input: access control', function () {
  this.timeout(120_000);
  const open = uniqueTopic('access-public');
  const secret = uniqueTopic('access-secret');
  const wide = uniqueTopic('access-wide');
  const SECRET_PAYLOAD = `SECRET-${randomBytes(6).toString('hex')}`;
  let bridge: BridgeServer | undefined;

  before(async function () {
    this.timeout(60_000);
    await createTopic(open, 2);
    await createTopic(secret, 2);
    await createTopic(wide, 6);
    await produce(open, [{ value: '{"n":"public"}', partition: 0 }]);
    await produce(secret, [
      { value: JSON.stringify({ s: SECRET_PAYLOAD }), partition: 0 },
      { value: JSON.stringify({ s: SECRET_PAYLOAD }), partition: 1 },
    ]);
  });

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  /** A route that passes the path's topics and ?since= on, like an EventStreams deployment. */
  async function serve(options: KafkaSseOptions): Promise<BridgeServer> {
    bridge = await startBridge((req) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      let topics = url.pathname.slice(1);
      try {
        topics = decodeURIComponent(topics);
      } catch {
        // kafkaSse judges the raw text.
      }
      const assign = url.searchParams.get('assign');
      return {
        assignments: (assign !== null ? JSON.parse(assign) : topics) as never,
        options: baseOptions(options),
      };
    });
    return bridge;
  }

  /** Reads a stream for a moment and returns everything received; never more than `ms`. */
  async function readFor(url: string, headers: Record<string, string>, ms = 400): Promise<string> {
    const c = await openStream(url, headers);
    if (c.status !== 200) {
      await c.ended;
      return c.raw();
    }
    // Until the server ends the stream, or for `ms` at most.
    await Promise.race([c.ended, sleep(ms)]);
    c.close();
    return c.raw();
  }

  for (const [kind, allowedTopics] of [
    ['a list', (t: string) => [t]],
    ['an async function', (t: string) => async () => [t]],
  ] as const) {
    it(`never reads a topic outside allowedTopics given as ${kind}, by any input path`, async () => {
      const server = await serve({
        allowedTopics: allowedTopics(open) as NonNullable<KafkaSseOptions['allowedTopics']>,
      });
      const id = (entries: object[]) => JSON.stringify(entries);
      const attempts: [string, Record<string, string>][] = [
        [`/${secret}`, {}],
        [`/${open},${secret}`, {}],
        [`/ ${secret} `, {}],
        [`/?assign=${encodeURIComponent(id([{ topic: secret, partition: 0, offset: 0 }]))}`, {}],
        [`/${open}`, { 'Last-Event-ID': id([{ topic: secret, partition: 0, offset: 0 }]) }],
        [
          `/${open}`,
          {
            'Last-Event-ID': id([
              { topic: open, partition: 0, offset: 0 },
              { topic: secret, partition: 1, offset: 0 },
            ]),
          },
        ],
        [`/${open}?lastEventId=${encodeURIComponent(id([{ topic: secret, partition: 0, offset: 0 }]))}`, {}],
        [`/${open}?last_event_id=${encodeURIComponent(id([{ topic: secret, partition: 0, timestamp: 0 }]))}`, {}],
        [`/__consumer_offsets`, {}],
      ];
      for (const [path, headers] of attempts) {
        for (const accept of ['text/event-stream', 'application/x-ndjson']) {
          const raw = await readFor(`${server.url}${path}`, { ...headers, Accept: accept });
          assert.ok(!raw.includes(SECRET_PAYLOAD), `secret data through ${path} ${JSON.stringify(headers)}`);
          const r = await getJson(`${server.url}${path}`, { ...headers, Accept: accept });
          assert.ok(r.status === 404 || r.status === 400, `${r.status} for ${path} ${JSON.stringify(headers)}`);
        }
      }
    });
  }

  it('property: whatever topics a request names, a stream carries only allowed topics', async () => {
    const server = await serve({ allowedTopics: [open] });
    const topic = fc.constantFrom(open, secret, wide, '__consumer_offsets', `${secret}.`, secret.toUpperCase());
    const entry = fc.record({ topic, partition: fc.integer({ min: 0, max: 2 }), offset: fc.constantFrom(0, -1) });
    let streams = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.array(topic, { minLength: 1, maxLength: 3 }).map((ts) => ({ path: `/${ts.join(',')}`, headers: {} })),
          fc.array(entry, { minLength: 1, maxLength: 3 }).map((es) => ({
            path: `/${open}`,
            headers: { 'Last-Event-ID': JSON.stringify(es) } as Record<string, string>,
          })),
          fc.array(entry, { minLength: 1, maxLength: 3 }).map((es) => ({
            path: `/${open}?lastEventId=${encodeURIComponent(JSON.stringify(es))}`,
            headers: {},
          })),
        ),
        async ({ path, headers }) => {
          const c = await openStream(`${server.url}${path}`, headers);
          if (c.status === 200) {
            streams++;
            await sleep(150);
            c.close();
            const ids = c.messages().map((e) => JSON.parse(e.id ?? '[]') as { topic: string }[]);
            for (const idEntries of ids) for (const e of idEntries) assert.equal(e.topic, open);
          } else {
            await c.ended;
            assert.ok(c.status === 404 || c.status === 400, `${c.status}`);
          }
          assert.ok(!c.raw().includes(SECRET_PAYLOAD), `secret data through ${path} ${JSON.stringify(headers)}`);
        },
      ),
      { numRuns: ACCESS_RUNS },
    );
    recordFigures('access: allowedTopics property', { cases: ACCESS_RUNS, streamsOpened: streams, secretLeaks: 0 });
  });

  it('answers an unknown topic and a forbidden one identically, by every path', async () => {
    const server = await serve({ allowedTopics: async () => [open] });
    const unknown = uniqueTopic('access-missing');
    const variants = (t: string): [string, Record<string, string>][] => [
      [`/${t}`, {}],
      [`/${open}`, { 'Last-Event-ID': JSON.stringify([{ topic: t, partition: 0, offset: 0 }]) }],
      [`/${open}?lastEventId=${encodeURIComponent(JSON.stringify([{ topic: t, partition: 0, offset: 5 }]))}`, {}],
    ];
    const a = variants(secret);
    const b = variants(unknown);
    for (let i = 0; i < a.length; i++) {
      const [pa, ha] = a[i] as [string, Record<string, string>];
      const [pb, hb] = b[i] as [string, Record<string, string>];
      const ra = await getJson(`${server.url}${pa}`, { ...ha, Accept: 'application/json' });
      const rb = await getJson(`${server.url}${pb}`, { ...hb, Accept: 'application/json' });
      assert.equal(ra.status, 404);
      assert.equal(rb.status, ra.status);
      assert.equal(ra.text.replaceAll(secret, 'T'), rb.text.replaceAll(unknown, 'T'), 'same body but for the name');
      const headersOf = (r: typeof ra) =>
        Object.entries(r.headers)
          .filter(([k]) => !['date', 'content-length', 'connection', 'keep-alive'].includes(k))
          .sort();
      assert.deepEqual(headersOf(ra), headersOf(rb));
    }
    // Without allowedTopics, an internal topic that exists and one that does not look alike too.
    await bridge?.close();
    const all = await serve({});
    const internal = await getJson(`${all.url}/__consumer_offsets`);
    const internalMissing = await getJson(`${all.url}/__no_such_internal`);
    assert.equal(internal.status, 404);
    assert.equal(
      internal.text.replace('__consumer_offsets', 'T'),
      internalMissing.text.replace('__no_such_internal', 'T'),
    );
  });

  it('takes the consumer group and client id from the server, never from the client', async () => {
    const logs: string[] = [];
    const server = await serve({
      allowedTopics: [open],
      kafkaConfig: { debug: 'cgrp,broker' },
      kafkaEventHandlers: { 'event.log': (l: unknown) => logs.push((l as { message: string }).message) },
    });
    const evil = `evil${randomBytes(4).toString('hex')}`;
    const clients = await Promise.all(
      [`${evil}-1`, `${evil}-2`].map((rid) =>
        openStream(`${server.url}/${open}?group.id=${evil}&client.id=${evil}`, {
          'X-Request-ID': rid,
          'Last-Event-ID': JSON.stringify([{ topic: open, partition: 0, offset: 0 }]),
        }),
      ),
    );
    for (const c of clients) await c.until(() => c.messages().length === 1, 10_000, 'the public message');
    await waitFor(() => logs.some((l) => l.includes('Group "kafka-sse-bridge"')), 10_000, 'a cgrp log line');
    for (const c of clients) c.close();
    await bridge?.close();
    bridge = undefined;
    const groups = new Set([...logs.join('\n').matchAll(/Group "([^"]*)"/g)].map((m) => m[1]));
    assert.deepEqual([...groups], ['kafka-sse-bridge'], 'one group, the configured one, for both clients');
    assert.ok(!logs.some((l) => l.includes(evil)), 'nothing from the client reaches librdkafka');
    recordFigures('access: group id', { logLines: logs.length, groups: [...groups].join(' '), clientValuesSeen: 0 });
  });

  it('never sends a stack trace or an internal detail to a client', async () => {
    const detail = `/srv/app/secret-${randomBytes(4).toString('hex')}.js`;
    const cases: [string, KafkaSseOptions][] = [
      [
        'allowedTopics throws',
        {
          allowedTopics: () => {
            throw new Error(`boom at ${detail}`);
          },
        },
      ],
      ['allowedTopics rejects', { allowedTopics: async () => Promise.reject(new TypeError(`bad ${detail}`)) }],
      ['librdkafka refuses a setting', { kafkaConfig: { [`bogus.${detail}`]: 1 } }],
      [
        'filterer throws',
        {
          filterer: () => {
            throw new RangeError(`filter ${detail}`);
          },
        },
      ],
    ];
    for (const [name, options] of cases) {
      const server = await serve(options);
      for (const accept of ['text/event-stream', 'application/x-ndjson']) {
        const raw = await readFor(
          `${server.url}/${open}`,
          { Accept: accept, 'Last-Event-ID': JSON.stringify([{ topic: open, partition: 0, offset: 0 }]) },
          // The filterer's stream ends after its error event: a slow machine only makes this wait longer.
          5000,
        );
        assert.ok(!raw.includes(detail), `${name}: the detail reached the client: ${raw.slice(0, 300)}`);
        assert.ok(!/\n\s+at |Error: |node_modules/.test(raw.replace(/"name":"\w*Error"/g, '')), `${name}: ${raw}`);
        assert.match(raw, /"code":"(INTERNAL|FILTER_FAILED)"/, `${name}: a generic error code`);
      }
      await bridge?.close();
      bridge = undefined;
      await waitFor(() => openConsumerCount() === 0, 10_000, 'released');
    }
  });

  it('holds maxPartitions on every path', async () => {
    const server = await serve({ allowedTopics: [open, wide], maxPartitions: 4 });
    const tooMany: [string, Record<string, string>][] = [
      [`/${wide}`, {}],
      [`/${open},${wide}`, {}],
      // An id naming partition 0 of a 6-partition topic expands to all six.
      [`/${open}`, { 'Last-Event-ID': JSON.stringify([{ topic: wide, partition: 0, offset: 0 }]) }],
      [
        `/${open}`,
        {
          'Last-Event-ID': JSON.stringify(
            Array.from({ length: 5 }, (_, p) => ({ topic: wide, partition: p, offset: 0 })),
          ),
        },
      ],
      [
        `/${open}?lastEventId=${encodeURIComponent(JSON.stringify(Array.from({ length: 50_000 }, (_, p) => ({ topic: wide, partition: p, offset: 0 }))).slice(0, 10_000))}`,
        {},
      ],
      [
        `/?assign=${encodeURIComponent(JSON.stringify([...Array.from({ length: 3 }, (_, p) => ({ topic: wide, partition: p })), open]))}`,
        {},
      ],
    ];
    for (const [path, headers] of tooMany) {
      const r = await getJson(`${server.url}${path}`, headers);
      assert.equal(r.status, 400, `${path.slice(0, 80)} ${JSON.stringify(headers).slice(0, 80)}: ${r.text}`);
      assert.ok(['TOO_MANY_PARTITIONS', 'INVALID_LAST_EVENT_ID'].includes((r.body as { code: string }).code), r.text);
    }
    // Exactly at the limit: a stream whose id carries the four partitions.
    const ok = await openStream(
      `${server.url}/?assign=${encodeURIComponent(JSON.stringify([...Array.from({ length: 2 }, (_, p) => ({ topic: wide, partition: p, offset: 0 })), open]))}`,
    );
    assert.equal(ok.status, 200);
    await produce(wide, [{ value: '{"n":1}', partition: 1 }]);
    await ok.until(() => ok.messages().length === 1, 10_000, 'a message');
    assert.equal((JSON.parse(ok.messages()[0]?.id ?? '[]') as unknown[]).length, 4);
    ok.close();
  });
});
