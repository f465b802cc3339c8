// The only file that imports node-rdkafka. Everything else talks to Kafka
// through the small BridgeConsumer interface below.

import { isMainThread } from 'node:worker_threads';
import type { LibrdKafkaError, KafkaConsumer as RdKafkaConsumer, Message as RdKafkaMessage } from 'node-rdkafka';
import Kafka from 'node-rdkafka';
import { ConfigurationError } from './errors.ts';
import { poolGate } from './pool-gate.ts';

/** A Kafka message as node-rdkafka delivers it (and as KafkaSSE's hooks receive it). */
export type KafkaMessage = RdKafkaMessage;

/** A partition and the offset to start reading it at. */
export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: number;
}

/** Low (first retained) and high (next to be written) offsets of a partition. */
export interface Watermarks {
  low: number;
  high: number;
}

/** librdkafka configuration: property names as librdkafka documents them. */
export type KafkaConfig = Record<string, string | number | boolean | Function>;

/** The narrow surface kafkaSse() needs from a Kafka consumer. */
export interface BridgeConsumer {
  connect(timeoutMs: number): Promise<void>;
  /** Partition counts of the topics that exist, by name. Unknown topics are absent. */
  partitionCounts(topics: readonly string[], timeoutMs: number): Promise<Map<string, number>>;
  watermarks(topic: string, partition: number, timeoutMs: number): Promise<Watermarks>;
  /** For each entry, the first offset whose timestamp is at or after `timestamp`, or -1 if none. */
  offsetsForTimes(
    entries: readonly { topic: string; partition: number; timestamp: number }[],
    timeoutMs: number,
  ): Promise<TopicPartitionOffset[]>;
  /** Assigns the partitions and starts delivering messages to `onMessage`. */
  start(
    positions: readonly TopicPartitionOffset[],
    onMessage: (message: KafkaMessage) => void,
    onError: (err: Error) => void,
  ): void;
  /** The last watermarks librdkafka learned from fetch responses (no request), or undefined. */
  cachedWatermarks(topic: string, partition: number): Watermarks | undefined;
  /** Stops fetching (librdkafka drops what it had prefetched and refetches on resume). */
  pause(): void;
  resume(): void;
  /** How many callbacks the consume thread has made so far (messages and errors): a liveness signal. */
  deliveries(): number;
  /** Resumes every partition, then moves the given ones to these offsets (see the implementation for why in that order). */
  resumeFrom(positions: readonly TopicPartitionOffset[]): void;
  /** Starts reading more partitions (added to a topic since start()), keeping the others where they are. */
  addPartitions(positions: readonly TopicPartitionOffset[]): void;
  /** Idempotent; resolves once librdkafka has released the consumer. */
  disconnect(): Promise<void>;
}

/**
 * How long the consume loop's thread waits for a message before looking
 * again. node-rdkafka joins that thread on the event loop's thread when the
 * consumer disconnects, so this bounds how long a disconnect can block the
 * process; it does not add latency (a waiting consume wakes on arrival).
 */
const CONSUME_WAIT_MS = 50;

/**
 * node-rdkafka's flowing mode keeps messages the consume thread has handed
 * over, but the event loop has not yet delivered, in a queue that disconnect()
 * discards without freeing; librdkafka then waits forever for those messages
 * when it closes, holding a thread-pool thread. So before disconnecting we
 * unassign (nothing new can arrive) and wait until deliveries have stopped
 * for this long.
 */
const QUIESCE_MS = 20;
const QUIESCE_MAX_ROUNDS = 50;

/** Live count of consumers created and not yet fully disconnected, for leak checks. */
let openConsumers = 0;

/**
 * Whether a librdkafka error event says that no broker can be reached any
 * more. node-rdkafka's `event.error` carries code -1 for it (the code is lost
 * on the way), so the message is checked too.
 */
export function isAllBrokersDown(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code === Kafka.CODES.ERRORS.ERR__ALL_BROKERS_DOWN) return true;
  return typeof e?.message === 'string' && /all broker connections are down/i.test(e.message);
}

/** Number of Kafka consumers currently open in this process (created by kafkaSse and not yet released). */
export function openConsumerCount(): number {
  return openConsumers;
}

function asError(err: LibrdKafkaError | Error | null | undefined, what: string): Error {
  if (err instanceof Error) return err;
  const e = new Error(`${what}: ${err?.message ?? 'unknown librdkafka error'}`);
  if (err) (e as Error & { code?: number }).code = err.code;
  return e;
}

/** Why a consumer cannot be made in a worker thread (for the server's log). */
export const MAIN_THREAD_ONLY =
  'kafka-sse-bridge reads Kafka on the main thread only: node-rdkafka aborts the process when a worker thread consumes; call kafkaSse() from a server on the main thread';

/** A BridgeConsumer backed by one node-rdkafka KafkaConsumer in flowing mode. */
export class RdKafkaBridgeConsumer implements BridgeConsumer {
  #consumer: RdKafkaConsumer;
  #assigned: { topic: string; partition: number }[] = [];
  #connected = false;
  #disconnecting: Promise<void> | undefined;
  #released = false;
  #flowing = false;
  /** Counts every callback from the consume thread, including after disconnect began. */
  #arrivals = 0;

  constructor(config: KafkaConfig, eventHandlers: Record<string, (...args: unknown[]) => void> | undefined) {
    // node-rdkafka hands messages over on the process's default event loop: the first message a
    // consumer made in a worker thread reads aborts the whole process (V8: "Cannot create a handle
    // without a HandleScope"; test/integration/worker-thread.test.ts). Refuse before reading.
    if (!isMainThread) throw new ConfigurationError(MAIN_THREAD_ONLY);
    const globalConfig: Record<string, unknown> = { ...config };
    // node-rdkafka leaked memory with event_cb on; only turn it on when someone listens.
    globalConfig.event_cb = eventHandlers !== undefined && Object.keys(eventHandlers).length > 0;
    this.#consumer = new Kafka.KafkaConsumer(globalConfig as Kafka.ConsumerGlobalConfig, {});
    for (const [event, handler] of Object.entries(eventHandlers ?? {})) {
      this.#consumer.on(event as 'event.log', handler as () => void);
    }
    // Without a listener an 'error' event would throw; errors also reach us through callbacks.
    this.#consumer.on('event.error', () => {});
    openConsumers++;
  }

  connect(timeoutMs: number): Promise<void> {
    return poolGate.run(
      timeoutMs,
      (timeout) =>
        new Promise<void>((resolve, reject) => {
          this.#consumer.connect({ timeout, allTopics: false }, (err) => {
            if (err) return reject(asError(err, 'connect failed'));
            this.#connected = true;
            resolve();
          });
        }),
    );
  }

  async partitionCounts(topics: readonly string[], timeoutMs: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    await Promise.all(
      [...new Set(topics)].map((topic) =>
        poolGate.run(
          timeoutMs,
          (timeout) =>
            new Promise<void>((resolve, reject) => {
              this.#consumer.getMetadata(
                { topic, allTopics: false, timeout } as Kafka.MetadataOptions,
                (err, metadata) => {
                  if (err) {
                    // An unknown topic is an answer, not a failure.
                    if (err.code === Kafka.CODES.ERRORS.ERR_UNKNOWN_TOPIC_OR_PART) return resolve();
                    return reject(asError(err, 'metadata request failed'));
                  }
                  const found = metadata.topics.find((t) => t.name === topic);
                  if (found && found.partitions.length > 0) counts.set(topic, found.partitions.length);
                  resolve();
                },
              );
            }),
        ),
      ),
    );
    return counts;
  }

  watermarks(topic: string, partition: number, timeoutMs: number): Promise<Watermarks> {
    return poolGate.run(
      timeoutMs,
      (timeout) =>
        new Promise<Watermarks>((resolve, reject) => {
          this.#consumer.queryWatermarkOffsets(topic, partition, timeout, (err, offsets) => {
            if (err) return reject(asError(err, `watermarks of ${topic}/${partition} unavailable`));
            resolve({ low: offsets.lowOffset, high: offsets.highOffset });
          });
        }),
    );
  }

  offsetsForTimes(
    entries: readonly { topic: string; partition: number; timestamp: number }[],
    timeoutMs: number,
  ): Promise<TopicPartitionOffset[]> {
    if (entries.length === 0) return Promise.resolve([]);
    const query = entries.map((e) => ({ topic: e.topic, partition: e.partition, offset: e.timestamp }));
    return poolGate.run(
      timeoutMs,
      (timeout) =>
        new Promise<TopicPartitionOffset[]>((resolve, reject) => {
          this.#consumer.offsetsForTimes(query, timeout, (err, offsets) => {
            if (err) return reject(asError(err, 'offsets for times unavailable'));
            resolve(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset ?? -1 })));
          });
        }),
    );
  }

  start(
    positions: readonly TopicPartitionOffset[],
    onMessage: (message: KafkaMessage) => void,
    onError: (err: Error) => void,
  ): void {
    this.#assigned = positions.map((p) => ({ topic: p.topic, partition: p.partition }));
    this.#consumer.assign(positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })));
    this.#consumer.setDefaultConsumeTimeout(CONSUME_WAIT_MS);
    // No sleep after an idle wait: the wait itself is the idle strategy, so a
    // message produced to a quiet topic is handed over as soon as it is fetched.
    this.#consumer.setDefaultConsumeLoopTimeoutDelay(0);
    // Flowing mode: node-rdkafka runs one thread per consumer that waits in
    // librdkafka and hands each message over as it arrives (its typings
    // describe the batch form; in flowing mode the callback gets one message).
    const onEach = (err: LibrdKafkaError | null, message?: KafkaMessage) => {
      this.#arrivals++;
      if (err) {
        if (!this.#disconnecting) onError(asError(err, 'consume failed'));
        return;
      }
      if (message && !this.#disconnecting) onMessage(message);
    };
    this.#consumer.consume(onEach as unknown as (err: LibrdKafkaError, messages: KafkaMessage[]) => void);
    this.#flowing = true;
  }

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    if (!this.#connected || this.#disconnecting) return undefined;
    try {
      const w = this.#consumer.getWatermarkOffsets(topic, partition);
      return w.highOffset >= 0 ? { low: w.lowOffset, high: w.highOffset } : undefined;
    } catch {
      return undefined;
    }
  }

  pause(): void {
    if (this.#connected && !this.#disconnecting && this.#assigned.length > 0) this.#consumer.pause(this.#assigned);
  }

  resume(): void {
    if (this.#connected && !this.#disconnecting && this.#assigned.length > 0) this.#consumer.resume(this.#assigned);
  }

  deliveries(): number {
    return this.#arrivals;
  }

  resumeFrom(positions: readonly TopicPartitionOffset[]): void {
    if (!this.#connected || this.#disconnecting) return;
    // Resumed first, then seeked: the seek after the resume is what makes
    // librdkafka's fetcher look at the partitions at once (see ConsumerSource's
    // #resumeFetching); whatever it fetched in between is older than the seek
    // and discarded.
    this.resume();
    for (const p of positions) {
      this.#consumer.seek({ topic: p.topic, partition: p.partition, offset: p.offset }, 0, () => {});
    }
  }

  addPartitions(positions: readonly TopicPartitionOffset[]): void {
    if (!this.#connected || this.#disconnecting || positions.length === 0) return;
    this.#consumer.incrementalAssign(
      positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset })),
    );
    this.#assigned.push(...positions.map((p) => ({ topic: p.topic, partition: p.partition })));
  }

  disconnect(): Promise<void> {
    if (this.#disconnecting) return this.#disconnecting;
    this.#disconnecting = this.#quiesce().then(() =>
      poolGate.run(
        null,
        () =>
          new Promise<void>((resolve) => {
            const release = () => {
              if (!this.#released) {
                this.#released = true;
                openConsumers--;
              }
              this.#consumer.removeAllListeners();
              resolve();
            };
            try {
              // Also frees the librdkafka handle of a client that never connected.
              this.#consumer.disconnect(() => release());
            } catch {
              release();
            }
          }),
      ),
    );
    return this.#disconnecting;
  }

  /** Stops deliveries and waits until none is in flight (see QUIESCE_MS). */
  async #quiesce(): Promise<void> {
    if (!this.#flowing) return;
    try {
      this.#consumer.unassign();
    } catch {
      // Not connected any more: nothing can be in flight.
      return;
    }
    // A round is a timer plus a setImmediate: the timer alone can fire before
    // the poll phase delivers what the consume thread queued while the event
    // loop was busy. Two quiet rounds in a row mean the queue is empty.
    let seen = this.#arrivals;
    let quiet = 0;
    for (let round = 0; round < QUIESCE_MAX_ROUNDS && quiet < 2; round++) {
      await new Promise((r) => setTimeout(r, QUIESCE_MS));
      await new Promise((r) => setImmediate(r));
      if (this.#arrivals === seen) quiet++;
      else quiet = 0;
      seen = this.#arrivals;
    }
  }
}
