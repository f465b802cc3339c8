// registerMetrics: the Prometheus text a scrape returns for registry events
// and open streams (fake stream handles, no broker).
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ConfigurationError } from '../../lib/errors.ts';
import { OTHER_TOPIC, registerMetrics } from '../../lib/metrics.ts';
import { type PartitionProgress, type StreamHandle, StreamRegistry, type StreamSnapshot } from '../../lib/registry.ts';
import { scrape } from '../helpers/prom.ts';

function handle(id: string, partitions: PartitionProgress[], extra: Partial<StreamSnapshot> = {}): StreamHandle {
  const snapshot: StreamSnapshot = {
    id,
    client: '127.0.0.1',
    topics: [...new Set(partitions.map((p) => p.topic))],
    mode: 'sse',
    startedAt: Date.now() - 2000,
    setupMs: 30,
    messagesSent: 0,
    bytesSent: 0,
    messagesSkipped: 0,
    partitions,
    ...extra,
  };
  return { id, snapshot: () => snapshot, disconnect: () => {} };
}

describe('metrics: registerMetrics', () => {
  let prom: Registry;
  let registry: StreamRegistry;

  beforeEach(() => {
    prom = new Registry();
    registry = new StreamRegistry();
  });

  it('counts open streams, opens and closes by reason, and setup and duration times', async () => {
    registerMetrics(registry, { promRegistry: prom });
    const a = handle('a', [{ topic: 't', partition: 0, nextOffset: 1, lag: 0 }]);
    const b = handle('b', [{ topic: 't', partition: 0, nextOffset: 1, lag: 0 }], { setupMs: 700 });
    registry.register(a);
    registry.register(b);
    let m = await scrape(prom);
    assert.equal(m.get('kafka_sse_open_streams'), 2);
    assert.equal(m.get('kafka_sse_streams_opened_total'), 2);
    assert.equal(m.get('kafka_sse_setup_seconds_count'), 2);
    assert.equal(m.get('kafka_sse_setup_seconds_bucket{le="0.05"}'), 1);
    assert.equal(m.get('kafka_sse_setup_seconds_bucket{le="1"}'), 2);
    registry.unregister(a, 'client-closed');
    registry.unregister(b, 'max-duration');
    m = await scrape(prom);
    assert.equal(m.get('kafka_sse_open_streams'), 0);
    assert.equal(m.get('kafka_sse_streams_closed_total{reason="client-closed"}'), 1);
    assert.equal(m.get('kafka_sse_streams_closed_total{reason="max-duration"}'), 1);
    assert.equal(m.get('kafka_sse_stream_duration_seconds_count'), 2);
    assert.equal(m.get('kafka_sse_stream_duration_seconds_bucket{le="1"}'), 0);
    assert.equal(m.get('kafka_sse_stream_duration_seconds_bucket{le="10"}'), 2);
  });

  it('counts messages and bytes by topic, splitting a multi-topic batch exactly', async () => {
    registerMetrics(registry, { promRegistry: prom });
    registry.emit('sent', { id: 'a', topics: ['one'] }, 3, 300, undefined);
    registry.emit('sent', { id: 'a', topics: ['one'] }, 0, 5, undefined);
    registry.emit(
      'sent',
      { id: 'b', topics: ['x', 'y', 'z'] },
      3,
      100,
      new Map([
        ['x', 1],
        ['y', 2],
      ]),
    );
    registry.emit('sent', { id: 'b', topics: ['x', 'y', 'z'] }, 0, 7, new Map());
    const m = await scrape(prom);
    assert.equal(m.get('kafka_sse_messages_sent_total{topic="one"}'), 3);
    assert.equal(m.get('kafka_sse_bytes_sent_total{topic="one"}'), 305);
    assert.equal(m.get('kafka_sse_messages_sent_total{topic="x"}'), 1);
    assert.equal(m.get('kafka_sse_messages_sent_total{topic="y"}'), 2);
    assert.equal(m.get('kafka_sse_bytes_sent_total{topic="x"}'), 33 + 7, 'a third, plus the heartbeat bytes');
    assert.equal(m.get('kafka_sse_bytes_sent_total{topic="y"}'), 67, 'the remainder');
    assert.equal(m.has('kafka_sse_messages_sent_total{topic="z"}'), false);
  });

  it('bounds the topic label: topics past maxTopics are counted as __other__', async () => {
    registerMetrics(registry, { promRegistry: prom, maxTopics: 2 });
    for (const t of ['a', 'b', 'c', 'd', 'a']) registry.emit('sent', { id: 's', topics: [t] }, 1, 10, undefined);
    const m = await scrape(prom);
    assert.equal(m.get('kafka_sse_messages_sent_total{topic="a"}'), 2);
    assert.equal(m.get('kafka_sse_messages_sent_total{topic="b"}'), 1);
    assert.equal(m.get(`kafka_sse_messages_sent_total{topic="${OTHER_TOPIC}"}`), 2);
    assert.equal([...m.keys()].filter((k) => k.startsWith('kafka_sse_messages_sent_total')).length, 3);
  });

  it('counts errors by code', async () => {
    registerMetrics(registry, { promRegistry: prom });
    registry.reportError('TOPIC_NOT_AVAILABLE', 404);
    registry.reportError('TOPIC_NOT_AVAILABLE', 404);
    registry.reportError('INVALID_FILTER', 400);
    const m = await scrape(prom);
    assert.equal(m.get('kafka_sse_errors_total{code="TOPIC_NOT_AVAILABLE"}'), 2);
    assert.equal(m.get('kafka_sse_errors_total{code="INVALID_FILTER"}'), 1);
  });

  it('computes lag per topic/partition at scrape time: the worst stream, the most lagging series, and the overall max', async () => {
    registerMetrics(registry, { promRegistry: prom, maxLagSeries: 2 });
    registry.register(
      handle('a', [
        { topic: 't', partition: 0, nextOffset: 5, lag: 10 },
        { topic: 't', partition: 1, nextOffset: 5, lag: 1 },
        { topic: 't', partition: 2, nextOffset: 5, lag: null },
      ]),
    );
    registry.register(
      handle('b', [
        { topic: 't', partition: 0, nextOffset: 9, lag: 6 },
        { topic: 'u', partition: 0, nextOffset: 9, lag: 50 },
      ]),
    );
    const m = await scrape(prom);
    assert.equal(m.get('kafka_sse_lag_messages{topic="u",partition="0"}'), 50);
    assert.equal(m.get('kafka_sse_lag_messages{topic="t",partition="0"}'), 10);
    assert.equal(m.has('kafka_sse_lag_messages{topic="t",partition="1"}'), false, 'capped at 2 series');
    assert.equal(m.get('kafka_sse_max_lag_messages'), 50);
  });

  it('drops series of streams that closed', async () => {
    registerMetrics(registry, { promRegistry: prom });
    const a = handle('a', [{ topic: 't', partition: 0, nextOffset: 5, lag: 10 }]);
    registry.register(a);
    assert.equal((await scrape(prom)).get('kafka_sse_lag_messages{topic="t",partition="0"}'), 10);
    registry.unregister(a, 'client-closed');
    const m = await scrape(prom);
    assert.equal(m.has('kafka_sse_lag_messages{topic="t",partition="0"}'), false);
    assert.equal(m.get('kafka_sse_max_lag_messages'), 0);
  });

  it('takes a prefix, and close() removes the metrics and stops counting', async () => {
    const metrics = registerMetrics(registry, { promRegistry: prom, prefix: 'sse_' });
    assert.equal(metrics.promRegistry, prom);
    registry.reportError('INTERNAL', 500);
    assert.equal((await scrape(prom)).get('sse_errors_total{code="INTERNAL"}'), 1);
    metrics.close();
    metrics.close();
    assert.equal(await prom.metrics(), '\n');
    assert.equal(registry.listenerCount('failure'), 0);
    // Registering again in the same registry works after close().
    registerMetrics(registry, { promRegistry: prom, prefix: 'sse_' });
  });

  it('validates its arguments', () => {
    assert.throws(() => registerMetrics({} as StreamRegistry), ConfigurationError);
    assert.throws(() => registerMetrics(registry, { promRegistry: prom, prefix: 'bad-prefix' }), /not a valid/);
    assert.throws(() => registerMetrics(registry, { promRegistry: prom, maxTopics: 0 }), /positive integer/);
  });
});
