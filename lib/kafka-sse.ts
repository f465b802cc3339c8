// kafkaSse(): validate → resolve positions → consume → write → tear down.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type BridgeConsumer,
  type KafkaMessage,
  RdKafkaBridgeConsumer,
  type Watermarks,
  watchForStall,
} from './consumer.ts';
import {
  BrokerUnavailableError,
  FilterError,
  InvalidAssignmentError,
  KafkaConsumeError,
  KafkaSseError,
  TooManyPartitionsError,
  TopicNotAvailableError,
  toKafkaSseError,
} from './errors.ts';
import { type CompiledFilter, compileFilter, parseFilterQuery } from './filters.ts';
import {
  type DeserializedMessage,
  defaultDeserializer,
  type KafkaSseOptions,
  type Logger,
  type NormalizedOptions,
  normalizeOptions,
} from './options.ts';
import {
  type Assignments,
  expandPartitions,
  type LostRange,
  PositionTracker,
  parseAssignments,
  parseAtTimestamp,
  parseLastEventId,
  type Requested,
  type ResolvedPosition,
  resolvePositions,
} from './positions.ts';
import { lastEventIdOf, requestIdOf, streamModeOf } from './request.ts';
import { StreamWriter, writeJsonError } from './response.ts';
import { configKey, type Tail, type TailReader } from './shared-tail.ts';
import { ndjsonLine, serializeForNdjson, serializeForSse, splicedJson, sseEvent, sseMessage } from './sse-format.ts';
import type { EndReason, StreamHandle, StreamSnapshot } from './stats.ts';

/** How often a pending rewind checks whether retention removed its message. */
const REWIND_CHECK_MS = 5000;

/** Thrown inside setup when the client left: not an error, just stop. */
class ClientGone extends Error {}

/** Thrown inside setup when options.signal was aborted. */
class Aborted extends Error {}

/**
 * Streams Kafka messages to one HTTP client as Server-Sent Events (or NDJSON
 * when the client prefers JSON), starting from the client's Last-Event-ID, the
 * given assignments, or `atTimestamp`. Each call owns a private consumer that
 * uses assign() and never commits.
 *
 * The promise resolves when the connection is over and the consumer is
 * released. It never rejects: errors are answered to the client (a status and
 * JSON body before the stream starts, an error event after) and logged.
 *
 * @param req the request (Node's IncomingMessage, or a framework's raw request)
 * @param res the response (Node's ServerResponse, or a framework's raw response)
 * @param assignments topic names (array or comma-separated string) and/or `{topic, partition, offset|timestamp}` objects
 * @param options see {@link KafkaSseOptions}
 * @param atTimestamp start plain topics at the first message at or after this time (ms, numeric string or Date)
 */
export async function kafkaSse(
  req: IncomingMessage,
  res: ServerResponse,
  assignments: Assignments,
  options?: KafkaSseOptions,
  atTimestamp?: number | string | Date | null,
): Promise<void> {
  const requestId = requestIdOf(req);
  let opts: NormalizedOptions;
  try {
    opts = normalizeOptions(options);
  } catch (err) {
    const e = toKafkaSseError(err);
    const base = (options?.logger as Logger | undefined) ?? undefined;
    base?.error?.({ err: e, requestId }, 'kafkaSse called with invalid options');
    if (!base) process.emitWarning(`kafka-sse-bridge: ${e.message}`);
    writeJsonError(res, e.toJSON(), {});
    return;
  }
  const session = new StreamSession(req, res, opts, requestId);
  await session.run(assignments, atTimestamp);
}

class StreamSession {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #opts: NormalizedOptions;
  readonly #log: Logger;
  #consumer: BridgeConsumer | undefined;
  /** The shared tail this stream reads instead of a consumer of its own, while it does. */
  #tail: Tail | undefined;
  /** Seq of the next tail entry to read. */
  #cursor = 0;
  /** True while the stream's positions equal the tail's, so the tail's ready-made frames carry the right id. */
  #synced = false;
  readonly #reader: TailReader = {
    pump: () => this.#pump(),
    fail: (err) =>
      this.#endWithError(
        err instanceof KafkaSseError ? err : new KafkaConsumeError('Reading from Kafka failed', { cause: err }),
      ),
  };
  #writer: StreamWriter | undefined;
  #tracker: PositionTracker | undefined;
  /** The server's filter and the client's query filter, each null when absent. */
  #filter: CompiledFilter | null = null;
  #queryFilter: CompiledFilter | null = null;
  #clientGone = false;
  #aborted = false;
  #finished = false;
  #resolveDone!: () => void;
  readonly #done = new Promise<void>((resolve) => {
    this.#resolveDone = resolve;
  });
  #started = 0;
  #setupMs = 0;
  #delivered = 0;
  #deliveredReported = 0;
  /** Messages per topic since the last 'sent' event; only for a registry and several topics. */
  #sentByTopic: Map<string, number> | undefined;
  #skipped = 0;
  #topics: string[] = [];
  #handle: StreamHandle | undefined;
  #maxDurationTimer: NodeJS.Timeout | undefined;
  #blocked = false;
  /** The id of the last event written; a heartbeat reports the position when it moved past it. */
  #lastSentId: string | undefined;
  /** Per partition, the first message dropped while blocked: where reading resumes. */
  readonly #rewinds = new Map<string, { topic: string; partition: number; offset: number }>();
  #rewindTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  readonly #requestId: string;
  /** The id in the registry: the request id, made unique if another open stream has it (X-Request-ID is client-chosen). */
  #streamId: string;

  constructor(req: IncomingMessage, res: ServerResponse, opts: NormalizedOptions, requestId: string) {
    this.#req = req;
    this.#res = res;
    this.#opts = opts;
    this.#log = opts.logger.child({ requestId });
    this.#requestId = requestId;
    this.#streamId = requestId;
  }

  async run(assignments: Assignments, atTimestamp: unknown): Promise<void> {
    this.#started = Date.now();
    const onClose = () => this.#onClientGone();
    this.#res.once('close', onClose);
    const signal = this.#opts.signal;
    const onAbort = () => {
      // While setting up, #setup stops at its next step; once streaming, end now.
      this.#aborted = true;
      if (this.#writer) void this.#finish('aborted');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) this.#aborted = true;
    try {
      await this.#setup(assignments, atTimestamp);
      await this.#done;
    } catch (err) {
      if (err instanceof Aborted) {
        this.#failSetup(
          new BrokerUnavailableError('The server is shutting down; try again shortly', {
            retryAfterSeconds: Math.max(1, Math.ceil(this.#opts.unavailableRetryMs / 1000)),
          }),
        );
      } else if (!(err instanceof ClientGone)) {
        this.#failSetup(err);
      }
      await this.#finish(
        err instanceof ClientGone ? 'client-closed' : err instanceof Aborted ? 'aborted' : 'setup-failed',
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#res.off('close', onClose);
    }
  }

  /** Everything before the first byte: errors here still get a real HTTP status. */
  async #setup(assignments: Assignments, atTimestampInput: unknown): Promise<void> {
    const opts = this.#opts;
    const mode = streamModeOf(this.#req, opts.disableSSEFormatting);
    // Filters are compiled (and client regexes vetted) before anything touches Kafka.
    if (opts.filter !== null) this.#filter = compileFilter(opts.filter, opts.filterLimits);
    if (opts.queryFilters) {
      const fields = parseFilterQuery(this.#req.url ?? '', opts.filterLimits);
      if (fields.length > 0) this.#queryFilter = compileFilter(fields, opts.filterLimits);
    }
    const maxEntries = Math.min(opts.maxPartitions, 100_000);
    const lastEventId = lastEventIdOf(this.#req);
    const atTimestamp = parseAtTimestamp(atTimestampInput);
    const requested: Requested[] =
      lastEventId !== undefined ? parseLastEventId(lastEventId, maxEntries) : parseAssignments(assignments, maxEntries);
    const topics = [...new Set(requested.map((r) => r.topic))];
    this.#topics = topics;
    this.#throwIfGone();
    await this.#checkAllowed(topics);
    this.#throwIfGone();

    const shared = this.#sharedTailFor(requested, topics, lastEventId !== undefined, atTimestamp);
    let resolved = shared ? await this.#joinTail(shared.tail, shared.resume) : undefined;
    resolved ??= await this.#resolvePrivate(requested, topics, lastEventId !== undefined, atTimestamp);
    this.#throwIfGone();

    const { positions, lost } = resolved;
    this.#tracker = new PositionTracker(positions, opts.useTimestampForId);
    const writer = new StreamWriter(this.#res, mode, {
      heartbeatMs: opts.heartbeatMs,
      onFull: () => this.#block(),
      onDrain: () => this.#unblock(),
      onFlush: opts.registry ? (bytes) => this.#reportSent(bytes) : undefined,
      onIdle: () => this.#positionEvent(),
    });
    this.#writer = writer;
    writer.open(opts.headers, opts.retryMs);
    this.#setupMs = Date.now() - this.#started;
    if (opts.maxDurationMs !== null) {
      this.#maxDurationTimer = setTimeout(() => void this.#finish('max-duration'), opts.maxDurationMs);
    }
    if (opts.registry) {
      if (topics.length > 1) this.#sentByTopic = new Map();
      this.#streamId = opts.registry.uniqueId(this.#requestId);
      this.#handle = this.#makeHandle(mode);
      opts.registry.register(this.#handle);
    }
    for (const range of lost) this.#reportLost(range);
    this.#log.info(
      {
        positions: positions.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          offset: p.offset,
          reason: p.reason,
        })),
        mode,
        shared: this.#tail !== undefined,
      },
      'stream started',
    );
    if (this.#tail) {
      this.#tail.attach(this.#reader);
      // A resume reads its backlog from the log now; a live stream waits for the next message.
      if (this.#cursor < this.#tail.headSeq) this.#pump();
      return;
    }
    const consumer = this.#consumer as BridgeConsumer;
    consumer.start(
      positions,
      (message) => this.#onMessage(message),
      (err) => this.#onConsumeError(err),
    );
    this.#startWatchdog(consumer);
  }

  /** Positions from a consumer of this stream's own: explicit starts, times, tails, resumes the shared tail cannot serve. */
  async #resolvePrivate(
    requested: readonly Requested[],
    topics: readonly string[],
    fromLastEventId: boolean,
    atTimestamp: number | undefined,
  ): Promise<{ positions: ResolvedPosition[]; lost: LostRange[] }> {
    const opts = this.#opts;
    const consumer = new RdKafkaBridgeConsumer(opts.kafkaConfig, opts.kafkaEventHandlers);
    this.#consumer = consumer;
    const deadline = Date.now() + opts.connectTimeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    let counts: Map<string, number>;
    let resolved: { positions: ResolvedPosition[]; lost: LostRange[] };
    try {
      await consumer.connect(remaining());
      this.#throwIfGone();
      counts = await consumer.partitionCounts(topics, remaining());
      this.#throwIfGone();
      for (const t of topics) if (!counts.has(t)) throw new TopicNotAvailableError(`Topic ${t} is not available`);
      for (const r of requested) {
        const count = counts.get(r.topic) as number;
        if (r.kind === 'partition' && r.partition >= count) {
          throw new InvalidAssignmentError(`Topic ${r.topic} has no partition ${r.partition}`);
        }
      }
      const expanded = expandPartitions(requested, counts, atTimestamp, fromLastEventId, opts.tail ?? undefined);
      if (expanded.length > opts.maxPartitions) {
        throw new TooManyPartitionsError(
          `This request would read ${expanded.length} partitions; at most ${opts.maxPartitions} are allowed`,
        );
      }
      resolved = await resolvePositions(expanded, {
        watermarks: (t, p) => consumer.watermarks(t, p, remaining()),
        offsetsForTimes: (entries) => consumer.offsetsForTimes(entries, remaining()),
      });
    } catch (err) {
      throw this.#unavailable(err);
    }
    return resolved;
  }

  /**
   * Maps a setup failure: the client's mistakes and configuration errors pass
   * through; anything else means Kafka could not be reached.
   */
  #unavailable(err: unknown): unknown {
    if (err instanceof ClientGone || err instanceof Aborted || (err as KafkaSseError).statusCode < 500) return err;
    if ((err as KafkaSseError).code === 'CONFIGURATION') return err;
    const opts = this.#opts;
    this.#log.warn({ err }, 'Kafka unavailable during setup');
    if (opts.connectErrorHandler) {
      try {
        opts.connectErrorHandler(err as Error);
      } catch (handlerErr) {
        this.#log.error({ err: handlerErr }, 'connectErrorHandler threw');
      }
    }
    return new BrokerUnavailableError('Kafka is unavailable; try again shortly', {
      cause: err,
      retryAfterSeconds: Math.max(1, Math.ceil(opts.unavailableRetryMs / 1000)),
    });
  }

  /**
   * The shared tail this request can read, held for it, or undefined: streams
   * of whole topics from their end join (opening the tail if needed); resumes
   * join only a tail whose log still holds every position they name.
   * Requests with their own event handlers or with function-valued settings
   * need a consumer of their own.
   */
  #sharedTailFor(
    requested: readonly Requested[],
    topics: readonly string[],
    resuming: boolean,
    atTimestamp: number | undefined,
  ): { tail: Tail; resume: Map<string, number> | undefined } | undefined {
    const opts = this.#opts;
    const shared = opts.sharedTail;
    if (shared === null || opts.kafkaEventHandlers !== undefined) return undefined;
    const key = configKey(opts.kafkaConfig);
    if (key === undefined) return undefined;
    if (!resuming && atTimestamp === undefined && opts.tail === null && requested.every((r) => r.kind === 'topic')) {
      return {
        tail: shared.acquire(key, topics, opts.kafkaConfig, opts.logger, opts.connectTimeoutMs),
        resume: undefined,
      };
    }
    if (atTimestamp !== undefined || opts.tail !== null) return undefined;
    const offsets = new Map<string, number>();
    for (const r of requested) {
      if (r.kind !== 'partition' || r.offset === undefined) return undefined;
      offsets.set(`${r.topic}\u0000${r.partition}`, r.offset);
    }
    // The running tail for these topics, or a new one that starts a little
    // before these positions when they are close to the end (a server
    // restart's reconnecting clients), else at the end.
    return {
      tail: shared.acquire(key, topics, opts.kafkaConfig, opts.logger, opts.connectTimeoutMs, offsets),
      resume: offsets,
    };
  }

  /**
   * Positions for a stream reading the shared tail: its head, or the resume
   * offsets its log covers. Undefined when it does not cover them: the tail
   * is let go and the stream needs a consumer of its own.
   */
  async #joinTail(
    tail: Tail,
    resume: Map<string, number> | undefined,
  ): Promise<{ positions: ResolvedPosition[]; lost: LostRange[] } | undefined> {
    this.#tail = tail;
    try {
      await tail.ready;
    } catch (err) {
      throw this.#unavailable(err);
    }
    this.#throwIfGone();
    if (resume !== undefined && !tail.covers(resume)) return this.#leaveTailDuringSetup(tail);
    if (tail.partitions.length > this.#opts.maxPartitions) {
      throw new TooManyPartitionsError(
        `This request would read ${tail.partitions.length} partitions; at most ${this.#opts.maxPartitions} are allowed`,
      );
    }
    if (tail.failure) throw this.#unavailable(tail.failure);
    if (resume === undefined) {
      // Everything from here to attach() is synchronous, so no message can
      // arrive between taking the head and starting to read from it.
      this.#cursor = tail.headSeq;
      // A tail still reading up to the end it found reaches this stream's start later.
      this.#synced = !this.#opts.useTimestampForId && tail.caughtUp;
      return { positions: tail.headPositions(), lost: [] };
    }
    // Reading starts at the oldest entry; the tracker skips what precedes each position.
    this.#cursor = tail.oldestSeq;
    const positions = tail.partitions.map((p) => ({
      ...p,
      offset: resume.get(`${p.topic}\u0000${p.partition}`) as number,
      reason: 'offset' as const,
    }));
    return { positions, lost: [] };
  }

  /** A resume the tail cannot serve: let the tail go (without waiting for it to close) and fall back. */
  #leaveTailDuringSetup(tail: Tail): undefined {
    this.#tail = undefined;
    void tail.release(undefined);
    return undefined;
  }

  async #checkAllowed(topics: readonly string[]): Promise<void> {
    const allowed = this.#opts.allowedTopics;
    let list: readonly string[] | undefined;
    if (typeof allowed === 'function') {
      list = await allowed(this.#req);
      if (!Array.isArray(list)) {
        throw new InvalidAssignmentError('allowedTopics(req) did not return an array');
      }
    } else {
      list = allowed;
    }
    const set = list ? new Set(list) : undefined;
    for (const t of topics) {
      const ok = set ? set.has(t) : !t.startsWith('__');
      // Same answer for "does not exist" and "not allowed": a client learns nothing about other topics.
      if (!ok) throw new TopicNotAvailableError(`Topic ${t} is not available`);
    }
  }

  #reportLost(range: LostRange): void {
    this.#log.warn(range, 'requested offset is no longer retained; resuming at the oldest retained message');
    this.#writer?.control('lost', range);
  }

  /**
   * The socket is full: stop fetching, and drop what still arrives. node-rdkafka
   * hands over, without limit, everything its thread already took from
   * librdkafka, so pausing alone would let a slow client pile up megabytes;
   * instead each partition remembers the first message it dropped and is
   * rewound there when the client drains.
   */
  #block(): void {
    this.#blocked = true;
    this.#consumer?.pause();
  }

  #unblock(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    if (this.#tail) {
      // The log kept everything the client did not take: read on from the cursor.
      this.#pump();
      return;
    }
    const rewinds = [...this.#rewinds.values()];
    this.#consumer?.resumeFrom(rewinds);
    if (rewinds.length > 0) this.#watchRewinds();
  }

  /**
   * A rewind waits for the exact message it dropped. Should retention delete
   * it meanwhile, librdkafka restarts at the oldest retained message instead:
   * tell the client what was lost and accept what comes.
   */
  #watchRewinds(): void {
    if (this.#rewindTimer) return;
    this.#rewindTimer = setInterval(() => {
      if (this.#finished || this.#rewinds.size === 0) {
        clearInterval(this.#rewindTimer);
        this.#rewindTimer = undefined;
        return;
      }
      for (const [key, r] of this.#rewinds) {
        const marks = this.#consumer?.cachedWatermarks(r.topic, r.partition);
        if (marks && marks.low > r.offset) {
          this.#rewinds.delete(key);
          this.#reportLost({
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
      if (!this.#blocked && this.#rewinds.size > 0) this.#consumer?.resumeFrom([...this.#rewinds.values()]);
    }, REWIND_CHECK_MS);
    this.#rewindTimer.unref();
  }

  #onMessage(message: KafkaMessage): void {
    const writer = this.#writer;
    const tracker = this.#tracker;
    if (this.#finished || !writer || !tracker) return;
    if (this.#blocked || this.#rewinds.size > 0) {
      const key = `${message.topic}\u0000${message.partition}`;
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
    }
    if (!tracker.advance(message.topic, message.partition, message.offset, message.timestamp)) return;
    let deserialized: DeserializedMessage;
    try {
      deserialized = this.#opts.deserializer(message);
    } catch (err) {
      this.#skipped++;
      this.#log.warn(
        { err, topic: message.topic, partition: message.partition, offset: message.offset },
        'message skipped: the deserializer failed',
      );
      return;
    }
    if (!this.#passes(deserialized, message)) return;
    const payload = deserialized?.message;
    let data: string;
    try {
      // The original text when the library's own deserializer made the
      // payload and no filterer could have changed it since.
      data =
        (this.#opts.filterer === null && this.#opts.deserializer === defaultDeserializer
          ? splicedJson(payload, writer.mode)
          : undefined) ?? (writer.mode === 'sse' ? serializeForSse(payload) : serializeForNdjson(payload));
    } catch (err) {
      // A BigInt, a cycle, or nesting too deep for JSON.stringify: skipped like
      // an undeserializable message, never thrown into node-rdkafka's callback.
      this.#skipped++;
      this.#log.warn(
        { err, topic: message.topic, partition: message.partition, offset: message.offset },
        'message skipped: it cannot be serialized',
      );
      return;
    }
    this.#countDelivered(message.topic);
    this.#lastSentId = tracker.id();
    writer.message(data, this.#lastSentId);
  }

  /**
   * Applies the server's filter, the client's query filter and `filterer`.
   * False skips the message (counted); a filter that throws ends the stream
   * with an error event (and also returns false).
   */
  #passes(deserialized: DeserializedMessage, message: KafkaMessage): boolean {
    const filter = this.#filter;
    const queryFilter = this.#queryFilter;
    if (filter !== null || queryFilter !== null) {
      let keep: boolean;
      try {
        keep =
          (filter === null || filter.test(deserialized)) && (queryFilter === null || queryFilter.test(deserialized));
      } catch (err) {
        // Only a custom deserializer's getters can throw here.
        this.#log.error(
          { err, topic: message.topic, partition: message.partition, offset: message.offset },
          'filter threw; ending the stream',
        );
        this.#endWithError(new FilterError('The stream filter failed', { cause: err }));
        return false;
      }
      if (!keep) {
        this.#skipped++;
        return false;
      }
    }
    if (this.#opts.filterer) {
      let keep: unknown;
      try {
        keep = this.#opts.filterer(deserialized);
      } catch (err) {
        this.#log.error(
          { err, topic: message.topic, partition: message.partition, offset: message.offset },
          'filterer threw; ending the stream',
        );
        this.#endWithError(new FilterError('The stream filter failed', { cause: err }));
        return false;
      }
      if (!keep) {
        this.#skipped++;
        return false;
      }
    }
    return true;
  }

  #countDelivered(topic: string): void {
    this.#delivered++;
    const byTopic = this.#sentByTopic;
    if (byTopic !== undefined) byTopic.set(topic, (byTopic.get(topic) ?? 0) + 1);
  }

  /**
   * Reads the shared tail's log from the cursor until the client's buffer is
   * full or the log's head is reached, then writes the batch. Each message is
   * deserialized and serialized once for all streams (the tail caches it);
   * a stream in step with the tail writes the tail's ready-made frame.
   */
  #pump(): void {
    const tail = this.#tail;
    const writer = this.#writer;
    const tracker = this.#tracker;
    if (!tail || !writer || !tracker || this.#finished || this.#blocked) return;
    if (this.#cursor < tail.oldestSeq) {
      // The log dropped messages this stream still needs: a slow client.
      void this.#leaveTail();
      return;
    }
    const head = tail.headSeq;
    const deserializer = this.#opts.deserializer;
    const mode = writer.mode;
    while (this.#cursor < head && !this.#blocked && !this.#finished) {
      const entry = tail.entryAt(this.#cursor++);
      const m = entry.message;
      // The tracker's positions were made in the tail's partition order (see #joinTail).
      if (!tracker.advanceAt(entry.partitionIndex, m.offset, m.timestamp)) continue;
      const prepared = tail.prepare(entry, deserializer, deserializer === defaultDeserializer);
      if (!prepared.ok) {
        this.#skipped++;
        continue;
      }
      if (!this.#passes(prepared.value, m)) continue;
      const data = tail.serialized(entry, prepared, mode);
      if (data === null) {
        this.#skipped++;
        continue;
      }
      this.#countDelivered(m.topic);
      if (mode === 'ndjson') {
        writer.framed(ndjsonLine(data));
      } else if (this.#synced) {
        this.#lastSentId = entry.id;
        writer.framed(tail.sseFrame(entry, prepared, data));
      } else {
        this.#lastSentId = tracker.id();
        writer.framed(sseMessage(data, this.#lastSentId));
      }
    }
    if (this.#finished) return;
    if (!this.#synced && this.#cursor === head && !this.#opts.useTimestampForId) {
      this.#synced = tracker.id() === tail.headId();
    }
    writer.flush();
  }

  /**
   * Moves a stream that fell out of the shared tail's log onto a consumer of
   * its own, from its exact positions: nothing is lost and the client sees no
   * break. It never returns to the tail.
   */
  async #leaveTail(): Promise<void> {
    const tail = this.#tail;
    const tracker = this.#tracker;
    if (!tail || !tracker) return;
    this.#tail = undefined;
    void tail.release(this.#reader);
    this.#log.info('the client fell behind the shared tail; reading on with a consumer of its own');
    const opts = this.#opts;
    const consumer = new RdKafkaBridgeConsumer(opts.kafkaConfig, opts.kafkaEventHandlers);
    this.#consumer = consumer;
    try {
      await consumer.connect(opts.connectTimeoutMs);
    } catch (err) {
      this.#onConsumeError(err as Error);
      return;
    }
    if (this.#finished) return;
    consumer.start(
      tracker.nextOffsets().map((p) => ({ topic: p.topic, partition: p.partition, offset: p.nextOffset })),
      (message) => this.#onMessage(message),
      (err) => this.#onConsumeError(err),
    );
    this.#startWatchdog(consumer);
  }

  #cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    return (this.#tail ?? this.#consumer)?.cachedWatermarks(topic, partition);
  }

  /**
   * When filtered or undeserializable messages moved the resume position past
   * the last event's id, the heartbeat becomes a `position` event carrying the
   * new id (EventSource remembers the id of any event with data), so a
   * reconnect does not read those messages again.
   */
  #positionEvent(): string | undefined {
    const id = this.#tracker?.id();
    if (id === undefined || id === this.#lastSentId || this.#blocked) return undefined;
    this.#lastSentId = id;
    return sseEvent('position', '{}', id);
  }

  #makeHandle(mode: 'sse' | 'ndjson'): StreamHandle {
    const client = this.#req.socket?.remoteAddress ?? 'unknown';
    return {
      id: this.#streamId,
      snapshot: (): StreamSnapshot => ({
        id: this.#streamId,
        client,
        topics: this.#topics,
        mode,
        startedAt: this.#started,
        setupMs: this.#setupMs,
        messagesSent: this.#delivered,
        bytesSent: this.#writer?.bytesWritten ?? 0,
        messagesSkipped: this.#skipped,
        partitions: (this.#tracker?.nextOffsets() ?? []).map((p) => {
          const marks = this.#cachedWatermarks(p.topic, p.partition);
          return { ...p, lag: marks ? Math.max(0, marks.high - p.nextOffset) : null };
        }),
      }),
      disconnect: () => void this.#finish('disconnected'),
    };
  }

  #reportSent(bytes: number): void {
    const messages = this.#delivered - this.#deliveredReported;
    this.#deliveredReported = this.#delivered;
    const byTopic = this.#sentByTopic;
    this.#opts.registry?.emit('sent', { id: this.#streamId, topics: this.#topics }, messages, bytes, byTopic);
    byTopic?.clear();
  }

  #startWatchdog(consumer: BridgeConsumer): void {
    this.#watchdogTimer = watchForStall(
      consumer,
      () => this.#tracker?.nextOffsets() ?? [],
      () => this.#blocked,
      () => {
        this.#log.error('the consumer stopped delivering; ending the stream so the client resumes elsewhere');
        this.#endWithError(
          new KafkaConsumeError('Reading from Kafka stalled; reconnect to resume', {
            cause: new Error('no delivery while the partition end moved'),
          }),
        );
      },
    );
  }

  #onConsumeError(err: Error): void {
    this.#log.error({ err }, 'consuming failed; ending the stream');
    this.#endWithError(new KafkaConsumeError('Reading from Kafka failed', { cause: err }));
  }

  #endWithError(error: KafkaSseError): void {
    if (this.#finished) return;
    this.#writer?.error(error.toJSON());
    this.#opts.registry?.reportError(error.code, error.statusCode);
    void this.#finish('error');
  }

  #failSetup(err: unknown): void {
    const e = toKafkaSseError(err);
    if (this.#clientGone) return;
    this.#opts.registry?.reportError(e.code, e.statusCode);
    if (e.statusCode >= 500 && e.code !== 'BROKER_UNAVAILABLE') this.#log.error({ err: e }, 'stream setup failed');
    else this.#log.info({ code: e.code, message: e.message }, 'stream refused');
    if (e.code === 'BROKER_UNAVAILABLE' && streamModeOf(this.#req, this.#opts.disableSSEFormatting) === 'sse') {
      // EventSource never reconnects after a non-200 answer, so an SSE client is
      // told to retry inside a 200 stream that ends at once.
      const writer = new StreamWriter(this.#res, 'sse', { heartbeatMs: null, onFull: () => {}, onDrain: () => {} });
      writer.open(this.#opts.headers, this.#opts.unavailableRetryMs);
      writer.error(e.toJSON());
      writer.end();
      return;
    }
    writeJsonError(this.#res, e.toJSON(), this.#opts.headers, e.retryAfterSeconds);
  }

  #throwIfGone(): void {
    if (this.#clientGone) throw new ClientGone();
    if (this.#aborted) throw new Aborted();
  }

  #onClientGone(): void {
    if (this.#res.writableFinished && this.#finished) return;
    this.#clientGone = true;
    this.#writer?.dispose();
    // During setup, #setup notices at its next step; once streaming, finish now.
    if (this.#writer) void this.#finish('client-closed');
  }

  /** Ends the response (if still open), releases the consumer, and settles run(). Idempotent. */
  async #finish(reason: EndReason): Promise<void> {
    if (this.#finished) return this.#done;
    this.#finished = true;
    if (this.#maxDurationTimer) clearTimeout(this.#maxDurationTimer);
    if (this.#rewindTimer) clearInterval(this.#rewindTimer);
    if (this.#watchdogTimer) clearInterval(this.#watchdogTimer);
    if (!this.#clientGone) this.#writer?.end();
    if (this.#handle) this.#opts.registry?.unregister(this.#handle, reason);
    const tail = this.#tail;
    if (tail) {
      this.#tail = undefined;
      try {
        await tail.release(this.#reader);
      } catch (err) {
        this.#log.warn({ err }, 'releasing the shared consumer failed');
      }
    }
    const consumer = this.#consumer;
    if (consumer) {
      try {
        await consumer.disconnect();
      } catch (err) {
        this.#log.warn({ err }, 'consumer disconnect failed');
      }
    }
    this.#log.info(
      { reason, delivered: this.#delivered, skipped: this.#skipped, durationMs: Date.now() - this.#started },
      'stream ended',
    );
    this.#resolveDone();
    return this.#done;
  }
}
