// Variants of the bridge's configuration for tuning experiments: run as
// contenders named `bridge@<variant>` (e.g. --contenders=bridge,bridge@qmin).
// Everything here is passed through kafkaSse's public options or the HTTP
// server (or the server's node flags), never by changing lib/; each variant stands for a change to lib/
// that the results can then argue for.
export const VARIANTS = {
  qmin: {
    description: "kafkaConfig 'queued.min.messages': 100000 (librdkafka's default) instead of 1000",
    kafkaConfig: { 'queued.min.messages': 100000 },
  },
  backoff: {
    description: "kafkaConfig 'fetch.queue.backoff.ms': 10 instead of librdkafka's 1000",
    kafkaConfig: { 'fetch.queue.backoff.ms': 10 },
  },
  hwm: {
    description:
      'HTTP socket highWaterMark 1 MiB: res.write() returns false (and the bridge pauses Kafka) only past 1 MiB buffered',
    httpHighWaterMark: 1024 * 1024,
  },
  connect: {
    description:
      "kafkaConfig 'reconnect.backoff.ms': 10: librdkafka waits reconnect.backoff.ms/2 (50 ms by default) before connecting to the broker the bootstrap metadata named",
    kafkaConfig: { 'reconnect.backoff.ms': 10 },
  },
  tuned: {
    description: 'qmin + backoff + hwm + connect: the changes bench/findings.md recommends, applied through options',
    kafkaConfig: { 'queued.min.messages': 100000, 'fetch.queue.backoff.ms': 10, 'reconnect.backoff.ms': 10 },
    httpHighWaterMark: 1024 * 1024,
  },
  lean: {
    description: 'backoff + hwm + connect, keeping queued.min.messages at 1000 (a small prefetch)',
    kafkaConfig: { 'fetch.queue.backoff.ms': 10, 'reconnect.backoff.ms': 10 },
    httpHighWaterMark: 1024 * 1024,
  },
  mid: {
    description: "'queued.min.messages': 10000 + backoff + hwm + connect",
    kafkaConfig: { 'queued.min.messages': 10000, 'fetch.queue.backoff.ms': 10, 'reconnect.backoff.ms': 10 },
    httpHighWaterMark: 1024 * 1024,
  },
  'tuned-splice': {
    description:
      'tuned + a deserializer that validates with JSON.parse but sends the original JSON text with _kafka spliced in (no JSON.stringify)',
    kafkaConfig: { 'queued.min.messages': 100000, 'fetch.queue.backoff.ms': 10, 'reconnect.backoff.ms': 10 },
    httpHighWaterMark: 1024 * 1024,
    deserializer: 'splice',
  },
  private: {
    description:
      "sharedTail: null: every stream owns a consumer (KafkaSSE's model, and the default before the shared tail)",
    sharedTail: 'off',
  },
  'tuned-raw': {
    description:
      'tuned + a deserializer that passes the value through as text (no JSON.parse, no _kafka): the upper bound of what the per-message JSON work costs',
    kafkaConfig: { 'queued.min.messages': 100000, 'fetch.queue.backoff.ms': 10, 'reconnect.backoff.ms': 10 },
    httpHighWaterMark: 1024 * 1024,
    deserializer: 'raw',
  },
  semi64: {
    description:
      "the server's node with --max-semi-space-size=64 (MiB; V8's default here is 16): fewer scavenges, for what the young generation's pauses add to live latency",
    nodeArgs: ['--max-semi-space-size=64'],
  },
};

/** Splits `bridge@tuned` into the base contender and its variant (or undefined). */
export function parseContender(name) {
  const [base, variant] = name.split('@');
  if (variant !== undefined && !VARIANTS[variant]) {
    throw new Error(`unknown variant ${variant}; known: ${Object.keys(VARIANTS).join(', ')}`);
  }
  return { base, variant: variant === undefined ? undefined : { name: variant, ...VARIANTS[variant] } };
}
