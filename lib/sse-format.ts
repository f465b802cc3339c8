// Pure encoders for the two wire formats. No I/O: the writer in writer.ts
// concatenates what these return and decides when to flush.

import { SCAN_KIND, SCAN_LINE_BREAK, SCAN_PLAIN_OBJECT, scanBytes } from './byte-scan.ts';

const LINE_BREAK = /\r\n|\r|\n/;
const ANY_LINE_BREAK_GLOBAL = /[\r\n]+/g;

/**
 * Whether `s` holds a CR or LF. Two indexOf calls: a tenth of what the
 * regex test /[\r\n]/ cost on a 600-character payload.
 */
export function hasLineBreak(s: string): boolean {
  return s.indexOf('\n') !== -1 || s.indexOf('\r') !== -1;
}

/**
 * Turns a payload into `data:` lines. Every CR, LF or CRLF starts a new line
 * and empty lines are kept, so an EventSource joins them back with LF into the
 * same text (CR and CRLF come back as LF: SSE has no way to carry them).
 */
export function dataLines(data: string): string {
  if (!hasLineBreak(data)) return `data: ${data}\n`;
  let out = '';
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}

/** A field value that must stay on one line: line breaks become spaces (they cannot be encoded). */
export function singleLine(value: string): string {
  return hasLineBreak(value) ? value.replace(ANY_LINE_BREAK_GLOBAL, ' ') : value;
}

/** One complete SSE event (ending with the blank line that dispatches it). */
export function sseEvent(event: string, data: string, id?: string): string {
  let out = `event: ${singleLine(event)}\n`;
  if (id !== undefined) out += `id: ${singleLine(id)}\n`;
  return `${out}${dataLines(data)}\n`;
}

/**
 * A `message` event whose id is a resume id from PositionTracker: JSON built
 * from validated topic names and integers, which cannot hold a line break, so
 * the check `sseEvent` makes on every id is skipped (it was ~3% of a replay's CPU).
 */
export function sseMessage(data: string, id: string): string {
  return `event: message\nid: ${id}\n${dataLines(data)}\n`;
}

/** `sseMessage` for `data` known to hold no line break: one `data:` line, no scan. */
export function sseMessageOneLine(data: string, id: string): string {
  return `event: message\nid: ${id}\ndata: ${data}\n\n`;
}

/** An SSE comment: ignored by clients, keeps proxies and idle timers from cutting the stream. */
export function sseComment(text = ''): string {
  return text === '' ? ':\n\n' : `: ${singleLine(text)}\n\n`;
}

/** The `retry:` field: how long an EventSource waits before reconnecting. */
export function sseRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}

/** One NDJSON line. `json` must already be JSON text; JSON.stringify never leaves raw line breaks. */
export function ndjsonLine(json: string): string {
  return `${json}\n`;
}

/**
 * The reserved key of NDJSON control lines. A `$` and camel case: JSON.stringify
 * writes it as it is, and Kafka payloads rarely carry it (KafkaSSE-style
 * payloads use `_` keys such as `_kafka`).
 */
export const NDJSON_CONTROL_KEY = '$kafkaSse';

/** How every control line, and only a control line or an escaped message (see below), begins. */
const CONTROL_PREFIX = `{${JSON.stringify(NDJSON_CONTROL_KEY)}:`;

/** The control key as JSON.stringify writes it in an object. */
const CONTROL_KEY_TEXT = `${JSON.stringify(NDJSON_CONTROL_KEY)}:`;

/**
 * One NDJSON control line (with its LF): `{"$kafkaSse":"<name>","data":<data>}`,
 * e.g. `{"$kafkaSse":"error","data":{"name":…,"code":…}}`.
 *
 * The envelope no message can imitate: a message line is never an object
 * with an own `$kafkaSse` key, so a reader tells the two apart by that key
 * alone (after JSON.parse: `Object.hasOwn(line, '$kafkaSse')`; on the bytes:
 * the line starts with `{"$kafkaSse":`). {@link serializeForNdjson} and
 * {@link splicedJson} keep it so whatever the deserializer returns: a value
 * whose JSON would carry the key at its top level (checked on the text
 * JSON.stringify made, so `toJSON` cannot hide it) is sent escaped, as the
 * control `{"$kafkaSse":"message","data":<the message>}`, which a reader
 * unwraps. Strings and Buffers are JSON strings (`"…"`), never objects, so a
 * deserializer returning the raw payload cannot make one. `name` is a control
 * event's name (`lost`, `error`); `message` is reserved for the escape.
 */
export function ndjsonControl(name: string, data: unknown): string {
  return `${CONTROL_PREFIX}${JSON.stringify(name)},"data":${JSON.stringify(data) ?? 'null'}}\n`;
}

/**
 * Where the default deserializer keeps a JSON object's original text, so it
 * can be sent as it came instead of re-serialized (JSON.stringify was ~15% of
 * a replay's CPU). A symbol key: JSON.stringify and Object.keys ignore it.
 */
export const RAW_JSON: unique symbol = Symbol('kafka-sse-bridge.rawJson');

/** JSON's whitespace: space, tab, LF, CR. */
export function isJsonSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/**
 * The original text of a default-deserialized JSON object with its `_kafka`
 * spliced in before the closing brace: the same JSON value JSON.stringify
 * would give (the default deserializer keeps the text only when the payload
 * had no `_kafka` of its own, which ours would replace). Undefined
 * (re-serialize) when there is no original text, or for NDJSON when the text
 * holds raw line breaks (a line must stay one line; in SSE they only split
 * the text into more `data:` lines, which the client joins back).
 */
export function splicedJson(message: unknown, mode: 'sse' | 'ndjson'): string | undefined {
  if (message === null || typeof message !== 'object') return undefined;
  const text = (message as { [RAW_JSON]?: unknown })[RAW_JSON];
  if (typeof text !== 'string') return undefined;
  // NDJSON: a line must stay one line, and a payload with the control key is escaped by serializeForNdjson.
  if (mode === 'ndjson' && (hasLineBreak(text) || Object.hasOwn(message, NDJSON_CONTROL_KEY))) return undefined;
  const m = (
    message as { _kafka?: { topic: string; partition: number; offset: number; timestamp?: number; key: string | null } }
  )._kafka;
  if (!m) return undefined;
  return spliceMeta(text, kafkaMetaJson(JSON.stringify(m.topic), m.partition, m.offset, m.timestamp, m.key));
}

/**
 * What JSON.stringify gives for a `_kafka` object, without walking one:
 * `topicJson` is the topic already as JSON text, the numbers are integers, an
 * undefined timestamp is left out, as JSON.stringify would leave it out.
 */
export function kafkaMetaJson(
  topicJson: string,
  partition: number,
  offset: number,
  timestamp: number | undefined,
  key: string | null,
): string {
  return (
    `{"topic":${topicJson},"partition":${partition},"offset":${offset},` +
    `${timestamp === undefined ? '' : `"timestamp":${timestamp},`}"key":${key === null ? 'null' : JSON.stringify(key)}}`
  );
}

/**
 * The JSON text of an object (`text`, whose top level has no `_kafka`) with
 * `"_kafka":<metaJson>` added as its last member, before the closing brace.
 */
export function spliceMeta(text: string, metaJson: string): string {
  const end = text.lastIndexOf('}');
  let i = end - 1;
  while (i > 0 && isJsonSpace(text.charCodeAt(i))) i--;
  const empty = text.charCodeAt(i) === 123; // '{': no member before ours
  return `${text.slice(0, end)}${empty ? '' : ','}"_kafka":${metaJson}}`;
}

/**
 * For a stream that needs no object (no filterer, no filter): whether the
 * message's JSON (`bytes`, decoded as `text`) can be sent as it came with
 * `_kafka` spliced in (see spliceMeta), which is what the default
 * deserializer's object would serialize to. Invalid JSON throws JSON.parse's
 * error, as the deserializer does. False when the payload is no plain object,
 * has a `_kafka` of its own, or (NDJSON) holds raw line breaks or the control
 * key: those take the deserializer's path. A scan that builds nothing decides
 * the usual case (a plain object); JSON.parse decides the rest.
 */
export function spliceable(bytes: Uint8Array, text: string, mode: 'sse' | 'ndjson'): boolean {
  const scan = scanBytes(bytes);
  if ((scan & SCAN_KIND) === SCAN_PLAIN_OBJECT) return mode === 'sse' || (scan & SCAN_LINE_BREAK) === 0;
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || Object.hasOwn(parsed, '_kafka'))
    return false;
  return mode === 'sse' || !(hasLineBreak(text) || Object.hasOwn(parsed, NDJSON_CONTROL_KEY));
}

/**
 * Serializes a deserialized message for the wire: strings are sent as they
 * are (SSE data is text), Buffers as UTF-8 text (invalid bytes become U+FFFD),
 * anything else as JSON. `undefined` (nothing to send) becomes `null`.
 */
export function serializeForSse(message: unknown): string {
  if (typeof message === 'string') return message;
  if (Buffer.isBuffer(message)) return message.toString('utf8');
  return JSON.stringify(message) ?? 'null';
}

/**
 * Serializes a message as exactly one JSON value on one line; an object whose
 * JSON names the control key is wrapped so that it cannot pass for a control
 * line (see {@link ndjsonControl}). The check is on the text: a search for
 * `"$kafkaSse":`, run only on objects (it may also match deeper down or inside
 * a string: those are wrapped too, which costs nothing but the envelope).
 */
export function serializeForNdjson(message: unknown): string {
  if (Buffer.isBuffer(message)) return JSON.stringify(message.toString('utf8'));
  const text = JSON.stringify(message) ?? 'null';
  if (text.charCodeAt(0) === 123 && text.includes(CONTROL_KEY_TEXT))
    return `${CONTROL_PREFIX}"message","data":${text}}`;
  return text;
}
