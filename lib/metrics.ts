// Prometheus metrics of a StreamRegistry, through prom-client: counters fed by
// the registry's events, gauges computed when Prometheus scrapes. Label values
// are bounded, so a server reading thousands of topics cannot blow up the
// scrape.
import { Counter, Gauge, register as globalRegistry, Histogram, type Registry } from 'prom-client';
import { hasBrand } from './brand.ts';
import { ConfigurationError } from './errors.ts';
import type { EndReason, StreamRegistry, StreamSnapshot } from './registry.ts';

/** Options of {@link registerMetrics}. */
export interface MetricsOptions {
  /** The prom-client registry to register in. Default: prom-client's global `register`. */
  promRegistry?: Registry;
  /** Prefix of every metric name. Default: `'kafka_sse_'`. */
  prefix?: string;
  /** Distinct `topic` label values kept on counters; later topics are counted as `__other__`. Default: `100`. */
  maxTopics?: number;
  /** Most `lag_messages` series per scrape (the most lagging partitions are kept). Default: `200`. */
  maxLagSeries?: number;
  /** Buckets of `setup_seconds`. Default: 5 ms to 10 s. */
  setupBuckets?: number[];
}

/** What {@link registerMetrics} returns. */
export interface BridgeMetrics {
  /** The registry the metrics live in: serve `await promRegistry.metrics()` with `promRegistry.contentType`. */
  readonly promRegistry: Registry;
  /** Stops listening to the stream registry and removes the metrics from `promRegistry`. */
  close(): void;
}

/** The label value of topics past `maxTopics` (a name no readable topic has: `__` is Kafka's internal prefix). */
export const OTHER_TOPIC = '__other__';

const DEFAULT_SETUP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION_BUCKETS = [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600];

/**
 * Exposes a {@link StreamRegistry} as Prometheus metrics (names with the default prefix):
 *
 * - `kafka_sse_open_streams` (gauge): streams open now
 * - `kafka_sse_streams_opened_total`, `kafka_sse_streams_closed_total{reason}` (counters)
 * - `kafka_sse_messages_sent_total{topic}`, `kafka_sse_bytes_sent_total{topic}` (counters;
 *   a multi-topic stream's bytes are split in proportion to its messages)
 * - `kafka_sse_errors_total{code}` (counter): requests answered with an error, by error code
 * - `kafka_sse_setup_seconds` (histogram): request to first byte
 * - `kafka_sse_stream_duration_seconds` (histogram): how long closed streams lasted
 * - `kafka_sse_lag_messages{topic,partition}` (gauge): the largest lag of any open stream
 *   on that partition, computed at scrape time; `kafka_sse_max_lag_messages` (gauge): the
 *   largest of all, whatever the series cap
 */
export function registerMetrics(registry: StreamRegistry, options: MetricsOptions = {}): BridgeMetrics {
  if (!hasBrand(registry, 'StreamRegistry')) throw new ConfigurationError('registerMetrics needs a StreamRegistry');
  const prefix = options.prefix ?? 'kafka_sse_';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new ConfigurationError(`registerMetrics: prefix ${JSON.stringify(prefix)} is not a valid metric name prefix`);
  }
  const maxTopics = options.maxTopics ?? 100;
  const maxLagSeries = options.maxLagSeries ?? 200;
  for (const [name, v] of [
    ['maxTopics', maxTopics],
    ['maxLagSeries', maxLagSeries],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ConfigurationError(`registerMetrics: ${name} must be a positive integer, got ${v}`);
    }
  }
  const promRegistry = options.promRegistry ?? globalRegistry;
  const registers = [promRegistry];

  new Gauge({
    name: `${prefix}open_streams`,
    help: 'Streams open now',
    registers,
    collect() {
      this.set(registry.size);
    },
  });
  const opened = new Counter({ name: `${prefix}streams_opened_total`, help: 'Streams started', registers });
  const closed = new Counter({
    name: `${prefix}streams_closed_total`,
    help: 'Streams ended, by reason',
    labelNames: ['reason'],
    registers,
  });
  const messages = new Counter({
    name: `${prefix}messages_sent_total`,
    help: 'Messages written to clients, by topic',
    labelNames: ['topic'],
    registers,
  });
  const bytes = new Counter({
    name: `${prefix}bytes_sent_total`,
    help: 'Bytes written to clients (framing and heartbeats included), by topic',
    labelNames: ['topic'],
    registers,
  });
  const errors = new Counter({
    name: `${prefix}errors_total`,
    help: 'Requests answered with an error (before or during the stream), by error code',
    labelNames: ['code'],
    registers,
  });
  const setup = new Histogram({
    name: `${prefix}setup_seconds`,
    help: 'Time from the request to the first byte of the stream',
    buckets: options.setupBuckets ?? DEFAULT_SETUP_BUCKETS,
    registers,
  });
  const duration = new Histogram({
    name: `${prefix}stream_duration_seconds`,
    help: 'How long closed streams lasted',
    buckets: DURATION_BUCKETS,
    registers,
  });
  new Gauge({
    name: `${prefix}lag_messages`,
    help: `Largest lag of any open stream on a partition; at most ${maxLagSeries} series, the most lagging`,
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      const worst = new Map<string, { topic: string; partition: number; lag: number }>();
      let max = 0;
      for (const s of registry.list()) {
        for (const p of s.partitions) {
          if (p.lag === null) continue;
          if (p.lag > max) max = p.lag;
          const key = `${p.topic}\u0000${p.partition}`;
          const seen = worst.get(key);
          if (!seen) worst.set(key, { topic: p.topic, partition: p.partition, lag: p.lag });
          else if (p.lag > seen.lag) seen.lag = p.lag;
        }
      }
      maxLag.set(max);
      let series = [...worst.values()];
      if (series.length > maxLagSeries) series = series.sort((a, b) => b.lag - a.lag).slice(0, maxLagSeries);
      for (const s of series) this.set({ topic: s.topic, partition: String(s.partition) }, s.lag);
    },
  });

  // Registered after `lag`, whose collect() sets it, so a scrape never shows last scrape's value.
  const maxLag = new Gauge({
    name: `${prefix}max_lag_messages`,
    help: 'The largest lag of any open stream on any partition (messages behind the end)',
    registers,
  });
  const topicLabels = new Set<string>();
  const topicLabel = (topic: string): string => {
    if (topicLabels.has(topic)) return topic;
    if (topicLabels.size >= maxTopics) return OTHER_TOPIC;
    topicLabels.add(topic);
    return topic;
  };

  const onOpen = (s: StreamSnapshot) => {
    opened.inc();
    setup.observe(s.setupMs / 1000);
  };
  const onClose = (s: StreamSnapshot, reason: EndReason) => {
    closed.inc({ reason });
    duration.observe(Math.max(0, Date.now() - s.startedAt) / 1000);
  };
  const onFailure = (code: string) => {
    errors.inc({ code });
  };
  const onSent = (
    s: { id: string; topics: string[] },
    count: number,
    byteCount: number,
    byTopic: ReadonlyMap<string, number> | undefined,
  ) => {
    if (byTopic === undefined || s.topics.length <= 1) {
      const label = topicLabel(s.topics[0] ?? '');
      if (count > 0) messages.inc({ topic: label }, count);
      if (byteCount > 0) bytes.inc({ topic: label }, byteCount);
      return;
    }
    if (count === 0) {
      // Heartbeats and control events of a multi-topic stream: its first topic carries them.
      if (byteCount > 0) bytes.inc({ topic: topicLabel(s.topics[0] ?? '') }, byteCount);
      return;
    }
    let bytesLeft = byteCount;
    let messagesLeft = count;
    for (const [topic, n] of byTopic) {
      const label = topicLabel(topic);
      messages.inc({ topic: label }, n);
      messagesLeft -= n;
      // Proportional split; the last topic takes the rounding remainder, so the sum is exact.
      const share = messagesLeft === 0 ? bytesLeft : Math.round((byteCount * n) / count);
      if (share > 0) bytes.inc({ topic: label }, share);
      bytesLeft -= share;
    }
  };
  registry.on('open', onOpen);
  registry.on('close', onClose);
  registry.on('failure', onFailure);
  registry.on('sent', onSent);

  const names = [
    'open_streams',
    'streams_opened_total',
    'streams_closed_total',
    'messages_sent_total',
    'bytes_sent_total',
    'errors_total',
    'setup_seconds',
    'stream_duration_seconds',
    'lag_messages',
    'max_lag_messages',
  ].map((n) => `${prefix}${n}`);
  let closedDown = false;
  return {
    promRegistry,
    close() {
      if (closedDown) return;
      closedDown = true;
      registry.off('open', onOpen);
      registry.off('close', onClose);
      registry.off('failure', onFailure);
      registry.off('sent', onSent);
      for (const name of names) promRegistry.removeSingleMetric(name);
    },
  };
}
