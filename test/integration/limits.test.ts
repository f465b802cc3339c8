// StreamLimiter in front of real kafkaSse() streams, under many simultaneous
// requests: exactly the allowed number is admitted, the rest get 429.
import assert from 'node:assert/strict';
import { kafkaSse, openConsumerCount, StreamLimiter } from '../../index.ts';
import { baseOptions } from '../helpers/bridge-server.ts';
import { listen, type TestServer } from '../helpers/http.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

describe('limits: StreamLimiter in front of kafkaSse', function () {
  this.timeout(30000);
  let server: TestServer | undefined;
  let topic: string;
  const clients: StreamClient[] = [];

  before(async () => {
    topic = uniqueTopic('limits');
    await createTopic(topic, 1);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    server = undefined;
    await waitFor(() => openConsumerCount() === 0, 5000, 'every consumer released');
  });

  async function serve(limiter: StreamLimiter): Promise<string> {
    const handler = limiter.wrap((req, res) => kafkaSse(req, res, topic, baseOptions({ heartbeatMs: 1000 })));
    server = await listen((req, res) => void handler(req, res));
    return server.url;
  }

  async function burst(url: string, count: number, headers: (i: number) => Record<string, string> = () => ({})) {
    const opened = await Promise.all(Array.from({ length: count }, (_, i) => openStream(`${url}/`, headers(i))));
    clients.push(...opened);
    return opened;
  }

  it('admits exactly maxStreamsPerKey of 20 simultaneous requests from one address', async () => {
    const limiter = new StreamLimiter({ maxStreamsPerKey: 3, retryAfterSeconds: 7 });
    const url = await serve(limiter);
    const got = await burst(url, 20);
    const admitted = got.filter((c) => c.status === 200);
    const refused = got.filter((c) => c.status === 429);
    assert.equal(admitted.length, 3);
    assert.equal(refused.length, 17);
    for (const c of refused) {
      await c.ended;
      assert.equal(c.headers['retry-after'], '7');
      assert.match(String(c.headers['content-type']), /^application\/json/);
      const body = JSON.parse(c.raw());
      assert.deepEqual(body, {
        name: 'TooManyStreamsError',
        code: 'TOO_MANY_STREAMS',
        message: 'This client already has 3 open streams; at most 3',
        status: 429,
        statusCode: 429,
      });
    }
    assert.equal(limiter.open, 3);
    // The admitted streams are real: they deliver.
    await Promise.all(admitted.map((c) => c.until(() => c.raw().startsWith(':ok'), 10000, ':ok')));
    await produce(topic, [{ value: JSON.stringify({ hello: 1 }) }]);
    await Promise.all(admitted.map((c) => c.until(() => c.messages().length === 1, 10000, 'the message')));
    // Closing one frees exactly one slot.
    admitted[0]?.close();
    await waitFor(() => limiter.open === 2, 5000, 'the slot released');
    const [again, over] = await burst(url, 2);
    assert.deepEqual([again?.status, over?.status].sort(), [200, 429]);
  });

  it('admits exactly maxStreams in total across clients, and at most maxStreamsPerKey each', async () => {
    const limiter = new StreamLimiter({
      maxStreams: 5,
      maxStreamsPerKey: 2,
      key: (req) => req.headers['x-client'] as string | undefined,
    });
    const url = await serve(limiter);
    const got = await burst(url, 24, (i) => ({ 'X-Client': `c${i % 6}` }));
    const admitted = got.map((c, i) => [c.status, `c${i % 6}`] as const).filter(([status]) => status === 200);
    assert.equal(admitted.length, 5);
    assert.equal(got.filter((c) => c.status === 429).length, 19);
    const perClient = new Map<string, number>();
    for (const [, key] of admitted) perClient.set(key, (perClient.get(key) ?? 0) + 1);
    assert.ok(
      [...perClient.values()].every((n) => n <= 2),
      JSON.stringify([...perClient]),
    );
  });

  it('rate-limits bursts of new streams per address: exactly the burst is admitted', async () => {
    const limiter = new StreamLimiter({ ratePerSecond: 0.2, burst: 4 });
    const url = await serve(limiter);
    const got = await burst(url, 12);
    const refused = got.filter((c) => c.status === 429);
    assert.equal(got.filter((c) => c.status === 200).length, 4);
    assert.equal(refused.length, 8);
    await refused[0]?.ended;
    assert.equal(JSON.parse(refused[0]?.raw() ?? '{}').code, 'RATE_LIMITED');
    assert.equal(refused[0]?.headers['retry-after'], '5');
  });
});
