// The shared live tail: one consumer per process for all the streams that read
// the same topics from where they are now, so a thousand clients cost one
// librdkafka instance, one fetch per message, and one deserialization and
// framing per message instead of a thousand.
import {
  isAllBrokersDown,
  type KafkaConfig,
  type KafkaMessage,
  RdKafkaBridgeConsumer,
  STALL_CHECK_MS,
  type Watermarks,
  watchForStall,
} from './consumer.ts';
import { ConfigurationError, KafkaConsumeError, TopicNotAvailableError } from './errors.ts';
import type { DeserializedMessage, Deserializer, Logger } from './options.ts';
import { PositionTracker, type ResolvedPosition } from './positions.ts';
import { serializeForNdjson, serializeForSse, splicedJson, sseMessage } from './sse-format.ts';

/** Options of a {@link SharedTail}. */
export interface SharedTailOptions {
  /**
   * Most messages each tail keeps after every stream has read them: the slack
   * a slow client has before it moves to a consumer of its own, and how far
   * back a reconnecting client can resume without one. Default: `5000`.
   */
  ringMessages?: number;
  /** Most bytes (message values and keys, plus the frames made of them) each tail keeps. Default: `16777216` (16 MiB). */
  ringBytes?: number;
  /** Keep a tail's consumer this long after its last stream ended, for clients that come back. `0`: release at once. Default: `0`. */
  lingerMs?: number;
}

/** Documented defaults of {@link SharedTailOptions}. */
export const SHARED_TAIL_DEFAULTS = Object.freeze({
  ringMessages: 5000,
  ringBytes: 16 * 1024 * 1024,
  lingerMs: 0,
});

/** Rough per-message bookkeeping cost counted against ringBytes besides value and key. */
const ENTRY_OVERHEAD_BYTES = 256;

/** A message in a tail's log, with what each deserializer made of it. */
export interface TailEntry {
  readonly seq: number;
  readonly message: KafkaMessage;
  /** The message's partition as an index into the tail's partitions (and its readers' positions, in the same order). */
  readonly partitionIndex: number;
  /** The resume id after this message for a stream whose positions equal the tail's (offset ids). */
  readonly id: string;
  bytes: number;
  prepared: Map<Deserializer, Prepared> | undefined;
}

/** A message deserialized once per deserializer, and serialized once per wire format. */
export type Prepared =
  | { readonly ok: false }
  | {
      readonly ok: true;
      readonly value: DeserializedMessage;
      /** Whether the original JSON text may be sent (see splicedJson): the library's own deserializer made it. */
      readonly splice: boolean;
      /** Serialized for SSE / NDJSON; null when it cannot be serialized. Undefined until asked. */
      sse?: string | null;
      ndjson?: string | null;
      /** The whole SSE event with the tail's id, for streams in step with the tail. */
      sseFrame?: string;
    };

/** What a tail needs from a stream reading it. */
export interface TailReader {
  /** The log grew: read from your cursor for as long as the client keeps up. */
  pump(): void;
  /** The tail stopped for good: end the stream with this error (the client resumes with its id). */
  fail(err: Error): void;
}

/** A partition of a tail and its index in the tail's position arrays. */
interface TailPartition {
  topic: string;
  partition: number;
}

/**
 * The key of a kafkaConfig, or undefined when it cannot be shared (function
 * values such as callbacks belong to one caller).
 */
export function configKey(config: KafkaConfig): string | undefined {
  const keys = Object.keys(config).sort();
  let key = '';
  for (const k of keys) {
    const v = config[k];
    if (typeof v === 'function') return undefined;
    key += `${JSON.stringify(k)}=${JSON.stringify(v)};`;
  }
  return key;
}

/**
 * One consumer reading a fixed set of partitions from their end, and a log of
 * what it read that streams consume at their own pace.
 */
export class Tail {
  readonly key: string;
  readonly topics: readonly string[];
  /** Resolves when the consumer reads; rejects with the setup error (unknown topic, broker down). */
  readonly ready: Promise<void>;
  #partitions: TailPartition[] = [];
  readonly #index = new Map<string, number>();
  #counts = new Map<string, number>();
  readonly #consumer: RdKafkaBridgeConsumer;
  readonly #owner: SharedTail;
  readonly #log: Logger;
  readonly #ringMessages: number;
  readonly #ringBytes: number;
  #tracker: PositionTracker | undefined;
  /** The next offset of each partition, and the first offset still in the log (or that could come). */
  #next: number[] = [];
  #retainedFrom: number[] = [];
  /** Each partition's end when the tail opened: a stream from the live end starts there at the earliest. */
  #liveFrom: number[] = [];
  #entries: TailEntry[] = [];
  /** Index in #entries of the oldest retained entry; the array is compacted now and then. */
  #first = 0;
  #nextSeq = 0;
  #bytes = 0;
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

  constructor(
    owner: SharedTail,
    key: string,
    topics: readonly string[],
    kafkaConfig: KafkaConfig,
    log: Logger,
    timeoutMs: number,
    resumeHint: ReadonlyMap<string, number> | undefined,
  ) {
    this.#owner = owner;
    this.key = key;
    this.topics = topics;
    this.#log = log;
    this.#ringMessages = owner.options.ringMessages;
    this.#ringBytes = owner.options.ringBytes;
    // Losing every broker ends the tail at once: its streams would otherwise
    // wait for the watchdog, and new requests would be served from a log that
    // cannot grow instead of being told to come back.
    this.#consumer = new RdKafkaBridgeConsumer(kafkaConfig, {
      'event.error': (err) => {
        if (isAllBrokersDown(err) && this.#tracker) this.#fail(err as Error);
      },
    });
    this.ready = this.#open(timeoutMs, resumeHint);
    // Waiters handle the rejection; this one only keeps it from being "unhandled" when none wait.
    this.ready.catch(() => {});
  }

  async #open(timeoutMs: number, resumeHint: ReadonlyMap<string, number> | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    const consumer = this.#consumer;
    await consumer.connect(remaining());
    const counts = await consumer.partitionCounts(this.topics, remaining());
    for (const t of this.topics) if (!counts.has(t)) throw new TopicNotAvailableError(`Topic ${t} is not available`);
    this.#counts = counts;
    for (const topic of this.topics) {
      for (let partition = 0; partition < (counts.get(topic) as number); partition++) {
        this.#index.set(`${topic}\u0000${partition}`, this.#partitions.length);
        this.#partitions.push({ topic, partition });
      }
    }
    const marks = await Promise.all(
      this.#partitions.map((p) => consumer.watermarks(p.topic, p.partition, remaining())),
    );
    if (this.#closing) return;
    const starts = this.#startOffsets(marks, resumeHint);
    const positions: ResolvedPosition[] = this.#partitions.map((p, i) => ({
      ...p,
      offset: starts[i] as number,
      reason: 'end',
    }));
    this.#liveFrom = marks.map((m) => m.high);
    this.#next = positions.map((p) => p.offset);
    this.#retainedFrom = positions.map((p) => p.offset);
    // Set last: a tracker means the positions above are known (see covers()).
    this.#tracker = new PositionTracker(positions, false);
    consumer.start(
      positions,
      (message) => this.#onMessage(message),
      (err) => this.#fail(err),
    );
    this.#startWatchdog();
  }

  /**
   * Where the tail starts reading: each partition's end, or, when it opens for
   * a stream resuming close to the end (every partition within half a log's
   * share of it), somewhat before that stream's positions, so that the other
   * clients coming back after a server restart, a little behind or ahead of
   * the first, resume from this tail too instead of each opening a consumer.
   */
  #startOffsets(marks: readonly Watermarks[], hint: ReadonlyMap<string, number> | undefined): number[] {
    const ends = marks.map((m) => m.high);
    if (!hint || hint.size !== this.#partitions.length) return ends;
    const window = Math.max(1, Math.floor(this.#ringMessages / (2 * this.#partitions.length)));
    const starts: number[] = [];
    for (let i = 0; i < this.#partitions.length; i++) {
      const p = this.#partitions[i] as TailPartition;
      const m = marks[i] as Watermarks;
      const h = hint.get(`${p.topic}\u0000${p.partition}`);
      if (h === undefined || h < m.low || h > m.high || m.high - h > window) return ends;
      starts.push(Math.max(m.low, h - window));
    }
    return starts;
  }

  /** Partition counts of the tail's topics. */
  get partitionCounts(): ReadonlyMap<string, number> {
    return this.#counts;
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

  /** True when the tail has read up to where it found each partition's end (it started behind it for a resume). */
  get caughtUp(): boolean {
    return this.#next.every((n, i) => n >= (this.#liveFrom[i] as number));
  }

  /** The seq of the next message to arrive; a reader whose cursor is here has read everything. */
  get headSeq(): number {
    return this.#nextSeq;
  }

  /** The seq of the oldest message still in the log. */
  get oldestSeq(): number {
    return this.#nextSeq - (this.#entries.length - this.#first);
  }

  /** The canonical id at the head (offset ids over all of the tail's partitions). */
  headId(): string {
    return this.#tracker?.id() ?? '[]';
  }

  /** The error that stopped the tail, if it failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  entryAt(seq: number): TailEntry {
    return this.#entries[this.#first + (seq - this.oldestSeq)] as TailEntry;
  }

  /**
   * Whether the log holds (or will) every message from these offsets on, so a
   * resuming stream can read it instead of opening a consumer: every
   * partition of the tail is named, at an offset the log has not dropped and
   * the tail will reach.
   */
  covers(offsets: ReadonlyMap<string, number>): boolean {
    if (!this.#tracker || offsets.size !== this.#partitions.length || this.#failure || this.#closing) return false;
    for (const [key, offset] of offsets) {
      const i = this.#index.get(key);
      if (i === undefined) return false;
      // Up to the end the tail found when it opened: it reads at least that far.
      const reach = Math.max(this.#next[i] as number, this.#liveFrom[i] as number);
      if (offset < (this.#retainedFrom[i] as number) || offset > reach) return false;
    }
    return true;
  }

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    return this.#consumer.cachedWatermarks(topic, partition);
  }

  /**
   * Deserializes an entry with `deserializer` (once per tail, whatever the
   * number of streams), on a copy of the message so that two deserializers
   * never see each other's `.message`.
   */
  prepare(entry: TailEntry, deserializer: Deserializer, splice: boolean): Prepared {
    let map = entry.prepared;
    const found = map?.get(deserializer);
    if (found) return found;
    let prepared: Prepared;
    try {
      prepared = { ok: true, value: deserializer({ ...entry.message }), splice };
    } catch (err) {
      const m = entry.message;
      this.#log.warn(
        { err, topic: m.topic, partition: m.partition, offset: m.offset },
        'message skipped: the deserializer failed',
      );
      prepared = { ok: false };
    }
    if (!map) {
      map = new Map();
      entry.prepared = map;
    }
    map.set(deserializer, prepared);
    return prepared;
  }

  /** The payload as SSE or NDJSON text, serialized once; null when it cannot be serialized. */
  serialized(entry: TailEntry, prepared: Prepared & { ok: true }, mode: 'sse' | 'ndjson'): string | null {
    const cached = mode === 'sse' ? prepared.sse : prepared.ndjson;
    if (cached !== undefined) return cached;
    let text: string | null;
    try {
      const payload = prepared.value.message;
      text =
        (prepared.splice ? splicedJson(payload, mode) : undefined) ??
        (mode === 'sse' ? serializeForSse(payload) : serializeForNdjson(payload));
    } catch (err) {
      const m = entry.message;
      this.#log.warn(
        { err, topic: m.topic, partition: m.partition, offset: m.offset },
        'message skipped: it cannot be serialized',
      );
      text = null;
    }
    if (mode === 'sse') prepared.sse = text;
    else prepared.ndjson = text;
    if (text !== null) this.#grow(entry, text.length);
    return text;
  }

  /** The complete SSE event with the tail's id, built once for every stream in step with the tail. */
  sseFrame(entry: TailEntry, prepared: Prepared & { ok: true }, data: string): string {
    if (prepared.sseFrame === undefined) {
      prepared.sseFrame = sseMessage(data, entry.id);
      this.#grow(entry, prepared.sseFrame.length);
    }
    return prepared.sseFrame;
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

  /** Stops delivering to `reader` (it keeps its hold). */
  detach(reader: TailReader): void {
    this.#readers.delete(reader);
  }

  /** Drops a stream's hold; the last one closes the tail (after lingerMs). Resolves once that close is done. */
  release(reader: TailReader | undefined): Promise<void> {
    if (reader) this.#readers.delete(reader);
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users > 0 || this.#closing) return this.#closing ?? Promise.resolve();
    const linger = this.#owner.options.lingerMs;
    if (linger > 0 && !this.#failure) {
      this.#lingerTimer = setTimeout(() => {
        this.#lingerTimer = undefined;
        if (this.#users === 0) void this.close();
      }, linger);
      this.#lingerTimer.unref();
      return Promise.resolve();
    }
    return this.close();
  }

  /** Releases the consumer and forgets the log. Streams still attached are told the tail failed. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#owner.forget(this);
    if (this.#watchdogTimer) clearInterval(this.#watchdogTimer);
    if (this.#countsTimer) clearInterval(this.#countsTimer);
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#failure ??= new KafkaConsumeError('The shared consumer was closed; reconnect to resume');
    const readers = [...this.#readers];
    this.#readers.clear();
    for (const r of readers) r.fail(this.#failure);
    this.#closing = this.#consumer.disconnect().then(() => {
      this.#entries = [];
      this.#first = 0;
    });
    return this.#closing;
  }

  #onMessage(message: KafkaMessage): void {
    const tracker = this.#tracker;
    if (!tracker || this.#closing) return;
    const i = this.#index.get(`${message.topic}\u0000${message.partition}`);
    if (i === undefined || message.offset < (this.#next[i] as number)) return;
    tracker.advanceAt(i, message.offset, message.timestamp);
    this.#next[i] = message.offset + 1;
    const bytes = ENTRY_OVERHEAD_BYTES + (message.value?.length ?? 0) + (message.key?.length ?? 0);
    this.#entries.push({
      seq: this.#nextSeq++,
      message,
      partitionIndex: i,
      id: tracker.id(),
      bytes,
      prepared: undefined,
    });
    this.#bytes += bytes;
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
    this.#trim();
  };

  #grow(entry: TailEntry, chars: number): void {
    entry.bytes += chars;
    this.#bytes += chars;
  }

  /**
   * Drops the oldest messages beyond the ring's bounds. Only messages every
   * reader was offered are dropped (trimming runs after a dispatch); a reader
   * blocked by a slow client that still needed one notices when it drains and
   * moves to a consumer of its own.
   */
  #trim(): void {
    const entries = this.#entries;
    while (
      entries.length - this.#first > 0 &&
      (entries.length - this.#first > this.#ringMessages || this.#bytes > this.#ringBytes)
    ) {
      const e = entries[this.#first] as TailEntry;
      entries[this.#first] = undefined as unknown as TailEntry;
      this.#first++;
      this.#bytes -= e.bytes;
      this.#retainedFrom[e.partitionIndex] = e.message.offset + 1;
    }
    if (this.#first > 1024 && this.#first * 2 > entries.length) {
      this.#entries = entries.slice(this.#first);
      this.#first = 0;
    }
  }

  #fail(err: Error): void {
    if (this.#failure || this.#closing) return;
    this.#log.error({ err, topics: this.topics }, 'the shared consumer failed; ending its streams');
    this.#failure = new KafkaConsumeError('Reading from Kafka failed', { cause: err });
    const readers = [...this.#readers];
    this.#readers.clear();
    // New streams get a fresh tail; this one closes when its last stream lets go.
    this.#owner.forget(this);
    for (const r of readers) r.fail(this.#failure);
  }

  /**
   * A tail reads the partitions its topics had when it opened. When one grows,
   * the tail ends its streams: they come back with ids that lack the new
   * partitions, which a consumer of their own starts at their beginning, and
   * new live streams get a tail that reads them all.
   */
  #checkPartitionCounts(): void {
    if (this.#checkingCounts || this.#failure || this.#closing) return;
    this.#checkingCounts = true;
    this.#consumer
      .partitionCounts(this.topics, STALL_CHECK_MS)
      .then((counts) => {
        for (const t of this.topics) {
          if ((counts.get(t) ?? 0) > (this.#counts.get(t) ?? 0)) {
            this.#log.info({ topic: t }, 'partitions were added; the shared consumer restarts its streams');
            this.#fail(new Error(`partitions were added to ${t}`));
            return;
          }
        }
      })
      // A failed lookup says nothing about partitions (the broker may be away: see the event handler).
      .catch(() => {})
      .finally(() => {
        this.#checkingCounts = false;
      });
  }

  #startWatchdog(): void {
    this.#watchdogTimer = watchForStall(
      this.#consumer,
      () => this.#partitions.map((p, i) => ({ ...p, nextOffset: this.#next[i] as number })),
      () => false,
      () => this.#fail(new Error('no delivery while the partition end moved')),
    );
    this.#countsTimer = setInterval(() => this.#checkPartitionCounts(), STALL_CHECK_MS);
    this.#countsTimer.unref();
  }
}

/**
 * Shares one consumer among all the streams of this process that read the same
 * topics from their live end (and those resuming at a position its log still
 * holds). kafkaSse uses a process-wide instance unless `options.sharedTail`
 * names another one, or `null` to give every stream a consumer of its own.
 */
export class SharedTail {
  readonly options: Readonly<Required<SharedTailOptions>>;
  readonly #tails = new Map<string, Tail>();

  constructor(options: SharedTailOptions = {}) {
    const o = { ...SHARED_TAIL_DEFAULTS, ...options };
    for (const key of ['ringMessages', 'ringBytes', 'lingerMs'] as const) {
      const v = o[key];
      const min = key === 'lingerMs' ? 0 : 1;
      if (!Number.isSafeInteger(v) || v < min) {
        throw new ConfigurationError(`SharedTail options.${key} must be an integer ≥ ${min}, got ${String(v)}`);
      }
    }
    this.options = Object.freeze(o);
  }

  /** Number of tails (consumers) open now. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * The tail for these topics and settings, opened if needed, and held for the
   * caller. `resumeHint`: the positions of a resuming stream, used only when
   * a tail is opened (see Tail#startOffsets).
   */
  acquire(
    config: string,
    topics: readonly string[],
    kafkaConfig: KafkaConfig,
    log: Logger,
    timeoutMs: number,
    resumeHint?: ReadonlyMap<string, number>,
  ): Tail {
    const key = `${config}\u0001${topics.join(',')}`;
    let tail = this.#tails.get(key);
    if (!tail) {
      tail = new Tail(this, key, topics, kafkaConfig, log, timeoutMs, resumeHint);
      this.#tails.set(key, tail);
      const created = tail;
      // A tail that could not start is not reused: the next request tries again.
      created.ready.catch(() => this.forget(created));
    }
    tail.hold();
    return tail;
  }

  /** @internal Removes a tail that closed or failed. */
  forget(tail: Tail): void {
    if (this.#tails.get(tail.key) === tail) this.#tails.delete(tail.key);
  }

  /** Ends every stream reading a tail of this instance (they get an error event and reconnect) and releases the consumers. */
  async close(): Promise<void> {
    await Promise.all([...this.#tails.values()].map((t) => t.close()));
  }
}

let processTail: SharedTail | undefined;

/** The process-wide SharedTail kafkaSse uses by default. */
export function defaultSharedTail(): SharedTail {
  processTail ??= new SharedTail();
  return processTail;
}
