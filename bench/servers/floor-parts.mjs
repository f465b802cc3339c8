// What the two replay floors (replay-floor.mjs, replay-floor-threads.mjs)
// share: their consumer, started the same way, and the bytes they send per
// message. NOT the library; see replay-floor.mjs for what is left out.
import Kafka from 'node-rdkafka';
import { writeInt } from '../../dist/lib/byte-batch.js';
import { KAFKA_DEFAULTS, KAFKA_FORCED } from '../../dist/lib/kafka-defaults.js';
import { BROKERS } from '../lib/common.mjs';

const PARTITION = Buffer.from(',"_kafka":{"partition":');
const OFFSET = Buffer.from(',"offset":');
const DATA = Buffer.from('data: ');

/**
 * A node-rdkafka consumer with the library's librdkafka settings and consume
 * waits, assigned and flowing into onMessage once connected; `ready()` false
 * at that point (the request is gone) disconnects it instead. onError: it
 * could not connect.
 */
export function floorConsumer(assignments, onMessage, onError, ready = () => true) {
  const consumer = new Kafka.KafkaConsumer(
    { ...KAFKA_DEFAULTS, ...KAFKA_FORCED, 'metadata.broker.list': BROKERS, event_cb: false },
    { 'auto.offset.reset': 'earliest' },
  );
  consumer.connect({ timeout: 10_000 }, (err) => {
    if (err) {
      onError(err);
      return;
    }
    if (!ready()) {
      consumer.disconnect();
      return;
    }
    consumer.assign(assignments);
    consumer.setDefaultConsumeTimeout(50);
    consumer.setDefaultConsumeLoopTimeoutDelay(0);
    consumer.on('data', onMessage);
    consumer.consume();
  });
  return consumer;
}

/** The most bytes frameInto() writes for a value of this many bytes. */
export const frameRoom = (valueLength) => valueLength + 80;

/**
 * Writes message m as sent by the floors at slab[end] (room: frameRoom()):
 * its value up to the closing brace, `,"_kafka":{"partition":P,"offset":O}}`,
 * as a `data:` line and a blank line (SSE) or one line (NDJSON). Returns the
 * new end.
 */
export function frameInto(slab, end, m, sse) {
  const value = m.value;
  if (sse) {
    slab.set(DATA, end);
    end += DATA.length;
  }
  let close = value.length - 1;
  while (value[close] !== 125) close--;
  slab.set(value, end);
  end += close;
  slab.set(PARTITION, end);
  end = writeInt(slab, end + PARTITION.length, m.partition);
  slab.set(OFFSET, end);
  end = writeInt(slab, end + OFFSET.length, m.offset);
  slab[end++] = 125;
  slab[end++] = 125;
  slab[end++] = 10;
  if (sse) slab[end++] = 10;
  return end;
}
