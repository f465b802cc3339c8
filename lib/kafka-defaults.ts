// The librdkafka settings the library applies to every consumer it makes:
// tuned defaults a caller may override, and the few it forces.

/**
 * librdkafka settings applied unless the caller sets them. Each request owns a
 * consumer, so the defaults (64 MiB prefetch, 50 MB fetches) would let a few
 * hundred streams hold gigabytes; these keep one consumer to a few MiB while
 * still fetching enough per round trip for fast replays.
 */
export const KAFKA_DEFAULTS: Readonly<Record<string, string | number | boolean>> = Object.freeze({
  'client.id': 'kafka-sse-bridge',
  'group.id': 'kafka-sse-bridge',
  'queued.max.messages.kbytes': 4096,
  'fetch.max.bytes': 4 * 1024 * 1024,
  'fetch.wait.max.ms': 500,
  // librdkafka waits this long before fetching again once its queue holds
  // queued.max.messages.kbytes; at its default (1000 ms) a replay stalls for a
  // second at a time. Measured in bench/: replay and live latency both need it short.
  'fetch.queue.backoff.ms': 10,
  // Half of this is waited before connecting to the broker named by the
  // bootstrap metadata: at the default (100 ms) it is most of a stream's setup time.
  'reconnect.backoff.ms': 10,
  'socket.keepalive.enable': true,
  'auto.offset.reset': 'earliest',
  'enable.partition.eof': false,
  'log.connection.close': false,
  'topic.metadata.refresh.interval.ms': 60000,
  // A request to a broker that stopped answering (a frozen leader, a network
  // partition) waits this long; at librdkafka's 60 s a consumer sat 15.4 s
  // without messages during a leader election in the cluster suite, 12.7 s at 10 s.
  'socket.timeout.ms': 10000,
});

/** Settings forced on every consumer whatever kafkaConfig says: a bridge never commits. */
export const KAFKA_FORCED: Readonly<Record<string, string | number | boolean>> = Object.freeze({
  'enable.auto.commit': false,
  'enable.auto.offset.store': false,
});
