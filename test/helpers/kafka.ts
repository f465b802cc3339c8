// Broker-side helpers for integration tests: topic admin, a shared producer,
// watermarks, record deletion and a plain reader, all with node-rdkafka
// directly so they do not depend on the code under test.
//
// Every test creates its own topics (uniqueTopic + createTopic). Topics created
// here are deleted, and the shared clients disconnected, by closeKafkaHelpers(),
// which the root after-all hook (test/helpers/hooks.ts) runs.
import { randomBytes } from 'node:crypto';
import type { IAdminClient, LibrdKafkaError, Message, Metadata, Producer } from 'node-rdkafka';
import Kafka from 'node-rdkafka';
import { deleteRecordsBefore as deleteRecordsWire } from '../../scripts/kafka-wire.mjs';
import { registerTeardown } from './hooks.ts';

/** How long helpers wait for the broker before failing a test, in ms. */
const TIMEOUT_MS = 15_000;
const CLIENT_ID = 'kafka-sse-bridge-tests';

/** A message to produce. `partition` absent: librdkafka's partitioner picks one (by key when there is one). */
export interface TestMessage {
  value: string | Buffer | null;
  key?: string | Buffer | null | undefined;
  partition?: number | undefined;
  /** Kafka headers in order; a name may repeat. */
  headers?: Record<string, string | Buffer>[] | undefined;
  /** Message timestamp (CreateTime) in ms since the epoch. Default: now. */
  timestamp?: number | undefined;
}

/** Where a produced message landed. */
export interface Delivered {
  topic: string;
  partition: number;
  offset: number;
}

/** Low (first retained) and high (next to be written) offsets of a partition. */
export interface Watermarks {
  low: number;
  high: number;
}

/** The bootstrap servers the tests use: KAFKA_BROKERS, else the local broker of scripts/kafka.mjs. */
export function brokers(): string {
  return process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
}

let topicCounter = 0;

/**
 * A topic name no other call (in this or any other run) returns:
 * `<prefix>-<time>-<counter>-<random>`. Characters Kafka rejects become `-`;
 * `.` and `_` too, since Kafka treats them as colliding in metric names.
 */
export function uniqueTopic(prefix = 'test'): string {
  const safe = prefix.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 100) || 'test';
  return `${safe}-${Date.now().toString(36)}-${++topicCounter}-${randomBytes(4).toString('hex')}`;
}

function kafkaError(what: string, err: LibrdKafkaError | Error): Error {
  return new Error(`${what}: ${err.message}`, { cause: err });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- shared clients, created on first use ----

let admin: IAdminClient | undefined;
let producer: Promise<Producer> | undefined;
const createdTopics = new Set<string>();

function adminClient(): IAdminClient {
  admin ??= Kafka.AdminClient.create({ 'metadata.broker.list': brokers(), 'client.id': `${CLIENT_ID}-admin` });
  return admin;
}

interface PendingDelivery {
  resolve(delivered: Delivered): void;
  reject(err: Error): void;
}

let pendingDeliveries = 0;
let pollTimer: NodeJS.Timeout | undefined;

/** Delivery reports arrive only when the producer is polled; poll only while some are due, so no timer outlives the tests. */
function expectDeliveries(p: Producer, count: number): void {
  pendingDeliveries += count;
  pollTimer ??= setInterval(() => p.poll(), 5);
}

function settledDelivery(): void {
  pendingDeliveries--;
  if (pendingDeliveries === 0 && pollTimer) {
    clearInterval(pollTimer);
    pollTimer = undefined;
  }
}

function sharedProducer(): Promise<Producer> {
  producer ??= new Promise<Producer>((resolve, reject) => {
    const p = new Kafka.Producer({
      'metadata.broker.list': brokers(),
      'client.id': `${CLIENT_ID}-producer`,
      dr_cb: true,
      // Tests produce a few messages and wait for them: send at once.
      'linger.ms': 0,
      // Keeps a batch in order across retries.
      'enable.idempotence': true,
    });
    p.on('delivery-report', (err, report) => {
      const pending = report.opaque as PendingDelivery;
      settledDelivery();
      if (err) pending.reject(kafkaError(`delivery to ${report.topic}/${report.partition} failed`, err));
      else pending.resolve({ topic: report.topic, partition: report.partition, offset: report.offset });
    });
    p.on('event.error', () => {});
    p.connect({ timeout: TIMEOUT_MS }, (err) => {
      if (err) {
        producer = undefined;
        reject(kafkaError(`producer could not connect to ${brokers()}`, err));
      } else resolve(p);
    });
  });
  return producer;
}

// ---- metadata ----

function topicMetadata(topic: string): Promise<Metadata['topics'][number] | undefined> {
  return sharedProducer().then(
    (p) =>
      new Promise((resolve, reject) => {
        p.getMetadata({ topic, timeout: TIMEOUT_MS }, (err, metadata) => {
          if (err) {
            if (err.code === Kafka.CODES.ERRORS.ERR_UNKNOWN_TOPIC_OR_PART) return resolve(undefined);
            return reject(kafkaError(`metadata of ${topic} unavailable`, err));
          }
          const found = metadata.topics.find((t) => t.name === topic);
          resolve(found && found.partitions.length > 0 ? found : undefined);
        });
      }),
  );
}

/** Number of partitions of `topic` as the broker reports it; 0 when the topic does not exist. */
export async function partitionCount(topic: string): Promise<number> {
  return (await topicMetadata(topic))?.partitions.length ?? 0;
}

// ---- topics ----

/** Errors of a partition that exists in metadata but is not served yet. */
const NOT_READY = new Set<number | undefined>([
  Kafka.CODES.ERRORS.ERR_NOT_LEADER_FOR_PARTITION,
  Kafka.CODES.ERRORS.ERR_LEADER_NOT_AVAILABLE,
  Kafka.CODES.ERRORS.ERR_UNKNOWN_TOPIC_OR_PART,
]);

/**
 * Creates `name` with `partitions` partitions (replication factor 1) and
 * resolves once metadata shows every partition with a leader, so a consumer or
 * producer started next does not race the controller.
 */
export async function createTopic(name: string, partitions = 1, config: Record<string, string> = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    adminClient().createTopic(
      { topic: name, num_partitions: partitions, replication_factor: 1, config },
      TIMEOUT_MS,
      (err) => (err ? reject(kafkaError(`could not create topic ${name}`, err)) : resolve()),
    );
  });
  createdTopics.add(name);
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const meta = await topicMetadata(name);
    if (meta && meta.partitions.length === partitions && meta.partitions.every((p) => p.leader >= 0)) break;
    if (Date.now() > deadline) throw new Error(`topic ${name} has no leader for all ${partitions} partitions yet`);
    await sleep(50);
  }
  // Metadata names a leader before that broker has the partition ready (KRaft
  // publishes the image first), and a ListOffsets then fails with "not leader".
  // Only a successful ListOffsets on every partition means a consumer can start.
  await Promise.all(
    Array.from({ length: partitions }, async (_, partition) => {
      for (;;) {
        try {
          await watermarks(name, partition);
          return;
        } catch (err) {
          const code = ((err as Error).cause as LibrdKafkaError | undefined)?.code;
          if (!NOT_READY.has(code) || Date.now() > deadline) throw err;
          await sleep(50);
        }
      }
    }),
  );
}

/** Grows `name` to `total` partitions and resolves once metadata shows them. */
export async function addPartitions(name: string, total: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    adminClient().createPartitions(name, total, TIMEOUT_MS, (err) =>
      err ? reject(kafkaError(`could not grow topic ${name}`, err)) : resolve(),
    );
  });
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await partitionCount(name)) < total) {
    if (Date.now() > deadline)
      throw new Error(`topic ${name} has not ${total} partitions ${TIMEOUT_MS} ms after growing`);
    await sleep(50);
  }
}

/** Deletes `name` (a missing topic is not an error) and resolves once metadata no longer shows it. */
export async function deleteTopic(name: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    adminClient().deleteTopic(name, TIMEOUT_MS, (err) => {
      if (err && err.code !== Kafka.CODES.ERRORS.ERR_UNKNOWN_TOPIC_OR_PART) {
        return reject(kafkaError(`could not delete topic ${name}`, err));
      }
      resolve();
    });
  });
  createdTopics.delete(name);
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await topicMetadata(name)) !== undefined) {
    if (Date.now() > deadline) throw new Error(`topic ${name} still listed ${TIMEOUT_MS} ms after its deletion`);
    await sleep(50);
  }
}

// ---- producing ----

/**
 * Produces `messages` in order and resolves once the broker acknowledged all
 * of them, with where each one landed (same order as `messages`).
 */
export async function produceReports(topic: string, messages: readonly TestMessage[]): Promise<Delivered[]> {
  const p = await sharedProducer();
  const deliveries: Promise<Delivered>[] = [];
  for (const message of messages) {
    const value = typeof message.value === 'string' ? Buffer.from(message.value) : message.value;
    deliveries.push(
      new Promise<Delivered>((resolve, reject) => {
        const opaque: PendingDelivery = { resolve, reject };
        sendOne(p, topic, message, value, opaque).catch(reject);
      }),
    );
  }
  return Promise.all(deliveries);
}

async function sendOne(
  p: Producer,
  topic: string,
  message: TestMessage,
  value: Buffer | null,
  opaque: PendingDelivery,
): Promise<void> {
  for (;;) {
    try {
      p.produce(
        topic,
        message.partition ?? null,
        value,
        message.key ?? null,
        message.timestamp ?? null,
        opaque,
        message.headers ?? [],
      );
      expectDeliveries(p, 1);
      return;
    } catch (err) {
      // A full local queue empties as deliveries are polled: wait and try again.
      if ((err as LibrdKafkaError).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) {
        throw kafkaError(`could not produce to ${topic}`, err as Error);
      }
      p.poll();
      await sleep(10);
    }
  }
}

/** Produces `messages` in order; resolves with their offsets once all are acknowledged. */
export async function produce(topic: string, messages: readonly TestMessage[]): Promise<number[]> {
  return (await produceReports(topic, messages)).map((d) => d.offset);
}

// ---- offsets and records ----

/** The partition's current low and high watermarks, asked of the broker. */
export async function watermarks(topic: string, partition: number): Promise<Watermarks> {
  const p = await sharedProducer();
  return new Promise((resolve, reject) => {
    p.queryWatermarkOffsets(topic, partition, TIMEOUT_MS, (err, offsets) => {
      if (err) return reject(kafkaError(`watermarks of ${topic}/${partition} unavailable`, err));
      resolve({ low: offsets.lowOffset, high: offsets.highOffset });
    });
  });
}

/**
 * Deletes the records before `offset` in one partition, as retention would,
 * and resolves with the new low watermark. node-rdkafka has no DeleteRecords,
 * so the request goes over the wire to the partition's leader.
 */
export async function deleteRecordsBefore(topic: string, partition: number, offset: number): Promise<number> {
  const p = await sharedProducer();
  const metadata = await new Promise<Metadata>((resolve, reject) => {
    p.getMetadata({ topic, timeout: TIMEOUT_MS }, (err, data) =>
      err ? reject(kafkaError(`metadata of ${topic} unavailable`, err)) : resolve(data),
    );
  });
  const leaderId = metadata.topics.find((t) => t.name === topic)?.partitions.find((x) => x.id === partition)?.leader;
  const leader = metadata.brokers.find((b) => b.id === leaderId);
  if (!leader) throw new Error(`no leader known for ${topic}/${partition}`);
  return deleteRecordsWire({ host: leader.host, port: leader.port, topic, partition, offset, timeoutMs: TIMEOUT_MS });
}

/**
 * Reads `count` messages of one partition from `offset` with a throwaway
 * consumer (no group commits). Rejects if fewer arrive within `timeoutMs`.
 */
export async function fetchMessages(
  topic: string,
  partition: number,
  offset: number,
  count: number,
  timeoutMs = TIMEOUT_MS,
): Promise<Message[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': brokers(),
      'client.id': `${CLIENT_ID}-reader`,
      'group.id': `${CLIENT_ID}-reader-${randomBytes(4).toString('hex')}`,
      'enable.auto.commit': false,
    },
    {},
  );
  consumer.on('event.error', () => {});
  await new Promise<void>((resolve, reject) => {
    consumer.connect({ timeout: timeoutMs }, (err) =>
      err ? reject(kafkaError('reader could not connect', err)) : resolve(),
    );
  });
  try {
    consumer.assign([{ topic, partition, offset }]);
    consumer.setDefaultConsumeTimeout(100);
    const messages: Message[] = [];
    const deadline = Date.now() + timeoutMs;
    while (messages.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`read ${messages.length} of ${count} messages from ${topic}/${partition} in ${timeoutMs} ms`);
      }
      const batch = await new Promise<Message[]>((resolve, reject) => {
        consumer.consume(count - messages.length, (err, got) =>
          err ? reject(kafkaError(`reading ${topic}/${partition} failed`, err)) : resolve(got),
        );
      });
      messages.push(...batch);
    }
    return messages;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

// ---- teardown ----

/**
 * Deletes the topics created through these helpers (best effort) and
 * disconnects the shared producer and admin client. Idempotent; the helpers
 * reconnect if used again afterwards.
 */
export async function closeKafkaHelpers(): Promise<void> {
  const topics = [...createdTopics];
  createdTopics.clear();
  if (admin && topics.length > 0) {
    const a = admin;
    await Promise.all(topics.map((t) => new Promise<void>((resolve) => a.deleteTopic(t, 5_000, () => resolve()))));
  }
  admin?.disconnect();
  admin = undefined;
  const p = producer;
  producer = undefined;
  if (p) {
    const connected = await p.catch(() => undefined);
    if (connected) await new Promise<void>((resolve) => connected.disconnect(5_000, () => resolve()));
  }
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = undefined;
  pendingDeliveries = 0;
}

registerTeardown(closeKafkaHelpers);
