// Topic admin and watermark queries for the runner, with node-rdkafka directly.
import Kafka from 'node-rdkafka';
import { BROKERS } from './common.mjs';

let admin;
let reader;

function adminClient() {
  admin ??= Kafka.AdminClient.create({ 'metadata.broker.list': BROKERS, 'client.id': 'kafka-sse-bridge-bench-admin' });
  return admin;
}

/** Creates a topic (replication 1) and waits until its metadata shows every partition. */
export async function createTopic(topic, partitions) {
  await new Promise((resolve, reject) =>
    adminClient().createTopic({ topic, num_partitions: partitions, replication_factor: 1 }, 15_000, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  const c = await watermarkReader();
  for (let i = 0; i < 100; i++) {
    const found = await new Promise((resolve) =>
      c.getMetadata({ topic, timeout: 5000 }, (err, md) => {
        const t = md?.topics?.find((x) => x.name === topic);
        resolve(!err && t && t.partitions.length === partitions);
      }),
    );
    if (found) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`topic ${topic} did not appear`);
}

export function deleteTopic(topic) {
  return new Promise((resolve) => adminClient().deleteTopic(topic, 15_000, () => resolve()));
}

/** Names of the topics on the broker. */
export async function listTopics() {
  const c = await watermarkReader();
  return new Promise((resolve, reject) =>
    c.getMetadata({ timeout: 10_000 }, (err, md) => (err ? reject(err) : resolve(md.topics.map((t) => t.name)))),
  );
}

async function watermarkReader() {
  if (!reader) {
    const c = new Kafka.KafkaConsumer(
      { 'metadata.broker.list': BROKERS, 'group.id': 'kafka-sse-bridge-bench-admin', 'enable.auto.commit': false },
      {},
    );
    reader = new Promise((resolve, reject) =>
      c.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve(c))),
    );
  }
  return reader;
}

/** High watermark (next offset) of a partition. */
export async function highWatermark(topic, partition) {
  const c = await watermarkReader();
  return new Promise((resolve, reject) =>
    c.queryWatermarkOffsets(topic, partition, 10_000, (err, o) => (err ? reject(err) : resolve(o.highOffset))),
  );
}

export async function closeAdmin() {
  admin?.disconnect();
  admin = undefined;
  if (reader) {
    const c = await reader;
    await new Promise((resolve) => c.disconnect(() => resolve()));
    reader = undefined;
  }
}
