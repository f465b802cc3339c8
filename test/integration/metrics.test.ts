// Prometheus metrics of real streams: what a scrape shows while a stream is
// open, after it closed, and after refused requests.
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerMetrics, StreamRegistry } from '../../index.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { scrape } from '../helpers/prom.ts';
import { getJson, openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

describe('metrics: real streams', function () {
  this.timeout(30000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('shows open streams, messages and bytes by topic, lag, setup time, closes and errors', async () => {
    const a = uniqueTopic('metrics-a');
    const b = uniqueTopic('metrics-b');
    await Promise.all([createTopic(a, 1), createTopic(b, 2)]);
    const registry = new StreamRegistry();
    const prom = new Registry();
    const metrics = registerMetrics(registry, { promRegistry: prom });
    bridge = await startBridge((req) => ({
      assignments: req.url === '/missing' ? ['no-such-topic-for-metrics'] : [a, b],
      options: baseOptions({ registry, queryFilters: true }),
    }));
    const client = await openStream(`${bridge.url}/`);
    await client.until(() => client.raw().startsWith(':ok'), 10000, ':ok');
    await produce(
      a,
      [1, 2, 3].map((n) => ({ value: JSON.stringify({ n }) })),
    );
    await produce(
      b,
      [4, 5].map((n, i) => ({ value: JSON.stringify({ n }), partition: i })),
    );
    await client.until(() => client.messages().length === 5, 10000, 'five messages');

    await waitFor(
      async () => (await scrape(prom)).get(`kafka_sse_messages_sent_total{topic="${b}"}`) === 2,
      5000,
      'the counters',
    );
    let m = await scrape(prom);
    assert.equal(m.get('kafka_sse_open_streams'), 1);
    assert.equal(m.get('kafka_sse_streams_opened_total'), 1);
    assert.equal(m.get(`kafka_sse_messages_sent_total{topic="${a}"}`), 3);
    assert.equal(m.get('kafka_sse_setup_seconds_count'), 1);
    assert.ok((m.get('kafka_sse_setup_seconds_sum') ?? 0) > 0);
    await waitFor(
      async () => (await scrape(prom)).get(`kafka_sse_lag_messages{topic="${a}",partition="0"}`) === 0,
      5000,
      'the lag of a caught-up stream',
    );

    client.close();
    await waitFor(() => registry.size === 0, 5000, 'the stream closed');
    const missing = await getJson(`${bridge.url}/missing`);
    assert.equal(missing.status, 404);
    const badFilter = await getJson(`${bridge.url}/?filter[x]=${encodeURIComponent('/(a)\\1/')}`);
    assert.equal(badFilter.status, 400);

    m = await scrape(prom);
    assert.equal(m.get('kafka_sse_open_streams'), 0);
    assert.equal(m.get('kafka_sse_streams_closed_total{reason="client-closed"}'), 1);
    assert.equal(m.get('kafka_sse_stream_duration_seconds_count'), 1);
    assert.equal(m.get('kafka_sse_errors_total{code="TOPIC_NOT_AVAILABLE"}'), 1);
    assert.equal(m.get('kafka_sse_errors_total{code="INVALID_FILTER"}'), 1);
    assert.equal(m.has(`kafka_sse_lag_messages{topic="${a}",partition="0"}`), false, 'no series for closed streams');
    const bytes =
      (m.get(`kafka_sse_bytes_sent_total{topic="${a}"}`) ?? 0) +
      (m.get(`kafka_sse_bytes_sent_total{topic="${b}"}`) ?? 0);
    assert.equal(bytes, Buffer.byteLength(client.raw()), 'every byte the client received, counted once');
    metrics.close();
  });
});
