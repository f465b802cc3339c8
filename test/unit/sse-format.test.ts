// The wire encoders, checked byte for byte and against a real EventSource parser.
import assert from 'node:assert/strict';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { defaultDeserializer } from '../../lib/options.ts';
import {
  dataLines,
  NDJSON_CONTROL_KEY,
  ndjsonControl,
  ndjsonLine,
  serializeForNdjson,
  serializeForSse,
  singleLine,
  splicedJson,
  sseComment,
  sseEvent,
  sseRetry,
} from '../../lib/sse-format.ts';

/** Parses an SSE text with eventsource-parser; returns the events and comments in order. */
function parseSse(text: string): { events: EventSourceMessage[]; comments: string[]; retries: number[] } {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = createParser({
    onEvent: (e) => events.push(e),
    onComment: (c) => comments.push(c),
    onRetry: (r) => retries.push(r),
  });
  parser.feed(text);
  return { events, comments, retries };
}

/** What an EventSource gives back for `data`: SSE cannot carry CR, so CR and CRLF arrive as LF. */
const normalized = (data: string) => data.replace(/\r\n|\r/g, '\n');

/** A small deterministic PRNG (mulberry32), so a failing case can be reproduced. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pieces that stress the encoder: every line break, field-like text, odd code points. */
const PIECES = [
  'a',
  'Zürich',
  ' ',
  '  ',
  '\n',
  '\r',
  '\r\n',
  '\n\r',
  '\r\r',
  '\n\n',
  ':',
  'data:',
  'data: x',
  'event: error',
  'id: 5',
  'retry: 10',
  '\u2028',
  '\u2029',
  '\u0085',
  '\u0000',
  '\u000b',
  '\u000c',
  '\t',
  '😀',
  '\uD83D',
  '\uDE00',
  '\uD800',
  '\uDFFF',
  '\uFEFF',
  '{"json":"value"}',
  '\\n',
  'é',
  '中文',
];

function randomString(next: () => number): string {
  const n = Math.floor(next() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

describe('sse-format', () => {
  describe('dataLines', () => {
    const cases: [string, string, string][] = [
      ['a single line', 'hello', 'data: hello\n'],
      ['an empty string', '', 'data: \n'],
      ['LF', 'a\nb', 'data: a\ndata: b\n'],
      ['CR', 'a\rb', 'data: a\ndata: b\n'],
      ['CRLF as one break', 'a\r\nb', 'data: a\ndata: b\n'],
      ['LF CR as two breaks', 'a\n\rb', 'data: a\ndata: \ndata: b\n'],
      ['mixed breaks', 'a\nb\rc\r\nd', 'data: a\ndata: b\ndata: c\ndata: d\n'],
      ['a leading break', '\nx', 'data: \ndata: x\n'],
      ['a trailing break', 'x\n', 'data: x\ndata: \n'],
      ['a trailing CRLF', 'x\r\n', 'data: x\ndata: \n'],
      ['only a break', '\n', 'data: \ndata: \n'],
      ['consecutive empty lines, kept', 'a\n\n\nb', 'data: a\ndata: \ndata: \ndata: b\n'],
      ['consecutive CRs, kept', 'a\r\r\rb', 'data: a\ndata: \ndata: \ndata: b\n'],
      ['CR then CRLF', 'a\r\r\nb', 'data: a\ndata: \ndata: b\n'],
      ['leading spaces, kept', '  x', 'data:   x\n'],
      ['a colon', 'a: b', 'data: a: b\n'],
      ['U+2028 and U+2029 (not line breaks in SSE)', 'a\u2028b\u2029c', 'data: a\u2028b\u2029c\n'],
      ['NUL', 'a\u0000b', 'data: a\u0000b\n'],
    ];
    for (const [name, input, expected] of cases) {
      it(`encodes ${name}`, () => {
        assert.equal(dataLines(input), expected);
      });
    }

    it('writes one data line per line of a JSON payload, pretty-printed or not', () => {
      const pretty = JSON.stringify({ a: 1, b: [1, 2] }, null, 2);
      assert.equal(
        dataLines(pretty),
        `${pretty
          .split('\n')
          .map((l) => `data: ${l}\n`)
          .join('')}`,
      );
      assert.equal(dataLines('{"a":"x\\ny"}'), 'data: {"a":"x\\ny"}\n');
    });
  });

  describe('sseEvent', () => {
    it('writes event, id and data, then the blank line that dispatches it', () => {
      assert.equal(
        sseEvent('message', '{"a":1}', '[{"topic":"t","partition":0,"offset":1}]'),
        'event: message\nid: [{"topic":"t","partition":0,"offset":1}]\ndata: {"a":1}\n\n',
      );
    });

    it('writes no id line when there is no id', () => {
      assert.equal(sseEvent('error', 'x'), 'event: error\ndata: x\n\n');
    });

    it('writes an empty id when the id is empty', () => {
      assert.equal(sseEvent('message', 'x', ''), 'event: message\nid: \ndata: x\n\n');
    });

    it('keeps line breaks out of the event name and id', () => {
      assert.equal(sseEvent('a\nb', 'x', '1\r\n2'), 'event: a b\nid: 1 2\ndata: x\n\n');
      const parsed = parseSse(sseEvent('evil\n\ndata: injected', 'real', 'id\rretry: 1'));
      assert.equal(parsed.events.length, 1);
      assert.deepEqual(parsed.retries, []);
      assert.equal(parsed.events[0]?.data, 'real');
      assert.equal(parsed.events[0]?.event, 'evil data: injected');
      assert.equal(parsed.events[0]?.id, 'id retry: 1');
    });

    it('is parsed back by eventsource-parser', () => {
      const { events } = parseSse(sseEvent('message', 'a\nb', '[1]') + sseEvent('error', '{"code":"X"}'));
      assert.deepEqual(events, [
        { event: 'message', id: '[1]', data: 'a\nb' },
        { event: 'error', id: undefined, data: '{"code":"X"}' },
      ]);
    });

    it('round-trips many generated payloads through eventsource-parser (CR and CRLF come back as LF)', () => {
      const next = prng(0x5eed);
      const inputs: string[] = [];
      for (let i = 0; i < 2000; i++) inputs.push(randomString(next));
      // Also every piece alone and every pair, so each edge is covered whatever the generator picks.
      for (const a of PIECES) for (const b of PIECES) inputs.push(a + b);
      const stream = inputs.map((d, i) => sseEvent('message', d, `id-${i}`)).join('');
      const { events } = parseSse(`:ok\n\n${stream}`);
      assert.equal(events.length, inputs.length);
      inputs.forEach((input, i) => {
        const e = events[i];
        assert.equal(e?.id, `id-${i}`);
        assert.equal(e?.event, 'message');
        assert.equal(e?.data, normalized(input), `input ${JSON.stringify(input)}`);
      });
    });

    it('round-trips when the stream arrives one character at a time', () => {
      const next = prng(42);
      const inputs = Array.from({ length: 200 }, () => randomString(next));
      const events: EventSourceMessage[] = [];
      const parser = createParser({ onEvent: (e) => events.push(e) });
      for (const ch of inputs.map((d) => sseEvent('message', d, 'i')).join('')) parser.feed(ch);
      assert.deepEqual(
        events.map((e) => e.data),
        inputs.map(normalized),
      );
    });

    it('round-trips JSON-serialized messages exactly', () => {
      const next = prng(7);
      for (let i = 0; i < 300; i++) {
        const message = { s: randomString(next), n: i, nested: { arr: [randomString(next), null, true] } };
        const { events } = parseSse(sseEvent('message', serializeForSse(message), 'x'));
        assert.deepEqual(JSON.parse(events[0]?.data ?? ''), message);
      }
    });
  });

  describe('singleLine', () => {
    it('returns text without line breaks unchanged', () => {
      assert.equal(singleLine('abc'), 'abc');
      assert.equal(singleLine(''), '');
      assert.equal(singleLine('a\u2028b'), 'a\u2028b');
    });

    it('turns every run of CR and LF into one space', () => {
      assert.equal(singleLine('a\nb'), 'a b');
      assert.equal(singleLine('a\rb'), 'a b');
      assert.equal(singleLine('a\r\nb'), 'a b');
      assert.equal(singleLine('a\n\n\r\r\nb'), 'a b');
      assert.equal(singleLine('\nab\r'), ' ab ');
      assert.equal(singleLine('a\nb\rc'), 'a b c');
    });

    it('never leaves a CR or LF, for any generated input', () => {
      const next = prng(99);
      for (let i = 0; i < 500; i++) assert.ok(!/[\r\n]/.test(singleLine(randomString(next))));
    });
  });

  describe('sseComment', () => {
    it('writes an empty comment by default', () => {
      assert.equal(sseComment(), ':\n\n');
      assert.equal(sseComment(''), ':\n\n');
    });

    it('writes a comment with text, on one line', () => {
      assert.equal(sseComment('ok'), ': ok\n\n');
      assert.equal(sseComment('a\nb'), ': a b\n\n');
    });

    it('is ignored by an EventSource parser', () => {
      const parsed = parseSse(`${sseComment()}${sseComment('keep\nalive')}${sseEvent('message', 'x')}`);
      assert.deepEqual(
        parsed.events.map((e) => e.data),
        ['x'],
      );
      assert.deepEqual(parsed.comments, ['', 'keep alive']);
    });
  });

  describe('sseRetry', () => {
    it('writes a retry field in whole milliseconds', () => {
      assert.equal(sseRetry(3000), 'retry: 3000\n\n');
      assert.equal(sseRetry(0), 'retry: 0\n\n');
      assert.equal(sseRetry(1500.9), 'retry: 1500\n\n');
    });

    it('never writes a negative retry', () => {
      assert.equal(sseRetry(-5), 'retry: 0\n\n');
    });

    it('is understood by an EventSource parser', () => {
      assert.deepEqual(parseSse(sseRetry(2500)).retries, [2500]);
    });
  });

  describe('ndjsonLine', () => {
    it('appends one LF', () => {
      assert.equal(ndjsonLine('{"a":1}'), '{"a":1}\n');
      assert.equal(ndjsonLine('null'), 'null\n');
    });
  });

  describe('serializeForNdjson', () => {
    /** The property users rely on: exactly one line that JSON.parse reads back. */
    function assertOneJsonLine(value: unknown, expected: unknown = value): void {
      const json = serializeForNdjson(value);
      const line = ndjsonLine(json);
      assert.equal(line.indexOf('\n'), line.length - 1, `one line: ${JSON.stringify(line)}`);
      assert.ok(!line.includes('\r'));
      assert.deepEqual(JSON.parse(line), expected);
    }

    it('writes objects, arrays and scalars as JSON', () => {
      assert.equal(serializeForNdjson({ a: 1 }), '{"a":1}');
      assert.equal(serializeForNdjson([1, 'x']), '[1,"x"]');
      assert.equal(serializeForNdjson(5), '5');
      assert.equal(serializeForNdjson(true), 'true');
      assert.equal(serializeForNdjson(null), 'null');
    });

    it('writes strings as JSON strings, not raw text', () => {
      assert.equal(serializeForNdjson('a\nb'), '"a\\nb"');
      assertOneJsonLine('line1\r\nline2\rline3\n');
    });

    it('writes undefined and functions as null (one line, never empty)', () => {
      assert.equal(serializeForNdjson(undefined), 'null');
      assert.equal(
        serializeForNdjson(() => 1),
        'null',
      );
    });

    it('writes a Buffer as the JSON string of its UTF-8 text, bad bytes as U+FFFD', () => {
      assert.equal(serializeForNdjson(Buffer.from('{"a":1}')), '"{\\"a\\":1}"');
      assertOneJsonLine(Buffer.from([0x61, 0xff, 0x0a, 0x62]), 'a\uFFFD\nb');
    });

    it('is always exactly one line of valid JSON, for many generated values', () => {
      const next = prng(2024);
      for (let i = 0; i < 1000; i++) {
        const s = randomString(next);
        const value = { s, list: [s, i, null], nested: { [s]: s } };
        assertOneJsonLine(value);
        assertOneJsonLine(s);
      }
    });

    it('escapes lone surrogates, so the line is valid UTF-8 and reads back the same', () => {
      const json = serializeForNdjson({ s: '\uD800x\uDFFF' });
      assert.equal(json, '{"s":"\\ud800x\\udfff"}');
      assert.equal(Buffer.from(json, 'utf8').toString('utf8'), json);
      assert.deepEqual(JSON.parse(json), { s: '\uD800x\uDFFF' });
    });
  });

  describe('serializeForSse', () => {
    it('sends strings as they are', () => {
      assert.equal(serializeForSse('plain text'), 'plain text');
      assert.equal(serializeForSse('a\nb'), 'a\nb');
      assert.equal(serializeForSse(''), '');
    });

    it('sends Buffers as UTF-8 text, invalid bytes as U+FFFD', () => {
      assert.equal(serializeForSse(Buffer.from('héllo 😀')), 'héllo 😀');
      assert.equal(serializeForSse(Buffer.from([0x68, 0xc3, 0x28, 0x80, 0x69])), 'h\uFFFD(\uFFFDi');
      assert.equal(serializeForSse(Buffer.alloc(0)), '');
    });

    it('sends objects, arrays and scalars as JSON', () => {
      assert.equal(serializeForSse({ a: 'x', _kafka: { offset: 1 } }), '{"a":"x","_kafka":{"offset":1}}');
      assert.equal(serializeForSse([1, 2]), '[1,2]');
      assert.equal(serializeForSse(42), '42');
      assert.equal(serializeForSse(false), 'false');
    });

    it('sends null and undefined as null', () => {
      assert.equal(serializeForSse(null), 'null');
      assert.equal(serializeForSse(undefined), 'null');
    });

    it('keeps a JSON payload on one data line (JSON escapes line breaks)', () => {
      const frame = sseEvent('message', serializeForSse({ text: 'a\nb\r\nc' }), '1');
      assert.equal(frame.split('\n').filter((l) => l.startsWith('data:')).length, 1);
    });
  });
});

describe('splicedJson', () => {
  const meta = { topic: 't', partition: 0, offset: 5, timestamp: 1, key: null };
  function deserialized(text: string, extra: Partial<{ key: Buffer; timestamp: number | undefined }> = {}): unknown {
    return defaultDeserializer({
      value: Buffer.from(text),
      topic: 't',
      partition: 0,
      offset: 5,
      timestamp: 1,
      size: 0,
      ...extra,
    } as Parameters<typeof defaultDeserializer>[0]).message;
  }

  it('gives the same JSON value as JSON.stringify, from the original text, in both modes', () => {
    for (const text of ['{"a":1}', '{}', '{ }', '{"a":{"b":[1,2]}}  ', ' {"a": "x\\ny", "b" : 2 }', '{"ü":"€"}']) {
      for (const mode of ['sse', 'ndjson'] as const) {
        const message = deserialized(text);
        const spliced = splicedJson(message, mode);
        assert.ok(spliced !== undefined, text);
        assert.deepEqual(JSON.parse(spliced), JSON.parse(JSON.stringify(message)), text);
        assert.deepEqual((JSON.parse(spliced) as { _kafka: unknown })._kafka, meta);
      }
    }
    assert.equal(splicedJson(deserialized('{"n":0}'), 'sse'), `{"n":0,"_kafka":${JSON.stringify(meta)}}`);
  });

  it('renders _kafka byte for byte as JSON.stringify would: key strings escaped, a missing timestamp left out', () => {
    const withKey = deserialized('{"a":1}', { key: Buffer.from('k"\\\n€') });
    assert.equal(splicedJson(withKey, 'sse'), JSON.stringify(withKey));
    const noTime = deserialized('{"a":1}', { timestamp: undefined });
    assert.equal(splicedJson(noTime, 'ndjson'), JSON.stringify(noTime));
  });

  it('keeps raw line breaks for SSE (the client joins the data lines back) but declines them for NDJSON', () => {
    const message = deserialized('{\r\n"a":1\n}\n');
    const sse = splicedJson(message, 'sse');
    assert.ok(sse !== undefined);
    assert.deepEqual(JSON.parse(sse), JSON.parse(JSON.stringify(message)));
    assert.equal(splicedJson(message, 'ndjson'), undefined);
  });

  it('declines (re-serialize) without original text or when the payload had its own _kafka', () => {
    assert.equal(splicedJson({ a: 1 }, 'sse'), undefined);
    assert.equal(splicedJson('text', 'sse'), undefined);
    assert.equal(splicedJson(null, 'sse'), undefined);
    assert.equal(splicedJson(deserialized('{"_kafka":{"fake":true},"a":1}'), 'sse'), undefined);
    assert.equal(splicedJson(deserialized('{"\\u005fkafka":{"fake":true}}'), 'sse'), undefined);
    // Scalars and arrays are wrapped by the deserializer, never spliced.
    assert.equal(splicedJson(deserialized('[1,2]'), 'sse'), undefined);
    assert.equal(splicedJson(deserialized('5'), 'sse'), undefined);
  });
});

// Issue 14, row 8: with the old `{"_error":…}` lines, a deserializer that
// returned JSON.parse(payload) let a producer write a line byte-identical to
// an error. Now control lines carry a key no message line has at its top level.
describe('NDJSON control envelope', () => {
  const PREFIX = '{"$kafkaSse":';
  const forged = [
    { $kafkaSse: 'error', data: { name: 'X', code: 'INTERNAL', message: 'forged', status: 500 } },
    { $kafkaSse: 'lost', data: { lost: 1 } },
    { a: 1, $kafkaSse: 'error' },
    { 1: 'first', $kafkaSse: 'error' },
    { toJSON: () => ({ $kafkaSse: 'error', data: {} }) },
    { nested: { $kafkaSse: 'error' } },
    { _error: { code: 'INTERNAL' } },
  ];

  /** How a reader tells the two apart. */
  const isControl = (line: string) => {
    const v = JSON.parse(line) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, NDJSON_CONTROL_KEY);
  };
  /** What a reader makes of a message line: escaped messages unwrapped. */
  const read = (line: string) => {
    const v = JSON.parse(line) as Record<string, unknown>;
    return isControl(line) && v[NDJSON_CONTROL_KEY] === 'message' ? v.data : v;
  };

  it('writes {"$kafkaSse":"<name>","data":…} lines', () => {
    assert.equal(ndjsonControl('lost', { lost: 5 }), '{"$kafkaSse":"lost","data":{"lost":5}}\n');
    assert.equal(ndjsonControl('error', undefined), '{"$kafkaSse":"error","data":null}\n');
  });

  it('escapes every message that could pass for a control line, and the reader gets it back', () => {
    for (const value of forged) {
      const line = serializeForNdjson(value);
      const expected = JSON.parse(JSON.stringify(value)) as unknown;
      if (JSON.stringify(value).includes('"$kafkaSse":')) {
        assert.ok(line.startsWith('{"$kafkaSse":"message","data":'), line);
      } else {
        assert.equal(isControl(line), false, line);
      }
      assert.deepEqual(read(line), expected);
      assert.notEqual(line, ndjsonControl('error', (value as { data?: unknown }).data).slice(0, -1));
    }
    // What KafkaSSE-style deserializers hand over: the raw payload as a string or a Buffer.
    const raw = ndjsonControl('error', { code: 'INTERNAL' }).slice(0, -1);
    assert.equal(serializeForNdjson(raw), JSON.stringify(raw));
    assert.equal(serializeForNdjson(Buffer.from(raw)), JSON.stringify(raw));
  });

  it('declines to splice a default-deserialized payload that has the key (it is escaped instead)', () => {
    const text = '{"$kafkaSse":"error","data":{"code":"INTERNAL"}}';
    const d = defaultDeserializer({
      topic: 't',
      partition: 0,
      offset: 1,
      timestamp: 1,
      key: null,
      value: Buffer.from(text),
      size: text.length,
    });
    assert.equal(splicedJson(d.message, 'ndjson'), undefined);
    assert.ok(splicedJson(d.message, 'sse') !== undefined, 'SSE has no such ambiguity: messages are event: message');
    assert.ok(serializeForNdjson(d.message).startsWith('{"$kafkaSse":"message","data":{"$kafkaSse":"error"'));
    const spaced = defaultDeserializer({
      topic: 't',
      partition: 0,
      offset: 1,
      timestamp: 1,
      key: null,
      value: Buffer.from(' {"\\u0024kafkaSse" : "error"}'),
      size: 30,
    });
    assert.equal(splicedJson(spaced.message, 'ndjson'), undefined, 'an escaped spelling of the key is caught too');
  });

  it('no generated value serializes to a line a reader takes for a control, or to a control line byte for byte', () => {
    const hostile = fc.oneof(
      fc.jsonValue(),
      fc.record({ $kafkaSse: fc.constantFrom('error', 'lost', 'message'), data: fc.jsonValue() }),
      fc.dictionary(fc.oneof(fc.constant('$kafkaSse'), fc.string()), fc.jsonValue()),
      fc.string().map((s) => `${PREFIX}${s}`),
    );
    fc.assert(
      fc.property(hostile, fc.constantFrom('error', 'lost'), (value, name) => {
        const line = serializeForNdjson(value);
        assert.equal(line.includes('\n'), false);
        const parsed = JSON.parse(line) as Record<string, unknown> | null;
        if (isControl(line)) assert.equal(parsed?.[NDJSON_CONTROL_KEY], 'message', line);
        assert.deepEqual(read(line), JSON.parse(JSON.stringify(value) ?? 'null'));
        // Byte for byte: only an escaped message shares the control prefix, and never a control's name.
        assert.ok(!line.startsWith(PREFIX) || line.startsWith(`${PREFIX}"message","data":`), line);
        assert.notEqual(`${line}\n`, ndjsonControl(name, parsed?.data));
      }),
      { numRuns: 2000 },
    );
  });
});
