// The example server's operations endpoints and filters: /metrics, the
// token-protected /admin/streams, query filters, the rate limit.
import assert from 'node:assert/strict';
import pino from 'pino';
import { createServer, type ExampleServer, type ServerConfig } from '../../examples/server-app.js';
import { openConsumerCount } from '../../index.ts';
import { request } from '../helpers/http.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'admin-secret-for-tests';

describe('example server: metrics, admin, filters, rate limit', function () {
  this.timeout(30_000);
  let app: ExampleServer | undefined;
  let url = '';
  const clients: StreamClient[] = [];

  async function start(config: ServerConfig = {}): Promise<string> {
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }), retryMs: 200, ...config });
    url = await app.listen(0);
    return url;
  }

  async function stream(path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const client = await openStream(`${url}${path}`, headers);
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await app?.close();
    app = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  it('serves Prometheus metrics of its streams at /metrics', async () => {
    const topic = uniqueTopic('ops-metrics');
    await createTopic(topic, 1);
    await start({ adminToken: null });
    const client = await stream(`/v2/stream/${topic}`);
    await client.until(() => client.raw().startsWith(':ok'), 10_000, ':ok');
    await produce(topic, [{ value: JSON.stringify({ n: 1 }) }]);
    await client.until(() => client.messages().length === 1, 10_000, 'one message');
    const res = await request(`${url}/metrics`, 'GET');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.text, /^kafka_sse_open_streams 1$/m);
    assert.match(res.text, new RegExp(`^kafka_sse_messages_sent_total\\{topic="${topic}"\\} 1$`, 'm'));
  });

  it('lists and disconnects streams with the admin token only (constant-time bearer check)', async () => {
    const topic = uniqueTopic('ops-admin');
    await createTopic(topic, 1);
    await start({ adminToken: TOKEN });
    const client = await stream(`/v2/stream/${topic}`, { 'X-Request-ID': 'watch-me' });
    await client.until(() => client.raw().startsWith(':ok'), 10_000, ':ok');

    for (const auth of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer ', TOKEN]) {
      const res = await request(`${url}/admin/streams`, 'GET', auth === undefined ? {} : { Authorization: auth });
      assert.equal(res.status, 401, String(auth));
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="admin"');
      assert.equal(JSON.parse(res.text).code, 'UNAUTHORIZED');
    }
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const listed = await getJson(`${url}/admin/streams`, auth);
    assert.equal(listed.status, 200);
    const streams = (listed.body as { streams: { id: string; topics: string[]; partitions: unknown[] }[] }).streams;
    assert.equal(streams.length, 1);
    assert.equal(streams[0]?.id, 'watch-me');
    assert.deepEqual(streams[0]?.topics, [topic]);
    assert.equal(streams[0]?.partitions.length, 1);

    const refused = await request(`${url}/admin/streams/watch-me`, 'DELETE');
    assert.equal(refused.status, 401);
    const missing = await request(`${url}/admin/streams/nope`, 'DELETE', auth);
    assert.equal(missing.status, 404);
    const deleted = await request(`${url}/admin/streams/watch-me`, 'DELETE', auth);
    assert.equal(deleted.status, 204);
    await client.ended;
    await waitFor(() => app?.openStreams() === 0, 10_000, 'the stream released');
  });

  it('has no admin endpoints without a token', async () => {
    await start({ adminToken: null });
    const res = await request(`${url}/admin/streams`, 'GET', { Authorization: 'Bearer anything' });
    assert.equal(res.status, 404);
  });

  it('applies client filters from the query', async () => {
    const topic = uniqueTopic('ops-filter');
    await createTopic(topic, 1);
    await produce(
      topic,
      ['edit', 'log', 'new', 'edit'].map((type, n) => ({ value: JSON.stringify({ n, type }) })),
    );
    await start({ adminToken: null });
    const client = await stream(`/v2/stream/${topic}?since=0&filter[type]=edit,new`);
    await client.until(() => client.messages().length === 3, 10_000, 'three messages');
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [0, 2, 3],
    );
    const bad = await getJson(`${url}/v2/stream/${topic}?filter[type]=${encodeURIComponent('/(a)\\1/')}`);
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: string }).code, 'INVALID_FILTER');
  });

  it('rate-limits new streams per address when ratePerSecond is set', async () => {
    const topic = uniqueTopic('ops-rate');
    await createTopic(topic, 1);
    await start({ adminToken: null, ratePerSecond: 0.1, rateBurst: 2, maxStreamsPerIp: 100 });
    const got = await Promise.all([1, 2, 3, 4].map(() => stream(`/v2/stream/${topic}`)));
    assert.deepEqual(got.map((c) => c.status).sort(), [200, 200, 429, 429]);
    const refused = got.find((c) => c.status === 429);
    await refused?.ended;
    assert.equal(refused?.headers['retry-after'], '10');
    assert.equal(JSON.parse(refused?.raw() ?? '{}').code, 'RATE_LIMITED');
  });
});
