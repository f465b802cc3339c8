// The one Kafka consumer per topic of the prototypes that serve a topic from
// its end (socket-floor.mjs, fanout-prototype.mjs): assigned every partition
// at the end, flowing, each message handed to `onMessage`.
import Kafka from 'node-rdkafka';
import { BROKERS } from '../lib/common.mjs';

/** Resolves once `topic`'s partitions are assigned at their end and flowing to `onMessage`. */
export function consumeFromEnd(topic, groupId, extraConfig, onMessage) {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': BROKERS,
      'group.id': groupId,
      'enable.auto.commit': false,
      'queued.max.messages.kbytes': 4096,
      'fetch.queue.backoff.ms': 10,
      event_cb: false,
      ...extraConfig,
    },
    { 'auto.offset.reset': 'latest' },
  );
  return new Promise((resolve, reject) => {
    consumer.connect({ timeout: 10_000 }, (err) => {
      if (err) return reject(err);
      consumer.getMetadata({ topic, timeout: 10_000 }, (err2, md) => {
        if (err2) return reject(err2);
        const t = md.topics.find((x) => x.name === topic);
        consumer.assign(t.partitions.map((p) => ({ topic, partition: p.id, offset: Kafka.CODES.OFFSETS?.END ?? -1 })));
        consumer.setDefaultConsumeTimeout(100);
        consumer.setDefaultConsumeLoopTimeoutDelay(0);
        consumer.consume((e, m) => {
          if (!e && m) onMessage(m);
        });
        resolve();
      });
    });
  });
}
