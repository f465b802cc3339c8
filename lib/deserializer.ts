// The default deserializer: KafkaSSE's behaviour, plus the original JSON text
// kept aside so it can be sent as it came (see splicedJson in sse-format.ts).
import { RAW_JSON } from './sse-format.ts';
import type { DeserializedMessage, KafkaMessage } from './types.ts';

/**
 * The default deserializer (KafkaSSE's behaviour): JSON-parse the value and
 * attach `_kafka: {topic, partition, offset, timestamp, key}`. Throws on
 * invalid JSON (the message is then skipped).
 */
export function defaultDeserializer(kafkaMessage: KafkaMessage): DeserializedMessage {
  const out = kafkaMessage as DeserializedMessage;
  const value = kafkaMessage.value;
  const text = value === null || value === undefined ? undefined : value.toString('utf8');
  const parsed: unknown = text === undefined ? null : JSON.parse(text);
  const meta = {
    topic: kafkaMessage.topic,
    partition: kafkaMessage.partition,
    offset: kafkaMessage.offset,
    timestamp: kafkaMessage.timestamp,
    key: kafkaMessage.key === undefined || kafkaMessage.key === null ? null : kafkaMessage.key.toString(),
  };
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    // Kept, hidden from enumeration and comparisons, so the text can be sent as
    // it came (see splicedJson); not when the payload has a _kafka of its own,
    // which ours replaces.
    if (!Object.hasOwn(parsed, '_kafka')) {
      Object.defineProperty(parsed, RAW_JSON, { value: text, writable: true, configurable: true });
    }
    (parsed as Record<string, unknown>)._kafka = meta;
    out.message = parsed;
  } else {
    // A scalar, array or tombstone has no field to carry metadata: wrap it so
    // the client still learns where it came from.
    out.message = { value: parsed, _kafka: meta };
  }
  return out;
}
