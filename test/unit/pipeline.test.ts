// The per-message pipeline's fast path (default deserializer, no filterer, no
// filter: the frame is made from the message's text, no object built) must
// write exactly the bytes the deserializer's path writes, on every source.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultDeserializer } from '../../lib/deserializer.ts';
import { compileFilter } from '../../lib/filters.ts';
import { type SharedMessage, StreamPipeline } from '../../lib/pipeline.ts';
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

function shared(m: KafkaMessage, id: string): SharedMessage & { grown: number } {
  return {
    message: m,
    id,
    prepared: undefined,
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
          assert.equal(first.frame(m, pos, entry, true), want);
          assert.equal(second.frame(m, pos, entry, false), want);
          assert.equal(second.frame(m, pos, entry, true), want);
          assert.equal(first.skipped, want === undefined ? 1 : 0);
          // A stream with a filter on the same entry needs the object, and still agrees.
          const filtered = pipeline(mode, [], [{ '_kafka.partition': 2 }]);
          assert.equal(filtered.frame(m, pos, entry, true), want);
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
    assert.equal(a.frame(m, pos, entry, true), undefined);
    assert.equal(b.frame(m, pos, entry, true), undefined);
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

  it("counts the shared caches' text against the log's bound", () => {
    const m = message('{"a":1}', null, 1);
    const pos = positions();
    const entry = shared(m, pos.id());
    const frame = pipeline('sse').frame(m, pos, entry, true) as string;
    const line = pipeline('ndjson').frame(m, pos, entry, true) as string;
    const data = '{"a":1,"_kafka":{"topic":"pipe.topic-1","partition":2,"offset":41,"timestamp":1,"key":null}}';
    assert.equal(line, `${data}\n`);
    assert.equal(entry.grown, data.length + frame.length + line.length);
  });
});
