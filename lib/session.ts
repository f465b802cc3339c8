// One stream, from its first byte to its end: the writer, the positions, the
// per-message pipeline and one source, swapped when the shared tail hands the
// stream to a consumer of its own. It never asks which source it has.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KafkaConfig } from './consumer.ts';
import { ConsumerSource } from './consumer-source.ts';
import { KafkaConsumeError, type KafkaSseError } from './errors.ts';
import { endUnreadRequest } from './http-response.ts';
import type { SharedMessage, StreamPipeline } from './pipeline.ts';
import type { PositionTracker } from './position-tracker.ts';
import type { LostRange } from './positions.ts';
import type { EndReason, StreamHandle, StreamRegistry, StreamSnapshot } from './registry.ts';
import type { ConsumerFactory } from './shared-tail.ts';
import type { SourceSink, StreamSource } from './source.ts';
import { sseEvent } from './sse-format.ts';
import type { KafkaMessage, Logger } from './types.ts';
import { StreamWriter } from './writer.ts';

/** What a session streams with, made by setup. */
export interface SessionParts {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly log: Logger;
  readonly pipeline: StreamPipeline;
  readonly positions: PositionTracker;
  readonly source: StreamSource;
  readonly topics: readonly string[];
  readonly requestId: string;
  readonly startedAt: number;
  readonly registry: StreamRegistry | undefined;
  /** For the hand-off from the shared tail to a consumer of the stream's own. */
  readonly consumer: {
    create: ConsumerFactory;
    config: KafkaConfig;
    handlers: Record<string, (...args: unknown[]) => void> | undefined;
    connectTimeoutMs: number;
  };
  readonly stream: {
    headers: Record<string, string>;
    retryMs: number | null;
    heartbeatMs: number | null;
    maxDurationMs: number | null;
    stalledWriteTimeoutMs: number | null;
    /** NDJSON's Content-Type (see ndjsonContentType). */
    contentType: string;
  };
}

/** A stream that has passed setup. `done` settles when it ended and its source was released. */
export class StreamSession implements SourceSink {
  readonly #parts: SessionParts;
  readonly #log: Logger;
  readonly #writer: StreamWriter;
  readonly #positions: PositionTracker;
  readonly #pipeline: StreamPipeline;
  #source: StreamSource;
  #finished = false;
  #clientGone = false;
  #resolveDone!: () => void;
  readonly done = new Promise<void>((resolve) => {
    this.#resolveDone = resolve;
  });
  #delivered = 0;
  #deliveredReported = 0;
  /** Messages per topic since the last 'sent' event; only for a registry and several topics. */
  readonly #sentByTopic: Map<string, number> | undefined;
  /** The position moved past the last event's id (messages skipped since), so a heartbeat reports it. */
  #positionMoved = true;
  #handle: StreamHandle | undefined;
  #streamId: string;
  #maxDurationTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #handingOff = false;

  constructor(parts: SessionParts) {
    this.#parts = parts;
    this.#log = parts.log;
    this.#positions = parts.positions;
    this.#pipeline = parts.pipeline;
    this.#source = parts.source;
    this.#streamId = parts.requestId;
    const registry = parts.registry;
    this.#sentByTopic = registry && parts.topics.length > 1 ? new Map() : undefined;
    this.#writer = new StreamWriter(parts.res, parts.pipeline.mode, {
      heartbeatMs: parts.stream.heartbeatMs,
      onFull: () => this.#block(),
      onDrain: () => this.#unblock(),
      onFlush: registry ? (bytes) => this.#reportSent(bytes) : undefined,
      onIdle: () => this.#positionEvent(),
      contentType: parts.stream.contentType,
    });
  }

  /** Writes the head and starts the source. `lost`: ranges retention removed before the start. */
  start(lost: readonly LostRange[]): void {
    const parts = this.#parts;
    this.#writer.open(parts.stream.headers, parts.stream.retryMs);
    endUnreadRequest(parts.req, parts.res);
    if (parts.stream.maxDurationMs !== null) {
      this.#maxDurationTimer = setTimeout(() => void this.finish('max-duration'), parts.stream.maxDurationMs);
    }
    if (parts.registry) {
      this.#streamId = parts.registry.uniqueId(parts.requestId);
      this.#handle = this.#makeHandle();
      parts.registry.register(this.#handle);
    }
    for (const range of lost) this.lost(range);
    this.#source.start(this, this.#positions);
  }

  // ---- what sources call (SourceSink) ----

  deliver(message: KafkaMessage, index: number, shared?: SharedMessage, inStep?: boolean): void {
    if (this.#finished) return;
    // Offsets only move forward: a message before the position was already
    // processed (a rewind can fetch it again) and is not sent twice.
    if (!this.#positions.advanceAt(index, message.offset, message.timestamp)) return;
    const pipeline = this.#pipeline;
    if (shared === undefined && pipeline.bytesFrames) {
      // Read on its own: the frame is written straight into the writer's bytes.
      if (!pipeline.frameBytes(message, this.#positions, this.#writer.bytes())) {
        this.#positionMoved = true;
        return;
      }
      this.#sent(message);
      this.#writer.framedBytes();
      return;
    }
    const frame = pipeline.frame(message, this.#positions, shared, inStep);
    if (frame === undefined || this.#finished) {
      this.#positionMoved = true;
      return;
    }
    this.#sent(message);
    this.#writer.framed(frame, shared === undefined);
  }

  /** Counts a message whose frame was queued. */
  #sent(message: KafkaMessage): void {
    this.#positionMoved = false;
    this.#delivered++;
    const byTopic = this.#sentByTopic;
    if (byTopic !== undefined) byTopic.set(message.topic, (byTopic.get(message.topic) ?? 0) + 1);
  }

  flush(): void {
    if (!this.#finished) this.#writer.flush();
  }

  lost(range: LostRange): void {
    this.#log.warn(range, 'requested offset is no longer retained; resuming at the oldest retained message');
    this.#writer.control('lost', range);
  }

  fail(err: KafkaSseError): void {
    if (this.#finished) return;
    this.#writer.error(err.toJSON());
    this.#parts.registry?.reportError(err.code, err.statusCode);
    void this.finish('error');
  }

  /**
   * Moves the stream onto a consumer of its own, from its exact positions:
   * nothing is lost and the client sees no break. It never returns to the tail.
   */
  handOff(reason: string): void {
    if (this.#handingOff || this.#finished) return;
    this.#handingOff = true;
    this.#log.info(`${reason}; reading on with a consumer of its own`);
    const old = this.#source;
    void old.close().catch((err) => this.#log.warn({ err }, 'releasing the shared consumer failed'));
    const c = this.#parts.consumer;
    const consumer = c.create(c.config, c.handlers);
    const starts = this.#positions.nextOffsets().map((p) => ({ ...p, offset: p.nextOffset }));
    const next = new ConsumerSource(consumer, starts, this.#log);
    this.#source = next;
    consumer.connect(c.connectTimeoutMs).then(
      () => {
        this.#handingOff = false;
        if (this.#finished) return;
        next.start(this, this.#positions);
        if (this.#writer.full) next.pause();
      },
      (err: Error) => {
        this.#handingOff = false;
        this.#log.error({ err }, 'consuming failed; ending the stream');
        this.fail(new KafkaConsumeError('Reading from Kafka failed', { cause: err }));
      },
    );
  }

  // ---- the client ----

  /** The client went away: stop writing and end. */
  clientGone(): void {
    this.#clientGone = true;
    this.#writer.dispose();
    void this.finish('client-closed');
  }

  /** The client's buffer is full: the source stops until it drains; a client that never drains is let go. */
  #block(): void {
    this.#source.pause();
    const timeout = this.#parts.stream.stalledWriteTimeoutMs;
    if (timeout !== null && !this.#stallTimer) {
      this.#stallTimer = setTimeout(() => {
        this.#stallTimer = undefined;
        this.#log.info({ timeoutMs: timeout }, 'the client accepted nothing for too long; ending its stream');
        // Nothing more can reach it: its socket is full. It resumes by id when it reads again.
        this.#clientGone = true;
        this.#writer.dispose();
        this.#parts.res.destroy();
        void this.finish('stalled');
      }, timeout);
      this.#stallTimer.unref();
    }
  }

  #unblock(): void {
    if (this.#stallTimer) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    }
    if (!this.#handingOff) this.#source.resume();
  }

  /**
   * When filtered or undeserializable messages moved the resume position past
   * the last event's id, the heartbeat becomes a `position` event carrying the
   * new id (EventSource remembers the id of any event with data), so a
   * reconnect does not read those messages again.
   */
  #positionEvent(): string | undefined {
    if (!this.#positionMoved || this.#writer.full) return undefined;
    this.#positionMoved = false;
    return sseEvent('position', '{}', this.#positions.id());
  }

  #makeHandle(): StreamHandle {
    const client = this.#parts.req.socket?.remoteAddress ?? 'unknown';
    const { topics, startedAt } = this.#parts;
    const setupMs = Date.now() - startedAt;
    const mode = this.#pipeline.mode;
    return {
      id: this.#streamId,
      snapshot: (): StreamSnapshot => ({
        id: this.#streamId,
        client,
        topics: [...topics],
        mode,
        startedAt,
        setupMs,
        messagesSent: this.#delivered,
        bytesSent: this.#writer.bytesWritten,
        messagesSkipped: this.#pipeline.skipped,
        partitions: this.#positions.nextOffsets().map((p) => {
          const marks = this.#source.cachedWatermarks(p.topic, p.partition);
          return { ...p, lag: marks ? Math.max(0, marks.high - p.nextOffset) : null };
        }),
      }),
      disconnect: () => void this.finish('disconnected'),
    };
  }

  #reportSent(bytes: number): void {
    const messages = this.#delivered - this.#deliveredReported;
    this.#deliveredReported = this.#delivered;
    const byTopic = this.#sentByTopic;
    this.#parts.registry?.emit(
      'sent',
      { id: this.#streamId, topics: [...this.#parts.topics] },
      messages,
      bytes,
      byTopic,
    );
    byTopic?.clear();
  }

  /** Ends the response (if still open), releases the source, and settles `done`. Idempotent. */
  async finish(reason: EndReason): Promise<void> {
    if (this.#finished) return this.done;
    this.#finished = true;
    if (this.#maxDurationTimer) clearTimeout(this.#maxDurationTimer);
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    if (!this.#clientGone) this.#writer.end();
    if (this.#handle) this.#parts.registry?.unregister(this.#handle, reason);
    try {
      await this.#source.close();
    } catch (err) {
      this.#log.warn({ err }, 'releasing the consumer failed');
    }
    this.#log.info(
      {
        reason,
        delivered: this.#delivered,
        skipped: this.#pipeline.skipped,
        durationMs: Date.now() - this.#parts.startedAt,
      },
      'stream ended',
    );
    this.#resolveDone();
    return this.done;
  }
}
