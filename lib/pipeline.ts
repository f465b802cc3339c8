// The per-message path, once for every source: deserialize → filter →
// serialize → frame. Built once per stream from its options. A source hands
// each message in; out comes the frame to write, or nothing (skipped).
import { ByteBatch } from './byte-batch.ts';
import { defaultDeserializer } from './deserializer.ts';
import { FilterError, type KafkaSseError } from './errors.ts';
import type { CompiledFilter } from './filters.ts';
import { httpChunk } from './http-response.ts';
import type { PositionTracker } from './position-tracker.ts';
import { RawFramer, sendableAsIs } from './raw-frame.ts';
import {
  hasLineBreak,
  ndjsonLine,
  serializeForNdjson,
  serializeForSse,
  spliceable,
  splicedJson,
  spliceMeta,
  sseMessage,
  sseMessageOneLine,
} from './sse-format.ts';
import type { DeserializedMessage, Deserializer, Filterer, KafkaMessage, Logger, StreamMode } from './types.ts';

/**
 * A message prepared once for the streams sharing it (per deserializer): its
 * deserialization, made only when a stream needs the object, and its
 * serialized forms. `ok` false: it could not be deserialized (logged once).
 */
export interface Prepared {
  ok: boolean;
  value: DeserializedMessage | undefined;
  /** The NDJSON line / SSE data; null when it cannot be serialized. Undefined until asked. */
  ndjson: string | null | undefined;
  sse: string | null | undefined;
  /** `sse` is known to hold no line break (one `data:` line). */
  sseOneLine: boolean;
  /**
   * The whole SSE event with the log's id (for streams in step with the log) /
   * the NDJSON line, as one HTTP/1.1 chunk (see httpChunk). Made when first asked.
   */
  sseChunk: Buffer | undefined;
  ndjsonChunk: Buffer | undefined;
}

/**
 * A Prepared with nothing made yet. Every field is there from the start: an
 * object given fields as they are made moves them out of line (one more
 * object per message of a shared log).
 */
export function newPrepared(): Prepared {
  return {
    ok: true,
    value: undefined,
    ndjson: undefined,
    sse: undefined,
    sseOneLine: false,
    sseChunk: undefined,
    ndjsonChunk: undefined,
  };
}

/**
 * A frame to write: text, or the bytes every stream of a shared log writes
 * for one of its messages, as one HTTP/1.1 chunk (see httpChunk and
 * StreamWriter.framed).
 */
export type Frame = string | Buffer;

/**
 * A message in a shared log (the shared tail's), with the caches that the
 * streams reading it without a `filterer` share: one deserialization per
 * deserializer, one serialization per wire format, one SSE frame.
 */
export interface SharedMessage {
  readonly message: KafkaMessage;
  /** The resume id after this message for a stream whose positions equal the log's. */
  readonly id: string;
  /** What streams with this deserializer share of the message, made on the first call. */
  preparedFor(deserializer: Deserializer): Prepared;
  /** Counts what the caches added against the log's byte bound. */
  grow(chars: number): void;
}

/** What a pipeline is built from. */
export interface PipelineOptions {
  mode: StreamMode;
  deserializer: Deserializer;
  filterer: Filterer | null;
  /** The server's filter and the client's query filter, when present. */
  filters: readonly CompiledFilter[];
  log: Logger;
  /** A filter or the filterer threw: the stream ends with this error. */
  onFailure: (err: KafkaSseError) => void;
}

/** The per-message work of one stream. */
export class StreamPipeline {
  readonly mode: StreamMode;
  readonly #deserializer: Deserializer;
  readonly #filterer: Filterer | null;
  readonly #filters: readonly CompiledFilter[];
  readonly #log: Logger;
  readonly #onFailure: (err: KafkaSseError) => void;
  /**
   * Whether the original JSON text may be sent (see splicedJson): the
   * library's own deserializer made the object and no filterer could have
   * changed it since. The one rule, for every source.
   */
  readonly #splice: boolean;
  /**
   * Whether this stream may use a shared log's caches: only without a
   * filterer, which may edit what it is given and must not edit what other
   * streams send. Compiled filters only read.
   */
  readonly #sharesCaches: boolean;
  /**
   * Splicing with no filter either: nothing needs the deserialized object, so
   * the frame is made from the message's text (parsed only to validate it),
   * without building the object the default deserializer returns.
   */
  readonly #raw: boolean;
  /** `_kafka` for the raw path, as text or written as bytes. */
  readonly #framer = new RawFramer();
  /** Where a shared log's chunks are written before they are copied out (see RawFramer.chunk). */
  #scratch: ByteBatch | undefined;
  /** The last text #rawData made holds no line break (SSE: one `data:` line). */
  #oneLine = false;
  /** Messages read but not sent (filtered out, undeserializable or unserializable). */
  skipped = 0;
  /**
   * Whether frameBytes() makes frames from the message's bytes: the raw path
   * (see #raw). Other streams' frames need strings anyway (the object is
   * serialized), and they are batched as strings.
   */
  readonly bytesFrames: boolean;

  constructor(options: PipelineOptions) {
    this.mode = options.mode;
    this.#deserializer = options.deserializer;
    this.#filterer = options.filterer;
    this.#filters = options.filters;
    this.#log = options.log;
    this.#onFailure = options.onFailure;
    this.#sharesCaches = options.filterer === null;
    this.#splice = options.filterer === null && options.deserializer === defaultDeserializer;
    this.#raw = this.#splice && options.filters.length === 0;
    this.bytesFrames = this.#raw;
  }

  /**
   * frame() written into `out` as bytes, for a stream reading on its own (no
   * shared log). The usual message of the raw path (a plain JSON object, valid
   * UTF-8, on one line) is framed from its own bytes: the id and `_kafka` are
   * written around a copy of them, the same bytes frame() would give encoded
   * as UTF-8. Anything else is frame()'s text, encoded. False: skipped.
   */
  frameBytes(message: KafkaMessage, positions: PositionTracker, out: ByteBatch): boolean {
    const value = message.value;
    if (this.#raw && value !== null && value !== undefined && sendableAsIs(value)) {
      this.#framer.writeFrame(out, this.mode, message, value, positions);
      return true;
    }
    const frame = this.frame(message, positions);
    if (frame === undefined) return false;
    out.text(frame as string); // not shared: text
    return true;
  }

  /**
   * The frame to write for `message`, or undefined when it is skipped.
   * `positions` gives the stream's resume id (already advanced past the
   * message). `shared`: the shared-log entry the message was read from;
   * `inStep`: the stream's id equals `shared.id`, so the entry's ready-made
   * frame carries the right id. Text, but for a shared log's ready-made
   * frames (SSE in step, NDJSON), which are its chunks (see Frame).
   */
  frame(message: KafkaMessage, positions: PositionTracker, shared?: SharedMessage, inStep = false): Frame | undefined {
    if (shared !== undefined && this.#sharesCaches) return this.#sharedFrame(shared, positions, inStep);
    let data: string | null | undefined = this.#raw ? this.#rawData(message, undefined) : undefined;
    if (data === null) {
      this.skipped++;
      return undefined;
    }
    if (data === undefined) {
      // A shared message is copied: deserializers set `.message` on what they get.
      const own = shared === undefined ? message : { ...message };
      let value: DeserializedMessage;
      try {
        value = this.#deserializer(own);
      } catch (err) {
        return this.#skip(message, err, 'message skipped: the deserializer failed');
      }
      if (!this.#passes(value, message)) return undefined;
      try {
        data = this.#serialize(value.message);
      } catch (err) {
        return this.#skip(message, err, 'message skipped: it cannot be serialized');
      }
    }
    if (this.mode === 'ndjson') return ndjsonLine(data);
    return this.#raw && this.#oneLine ? sseMessageOneLine(data, positions.id()) : sseMessage(data, positions.id());
  }

  /**
   * The wire text of a default-deserialized message, made from its JSON text
   * (see spliceable): a string, null when it is invalid JSON (logged, not
   * counted; `prepared` marked so other streams skip it without logging), or
   * undefined when the deserializer's object is needed after all.
   */
  #rawData(message: KafkaMessage, prepared: Prepared | undefined): string | null | undefined {
    const value = message.value;
    this.#oneLine = false;
    if (value === null || value === undefined) return undefined;
    const text = value.toString('utf8');
    // On the flat text, before splicing: the spliced string would be flattened to be scanned.
    this.#oneLine = this.mode === 'sse' && !hasLineBreak(text);
    try {
      if (!spliceable(value, text, this.mode)) return undefined;
    } catch (err) {
      if (prepared !== undefined) prepared.ok = false;
      this.#log.warn(
        { err, topic: message.topic, partition: message.partition, offset: message.offset },
        'message skipped: the deserializer failed',
      );
      return null;
    }
    return spliceMeta(text, this.#framer.metaJson(message));
  }

  #sharedFrame(shared: SharedMessage, positions: PositionTracker, inStep: boolean): string | Buffer | undefined {
    const message = shared.message;
    const prepared = shared.preparedFor(this.#deserializer);
    if (!this.#raw) {
      // Filters (or a custom deserializer) need the object.
      const value = this.#sharedValue(prepared, message);
      if (value === undefined) {
        this.skipped++;
        return undefined;
      }
      if (!this.#passes(value, message)) return undefined;
    }
    // The same bytes for every stream (NDJSON has no ids; SSE in step has the
    // log's): one chunk, kept. Its text is made for it and not kept: strings
    // held by every entry of a busy log were most of what each young-generation
    // GC copied (bench/results/2026-12-02-tail-gc).
    const ndjson = this.mode === 'ndjson';
    const sharesChunk = inStep || ndjson;
    const chunk = ndjson ? prepared.ndjsonChunk : prepared.sseChunk;
    if (chunk !== undefined && sharesChunk) return chunk;
    const value = message.value;
    if (this.#raw && sharesChunk && prepared.ok && value !== null && value !== undefined && sendableAsIs(value)) {
      // The usual message: its chunk written from its bytes, no text made at all.
      this.#scratch ??= new ByteBatch();
      return this.#keepChunk(shared, prepared, this.#framer.chunk(this.#scratch, this.mode, message, value, shared.id));
    }
    const data = this.#sharedData(prepared, shared, !sharesChunk);
    if (data === null) {
      this.skipped++;
      return undefined;
    }
    if (ndjson) return this.#keepChunk(shared, prepared, httpChunk(data));
    const frame = prepared.sseOneLine ? sseMessageOneLine : sseMessage;
    if (!inStep) return frame(data, positions.id());
    return this.#keepChunk(shared, prepared, httpChunk(frame(data, shared.id)));
  }

  /** Keeps `made` as the entry's chunk for this stream's mode, counted in the log's bytes, and returns it. */
  #keepChunk(shared: SharedMessage, prepared: Prepared, made: Buffer): Buffer {
    if (this.mode === 'ndjson') prepared.ndjsonChunk = made;
    else prepared.sseChunk = made;
    shared.grow(made.length);
    return made;
  }

  /** The shared deserialization, made once; undefined (logged once) when the deserializer fails. */
  #sharedValue(prepared: Prepared, message: KafkaMessage): DeserializedMessage | undefined {
    if (prepared.value !== undefined || !prepared.ok) return prepared.value;
    try {
      prepared.value = this.#deserializer({ ...message });
    } catch (err) {
      prepared.ok = false;
      this.#log.warn(
        { err, topic: message.topic, partition: message.partition, offset: message.offset },
        'message skipped: the deserializer failed',
      );
    }
    return prepared.value;
  }

  /**
   * The shared wire text for this stream's mode (NDJSON: the whole line):
   * from the text when nothing needs the object, else from the shared
   * deserialization. Null when the message is skipped (kept, so that other
   * streams skip it without logging again); the text is kept only with
   * `keep` (SSE streams out of step with the log frame it with ids of their own).
   */
  #sharedData(prepared: Prepared, shared: SharedMessage, keep: boolean): string | null {
    const message = shared.message;
    const cached = this.mode === 'ndjson' ? prepared.ndjson : prepared.sse;
    if (cached !== undefined) return cached;
    let data: string | null | undefined;
    if (!prepared.ok) data = null;
    else if (this.#raw && prepared.value === undefined) {
      data = this.#rawData(message, prepared);
      if (typeof data === 'string') prepared.sseOneLine = this.#oneLine;
    }
    if (data === undefined) {
      const value = this.#sharedValue(prepared, message);
      data = value === undefined ? null : this.#serializeOnce(value, message);
    }
    if (data !== null && this.mode === 'ndjson') data = ndjsonLine(data);
    if (data === null || keep) {
      if (this.mode === 'ndjson') prepared.ndjson = data;
      else prepared.sse = data;
      if (data !== null) shared.grow(data.length);
    }
    return data;
  }

  /** Serializes a shared deserialization once; null (logged once) when it cannot be. */
  #serializeOnce(value: DeserializedMessage, message: KafkaMessage): string | null {
    try {
      return this.#serialize(value.message);
    } catch (err) {
      this.#log.warn(
        { err, topic: message.topic, partition: message.partition, offset: message.offset },
        'message skipped: it cannot be serialized',
      );
      return null;
    }
  }

  /**
   * The payload as wire text. A BigInt, a cycle, or nesting too deep for
   * JSON.stringify throws: the caller skips the message, never throwing into
   * node-rdkafka's callback.
   */
  #serialize(payload: unknown): string {
    return (
      (this.#splice ? splicedJson(payload, this.mode) : undefined) ??
      (this.mode === 'sse' ? serializeForSse(payload) : serializeForNdjson(payload))
    );
  }

  #skip(message: KafkaMessage, err: unknown, why: string): undefined {
    this.skipped++;
    this.#log.warn({ err, topic: message.topic, partition: message.partition, offset: message.offset }, why);
    return undefined;
  }

  /**
   * Applies the server's filter, the client's query filter and `filterer`.
   * False skips the message (counted); a filter that throws ends the stream
   * with an error event (and also returns false).
   */
  #passes(value: DeserializedMessage, message: KafkaMessage): boolean {
    const filters = this.#filters;
    for (let i = 0; i < filters.length; i++) {
      let keep: boolean;
      try {
        keep = (filters[i] as CompiledFilter).test(value);
      } catch (err) {
        // Only a custom deserializer's getters can throw here.
        return this.#filterFailed(message, err, 'filter threw; ending the stream');
      }
      if (!keep) {
        this.skipped++;
        return false;
      }
    }
    const filterer = this.#filterer;
    if (filterer === null) return true;
    let keep: unknown;
    try {
      keep = filterer(value);
    } catch (err) {
      return this.#filterFailed(message, err, 'filterer threw; ending the stream');
    }
    if (!keep) this.skipped++;
    return Boolean(keep);
  }

  #filterFailed(message: KafkaMessage, err: unknown, why: string): false {
    this.#log.error({ err, topic: message.topic, partition: message.partition, offset: message.offset }, why);
    this.#onFailure(new FilterError('The stream filter failed', { cause: err }));
    return false;
  }
}
