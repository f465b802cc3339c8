// Subscription filters against the real broker: what a client receives, the
// ids it resumes from, and the 400 it gets for a filter the server refuses.
import assert from 'node:assert/strict';
import { compileFilter, openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream } from '../helpers/sse-client.ts';

interface Change {
  n: number;
  type: string;
  meta: { domain: string };
  rev?: number;
}

function change(n: number, type: string, domain: string, rev?: number): string {
  return JSON.stringify({ n, type, meta: { domain }, ...(rev === undefined ? {} : { rev }) });
}

describe('filters: against the broker', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('keeps only what the query filter asks for, and filtered-out messages still advance the id', async () => {
    const topic = uniqueTopic('qfilter');
    await createTopic(topic, 1);
    await produce(topic, [
      { value: change(0, 'edit', 'en.wikipedia.org') },
      { value: change(1, 'log', 'en.wikipedia.org') },
      { value: change(2, 'edit', 'de.wikipedia.org') },
      { value: change(3, 'new', 'en.wikipedia.org') },
      { value: change(4, 'categorize', 'en.wikipedia.org') },
      { value: 'not json' },
      { value: change(6, 'edit', 'en.wikipedia.org') },
      { value: change(7, 'edit', 'fr.wikipedia.org') },
    ]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ queryFilters: true }),
    }));
    const query = 'filter[meta.domain]=en.wikipedia.org&filter[type]=edit,new';
    const client = await openStream(`${bridge.url}/?${query}`);
    assert.equal(client.status, 200);
    await client.until(() => client.messages().length === 3, 10000, 'three matching messages');
    const got = client.messages().map((e) => JSON.parse(e.data) as Change);
    assert.deepEqual(
      got.map((m) => m.n),
      [0, 3, 6],
    );
    assert.deepEqual(
      client.messages().map((e) => JSON.parse(e.id ?? '[]')[0].offset),
      [1, 4, 7],
      'each id is the position after the message, skipped ones included',
    );
    client.close();

    // Resume from the last id with the same filter: nothing old comes back, new matches do.
    await produce(topic, [
      { value: change(8, 'edit', 'fr.wikipedia.org') },
      { value: change(9, 'new', 'en.wikipedia.org') },
    ]);
    const lastId = client.messages().at(-1)?.id ?? '';
    const resumed = await openStream(`${bridge.url}/?${query}`, { 'Last-Event-ID': lastId });
    await resumed.until(() => resumed.messages().length === 1, 10000, 'the one new match');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      resumed.messages().map((e) => (JSON.parse(e.data) as Change).n),
      [9],
    );
    assert.equal(JSON.parse(resumed.messages()[0]?.id ?? '[]')[0].offset, 10);
    resumed.close();
  });

  it('filters on the Kafka key, headers, ranges, globs and regexes, in NDJSON too', async () => {
    const topic = uniqueTopic('kfilter');
    await createTopic(topic, 1);
    await produce(topic, [
      { value: change(0, 'edit', 'en.wikipedia.org', 5), key: 'user-1', headers: [{ source: 'api' }] },
      { value: change(1, 'edit', 'en.wikipedia.org', 50), key: 'user-2', headers: [{ source: 'api' }] },
      { value: change(2, 'edit', 'commons.wikimedia.org', 15), key: 'user-3', headers: [{ source: 'web' }] },
      { value: change(3, 'edit', 'en.wikipedia.org', 12), key: 'bot-1', headers: [{ source: 'api' }] },
      { value: change(4, 'edit', 'meta.wikimedia.org', 11), key: 'user-4', headers: [{ source: Buffer.from('api') }] },
      { value: change(5, 'edit', 'en.wikipedia.org', 20), key: 'user-5' },
    ]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ queryFilters: true }),
    }));
    const filters = [
      'filter[$key]=user-*',
      'filter[$header.source]=api',
      'filter[rev]=10..20',
      `filter[meta.domain]=${encodeURIComponent('/^en\\./,*.wikimedia.org')}`,
    ].join('&');
    const client = await openStream(`${bridge.url}/?${filters}`, { Accept: 'application/json' });
    assert.equal(client.status, 200);
    await client.until(() => client.lines.length === 1, 10000, 'one line');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      (client.lines as Change[]).map((m) => m.n),
      [4],
    );
    client.close();
  });

  it('ANDs the server filter, the filterer and the client filter: a client can only narrow', async () => {
    const topic = uniqueTopic('sfilter');
    await createTopic(topic, 1);
    await produce(
      topic,
      Array.from({ length: 12 }, (_, n) => ({
        value: change(n, n % 2 === 0 ? 'edit' : 'new', n % 3 === 0 ? 'en.wikipedia.org' : 'de.wikipedia.org'),
      })),
    );
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({
        queryFilters: true,
        filter: compileFilter({ type: 'edit' }),
        filterer: (m) => (m.message as Change).n < 10,
      }),
    }));
    const widen = await openStream(`${bridge.url}/?filter[type]=edit,new`);
    const narrow = await openStream(`${bridge.url}/?filter[meta.domain]=en.wikipedia.org`);
    await widen.until(() => widen.messages().length === 5, 10000, 'five edits below 10');
    await narrow.until(() => narrow.messages().length === 2, 10000, 'two English edits below 10');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      widen.messages().map((e) => (JSON.parse(e.data) as Change).n),
      [0, 2, 4, 6, 8],
    );
    assert.deepEqual(
      narrow.messages().map((e) => (JSON.parse(e.data) as Change).n),
      [0, 6],
    );
    widen.close();
    narrow.close();
  });

  it('ignores filter parameters unless queryFilters is on', async () => {
    const topic = uniqueTopic('nofilter');
    await createTopic(topic, 1);
    await produce(topic, [{ value: change(0, 'edit', 'x') }, { value: change(1, 'new', 'x') }]);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions(),
    }));
    const client = await openStream(`${bridge.url}/?filter[type]=new`);
    await client.until(() => client.messages().length === 2, 10000, 'both messages');
    client.close();
  });

  it('answers 400 INVALID_FILTER before creating any consumer (even for an unknown topic)', async () => {
    let consumersDuringRefusal = -1;
    bridge = await startBridge(() => ({
      assignments: ['no-such-topic-for-filters'],
      options: baseOptions({ queryFilters: true }),
    }));
    const cases: [string, RegExp][] = [
      [`filter[title]=${encodeURIComponent('/(a)\\1/')}`, /backreference/],
      [`filter[title]=${encodeURIComponent('/^(a|aa){0000000000000000000001,}$/')}`, /leading zeros/],
      [`filter[title]=/${'a'.repeat(300)}/`, /longer than 256 characters/],
      ['filter[type]=edit,,new', /empty value/],
      ['filter=edit', /not a filter parameter/],
      [Array.from({ length: 17 }, (_, i) => `filter[f${i}]=x`).join('&'), /at most 16 filter fields/],
      [`filter[${'a.'.repeat(20)}a]=x`, /deeper than 16 segments/],
    ];
    for (const [query, message] of cases) {
      const res = await getJson(`${bridge.url}/?${query}`);
      consumersDuringRefusal = Math.max(consumersDuringRefusal, openConsumerCount());
      assert.equal(res.status, 400, query);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const body = res.body as { name: string; code: string; message: string; status: number };
      assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'name', 'status', 'statusCode']);
      assert.equal(body.code, 'INVALID_FILTER');
      assert.equal(body.name, 'InvalidFilterError');
      assert.equal(body.status, 400);
      assert.match(body.message, message);
    }
    assert.equal(consumersDuringRefusal, 0, 'no consumer was ever created');
    await bridge.settled();
  });

  it('answers 400 for an invalid server-side filter spec, and 500 for a filter option of the wrong type', async () => {
    bridge = await startBridge((req) => ({
      assignments: ['no-such-topic-for-filters'],
      options: baseOptions(
        req.url === '/spec'
          ? { filter: { title: { regex: '(?<=x)y' } } }
          : { filter: 'type=edit' as unknown as Record<string, string> },
      ),
    }));
    const bad = await getJson(`${bridge.url}/spec`);
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: string }).code, 'INVALID_FILTER');
    const wrong = await getJson(`${bridge.url}/type`);
    assert.equal(wrong.status, 500);
    assert.equal((wrong.body as { code: string }).code, 'CONFIGURATION');
    // The option's name and value go to the server's log, not to the client.
    assert.equal((wrong.body as { message: string }).message, 'The server is misconfigured');
  });
});
