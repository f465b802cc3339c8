// examples/tenant-server.js: JWT-authorised streams. Each tenant reads only the
// topics its token names; bad tokens get a 401; a stream ends when its token expires.
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import pino from 'pino';
import { createTenantServer, mintTenantToken } from '../../examples/tenant-server.js';
import { openConsumerCount } from '../../index.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = new TextEncoder().encode('tenant-test-secret-of-enough-length-0123456789');

describe('tenant server (examples/tenant-server.js)', function () {
  this.timeout(30_000);
  let app: ReturnType<typeof createTenantServer> | undefined;
  let url = '';
  let topicA = '';
  let topicB = '';
  const clients: StreamClient[] = [];

  before(async () => {
    topicA = uniqueTopic('tenant-a');
    topicB = uniqueTopic('tenant-b');
    await Promise.all([createTopic(topicA, 1), createTopic(topicB, 1)]);
    await produce(topicA, [{ value: JSON.stringify({ tenant: 'a', n: 0 }) }]);
    await produce(topicB, [{ value: JSON.stringify({ tenant: 'b', n: 0 }) }]);
  });

  beforeEach(async () => {
    app = createTenantServer({ key: SECRET, brokers: brokers(), logger: pino({ level: 'silent' }) });
    url = await app.listen(0);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await app?.close();
    app = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  async function stream(path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const c = await openStream(`${url}${path}`, headers);
    clients.push(c);
    return c;
  }

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  it('streams each tenant its own topics (header or ?token=) and answers 404 for the other tenant’s', async () => {
    const tokenA = await mintTenantToken(SECRET, { subject: 'tenant-a', topics: [topicA] });
    const tokenB = await mintTenantToken(SECRET, { subject: 'tenant-b', topics: [topicB] });
    const a = await stream(
      `/v2/stream/${topicA}?lastEventId=${encodeURIComponent(JSON.stringify([{ topic: topicA, partition: 0, offset: 0 }]))}`,
      bearer(tokenA),
    );
    const b = await stream(
      `/v2/stream/${topicB}?token=${tokenB}&lastEventId=${encodeURIComponent(JSON.stringify([{ topic: topicB, partition: 0, offset: 0 }]))}`,
    );
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    await a.until(() => a.messages().length === 1, 10_000, 'tenant a message');
    await b.until(() => b.messages().length === 1, 10_000, 'tenant b message');
    assert.equal(JSON.parse(a.messages()[0]?.data ?? '{}').tenant, 'a');
    assert.equal(JSON.parse(b.messages()[0]?.data ?? '{}').tenant, 'b');

    for (const [path, headers] of [
      [`/v2/stream/${topicB}`, bearer(tokenA)],
      [`/v2/stream/${topicA},${topicB}`, bearer(tokenA)],
      [`/v2/stream/${topicA}?token=${tokenB}`, {}],
    ] as const) {
      const res = await getJson(`${url}${path}`, headers);
      assert.equal(res.status, 404, path);
      assert.equal((res.body as { code: string }).code, 'TOPIC_NOT_AVAILABLE');
    }
    // Nor can a Last-Event-ID smuggle another tenant's topic in.
    const smuggled = await getJson(`${url}/v2/stream/${topicA}`, {
      ...bearer(tokenA),
      'Last-Event-ID': JSON.stringify([{ topic: topicB, partition: 0, offset: 0 }]),
    });
    assert.equal(smuggled.status, 404);
  });

  it('answers 401 JSON for a missing, forged, expired or claim-less token', async () => {
    const forged = await mintTenantToken(new TextEncoder().encode('another-secret-another-secret-0123456'), {
      subject: 'tenant-a',
      topics: [topicA],
    });
    const expired = await new SignJWT({ topics: [topicA] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('tenant-a')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(SECRET);
    const noTopics = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('tenant-a')
      .setExpirationTime('1h')
      .sign(SECRET);
    const noExp = await new SignJWT({ topics: [topicA] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('tenant-a')
      .sign(SECRET);
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /Send a token/],
      [{ Authorization: 'Basic dXNlcjpwYXNz' }, /Send a token/],
      [bearer('not.a.jwt'), /not valid/],
      [bearer(forged), /not valid/],
      [bearer(expired), /expired/],
      [bearer(noTopics), /no topics claim/],
      [bearer(noExp), /not valid/],
    ];
    for (const [headers, message] of cases) {
      const res = await getJson(`${url}/v2/stream/${topicA}`, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
      const body = res.body as { code: string; message: string; status: number };
      assert.equal(body.code, 'UNAUTHORIZED');
      assert.equal(body.status, 401);
      assert.match(body.message, message);
    }
    assert.equal(openConsumerCount(), 0, 'no consumer for a refused token');
  });

  it('ends the stream when the token expires', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({ topics: [topicA] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('tenant-a')
      .setExpirationTime(exp)
      .sign(SECRET);
    const client = await stream(`/v2/stream/${topicA}`, bearer(token));
    assert.equal(client.status, 200);
    await client.ended;
    const endedAt = Date.now();
    assert.ok(endedAt >= exp * 1000 - 50 && endedAt < exp * 1000 + 1500, `ended ${endedAt - exp * 1000} ms after exp`);
    const again = await getJson(`${url}/v2/stream/${topicA}`, bearer(token));
    assert.equal(again.status, 401, 'the same token is refused now');
  });

  it('limits concurrent streams per tenant (the token subject), whatever the address', async () => {
    await app?.close();
    app = createTenantServer({
      key: SECRET,
      brokers: brokers(),
      logger: pino({ level: 'silent' }),
      maxStreamsPerTenant: 1,
    });
    url = await app.listen(0);
    const tokenA = await mintTenantToken(SECRET, { subject: 'tenant-a', topics: [topicA] });
    const tokenA2 = await mintTenantToken(SECRET, { subject: 'tenant-a', topics: [topicA] });
    const tokenB = await mintTenantToken(SECRET, { subject: 'tenant-b', topics: [topicB] });
    const first = await stream(`/v2/stream/${topicA}`, bearer(tokenA));
    assert.equal(first.status, 200);
    const second = await getJson(`${url}/v2/stream/${topicA}`, bearer(tokenA2));
    assert.equal(second.status, 429);
    assert.equal((second.body as { code: string }).code, 'TOO_MANY_STREAMS');
    const other = await stream(`/v2/stream/${topicB}`, bearer(tokenB));
    assert.equal(other.status, 200);
  });
});
