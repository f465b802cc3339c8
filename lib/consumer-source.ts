// A source backed by a consumer of the stream's own: replays, resumes the
// shared tail cannot serve, and every stream with `sharedTail: null`.
import type { BridgeConsumer, TopicPartitionOffset, Watermarks } from './consumer.ts';
import { KafkaConsumeError } from './errors.ts';
import type { PositionTracker } from './position-tracker.ts';
import type { SourceSink, StreamSource } from './source.ts';
import { watchForStall } from './stall-watch.ts';
import type { KafkaMessage, Logger } from './types.ts';

/** How often a pending rewind checks whether retention removed its message. */
const REWIND_CHECK_MS = 5000;

/**
 * Payload bytes one turn of the event loop may hand over before the consumer
 * stops fetching until a turn brings less (see #countTurn). node-rdkafka's
 * flowing mode has a thread that takes messages from librdkafka as fast as
 * librdkafka fetches them and keeps them, without limit, until the event
 * loop's next turn takes them all; librdkafka counts them as consumed and
 * fetches more. Whenever the stream's work is slower than the fetching (a
 * replay), most of the partition piled up there: a replay of 1,000,000
 * messages of ~620 B took the server to 0.9–1.1 GB of RSS (242–367 MB with
 * this limit), and each pause for a slow client dropped (and fetched again)
 * tens of thousands of messages (bench/results/2026-12-04-replay-backlog).
 */
const TURN_BYTES = 8 * 1024 * 1024;

/** A partition's key in the rewinds. */
function rewindKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * Reads the stream's partitions with a consumer it owns (connected, with the
 * positions resolved) and releases it on close.
 */
export class ConsumerSource implements StreamSource {
  readonly #consumer: BridgeConsumer;
  readonly #starts: readonly TopicPartitionOffset[];
  readonly #log: Logger;
  /**
   * Topic → partition → index in the stream's positions (the order of
   * `starts`): a message's index without building a key for it, which was a
   * string and a map lookup per message.
   */
  readonly #byTopic = new Map<string, number[]>();
  #lastTopic = '';
  #lastTopicIndex: number[] | undefined;
  #sink: SourceSink | undefined;
  #positions: PositionTracker | undefined;
  #blocked = false;
  /** Fetching stopped because a turn handed over more than TURN_BYTES (see #countTurn). */
  #throttled = false;
  /** Payload bytes handed over in this turn of the event loop so far; -1: no message yet in this turn. */
  #turnBytes = -1;
  #closed = false;
  /** Per partition, the first message dropped while blocked: where reading resumes. */
  readonly #rewinds = new Map<string, TopicPartitionOffset>();
  #rewindTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;

  /** `starts`: where to start each partition, in the order of the stream's positions. */
  constructor(consumer: BridgeConsumer, starts: readonly TopicPartitionOffset[], log: Logger) {
    this.#consumer = consumer;
    this.#starts = starts;
    this.#log = log;
    for (const [i, p] of starts.entries()) {
      let partitions = this.#byTopic.get(p.topic);
      if (partitions === undefined) {
        partitions = [];
        this.#byTopic.set(p.topic, partitions);
      }
      partitions[p.partition] = i;
    }
  }

  start(sink: SourceSink, positions: PositionTracker): void {
    this.#sink = sink;
    this.#positions = positions;
    this.#consumer.start(
      this.#starts,
      (message) => this.#onMessage(message),
      (err) => {
        this.#log.error({ err }, 'consuming failed; ending the stream');
        sink.fail(new KafkaConsumeError('Reading from Kafka failed', { cause: err }));
      },
    );
    this.#watchdogTimer = watchForStall(
      this.#consumer,
      () => positions.nextOffsets(),
      () => this.#blocked,
      () => {
        this.#log.error('the consumer stopped delivering; ending the stream so the client resumes elsewhere');
        sink.fail(
          new KafkaConsumeError('Reading from Kafka stalled; reconnect to resume', {
            cause: new Error('no delivery while the partition end moved'),
          }),
        );
      },
    );
  }

  /**
   * The socket is full: stop fetching, and drop what still arrives. node-rdkafka
   * hands over, without limit, everything its thread already took from
   * librdkafka, so pausing alone would let a slow client pile up megabytes;
   * instead each partition remembers the first message it dropped and is
   * rewound there when the client drains.
   */
  pause(): void {
    this.#blocked = true;
    if (!this.#throttled) this.#consumer.pause();
  }

  resume(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    if (!this.#throttled) this.#resumeFetching();
  }

  /**
   * Resumes fetching every partition where it stopped: at its rewind when
   * messages were dropped, else at the stream's next position. Always with a
   * seek: librdkafka's fetcher looks at a partition resumed without one only
   * on its next wake-up, up to a second later (196–967 ms in 51 of 60
   * resumes), and the seek wakes it (1–5 ms; bench/results/2026-12-04-replay-backlog).
   */
  #resumeFetching(): void {
    const rewinds = [...this.#rewinds.values()];
    const next = this.#positions?.nextOffsets() ?? [];
    const at = next.map((p) => this.#rewinds.get(rewindKey(p.topic, p.partition)) ?? { ...p, offset: p.nextOffset });
    this.#consumer.resumeFrom(at);
    if (rewinds.length > 0) this.#watchRewinds();
  }

  /**
   * Counts what this turn of the event loop handed over. Past TURN_BYTES the
   * consumer stops fetching; what node-rdkafka's thread already took still
   * comes (and is delivered, not dropped), and at the end of the first turn
   * that brings less, fetching resumes where it stopped.
   */
  #countTurn(message: KafkaMessage): void {
    if (this.#turnBytes < 0) {
      this.#turnBytes = 0;
      setImmediate(this.#endTurn);
    }
    this.#turnBytes += message.size;
    if (this.#turnBytes > TURN_BYTES && !this.#throttled) {
      this.#throttled = true;
      if (!this.#blocked) this.#consumer.pause();
    }
  }

  #endTurn = (): void => {
    const bytes = this.#turnBytes;
    this.#turnBytes = -1;
    if (!this.#throttled || this.#closed) return;
    if (bytes > TURN_BYTES) {
      // Still a full turn: look again after the next one, which may bring nothing.
      this.#turnBytes = 0;
      setImmediate(this.#endTurn);
      return;
    }
    this.#throttled = false;
    if (!this.#blocked) this.#resumeFetching();
  };

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    return this.#consumer.cachedWatermarks(topic, partition);
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#rewindTimer) clearInterval(this.#rewindTimer);
    if (this.#watchdogTimer) clearInterval(this.#watchdogTimer);
    return this.#consumer.disconnect();
  }

  #onMessage(message: KafkaMessage): void {
    const sink = this.#sink;
    if (this.#closed || sink === undefined) return;
    this.#countTurn(message);
    if (!this.#blocked && this.#rewinds.size === 0) {
      const index = this.#indexOf(message.topic, message.partition);
      if (index !== undefined) sink.deliver(message, index);
      return;
    }
    const key = rewindKey(message.topic, message.partition);
    const rewind = this.#rewinds.get(key);
    if (this.#blocked) {
      if (!rewind)
        this.#rewinds.set(key, { topic: message.topic, partition: message.partition, offset: message.offset });
      return;
    }
    if (rewind) {
      // Messages past the rewind point were already taken before the pause: they come again after it.
      if (message.offset !== rewind.offset) return;
      this.#rewinds.delete(key);
    }
    const index = this.#indexOf(message.topic, message.partition);
    if (index !== undefined) sink.deliver(message, index);
  }

  /** The index in the stream's positions of a partition, undefined for one not read. */
  #indexOf(topic: string, partition: number): number | undefined {
    if (topic !== this.#lastTopic || this.#lastTopicIndex === undefined) {
      this.#lastTopic = topic;
      this.#lastTopicIndex = this.#byTopic.get(topic);
      if (this.#lastTopicIndex === undefined) return undefined;
    }
    return this.#lastTopicIndex[partition];
  }

  /**
   * A rewind waits for the exact message it dropped. Should retention delete
   * it meanwhile, librdkafka restarts at the oldest retained message instead:
   * tell the client what was lost and accept what comes.
   */
  #watchRewinds(): void {
    if (this.#rewindTimer) return;
    this.#rewindTimer = setInterval(() => {
      if (this.#closed || this.#rewinds.size === 0) {
        clearInterval(this.#rewindTimer);
        this.#rewindTimer = undefined;
        return;
      }
      for (const [key, r] of this.#rewinds) {
        const marks = this.#consumer.cachedWatermarks(r.topic, r.partition);
        if (marks && marks.low > r.offset) {
          this.#rewinds.delete(key);
          this.#sink?.lost({
            topic: r.topic,
            partition: r.partition,
            requestedOffset: r.offset,
            resumedOffset: marks.low,
            lost: marks.low - r.offset,
          });
        }
      }
      // Seeks are asynchronous in node-rdkafka; one still waiting after a whole
      // interval is issued again (a repeated seek to the same offset is harmless).
      if (!this.#blocked && this.#rewinds.size > 0) this.#consumer.resumeFrom([...this.#rewinds.values()]);
    }, REWIND_CHECK_MS);
    this.#rewindTimer.unref();
  }
}
