// One live tail: a consumer reading a set of topics from their end into a
// log that its streams read at their own pace (see shared-tail.ts for how
// streams find it, tail-source.ts for how one reads it).
import { type BridgeConsumer, isAllBrokersDown, type KafkaConfig, type Watermarks } from './consumer.ts';
import { KafkaConsumeError, TopicNotAvailableError } from './errors.ts';
import { PositionTracker } from './position-tracker.ts';
import type { ResolvedPosition } from './positions.ts';
import { STALL_CHECK_MS, watchForStall } from './stall-watch.ts';
import { type LogEntry, TailLog } from './tail-log.ts';
import type { KafkaMessage, Logger } from './types.ts';

/** What a tail needs from a stream reading it. */
export interface TailReader {
  /** The log grew: read from your cursor for as long as the client keeps up. */
  pump(): void;
  /** The tail stopped for good: end the stream with this error (the client resumes with its id). */
  fail(err: Error): void;
  /** Partitions were added to the tail's topics; the tail reads them from these positions. */
  partitionsAdded(added: readonly ResolvedPosition[]): void;
}

/** A partition of a tail; its index in `partitions` is its index in every reader's positions. */
export interface TailPartition {
  readonly topic: string;
  readonly partition: number;
}

/** What a tail is opened with. */
export interface LiveTailSettings {
  readonly key: string;
  readonly topics: readonly string[];
  readonly kafkaConfig: KafkaConfig;
  readonly log: Logger;
  readonly timeoutMs: number;
  readonly ringMessages: number;
  readonly ringBytes: number;
  /** A resuming stream's positions by `topic\0partition`, used to start a little before them (see #startOffsets). */
  readonly resumeHint: ReadonlyMap<string, number> | undefined;
  readonly createConsumer: (
    config: KafkaConfig,
    handlers: Record<string, (...args: unknown[]) => void>,
  ) => BridgeConsumer;
  /** How often to look for partitions added to the topics. Default: the stall check's pace. */
  readonly partitionCheckMs?: number;
  /** Called once when the tail closes or fails, so no new stream finds it. */
  readonly onGone: (tail: LiveTail) => void;
}

/**
 * One consumer reading a set of partitions from their end (growing with its
 * topics), and a log of what it read that streams consume at their own pace.
 */
export class LiveTail {
  readonly key: string;
  readonly topics: readonly string[];
  /** Resolves when the consumer reads; rejects with the setup error (unknown topic, broker down). */
  readonly ready: Promise<void>;
  readonly #settings: LiveTailSettings;
  readonly #partitions: TailPartition[] = [];
  readonly #index = new Map<string, number>();
  #counts = new Map<string, number>();
  readonly #consumer: BridgeConsumer;
  readonly #log: TailLog;
  #tracker: PositionTracker | undefined;
  /** The next offset of each partition. */
  readonly #next: number[] = [];
  /** Each partition's end when the tail opened: a stream from the live end starts there at the earliest. */
  readonly #liveFrom: number[] = [];
  readonly #readers = new Set<TailReader>();
  #users = 0;
  #dispatchScheduled = false;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  /** Looks for partitions added to the tail's topics, at the stall check's pace. */
  #countsTimer: NodeJS.Timeout | undefined;
  #checkingCounts = false;

  constructor(settings: LiveTailSettings) {
    this.#settings = settings;
    this.key = settings.key;
    this.topics = settings.topics;
    this.#log = new TailLog(settings.ringMessages, settings.ringBytes);
    // Losing every broker ends the tail at once: its streams would otherwise
    // wait for the watchdog, and new requests would be served from a log that
    // cannot grow instead of being told to come back.
    this.#consumer = settings.createConsumer(settings.kafkaConfig, {
      'event.error': (err) => {
        if (isAllBrokersDown(err) && this.#tracker) this.#fail(err as Error);
      },
    });
    this.ready = this.#open();
    // Waiters handle the rejection; this one only keeps it from being "unhandled" when none wait.
    this.ready.catch(() => {});
  }

  async #open(): Promise<void> {
    const deadline = Date.now() + this.#settings.timeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    const consumer = this.#consumer;
    await consumer.connect(remaining());
    const counts = await consumer.partitionCounts(this.topics, remaining());
    for (const t of this.topics) if (!counts.has(t)) throw new TopicNotAvailableError(`Topic ${t} is not available`);
    this.#counts = counts;
    const partitions: TailPartition[] = [];
    for (const topic of this.topics) {
      for (let partition = 0; partition < (counts.get(topic) as number); partition++)
        partitions.push({ topic, partition });
    }
    const marks = await Promise.all(partitions.map((p) => consumer.watermarks(p.topic, p.partition, remaining())));
    if (this.#closing) return;
    const starts = this.#startOffsets(partitions, marks);
    const positions: ResolvedPosition[] = partitions.map((p, i) => ({
      ...p,
      offset: starts[i] as number,
      reason: 'end',
    }));
    for (const [i, p] of positions.entries()) this.#addPartition(p, (marks[i] as Watermarks).high);
    // Set last: a tracker means the positions above are known (see resumeSeq()).
    this.#tracker = new PositionTracker(positions, false);
    consumer.start(
      positions,
      (message) => this.#onMessage(message),
      (err) => this.#fail(err),
    );
    this.#startWatchdog();
  }

  #addPartition(p: ResolvedPosition, liveFrom: number): void {
    this.#index.set(`${p.topic}\u0000${p.partition}`, this.#partitions.length);
    this.#partitions.push({ topic: p.topic, partition: p.partition });
    this.#next.push(p.offset);
    this.#liveFrom.push(liveFrom);
    this.#log.addPartition(p.offset);
  }

  /**
   * Where the tail starts reading: each partition's end, or, when it opens for
   * a stream resuming close to the end (every partition within half a log's
   * share of it), somewhat before that stream's positions, so that the other
   * clients coming back after a server restart, a little behind or ahead of
   * the first, resume from this tail too instead of each opening a consumer.
   */
  #startOffsets(partitions: readonly TailPartition[], marks: readonly Watermarks[]): number[] {
    const ends = marks.map((m) => m.high);
    const hint = this.#settings.resumeHint;
    if (!hint || hint.size !== partitions.length) return ends;
    const window = resumeWindow(this.#settings.ringMessages, partitions.length);
    const starts: number[] = [];
    for (const [i, p] of partitions.entries()) {
      const m = marks[i] as Watermarks;
      const h = hint.get(`${p.topic}\u0000${p.partition}`);
      if (h === undefined || h < m.low || h > m.high || m.high - h > window) return ends;
      starts.push(Math.max(m.low, h - window));
    }
    return starts;
  }

  /** The tail's partitions, in id order. */
  get partitions(): readonly TailPartition[] {
    return this.#partitions;
  }

  /** Positions at the head: where a stream from the live end joining now starts. */
  headPositions(): ResolvedPosition[] {
    return this.#partitions.map((p, i) => ({
      ...p,
      offset: Math.max(this.#next[i] as number, this.#liveFrom[i] as number),
      reason: 'end',
    }));
  }

  /** Where partition `i` was first read from (its end when the tail opened, its beginning when added since). */
  partitionStart(i: number): number {
    return this.#liveFrom[i] as number;
  }

  /** True when the tail has read up to where it found each partition's end (it started behind it for a resume). */
  get caughtUp(): boolean {
    return this.#next.every((n, i) => n >= (this.#liveFrom[i] as number));
  }

  get headSeq(): number {
    return this.#log.headSeq;
  }

  get oldestSeq(): number {
    return this.#log.oldestSeq;
  }

  /** The log (for readers and tests). */
  get log(): TailLog {
    return this.#log;
  }

  /** The canonical id at the head (offset ids over all of the tail's partitions). */
  headId(): string {
    return this.#tracker?.id() ?? '[]';
  }

  /** The error that stopped the tail, if it failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  entryAt(seq: number): LogEntry {
    return this.#log.at(seq);
  }

  /**
   * Where a stream resuming at these offsets reads the log from: the seq of
   * the first entry it needs (the earliest, over its partitions, at or after
   * its offset; every entry before it would be refused as already read). Or
   * undefined when the log does not hold (or will not) every message from
   * those offsets on, and the stream needs a consumer of its own: every
   * partition of the tail must be named, at an offset the log has not dropped
   * and the tail will reach.
   */
  resumeSeq(offsets: ReadonlyMap<string, number>): number | undefined {
    if (!this.#tracker || offsets.size !== this.#partitions.length || this.#failure || this.#closing) return undefined;
    let seq = this.#log.headSeq;
    for (const [key, offset] of offsets) {
      const i = this.#index.get(key);
      if (i === undefined) return undefined;
      // Up to the end the tail found when it opened: it reads at least that far.
      const reach = Math.max(this.#next[i] as number, this.#liveFrom[i] as number);
      if (offset < this.#log.retainedFrom(i) || offset > reach) return undefined;
      seq = Math.min(seq, this.#log.firstFrom(i, offset));
    }
    return seq;
  }

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    return this.#consumer.cachedWatermarks(topic, partition);
  }

  /** Counts a stream as using this tail (setting up or reading); the tail stays open while any does. */
  hold(): void {
    this.#users++;
    if (this.#lingerTimer) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }
  }

  /** Starts delivering to `reader`. Throws the tail's failure if it already failed. */
  attach(reader: TailReader): void {
    if (this.#failure) throw this.#failure;
    this.#readers.add(reader);
  }

  /** Drops a stream's hold; the last one closes the tail (after `lingerMs`). Resolves once that close is done. */
  release(reader: TailReader | undefined, lingerMs: number): Promise<void> {
    if (reader) this.#readers.delete(reader);
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users > 0 || this.#closing) return this.#closing ?? Promise.resolve();
    if (lingerMs > 0 && !this.#failure) {
      this.#lingerTimer = setTimeout(() => {
        this.#lingerTimer = undefined;
        if (this.#users === 0) void this.close();
      }, lingerMs);
      this.#lingerTimer.unref();
      return Promise.resolve();
    }
    return this.close();
  }

  /** Releases the consumer and forgets the log. Streams still attached are told the tail failed. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#settings.onGone(this);
    if (this.#watchdogTimer) clearInterval(this.#watchdogTimer);
    if (this.#countsTimer) clearInterval(this.#countsTimer);
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#failure ??= new KafkaConsumeError('The shared consumer was closed; reconnect to resume');
    const readers = [...this.#readers];
    this.#readers.clear();
    for (const r of readers) r.fail(this.#failure);
    this.#closing = this.#consumer.disconnect().then(() => this.#log.clear());
    return this.#closing;
  }

  #onMessage(message: KafkaMessage): void {
    const tracker = this.#tracker;
    if (!tracker || this.#closing) return;
    const i = this.#index.get(`${message.topic}\u0000${message.partition}`);
    if (i === undefined || message.offset < (this.#next[i] as number)) return;
    // node-rdkafka makes a topic string per message: the log keeps the tail's own, one fewer object per entry.
    message.topic = (this.#partitions[i] as TailPartition).topic;
    tracker.advanceAt(i, message.offset, message.timestamp);
    this.#next[i] = message.offset + 1;
    this.#log.append(message, i, tracker.id());
    if (!this.#dispatchScheduled) {
      this.#dispatchScheduled = true;
      // Everything node-rdkafka hands over in one turn goes out in one write per stream.
      setImmediate(this.#dispatch);
    }
  }

  #dispatch = (): void => {
    this.#dispatchScheduled = false;
    if (this.#closing) return;
    for (const reader of this.#readers) reader.pump();
    this.#log.trim();
  };

  #fail(err: Error): void {
    if (this.#failure || this.#closing) return;
    this.#settings.log.error({ err, topics: this.topics }, 'the shared consumer failed; ending its streams');
    this.#failure = new KafkaConsumeError('Reading from Kafka failed', { cause: err });
    const readers = [...this.#readers];
    this.#readers.clear();
    // New streams get a fresh tail; this one closes when its last stream lets go.
    this.#settings.onGone(this);
    for (const r of readers) r.fail(this.#failure);
  }

  /**
   * Partitions added to the tail's topics are read from their beginning (all
   * they hold was written after the tail's streams started) without ending
   * any stream: every reader adds them to its positions, and ids name them
   * from then on.
   */
  #checkPartitionCounts(): void {
    if (this.#checkingCounts || this.#failure || this.#closing) return;
    this.#checkingCounts = true;
    this.#growTo()
      .catch((err) => {
        // A failed lookup says nothing about partitions (the broker may be away: see the event handler).
        this.#settings.log.debug({ err }, 'partition count check failed');
      })
      .finally(() => {
        this.#checkingCounts = false;
      });
  }

  async #growTo(): Promise<void> {
    const counts = await this.#consumer.partitionCounts(this.topics, STALL_CHECK_MS);
    const added: TailPartition[] = [];
    for (const topic of this.topics) {
      const had = this.#counts.get(topic) ?? 0;
      for (let partition = had; partition < (counts.get(topic) ?? 0); partition++) added.push({ topic, partition });
    }
    if (added.length === 0 || this.#failure || this.#closing) return;
    const marks = await Promise.all(added.map((p) => this.#consumer.watermarks(p.topic, p.partition, STALL_CHECK_MS)));
    if (this.#failure || this.#closing) return;
    const positions: ResolvedPosition[] = added.map((p, i) => ({
      ...p,
      offset: (marks[i] as Watermarks).low,
      reason: 'beginning',
    }));
    for (const p of positions) {
      this.#addPartition(p, p.offset);
      this.#tracker?.addPartition(p);
    }
    this.#counts = counts;
    this.#settings.log.info(
      { added: positions.map((p) => `${p.topic}/${p.partition}`) },
      'partitions were added; the shared consumer reads them',
    );
    try {
      this.#consumer.addPartitions(positions);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    for (const r of this.#readers) r.partitionsAdded(positions);
  }

  #startWatchdog(): void {
    this.#watchdogTimer = watchForStall(
      this.#consumer,
      () => this.#partitions.map((p, i) => ({ ...p, nextOffset: this.#next[i] as number })),
      () => false,
      () => this.#fail(new Error('no delivery while the partition end moved')),
    );
    this.#countsTimer = setInterval(
      () => this.#checkPartitionCounts(),
      this.#settings.partitionCheckMs ?? STALL_CHECK_MS,
    );
    this.#countsTimer.unref();
  }
}

/**
 * How far behind a partition's end a resume may be for a tail opened for it
 * to start before it (half a log's share per partition).
 */
export function resumeWindow(ringMessages: number, partitions: number): number {
  return Math.max(1, Math.floor(ringMessages / (2 * Math.max(1, partitions))));
}
