// fast-check generators of what a hostile (or merely broken) client can send:
// resume ids, assignments, start times, Accept headers, request ids and topic
// names. Each mixes pure noise with near-misses of the valid shapes, because
// bugs hide at the edges of what a parser accepts. Shared by the unit
// property tests (against the pure parsers) and the HTTP ones.
import fc from 'fast-check';

/** Characters Node's HTTP client lets through in a header value (others throw before sending). */
const HEADER_CHAR = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
);

/** A header value of up to `maxLength` characters. */
export function headerString(maxLength = 300): fc.Arbitrary<string> {
  return fc.array(HEADER_CHAR, { maxLength }).map((codes) => String.fromCharCode(...codes));
}

/** Strings of any code units, lone surrogates, controls and line breaks included. */
export const anyString = fc.string({ unit: 'binary', maxLength: 200 });

/** Integers where parsers break: around 0, int32, 2^53, and beyond. */
export const edgeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: -3, max: 10 }),
  fc.constantFrom(
    -1,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    -Number.MAX_SAFE_INTEGER,
    253402300799999,
    253402300800000,
    1e21,
    0.5,
    -0,
    1e-7,
  ),
  fc.double(),
  fc.integer(),
);

/** Topic names: valid ones (allowed or not), near-misses, internal ones and noise. */
export function topicName(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 3, arbitrary: fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '__consumer_offsets',
        '__transaction_state',
        '.',
        '..',
        '',
        ' ',
        'a'.repeat(249),
        'a'.repeat(250),
        'topic,other',
        'topic\u0000',
        'tôpic',
        'topic ',
        '-',
        '_',
        'CON',
      ),
    },
    { weight: 1, arbitrary: anyString },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...known), fc.constantFrom('.', '_', ' ', '\t', '\n', '/', '%00'))
        .map(([t, suffix]) => `${t}${suffix}`),
    },
  );
}

/** One `{topic, partition, offset|timestamp}` entry, valid or broken in one or several fields. */
export function entry(known: readonly string[]): fc.Arbitrary<unknown> {
  const field = (arb: fc.Arbitrary<unknown>) => fc.option(arb, { nil: undefined, freq: 4 });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record({
          topic: field(fc.oneof(topicName(known), fc.jsonValue({ maxDepth: 1 }))),
          partition: field(fc.oneof(edgeNumber, fc.constantFrom('0', null, true, [0], {}))),
          offset: field(fc.oneof(edgeNumber, fc.constantFrom('5', null, -1, -2, [1]))),
          timestamp: field(fc.oneof(edgeNumber, fc.constantFrom('2024-01-01', null, Date.now()))),
        })
        .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        { topic: known[0], partition: 0, offset: 0, __proto__x: 1 },
        JSON.parse('{"__proto__":{"partition":0},"topic":"x"}'),
        { topic: known[0], partition: 0, offset: 0, extra: 'x'.repeat(1000) },
      ),
    },
  );
}

/** Deeply nested JSON text (arrays or objects), balanced or not. */
export const nestedJson: fc.Arbitrary<string> = fc
  .record({ depth: fc.integer({ min: 1, max: 5000 }), kind: fc.constantFrom('[', '{"a":'), balanced: fc.boolean() })
  .map(({ depth, kind, balanced }) => {
    const open = kind.repeat(depth);
    const close = (kind === '[' ? ']' : '}').repeat(balanced ? depth : Math.floor(depth / 2));
    return kind === '[' ? `${open}${close}` : `${open}1${close}`;
  });

/** A resume id as a client may send it: KafkaSSE's JSON array, broken in every way, or noise. */
export function lastEventId(known: readonly string[], maxEntries = 40): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(entry(known), { maxLength: 6 }).map((a) => JSON.stringify(a)) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: nestedJson },
    {
      weight: 1,
      // Many partitions: beyond maxPartitions, duplicates, or huge partition numbers.
      arbitrary: fc
        .record({
          count: fc.integer({ min: 1, max: maxEntries }),
          topic: fc.constantFrom(...known),
          base: fc.constantFrom(0, 2 ** 31 - 50, 1000),
          dup: fc.boolean(),
        })
        .map(({ count, topic, base, dup }) =>
          JSON.stringify(
            Array.from({ length: count }, (_, i) => ({ topic, partition: dup ? base : base + i, offset: 0 })),
          ),
        ),
    },
    { weight: 2, arbitrary: anyString },
  );
}

/** `assignments` as a server could pass on what a client asked for (any JSON, or a topic list string). */
export function assignments(known: readonly string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.array(fc.oneof(topicName(known), entry(known)), { maxLength: 5 }) },
    { weight: 2, arbitrary: fc.array(topicName(known), { maxLength: 4 }).map((a) => a.join(',')) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
    {
      weight: 1,
      // Parsed when it parses (deep arrays or objects), else the raw text as a topic list.
      arbitrary: nestedJson.map((s): unknown => {
        try {
          return JSON.parse(s);
        } catch {
          return s;
        }
      }),
    },
  );
}

/** A `?since=` value (atTimestamp): numbers, numeric strings, dates, noise. */
export const since: fc.Arbitrary<string> = fc.oneof(
  edgeNumber.map(String),
  fc.integer({ min: 0, max: 2_000_000_000_000 }).map(String),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('', ' ', '0x10', '1e3', '+5', '-5', '00001', ' 42 ', '9'.repeat(17), 'NaN', 'Infinity', 'null'),
  anyString,
);

/** An Accept header: media types with parameters and q-values, valid or not. */
export const accept: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.record({
        type: fc.constantFrom(
          'text/event-stream',
          'application/json',
          'application/x-ndjson',
          'application/jsonl',
          '*/*',
          'text/*',
          'text/html',
          'application/xml',
          '',
        ),
        q: fc.option(fc.oneof(edgeNumber.map(String), fc.constantFrom('', 'abc', '0', '1', '0.5', '1.0')), {
          nil: undefined,
        }),
        junk: fc.option(headerString(20), { nil: undefined }),
      }),
      { maxLength: 6 },
    )
    .map((parts) =>
      parts
        .map((p) => `${p.type}${p.q !== undefined ? `;q=${p.q}` : ''}${p.junk !== undefined ? `;${p.junk}` : ''}`)
        .join(', '),
    ),
  headerString(300),
  headerString(4000),
);

/** An X-Request-ID header value. */
export const requestId: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  fc.stringMatching(/^[A-Za-z0-9._:@/+=-]{1,140}$/),
  headerString(200),
  fc.constantFrom('kafka-sse-bridge', 'group.id=evil', '../../etc', '$' + '{jndi:ldap://x}', "'; DROP TABLE x; --"),
);

/** Random bytes, percent-encoded: URL components that may decode to invalid UTF-8. */
export const percentBytes: fc.Arbitrary<string> = fc
  .uint8Array({ maxLength: 120 })
  .map((bytes) => Array.from(bytes, (b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
