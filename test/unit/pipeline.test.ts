// The per-message pipeline's fast path (default deserializer, no filterer, no
// filter: the frame is made from the message's text, no object built) must
// write exactly the bytes the deserializer's path writes, on every source.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteBatch } from '../../lib/byte-batch.ts';
import { defaultDeserializer } from '../../lib/deserializer.ts';
import { compileFilter } from '../../lib/filters.ts';
import { chunkBody } from '../../lib/http-response.ts';
import { type Frame, newPrepared, type Prepared, type SharedMessage, StreamPipeline } from '../../lib/pipeline.ts';
import { PositionTracker } from '../../lib/position-tracker.ts';
import { ndjsonLine, serializeForNdjson, serializeForSse, splicedJson, sseMessage } from '../../lib/sse-format.ts';
import type { KafkaMessage, Logger, StreamMode } from '../../lib/types.ts';

interface Logged {
  level: string;
  msg: string;
}

function logger(into: Logged[]): Logger {
  const at = (level: string) => (obj: unknown, msg?: string) => {
    into.push({ level, msg: msg ?? String(obj) });
  };
  const log = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { ...log, child: () => logger(into) } as unknown as Logger;
}

function pipeline(mode: StreamMode, log: Logged[] = [], filters: Parameters<typeof compileFilter>[0][] = []) {
  return new StreamPipeline({
    mode,
    deserializer: defaultDeserializer,
    filterer: null,
    filters: filters.map((f) => compileFilter(f)),
    log: logger(log),
    onFailure: () => assert.fail('no filter fails here'),
  });
}

function message(value: string | null, key: Buffer | string | null, timestamp: number | undefined): KafkaMessage {
  return {
    topic: 'pipe.topic-1',
    partition: 2,
    offset: 41,
    value: value === null ? null : Buffer.from(value),
    size: value?.length ?? 0,
    key,
    timestamp,
  } as unknown as KafkaMessage;
}

function positions(): PositionTracker {
  const p = new PositionTracker([{ topic: 'pipe.topic-1', partition: 2, offset: 41 } as never], false);
  p.advanceAt(0, 41, undefined);
  return p;
}

/** The frame as the deserializer's path makes it (the library's behaviour before the fast path). */
function reference(m: KafkaMessage, mode: StreamMode, id: string): string | undefined {
  let value: { message?: unknown };
  try {
    value = defaultDeserializer({ ...m });
  } catch {
    return undefined;
  }
  const data =
    splicedJson(value.message, mode) ??
    (mode === 'sse' ? serializeForSse(value.message) : serializeForNdjson(value.message));
  return mode === 'ndjson' ? ndjsonLine(data) : sseMessage(data, id);
}

/** A frame as its text; a shared log's frame (a Buffer) is checked to be one well-formed HTTP/1.1 chunk first. */
function wire(frame: Frame | undefined): string | undefined {
  if (frame === undefined || typeof frame === 'string') return frame;
  const text = frame.toString('utf8');
  const size = text.indexOf('\r\n');
  const body = chunkBody(frame);
  assert.equal(Number.parseInt(text.slice(0, size), 16), body.length, 'the chunk size line counts its bytes');
  assert.ok(text.endsWith('\r\n'));
  return body.toString('utf8');
}

function shared(m: KafkaMessage, id: string): SharedMessage & { grown: number; prepared: Map<unknown, Prepared> } {
  return {
    message: m,
    id,
    prepared: new Map(),
    preparedFor(d) {
      let p = this.prepared.get(d);
      if (p === undefined) {
        p = newPrepared();
        this.prepared.set(d, p);
      }
      return p;
    },
    grown: 0,
    grow(chars: number) {
      this.grown += chars;
    },
  };
}

/** JSON texts as producers write them: any JSON, pretty-printed or with raw line breaks, or not JSON at all. */
const payload = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v, null, 2)),
  fc.jsonValue().map((v) => `\r\n ${JSON.stringify(v)}\n`),
  fc.dictionary(fc.string(), fc.jsonValue()).map((o) => JSON.stringify({ ...o, _kafka: { forged: true } })),
  fc.dictionary(fc.string(), fc.jsonValue()).map((o) => JSON.stringify({ $kafkaSse: 'error', ...o })),
  fc.constantFrom('{"\\u005fkafka":1}', '{}', '{ }', '[]', '"text"', '5', 'null', '{"a":1', 'not json', '', '{"a":1}}'),
  fc.string(),
  fc.constant(null),
);
const key = fc.oneof(
  fc.constant(null),
  fc.string().map((s) => Buffer.from(s)),
  fc.string(),
);
const timestamp = fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 2 ** 45 }));

describe('StreamPipeline: frames made from the text', () => {
  for (const mode of ['sse', 'ndjson'] as const) {
    it(`${mode}: a private consumer's message gives the deserializer path's bytes, whatever the payload`, () => {
      fc.assert(
        fc.property(payload, key, timestamp, (value, k, t) => {
          const m = message(value, k, t);
          const pos = positions();
          const p = pipeline(mode);
          const want = reference(m, mode, pos.id());
          assert.equal(p.frame(m, pos), want);
          assert.equal(p.skipped, want === undefined ? 1 : 0);
        }),
        { numRuns: 2000 },
      );
    });

    it(`${mode}: a shared log's message gives the same bytes to every stream, in step or not`, () => {
      fc.assert(
        fc.property(payload, key, timestamp, (value, k, t) => {
          const m = message(value, k, t);
          const pos = positions();
          const entry = shared(m, pos.id());
          const want = reference(m, mode, pos.id());
          const first = pipeline(mode);
          const second = pipeline(mode);
          assert.equal(wire(first.frame(m, pos, entry, true)), want);
          assert.equal(wire(second.frame(m, pos, entry, false)), want);
          assert.equal(wire(second.frame(m, pos, entry, true)), want);
          assert.equal(first.skipped, want === undefined ? 1 : 0);
          // A stream with a filter on the same entry needs the object, and still agrees.
          const filtered = pipeline(mode, [], [{ '_kafka.partition': 2 }]);
          assert.equal(wire(filtered.frame(m, pos, entry, true)), want);
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('skips invalid JSON, counts it per stream, and logs it once per shared message', () => {
    const log: Logged[] = [];
    const m = message('{"broken":', null, 1);
    const pos = positions();
    const entry = shared(m, pos.id());
    const a = pipeline('sse', log);
    const b = pipeline('ndjson', log);
    assert.equal(wire(a.frame(m, pos, entry, true)), undefined);
    assert.equal(wire(b.frame(m, pos, entry, true)), undefined);
    assert.deepEqual([a.skipped, b.skipped], [1, 1]);
    assert.deepEqual(log, [{ level: 'warn', msg: 'message skipped: the deserializer failed' }]);
    // A private consumer's stream logs its own.
    assert.equal(a.frame(m, pos), undefined);
    assert.equal(a.skipped, 2);
    assert.equal(log.length, 2);
  });

  it('writes one data line without scanning when the text has no line break, and splits the ones that have', () => {
    const pos = positions();
    const flat = pipeline('sse').frame(message('{"a":"x\\ny"}', null, 7), pos);
    assert.equal(
      flat,
      `event: message\nid: ${pos.id()}\ndata: {"a":"x\\ny","_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"timestamp":7,"key":null}}\n\n`,
    );
    const broken = pipeline('sse').frame(message('{"a":1,\r\n"b":2}', 'k', 7), pos);
    assert.equal(
      broken,
      `event: message\nid: ${pos.id()}\ndata: {"a":1,\ndata: "b":2,"_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"timestamp":7,"key":"k"}}\n\n`,
    );
  });

  it("keeps one chunk per wire format for streams in step, no text, and counts it against the log's bound", () => {
    const m = message('{"a":1}', null, 1);
    const pos = positions();
    const entry = shared(m, pos.id());
    const sse = pipeline('sse');
    const ndjson = pipeline('ndjson');
    const frame = sse.frame(m, pos, entry, true) as Buffer;
    const line = ndjson.frame(m, pos, entry, true) as Buffer;
    assert.ok(Buffer.isBuffer(frame) && Buffer.isBuffer(line));
    assert.equal(pipeline('sse').frame(m, pos, entry, true), frame, 'the same bytes for every stream in step');
    assert.equal(pipeline('ndjson').frame(m, pos, entry, false), line, 'and for every NDJSON stream');
    const data = '{"a":1,"_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"timestamp":1,"key":null}}';
    assert.equal(wire(line), `${data}\n`);
    assert.equal(wire(frame), `event: message\nid: ${pos.id()}\ndata: ${data}\n\n`);
    const prepared = [...entry.prepared.values()];
    assert.equal(prepared.length, 1);
    assert.deepEqual(
      Object.entries(prepared[0] ?? {}).filter(([, v]) => typeof v === 'string'),
      [],
      "the log's entry holds no text: each string held by a busy log is copied by every young-generation GC",
    );
    assert.equal(entry.grown, frame.length + line.length);
    // A stream out of step frames the text with its own id: that text is kept for the others.
    const own = new PositionTracker([{ topic: 'pipe.topic-1', partition: 2, offset: 41 } as never], true);
    own.advanceAt(0, 41, 1); // a timestamp id
    const ownId = own.id();
    assert.notEqual(ownId, pos.id());
    assert.equal(pipeline('sse').frame(m, own, entry, false), `event: message\nid: ${ownId}\ndata: ${data}\n\n`);
    assert.equal(entry.grown, frame.length + line.length + data.length);
  });
});

describe('StreamPipeline: frames written as bytes (a stream reading on its own)', () => {
  /** Bytes as producers send them: the payloads above, or any bytes (invalid UTF-8 included). */
  const bytes = fc.oneof(
    payload.map((v) => (v === null ? null : Buffer.from(v))),
    // Plain objects, compact or with spaces and tabs (no line break): framed from their bytes.
    fc
      .tuple(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom('', ' ', '\t', '  '))
      .map(([o, sp]) => Buffer.from(`${sp}${JSON.stringify(o, null, sp).replace(/\n/g, sp)}${sp}`)),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc
      .tuple(fc.dictionary(fc.string(), fc.jsonValue()), fc.uint8Array({ minLength: 1, maxLength: 4 }))
      .map(([o, b]) => {
        // Raw bytes inside a string of a plain object: invalid UTF-8 is U+FFFD in the text.
        const text = JSON.stringify({ ...o, s: 'x' });
        const at = text.lastIndexOf('x');
        return Buffer.concat([
          Buffer.from(text.slice(0, at)),
          Buffer.from(b.map((c) => c | 0x80)),
          Buffer.from(text.slice(at + 1)),
        ]);
      }),
  );
  const topic = fc.oneof(
    fc.constant('pipe.topic-1'),
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.constant('tópico-ü'),
  );
  const ts = fc.oneof(timestamp, fc.constant(-1));

  function raw(value: Buffer | null, t: string, k: Buffer | string | null, stamp: number | undefined, offset: number) {
    return {
      topic: t,
      partition: 2,
      offset,
      value,
      size: value?.length ?? 0,
      key: k,
      timestamp: stamp,
    } as unknown as KafkaMessage;
  }

  for (const mode of ['sse', 'ndjson'] as const) {
    it(`${mode}: writes what frame() gives, as UTF-8, for any bytes, key, topic, timestamp and id`, () => {
      fc.assert(
        fc.property(bytes, topic, key, ts, fc.nat(), fc.boolean(), (value, t, k, stamp, offset, byTime) => {
          const m = raw(value, t, k, stamp, offset);
          const starts = [
            { topic: t, partition: 2, offset, timestamp: 5 },
            { topic: 'other', partition: 0, offset: 7 },
          ];
          const pos = new PositionTracker(starts as never, byTime);
          pos.advanceAt(0, offset, stamp);
          const want = pipeline(mode).frame(m, pos);
          const out = new ByteBatch();
          out.text('before|');
          const p = pipeline(mode);
          assert.equal(p.frameBytes(m, pos, out), want !== undefined);
          assert.equal(p.skipped, want === undefined ? 1 : 0);
          assert.equal(out.take().toString('latin1'), Buffer.from(`before|${want ?? ''}`).toString('latin1'));
        }),
        { numRuns: 3000 },
      );
    });
  }

  it('frames a plain object from its bytes: the id, the payload as it came and _kafka after its last member', () => {
    const m = raw(Buffer.from('{"a":"é",\t"b":[1,{}]} \t'), 'pipe.topic-1', Buffer.from('k"1'), 1700000000123, 41);
    const pos = positions();
    const out = new ByteBatch();
    assert.equal(pipeline('sse').frameBytes(m, pos, out), true);
    assert.equal(
      out.take().toString(),
      'event: message\nid: [{"topic":"pipe.topic-1","partition":2,"offset":42}]\n' +
        'data: {"a":"é",\t"b":[1,{}],"_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,' +
        '"timestamp":1700000000123,"key":"k\\"1"}}\n\n',
    );
    const empty = raw(Buffer.from('{ }'), 'pipe.topic-1', null, undefined, 41);
    assert.equal(pipeline('ndjson').frameBytes(empty, pos, out), true);
    assert.equal(out.take().toString(), '{ "_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"key":null}}\n');
  });

  it('sends invalid UTF-8 as U+FFFD, as the text path does, never the bytes as they came', () => {
    const m = raw(
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      'pipe.topic-1',
      null,
      undefined,
      41,
    );
    const out = new ByteBatch();
    assert.equal(pipeline('ndjson').frameBytes(m, positions(), out), true);
    assert.equal(
      out.take().toString('hex'),
      Buffer.from('{"a":"\ufffd","_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"key":null}}\n').toString(
        'hex',
      ),
    );
  });

  it('skips invalid JSON, counted and logged', () => {
    const log: Logged[] = [];
    const p = pipeline('sse', log);
    const out = new ByteBatch();
    assert.equal(p.frameBytes(raw(Buffer.from('{"a":1'), 't', null, undefined, 1), positions(), out), false);
    assert.equal(out.length, 0);
    assert.equal(p.skipped, 1);
    assert.deepEqual(
      log.map((l) => l.msg),
      ['message skipped: the deserializer failed'],
    );
  });
});
