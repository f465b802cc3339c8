// The parts of a frame made from a message's own JSON (the raw path of
// StreamPipeline: default deserializer, no filterer, no filter): its
// `_kafka` member as text, and the whole frame written as bytes around a copy
// of the message's bytes. The same bytes as sseMessageOneLine / ndjsonLine of
// spliceMeta's text; pure but for the topic kept from the last call.
import { type ByteBatch, writeInt, writeUtf8 } from './byte-batch.ts';
import { SCAN_PLAIN_OBJECT, scanBytes } from './byte-scan.ts';
import type { PositionTracker } from './position-tracker.ts';
import { isJsonSpace, kafkaMetaJson } from './sse-format.ts';
import type { KafkaMessage, StreamMode } from './types.ts';

// The constant parts of a frame written as bytes.
const SSE_HEAD = Buffer.from('event: message\nid: ');
const SSE_DATA = Buffer.from('\ndata: ');
const META_OFFSET = Buffer.from(',"offset":');
const META_TIMESTAMP = Buffer.from(',"timestamp":');
const META_KEY = Buffer.from(',"key":');
const NULL = Buffer.from('null');

/**
 * Whether a message's bytes can be sent as they came, with `_kafka` written
 * in: a plain JSON object (the byte scan; invalid JSON is not), valid UTF-8
 * (invalid sequences become U+FFFD in the decoded text, so those bytes differ
 * from it) and no CR or LF (valid JSON holds them only as spaces between
 * tokens; they would split an SSE data line, and an NDJSON line takes the
 * deserializer's path).
 */
export function sendableAsIs(value: Buffer): boolean {
  return scanBytes(value) === SCAN_PLAIN_OBJECT; // and neither SCAN_LINE_BREAK nor SCAN_BAD_UTF8
}

/** Makes `_kafka` for one stream's messages, keeping what it made for the last topic. */
export class RawFramer {
  #topic = '';
  #topicJson = '""';
  #headTopic = '';
  #head: Buffer | undefined;

  /** The `_kafka` member's JSON for `message` (see kafkaMetaJson). */
  metaJson(message: KafkaMessage): string {
    const topic = message.topic;
    if (topic !== this.#topic) {
      this.#topic = topic;
      this.#topicJson = JSON.stringify(topic);
    }
    const key = message.key;
    return kafkaMetaJson(
      this.#topicJson,
      message.partition,
      message.offset,
      message.timestamp,
      key === undefined || key === null ? null : key.toString(),
    );
  }

  /**
   * Writes the frame of `message`, whose bytes `value` are sendableAsIs(),
   * into `out`: (SSE) the event line and the id (the stream's positions', or
   * one given as text: a shared log's), the bytes up to the object's closing
   * brace, then `"_kafka":{…}` and the closing brace, with the numbers
   * written as digits.
   */
  writeFrame(
    out: ByteBatch,
    mode: StreamMode,
    message: KafkaMessage,
    value: Buffer,
    positions: PositionTracker | string,
  ): void {
    // The closing brace, and whether the object has members (see spliceMeta).
    let close = value.length - 1;
    while (value[close] !== 125) close--;
    let i = close - 1;
    while (i > 0 && isJsonSpace(value[i] as number)) i--;
    const head = this.#topicHead(message.topic);
    const key = message.key;
    const keyJson = key === undefined || key === null ? undefined : JSON.stringify(key.toString());
    const sse = mode === 'sse';
    out.room(
      (sse
        ? SSE_HEAD.length +
          (typeof positions === 'string' ? 3 * positions.length : positions.idBytesBound()) +
          SSE_DATA.length
        : 0) +
        value.length +
        1 +
        head.length +
        3 * 24 +
        META_TIMESTAMP.length +
        META_OFFSET.length +
        META_KEY.length +
        (keyJson === undefined ? NULL.length : 3 * keyJson.length) +
        4,
    );
    const buf = out.buf;
    let at = out.end;
    if (sse) {
      buf.set(SSE_HEAD, at);
      at += SSE_HEAD.length;
      at = typeof positions === 'string' ? at + writeUtf8.call(buf, positions, at) : positions.writeId(buf, at);
      buf.set(SSE_DATA, at);
      at += SSE_DATA.length;
    }
    // The whole value, then what follows its closing brace written over the brace and after.
    buf.set(value, at);
    at += close;
    if (value[i] !== 123) buf[at++] = 44; // ,
    buf.set(head, at);
    at = writeInt(buf, at + head.length, message.partition);
    buf.set(META_OFFSET, at);
    at = writeInt(buf, at + META_OFFSET.length, message.offset);
    if (message.timestamp !== undefined) {
      buf.set(META_TIMESTAMP, at);
      at = writeInt(buf, at + META_TIMESTAMP.length, message.timestamp);
    }
    buf.set(META_KEY, at);
    at += META_KEY.length;
    if (keyJson === undefined) {
      buf.set(NULL, at);
      at += NULL.length;
    } else at += writeUtf8.call(buf, keyJson, at);
    buf[at++] = 125; // } of _kafka
    buf[at++] = 125; // } of the message
    buf[at++] = 10;
    if (sse) buf[at++] = 10;
    out.end = at;
  }

  /**
   * The frame of writeFrame() as one HTTP/1.1 chunk of its own (see
   * httpChunk), with the id given as text: a shared log's frame, made from
   * the message's bytes without a string of them. `scratch` holds the frame
   * on the way.
   */
  chunk(scratch: ByteBatch, mode: StreamMode, message: KafkaMessage, value: Buffer, id: string): Buffer {
    this.writeFrame(scratch, mode, message, value, id);
    const frame = scratch.take();
    const size = frame.length.toString(16);
    const chunk = Buffer.allocUnsafe(size.length + frame.length + 4);
    let at = writeUtf8.call(chunk, size, 0);
    chunk[at++] = 13;
    chunk[at++] = 10;
    chunk.set(frame, at);
    at += frame.length;
    chunk[at++] = 13;
    chunk[at] = 10;
    return chunk;
  }

  /** `"_kafka":{"topic":<topic>,"partition":` as bytes. */
  #topicHead(topic: string): Buffer {
    if (topic !== this.#headTopic || this.#head === undefined) {
      this.#headTopic = topic;
      this.#head = Buffer.from(`"_kafka":{"topic":${JSON.stringify(topic)},"partition":`);
    }
    return this.#head;
  }
}
