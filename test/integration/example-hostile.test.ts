// Issue 14, rows 2, 6 and 9, on the examples against the real broker: a
// long-lived token never makes the tenant server answer 500 or show an
// option; the example server counts an IPv6 client by its /64 (IPv4-mapped
// addresses as IPv4) and bounds the regexes one client's streams hold.
import assert from 'node:assert/strict';
import pino from 'pino';
import { createServer, type ExampleServer } from '../../examples/server-app.js';
import { createTenantServer, mintTenantToken } from '../../examples/tenant-server.js';
import { openConsumerCount } from '../../index.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = new TextEncoder().encode('tenant-hostile-secret-of-enough-length-0123456789');
const DAY_S = 24 * 3600;

/** What no client-visible body may contain: the library's option names and their bounds. */
const INTERNAL = /maxDurationMs|options\.|CONFIGURATION|2147483647|24\.8 days/;

describe('examples under attack', function () {
  this.timeout(30_000);
  const clients: StreamClient[] = [];
  let tenant: ReturnType<typeof createTenantServer> | undefined;
  let app: ExampleServer | undefined;
  let topic = '';

  before(async () => {
    topic = uniqueTopic('example-hostile');
    await createTopic(topic, 1);
    await produce(topic, [{ value: JSON.stringify({ n: 0, title: 'aa7' }) }]);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await tenant?.close();
    await app?.close();
    tenant = undefined;
    app = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  async function stream(url: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const c = await openStream(url, headers);
    clients.push(c);
    return c;
  }

  const fromStart = () => encodeURIComponent(JSON.stringify([{ topic, partition: 0, offset: 0 }]));

  it('row 6: a token valid for 30 days or 100 years streams (clamped), never a 500 naming an option', async () => {
    tenant = createTenantServer({
      key: SECRET,
      brokers: brokers(),
      logger: pino({ level: 'silent' }),
      maxStreamMs: 400,
    });
    const url = await tenant.listen(0);
    for (const days of [24.9, 30, 36_500]) {
      const token = await mintTenantToken(SECRET, {
        subject: `long-${days}`,
        topics: [topic],
        expiresInSeconds: days * DAY_S,
      });
      const c = await stream(`${url}/v2/stream/${topic}?lastEventId=${fromStart()}`, {
        Authorization: `Bearer ${token}`,
      });
      assert.equal(c.status, 200, `${days} days: ${c.raw()}`);
      await c.until(() => c.messages().length === 1, 10_000, 'the message');
      // maxStreamMs ends it; the client comes back with its id and the same, still valid, token.
      await c.ended;
      assert.ok(!INTERNAL.test(c.raw()), c.raw());
      const again = await stream(`${url}/v2/stream/${topic}?lastEventId=${fromStart()}`, {
        Authorization: `Bearer ${token}`,
      });
      assert.equal(again.status, 200);
    }
    // The default clamp (one hour) also keeps every option in bounds.
    await tenant.close();
    tenant = createTenantServer({ key: SECRET, brokers: brokers(), logger: pino({ level: 'silent' }) });
    const url2 = await tenant.listen(0);
    const token = await mintTenantToken(SECRET, {
      subject: 'century',
      topics: [topic],
      expiresInSeconds: 36_500 * DAY_S,
    });
    const res = await stream(`${url2}/v2/stream/${topic}`, { Authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, res.raw());
    const refused = await getJson(`${url2}/v2/stream/${topic}`, { Authorization: 'Bearer x' });
    assert.equal(refused.status, 401);
    assert.ok(!INTERNAL.test(refused.text), refused.text);
  });

  // Row 1: on the example server with default settings, one anonymous stream and
  // one 400-character message froze /health for 5.8 s.
  it('row 1: an accepted hostile regex and long messages leave /health answering at once', async () => {
    const hot = uniqueTopic('example-hostile-hot');
    await createTopic(hot, 1);
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }) });
    const url = await app.listen(0);
    const regexes = ['/^(a|aa)+$/', '/^\\d*\\d*\\d*\\d*\\d*x$/', '/(x+x+)+y/']
      .map((r) => `filter[title]=${encodeURIComponent(r)}`)
      .join('&');
    const c = await stream(`${url}/v2/stream/${hot}?${regexes}`);
    assert.equal(c.status, 200);
    const values = [`${'a'.repeat(399)}!`, '1'.repeat(400), 'x'.repeat(1000)];
    await produce(hot, [
      ...Array.from({ length: 60 }, (_, n) => ({ value: JSON.stringify({ n, title: values[n % 3] }) })),
      { value: JSON.stringify({ n: 60, title: 'aaaa' }) },
    ]);
    let slowest = 0;
    while (c.messages().length === 0) {
      const t0 = performance.now();
      const health = await getJson(`${url}/health`);
      slowest = Math.max(slowest, performance.now() - t0);
      assert.equal(health.status, 200);
      assert.ok(slowest < 1000, `/health took ${slowest.toFixed(0)} ms`);
    }
    assert.deepEqual(
      c.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [60],
    );
  });

  it('row 9: counts an IPv6 client by its /64 (configurable) and an IPv4-mapped address as IPv4', async () => {
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }), trustProxy: true, maxStreamsPerIp: 2 });
    const url = await app.listen(0);
    const from = (address: string) => stream(`${url}/v2/stream/${topic}`, { 'X-Forwarded-For': address });
    assert.equal((await from('2001:db8:1:2::1')).status, 200);
    assert.equal((await from('2001:db8:1:2:ffff::9')).status, 200);
    const third = await getJson(`${url}/v2/stream/${topic}`, { 'X-Forwarded-For': '2001:db8:1:2:dead:beef:1:2' });
    assert.equal(third.status, 429, 'a third address of the same /64');
    assert.equal((third.body as { code: string }).code, 'TOO_MANY_STREAMS');
    assert.equal((await from('2001:db8:1:3::1')).status, 200, 'another /64');
    assert.equal((await from('::ffff:192.0.2.7')).status, 200);
    assert.equal((await from('192.0.2.7')).status, 200);
    const mapped = await getJson(`${url}/v2/stream/${topic}`, { 'X-Forwarded-For': '::ffff:c000:207' });
    assert.equal(mapped.status, 429, '::ffff:192.0.2.7, 192.0.2.7 and ::ffff:c000:207 are one client');
    for (const c of clients.splice(0)) c.close();
    await app.close();

    app = createServer({
      brokers: brokers(),
      logger: pino({ level: 'silent' }),
      trustProxy: true,
      maxStreamsPerIp: 1,
      ipv6PrefixLength: 48,
    });
    const url48 = await app.listen(0);
    assert.equal((await stream(`${url48}/v2/stream/${topic}`, { 'X-Forwarded-For': '2001:db8:1:2::1' })).status, 200);
    const same48 = await getJson(`${url48}/v2/stream/${topic}`, { 'X-Forwarded-For': '2001:db8:1:ffff::1' });
    assert.equal(same48.status, 429, 'the same /48');
  });

  it('row 2: bounds the client regexes one address holds across its streams (429 past 32), 400 for a bad one', async () => {
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }), maxStreamsPerIp: 10 });
    const url = await app.listen(0);
    const eight = Array.from({ length: 8 }, (_, i) => `filter[title]=${encodeURIComponent(`/^(a|aa)+${i}$/`)}`).join(
      '&',
    );
    const path = `/v2/stream/${topic}?lastEventId=${fromStart()}&${eight}`;
    for (let i = 0; i < 4; i++) {
      const c = await stream(`${url}${path}`);
      assert.equal(c.status, 200);
      await c.until(() => c.messages().length === 1, 10_000, 'the matching message');
    }
    const fifth = await getJson(`${url}${path}`);
    assert.equal(fifth.status, 429);
    assert.equal((fifth.body as { code: string }).code, 'TOO_MANY_STREAMS');
    assert.match((fifth.body as { message: string }).message, /already hold 32 regular expressions/);
    const plain = await stream(`${url}/v2/stream/${topic}?filter[title]=aa7`);
    assert.equal(plain.status, 200, 'a filter without regexes is not counted');
    const bad = await getJson(`${url}/v2/stream/${topic}?filter[title]=${encodeURIComponent('/(a)\\1/')}`);
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: string }).code, 'INVALID_FILTER');
    clients[0]?.close();
    await waitFor(() => app?.openStreams() === 4, 5000, 'one stream closed');
    const again = await stream(`${url}${path}`);
    assert.equal(again.status, 200, 'a closed stream gave its regexes back');
  });
});
