// Position logic without a broker: what a client may ask for, what it is told
// when it asks wrongly, where each partition starts, and the resume id it gets.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KafkaSseError } from '../../lib/errors.ts';
import { PositionTracker } from '../../lib/position-tracker.ts';
import {
  clampOffset,
  type ExpandedPartition,
  expandPartitions,
  isValidTopicName,
  MAX_LAST_EVENT_ID_LENGTH,
  type PositionLookups,
  parseAssignments,
  parseAtTimestamp,
  parseLastEventId,
  type Requested,
  type ResolvedPosition,
  resolvePositions,
} from '../../lib/positions.ts';

/** Asserts that `fn` throws one of our errors with this code, status and a message matching `message`. */
function assertRejects(fn: () => unknown, code: string, status: number, message?: RegExp | string): KafkaSseError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof KafkaSseError, `expected a KafkaSseError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.statusCode, status);
  if (typeof message === 'string') assert.ok(caught.message.includes(message), `message: ${caught.message}`);
  else if (message) assert.match(caught.message, message);
  return caught;
}

const badAssignment = (value: unknown, message?: RegExp | string, max = 100) =>
  assertRejects(() => parseAssignments(value, max), 'INVALID_ASSIGNMENT', 400, message);

const badLastEventId = (value: string, message?: RegExp | string, max = 100) =>
  assertRejects(() => parseLastEventId(value, max), 'INVALID_LAST_EVENT_ID', 400, message);

const badTimestamp = (value: unknown, message?: RegExp | string) =>
  assertRejects(() => parseAtTimestamp(value), 'INVALID_TIMESTAMP', 400, message);

const topic = (name: string): Requested => ({ kind: 'topic', topic: name });

describe('positions', () => {
  describe('isValidTopicName (Kafka rules)', () => {
    it('accepts letters, digits, ".", "_" and "-", up to 249 characters', () => {
      for (const name of ['a', 'A.b_c-9', 'eqiad.mediawiki.recentchange', '_internal', '...', 'x'.repeat(249)]) {
        assert.equal(isValidTopicName(name), true, name);
      }
    });

    it('rejects empty, 250 characters, ".", "..", illegal characters and non-strings', () => {
      const bad: unknown[] = [
        '',
        'x'.repeat(250),
        '.',
        '..',
        'a b',
        'a/b',
        'a,b',
        'a:b',
        'é',
        'a\nb',
        'topic\u0000',
        '😀',
        5,
        null,
        undefined,
        {},
        ['a'],
      ];
      for (const name of bad) assert.equal(isValidTopicName(name), false, JSON.stringify(name));
    });
  });

  describe('parseAssignments', () => {
    it('takes an array of topic names as whole topics', () => {
      assert.deepEqual(parseAssignments(['a', 'b.c'], 10), [topic('a'), topic('b.c')]);
    });

    it('takes a single topic name', () => {
      assert.deepEqual(parseAssignments('eqiad.mediawiki.recentchange', 10), [topic('eqiad.mediawiki.recentchange')]);
    });

    it('takes a comma-separated string, trimming spaces around names', () => {
      assert.deepEqual(parseAssignments(' a ,b,  c  ', 10), [topic('a'), topic('b'), topic('c')]);
    });

    it('trims spaces around topic names in an array', () => {
      assert.deepEqual(parseAssignments(['  a  '], 10), [topic('a')]);
    });

    it('takes objects with an offset', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 3, offset: 42 }], 10), [
        { kind: 'partition', topic: 't', partition: 3, offset: 42 },
      ]);
    });

    it('takes objects with a timestamp', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 0, timestamp: 1575906290000 }], 10), [
        { kind: 'partition', topic: 't', partition: 0, timestamp: 1575906290000 },
      ]);
    });

    it('takes objects with neither (start decided later)', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 1 }], 10), [
        { kind: 'partition', topic: 't', partition: 1 },
      ]);
    });

    it('treats null offset and timestamp as absent', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 1, offset: null, timestamp: null }], 10), [
        { kind: 'partition', topic: 't', partition: 1 },
      ]);
    });

    it('accepts -1 as the end of the partition and 0 as its first offset', () => {
      assert.deepEqual(
        parseAssignments(
          [
            { topic: 't', partition: 0, offset: -1 },
            { topic: 't', partition: 1, offset: 0 },
            { topic: 't', partition: 2, offset: Number.MAX_SAFE_INTEGER },
          ],
          10,
        ).map((r) => (r.kind === 'partition' ? r.offset : undefined)),
        [-1, 0, Number.MAX_SAFE_INTEGER],
      );
    });

    it('accepts the largest partition number Kafka allows (2^31 - 1)', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 2 ** 31 - 1 }], 10), [
        { kind: 'partition', topic: 't', partition: 2 ** 31 - 1 },
      ]);
    });

    it('accepts a timestamp of 0 and one at the end of year 9999', () => {
      const out = parseAssignments(
        [
          { topic: 't', partition: 0, timestamp: 0 },
          { topic: 't', partition: 1, timestamp: 253402300799999 },
        ],
        10,
      );
      assert.deepEqual(
        out.map((r) => (r.kind === 'partition' ? r.timestamp : undefined)),
        [0, 253402300799999],
      );
    });

    it('mixes topic names and partition objects', () => {
      assert.deepEqual(parseAssignments(['a', { topic: 'b', partition: 0, offset: 5 }], 10), [
        topic('a'),
        { kind: 'partition', topic: 'b', partition: 0, offset: 5 },
      ]);
    });

    it('lets the offset win when an entry has both, keeping every entry (the predecessor dropped it)', () => {
      const out = parseAssignments(
        [
          { topic: 't', partition: 0, timestamp: 1000 },
          { topic: 't', partition: 1, offset: 7, timestamp: 2000 },
          { topic: 'u', partition: 0, timestamp: 3000 },
          { topic: 'u', partition: 1, offset: 0, timestamp: 4000 },
        ],
        10,
      );
      assert.deepEqual(out, [
        { kind: 'partition', topic: 't', partition: 0, timestamp: 1000 },
        { kind: 'partition', topic: 't', partition: 1, offset: 7 },
        { kind: 'partition', topic: 'u', partition: 0, timestamp: 3000 },
        { kind: 'partition', topic: 'u', partition: 1, offset: 0 },
      ]);
    });

    it('ignores fields it does not know', () => {
      assert.deepEqual(parseAssignments([{ topic: 't', partition: 0, offset: 1, extra: 'x' }], 10), [
        { kind: 'partition', topic: 't', partition: 0, offset: 1 },
      ]);
    });

    it('rejects what is neither a string nor an array', () => {
      for (const value of [undefined, null, 5, {}, { topic: 't', partition: 0 }, true]) {
        badAssignment(value, /^assignments must be a topic name, a comma-separated list of topics or an array/);
      }
    });

    it('rejects an empty array', () => {
      badAssignment([], 'at least one topic');
    });

    it('rejects an empty string and empty names in a list, naming the entry', () => {
      badAssignment('', /^assignments\[0\] is not a valid topic name: ""/);
      badAssignment('a,,b', /^assignments\[1\] is not a valid topic name/);
      badAssignment('a,b,', /^assignments\[2\] is not a valid topic name/);
      badAssignment(['a', '   '], /^assignments\[1\] is not a valid topic name/);
    });

    it('rejects topic names Kafka would reject, naming the entry', () => {
      for (const name of ['x'.repeat(250), 'a b', 'a/b', 'a$', '.', '..', 'ü']) {
        badAssignment(['ok', name], /^assignments\[1\] is not a valid topic name/);
        badAssignment(
          [
            { topic: 'ok', partition: 0 },
            { topic: name, partition: 0 },
          ],
          /^assignments\[1\]\.topic /,
        );
      }
    });

    it('shortens a very long bad name in the message', () => {
      const err = badAssignment(['x'.repeat(5000)]);
      assert.ok(err.message.length < 200, err.message);
      assert.ok(err.message.includes('…'));
    });

    it('rejects entries that are neither a name nor an object', () => {
      for (const entry of [5, null, true, ['t'], undefined]) {
        badAssignment(['a', entry], /^assignments\[1\] must be a topic name or an object \{topic, partition/);
      }
    });

    it('rejects an object without a valid topic', () => {
      badAssignment([{ partition: 0 }], /^assignments\[0\]\.topic is not a valid topic name: undefined/);
      badAssignment([{ topic: 5, partition: 0 }], /^assignments\[0\]\.topic/);
    });

    it('rejects partitions that are missing, negative, fractional, strings or too large', () => {
      const cases: unknown[] = [undefined, null, -1, 1.5, '0', '1', Number.NaN, Infinity, 2 ** 31, true, {}];
      for (const partition of cases) {
        badAssignment(
          ['a', 'b', { topic: 't', partition }],
          /^assignments\[2\]\.partition must be a non-negative integer, got /,
        );
      }
    });

    it('rejects offsets below -1, fractional, strings, NaN, Infinity and beyond 2^53', () => {
      const cases: unknown[] = [-2, -100, 1.5, -0.5, '5', '-1', Number.NaN, Infinity, -Infinity, 2 ** 53, true, {}];
      for (const offset of cases) {
        badAssignment(
          ['a', 'b', { topic: 't', partition: 0, offset }],
          /^assignments\[2\]\.offset must be an integer ≥ 0, or -1 for the end, got /,
        );
      }
    });

    it('rejects timestamps that are negative, fractional, strings, not finite or past year 9999', () => {
      const cases: unknown[] = [
        -1,
        1.5,
        '1575906290000',
        Number.NaN,
        Infinity,
        253402300800000,
        Number.MAX_SAFE_INTEGER,
        new Date(0),
      ];
      for (const timestamp of cases) {
        badAssignment(
          ['a', 'b', { topic: 't', partition: 0, timestamp }],
          /^assignments\[2\]\.timestamp must be an integer number of milliseconds since the epoch, got /,
        );
      }
    });

    it('rejects an invalid timestamp even when an offset is also given', () => {
      badAssignment([{ topic: 't', partition: 0, offset: 5, timestamp: 'soon' }], /^assignments\[0\]\.timestamp/);
    });

    it('describes the bad value in the message', () => {
      badAssignment([{ topic: 't', partition: 'zero' }], 'got "zero"');
      badAssignment([{ topic: 't', partition: null }], 'got null');
      badAssignment([{ topic: 't', partition: [] }], 'got an array');
      badAssignment([{ topic: 't', partition: {} }], 'got an object');
      badAssignment([{ topic: 't', partition: 0, offset: -2 }], 'got -2');
    });

    it('rejects a topic requested twice', () => {
      badAssignment(['a', 'b', 'a'], 'topic a is requested twice');
      badAssignment('a, a', 'topic a is requested twice');
    });

    it('rejects a partition requested twice', () => {
      badAssignment(
        [
          { topic: 't', partition: 1, offset: 1 },
          { topic: 't', partition: 1, timestamp: 5 },
        ],
        't partition 1 is requested twice',
      );
    });

    it('allows a whole topic alongside explicit partitions of it', () => {
      assert.equal(parseAssignments(['t', { topic: 't', partition: 0, offset: 3 }], 10).length, 2);
    });

    it('allows the same partition number in different topics', () => {
      assert.equal(
        parseAssignments(
          [
            { topic: 'a', partition: 0 },
            { topic: 'b', partition: 0 },
          ],
          10,
        ).length,
        2,
      );
    });

    it('bounds the number of entries by maxEntries, before looking at them', () => {
      assert.equal(parseAssignments(['a', 'b', 'c'], 3).length, 3);
      badAssignment(['a', 'b', 'c', 'd'], 'assignments has 4 entries; at most 3 are allowed', 3);
      badAssignment('a,b,c,d', 'at most 3', 3);
      // Entries past the bound are never parsed: the size error comes first.
      badAssignment([1, 2, 3, 4], 'at most 3', 3);
    });
  });

  describe('parseLastEventId', () => {
    it("accepts KafkaSSE's exact format byte for byte", () => {
      const id =
        '[{"topic":"eqiad.mediawiki.recentchange","partition":0,"timestamp":1575906290000},' +
        '{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]';
      assert.deepEqual(parseLastEventId(id, 10), [
        { kind: 'partition', topic: 'eqiad.mediawiki.recentchange', partition: 0, timestamp: 1575906290000 },
        { kind: 'partition', topic: 'codfw.mediawiki.recentchange', partition: 0, offset: -1 },
      ]);
    });

    it('accepts offset ids of several partitions', () => {
      const id = '[{"topic":"t","partition":0,"offset":12},{"topic":"t","partition":1,"offset":0}]';
      assert.deepEqual(parseLastEventId(id, 10), [
        { kind: 'partition', topic: 't', partition: 0, offset: 12 },
        { kind: 'partition', topic: 't', partition: 1, offset: 0 },
      ]);
    });

    it('accepts whitespace and unknown fields', () => {
      assert.deepEqual(parseLastEventId(' [ { "topic" : "t", "partition": 0, "offset": 3, "dt": "x" } ] ', 10), [
        { kind: 'partition', topic: 't', partition: 0, offset: 3 },
      ]);
    });

    it('lets the offset win when an entry has both', () => {
      assert.deepEqual(
        parseLastEventId(
          '[{"topic":"t","partition":0,"offset":3,"timestamp":5},{"topic":"t","partition":1,"timestamp":9}]',
          10,
        ),
        [
          { kind: 'partition', topic: 't', partition: 0, offset: 3 },
          { kind: 'partition', topic: 't', partition: 1, timestamp: 9 },
        ],
      );
    });

    it('rejects invalid JSON without echoing it', () => {
      for (const value of ['', 'not json', '[{"topic":"t"', '{"topic":"t","partition":0,"offset":1}]', "[{'a':1}]"]) {
        const err = badLastEventId(value, /^Last-Event-ID is not valid JSON; expected an array/);
        assert.equal(err.cause, undefined);
      }
    });

    it('rejects JSON that is not an array', () => {
      for (const value of ['{"topic":"t","partition":0,"offset":1}', '5', '"t"', 'null', 'true']) {
        badLastEventId(value, /^Last-Event-ID must be a JSON array/);
      }
    });

    it('rejects an empty array', () => {
      badLastEventId('[]', 'Last-Event-ID must name at least one partition');
    });

    it('rejects plain topic names (an id names partitions)', () => {
      badLastEventId('["t"]', /^Last-Event-ID\[0\] must be an object \{topic, partition, offset\|timestamp\}, got "t"/);
    });

    it('rejects entries that are not objects', () => {
      badLastEventId('[{"topic":"t","partition":0,"offset":1},null]', /^Last-Event-ID\[1\] must be an object/);
      badLastEventId('[[1]]', /^Last-Event-ID\[0\] must be an object .*got an array/);
    });

    it('rejects an entry with neither offset nor timestamp', () => {
      badLastEventId(
        '[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":1}]',
        'Last-Event-ID[1] must have an offset or a timestamp',
      );
      badLastEventId('[{"topic":"t","partition":1,"offset":null}]', 'Last-Event-ID[0] must have an offset');
    });

    it('names the bad field of the entry', () => {
      badLastEventId('[{"topic":"a b","partition":0,"offset":1}]', /^Last-Event-ID\[0\]\.topic is not a valid topic/);
      badLastEventId('[{"topic":"t","partition":-1,"offset":1}]', /^Last-Event-ID\[0\]\.partition must be/);
      badLastEventId('[{"topic":"t","partition":"0","offset":1}]', /^Last-Event-ID\[0\]\.partition must be/);
      badLastEventId('[{"topic":"t","partition":0,"offset":-2}]', /^Last-Event-ID\[0\]\.offset must be/);
      badLastEventId('[{"topic":"t","partition":0,"offset":"5"}]', /^Last-Event-ID\[0\]\.offset must be/);
      badLastEventId('[{"topic":"t","partition":0,"offset":1.5}]', /^Last-Event-ID\[0\]\.offset must be/);
      badLastEventId('[{"topic":"t","partition":0,"offset":1e300}]', /^Last-Event-ID\[0\]\.offset must be/);
      badLastEventId('[{"topic":"t","partition":0,"timestamp":-5}]', /^Last-Event-ID\[0\]\.timestamp must be/);
      badLastEventId('[{"topic":"t","partition":0,"timestamp":1e20}]', /^Last-Event-ID\[0\]\.timestamp must be/);
    });

    it('rejects a partition named twice', () => {
      badLastEventId(
        '[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":0,"offset":2}]',
        't partition 0 is requested twice',
      );
    });

    it('bounds the number of partitions by maxEntries', () => {
      const entries = (n: number) =>
        JSON.stringify(Array.from({ length: n }, (_, i) => ({ topic: 't', partition: i, offset: 0 })));
      assert.equal(parseLastEventId(entries(5), 5).length, 5);
      badLastEventId(entries(6), 'Last-Event-ID names 6 partitions; at most 5 are allowed', 5);
    });

    it('rejects an oversized value before parsing it', () => {
      const entry = '[{"topic":"t","partition":0,"offset":1}';
      const atLimit = `${entry}${' '.repeat(MAX_LAST_EVENT_ID_LENGTH - entry.length - 1)}]`;
      assert.equal(atLimit.length, MAX_LAST_EVENT_ID_LENGTH);
      assert.equal(parseLastEventId(atLimit, 10).length, 1);
      const over = `${atLimit} `;
      badLastEventId(over, `at most ${MAX_LAST_EVENT_ID_LENGTH} are accepted`);
      badLastEventId('x'.repeat(10 * 1024 * 1024), 'Last-Event-ID is 10485760 characters long');
    });

    it('answers deeply nested JSON with a 400, not a crash', () => {
      const depth = Math.floor(MAX_LAST_EVENT_ID_LENGTH / 2) - 1;
      badLastEventId(`${'['.repeat(depth)}${']'.repeat(depth)}`, /^Last-Event-ID\[0\] must be an object/);
      const nestedTopic = `[{"topic":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)},"partition":0,"offset":1}]`;
      badLastEventId(nestedTopic, /^Last-Event-ID\[0\]\.topic is not a valid topic name: an object/);
    });

    it('round-trips every id a PositionTracker writes', () => {
      const positions: ResolvedPosition[] = [
        { topic: 'a', partition: 0, offset: 0, reason: 'end' },
        { topic: 'a', partition: 1, offset: 99, reason: 'offset' },
        { topic: 'b.c-d_e', partition: 7, offset: 123456789012, reason: 'beginning' },
      ];
      const tracker = new PositionTracker(positions, false);
      tracker.advance('a', 1, 99, 5);
      assert.deepEqual(parseLastEventId(tracker.id(), 10), [
        { kind: 'partition', topic: 'a', partition: 0, offset: 0 },
        { kind: 'partition', topic: 'a', partition: 1, offset: 100 },
        { kind: 'partition', topic: 'b.c-d_e', partition: 7, offset: 123456789012 },
      ]);
      // Timestamp ids keep exact offsets for partitions that did not start from a time.
      const byTime = new PositionTracker(positions, true);
      assert.deepEqual(
        parseLastEventId(byTime.id(), 10).map((r) => (r.kind === 'partition' ? r.offset : undefined)),
        [0, 99, 123456789012],
      );
    });
  });

  describe('parseAtTimestamp', () => {
    it('treats undefined, null and an empty string as not given', () => {
      assert.equal(parseAtTimestamp(undefined), undefined);
      assert.equal(parseAtTimestamp(null), undefined);
      assert.equal(parseAtTimestamp(''), undefined);
    });

    it('takes epoch milliseconds as a number', () => {
      assert.equal(parseAtTimestamp(1575906290000), 1575906290000);
      assert.equal(parseAtTimestamp(0), 0);
      assert.equal(parseAtTimestamp(253402300799999), 253402300799999);
    });

    it('takes epoch milliseconds as a numeric string, spaces trimmed', () => {
      assert.equal(parseAtTimestamp('1575906290000'), 1575906290000);
      assert.equal(parseAtTimestamp(' 1575906290000 '), 1575906290000);
      assert.equal(parseAtTimestamp('0'), 0);
      assert.equal(parseAtTimestamp('007'), 7);
    });

    it('takes a Date', () => {
      assert.equal(parseAtTimestamp(new Date(1575906290000)), 1575906290000);
      assert.equal(parseAtTimestamp(new Date('2019-12-09T15:44:50Z')), 1575906290000);
    });

    it('rejects ISO strings and other text with INVALID_TIMESTAMP', () => {
      for (const value of ['2019-12-09T15:44:50Z', '2019-12-09', 'now', '1h', '0x10', '1e12', '+5', ' ', 'null']) {
        badTimestamp(value, /^the start time must be milliseconds since the epoch \(a number\), got "/);
      }
    });

    it('rejects negatives', () => {
      badTimestamp(-1, 'got -1');
      badTimestamp('-1', 'got "-1"');
      badTimestamp(new Date(-1));
    });

    it('rejects floats', () => {
      badTimestamp(1.5, /must be a valid time/);
      badTimestamp('1.5');
      badTimestamp(1575906290000.25);
    });

    it('rejects NaN, Infinity, an invalid Date and times past year 9999', () => {
      badTimestamp(Number.NaN);
      badTimestamp(Infinity);
      badTimestamp(-Infinity);
      badTimestamp(new Date('garbage'));
      badTimestamp(253402300800000);
      badTimestamp('9999999999999999');
      badTimestamp('12345678901234567', /\(a number\)/);
    });

    it('rejects other types', () => {
      for (const value of [true, {}, [], [1], Symbol('t'), 5n]) {
        badTimestamp(value, /^the start time must be milliseconds since the epoch/);
      }
    });
  });

  describe('expandPartitions', () => {
    const counts = new Map([
      ['a', 3],
      ['b', 2],
      ['t', 4],
    ]);

    it('expands a plain topic to all of its partitions, starting at the end', () => {
      assert.deepEqual(expandPartitions([topic('a')], counts, undefined, false), [
        { topic: 'a', partition: 0 },
        { topic: 'a', partition: 1 },
        { topic: 'a', partition: 2 },
      ]);
    });

    it('keeps request order, then partition order', () => {
      const out = expandPartitions([topic('b'), topic('a')], counts, undefined, false);
      assert.deepEqual(
        out.map((e) => `${e.topic}/${e.partition}`),
        ['b/0', 'b/1', 'a/0', 'a/1', 'a/2'],
      );
    });

    it('applies atTimestamp to plain topics', () => {
      assert.deepEqual(expandPartitions([topic('b')], counts, 1000, false), [
        { topic: 'b', partition: 0, timestamp: 1000 },
        { topic: 'b', partition: 1, timestamp: 1000 },
      ]);
    });

    it('lets explicit entries override their partition of a plain topic, whatever their place', () => {
      const explicit: Requested = { kind: 'partition', topic: 'a', partition: 1, offset: 5 };
      const expected: ExpandedPartition[] = [
        { topic: 'a', partition: 0, timestamp: 1000 },
        { topic: 'a', partition: 1, offset: 5 },
        { topic: 'a', partition: 2, timestamp: 1000 },
      ];
      assert.deepEqual(expandPartitions([topic('a'), explicit], counts, 1000, false), expected);
      const reversed = expandPartitions([explicit, topic('a')], counts, 1000, false);
      assert.equal(reversed.length, 3);
      assert.deepEqual(reversed[0], { topic: 'a', partition: 1, offset: 5 });
      assert.deepEqual(
        [...reversed].sort((x, y) => x.partition - y.partition),
        expected,
      );
    });

    it('keeps an explicit timestamp over atTimestamp', () => {
      const out = expandPartitions(
        [{ kind: 'partition', topic: 'a', partition: 2, timestamp: 42 }],
        counts,
        1000,
        false,
      );
      assert.deepEqual(out, [{ topic: 'a', partition: 2, timestamp: 42 }]);
    });

    it('gives an explicit entry without a start the default start', () => {
      assert.deepEqual(expandPartitions([{ kind: 'partition', topic: 'a', partition: 2 }], counts, 7, false), [
        { topic: 'a', partition: 2, timestamp: 7 },
      ]);
      assert.deepEqual(expandPartitions([{ kind: 'partition', topic: 'a', partition: 2 }], counts, undefined, false), [
        { topic: 'a', partition: 2 },
      ]);
    });

    it('only reads the partitions named explicitly when the topic is not requested whole', () => {
      const out = expandPartitions([{ kind: 'partition', topic: 't', partition: 0, offset: 1 }], counts, 5, false);
      assert.deepEqual(out, [{ topic: 't', partition: 0, offset: 1 }]);
    });

    it('applies history to plain topics, after atTimestamp in precedence', () => {
      assert.deepEqual(expandPartitions([topic('b')], counts, undefined, false, 10), [
        { topic: 'b', partition: 0, history: 10 },
        { topic: 'b', partition: 1, history: 10 },
      ]);
      assert.deepEqual(expandPartitions([topic('b')], counts, 99, false, 10), [
        { topic: 'b', partition: 0, timestamp: 99 },
        { topic: 'b', partition: 1, timestamp: 99 },
      ]);
      assert.deepEqual(expandPartitions([topic('b')], counts, undefined, false, 0), [
        { topic: 'b', partition: 0 },
        { topic: 'b', partition: 1 },
      ]);
    });

    it('from a Last-Event-ID naming 0..k-1, adds the partitions added since, from the beginning', () => {
      const requested = parseLastEventId(
        '[{"topic":"t","partition":0,"offset":10},{"topic":"t","partition":1,"offset":20}]',
        10,
      );
      const out = expandPartitions(requested, counts, undefined, true);
      assert.deepEqual(
        [...out].sort((x, y) => x.partition - y.partition),
        [
          { topic: 't', partition: 0, offset: 10 },
          { topic: 't', partition: 1, offset: 20 },
          { topic: 't', partition: 2, beginning: true },
          { topic: 't', partition: 3, beginning: true },
        ],
      );
    });

    it('adds partitions added since even when the id lists partitions out of order', () => {
      const requested = parseLastEventId(
        '[{"topic":"t","partition":1,"timestamp":20},{"topic":"t","partition":0,"timestamp":10}]',
        10,
      );
      const out = expandPartitions(requested, counts, undefined, true);
      assert.deepEqual(
        out.map((e) => `${e.partition}:${e.beginning ? 'beginning' : (e.timestamp ?? e.offset)}`),
        ['1:20', '0:10', '2:beginning', '3:beginning'],
      );
    });

    it('adds nothing when the id names a non-contiguous set of partitions', () => {
      for (const id of [
        '[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":2,"offset":1}]',
        '[{"topic":"t","partition":1,"offset":1}]',
        '[{"topic":"t","partition":1,"offset":1},{"topic":"t","partition":2,"offset":1}]',
      ]) {
        const requested = parseLastEventId(id, 10);
        assert.deepEqual(
          expandPartitions(requested, counts, undefined, true).map((e) => e.partition),
          requested.map((r) => (r.kind === 'partition' ? r.partition : -1)),
          id,
        );
      }
    });

    it('adds nothing when the id already names every partition', () => {
      const requested = parseLastEventId(
        '[{"topic":"b","partition":0,"offset":1},{"topic":"b","partition":1,"offset":1}]',
        10,
      );
      assert.equal(expandPartitions(requested, counts, undefined, true).length, 2);
    });

    it('applies the rule per topic', () => {
      const requested = parseLastEventId(
        JSON.stringify([
          { topic: 'a', partition: 0, offset: 1 },
          { topic: 't', partition: 0, offset: 1 },
          { topic: 't', partition: 3, offset: 1 },
        ]),
        10,
      );
      assert.deepEqual(
        expandPartitions(requested, counts, undefined, true).map((e) => `${e.topic}/${e.partition}`),
        ['a/0', 'a/1', 'a/2', 't/0', 't/3'],
      );
    });

    it('never starts added partitions from the beginning without a Last-Event-ID', () => {
      const requested: Requested[] = [
        { kind: 'partition', topic: 't', partition: 0, offset: 10 },
        { kind: 'partition', topic: 't', partition: 1, offset: 20 },
      ];
      assert.equal(expandPartitions(requested, counts, undefined, false).length, 2);
    });

    it('expands nothing for a topic with no known partitions', () => {
      assert.deepEqual(expandPartitions([topic('unknown')], counts, undefined, false), []);
    });
  });

  describe('clampOffset', () => {
    it('keeps offsets inside [low, high], both ends included', () => {
      assert.deepEqual(clampOffset(5, 0, 10), { offset: 5, reason: 'offset' });
      assert.deepEqual(clampOffset(0, 0, 10), { offset: 0, reason: 'offset' });
      assert.deepEqual(clampOffset(10, 0, 10), { offset: 10, reason: 'offset' });
    });

    it('turns -1 into the high watermark', () => {
      assert.deepEqual(clampOffset(-1, 3, 10), { offset: 10, reason: 'end' });
      assert.deepEqual(clampOffset(-1, 0, 0), { offset: 0, reason: 'end' });
    });

    it('raises offsets below the low watermark to it', () => {
      assert.deepEqual(clampOffset(2, 5, 10), { offset: 5, reason: 'clamped-low' });
    });

    it('lowers offsets past the high watermark to it', () => {
      assert.deepEqual(clampOffset(11, 5, 10), { offset: 10, reason: 'clamped-high' });
    });

    it('handles an empty partition whose messages all expired', () => {
      assert.deepEqual(clampOffset(3, 7, 7), { offset: 7, reason: 'clamped-low' });
      assert.deepEqual(clampOffset(9, 7, 7), { offset: 7, reason: 'clamped-high' });
    });
  });

  describe('resolvePositions', () => {
    /** Fake lookups: watermarks per "topic/partition", time answers per "topic/partition". */
    function fakeLookups(
      marks: Record<string, { low: number; high: number }>,
      times: Record<string, number> = {},
    ): PositionLookups & { timeQueries: { topic: string; partition: number; timestamp: number }[] } {
      const timeQueries: { topic: string; partition: number; timestamp: number }[] = [];
      return {
        timeQueries,
        async watermarks(t, p) {
          const m = marks[`${t}/${p}`];
          if (!m) throw new Error(`no watermarks for ${t}/${p}`);
          return m;
        },
        async offsetsForTimes(entries) {
          timeQueries.push(...entries);
          return entries.map((e) => ({
            topic: e.topic,
            partition: e.partition,
            offset: times[`${e.topic}/${e.partition}`] ?? -1,
          }));
        },
      };
    }

    it('raises an offset below the low watermark and reports how many messages were lost', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, offset: 40 }],
        fakeLookups({ 't/0': { low: 100, high: 150 } }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 100, reason: 'clamped-low' }]);
      assert.deepEqual(out.lost, [{ topic: 't', partition: 0, requestedOffset: 40, resumedOffset: 100, lost: 60 }]);
    });

    it('lowers an offset past the high watermark, losing nothing', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, offset: 500 }],
        fakeLookups({ 't/0': { low: 100, high: 150 } }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 150, reason: 'clamped-high' }]);
      assert.deepEqual(out.lost, []);
    });

    it('keeps an offset inside the range', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, offset: 120 }],
        fakeLookups({ 't/0': { low: 100, high: 150 } }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 120, reason: 'offset' }]);
    });

    it('resolves -1 to the high watermark', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, offset: -1 }],
        fakeLookups({ 't/0': { low: 100, high: 150 } }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 150, reason: 'end' }]);
      assert.deepEqual(out.lost, []);
    });

    it('resolves a timestamp to the offsetsForTimes answer, keeping the time', async () => {
      const lookups = fakeLookups({ 't/0': { low: 100, high: 150 } }, { 't/0': 130 });
      const out = await resolvePositions([{ topic: 't', partition: 0, timestamp: 1575906290000 }], lookups);
      assert.deepEqual(out.positions, [
        { topic: 't', partition: 0, offset: 130, reason: 'timestamp', timestamp: 1575906290000 },
      ]);
      assert.deepEqual(lookups.timeQueries, [{ topic: 't', partition: 0, timestamp: 1575906290000 }]);
    });

    it('resolves a timestamp with no message at or after it (-1) to the high watermark', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, timestamp: 9e12 }],
        fakeLookups({ 't/0': { low: 100, high: 150 } }, { 't/0': -1 }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 150, reason: 'end', timestamp: 9e12 }]);
    });

    it('treats a partition missing from the time answer as -1', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 0, timestamp: 5 }],
        fakeLookups({ 't/0': { low: 1, high: 2 } }),
      );
      assert.equal(out.positions[0]?.offset, 2);
    });

    it('keeps a time answer inside the watermarks', async () => {
      const out = await resolvePositions(
        [
          { topic: 't', partition: 0, timestamp: 5 },
          { topic: 't', partition: 1, timestamp: 5 },
        ],
        fakeLookups({ 't/0': { low: 100, high: 150 }, 't/1': { low: 100, high: 150 } }, { 't/0': 50, 't/1': 999 }),
      );
      assert.deepEqual(
        out.positions.map((p) => p.offset),
        [100, 150],
      );
    });

    it('resolves "beginning" to the low watermark', async () => {
      const out = await resolvePositions(
        [{ topic: 't', partition: 3, beginning: true }],
        fakeLookups({ 't/3': { low: 17, high: 20 } }),
      );
      assert.deepEqual(out.positions, [{ topic: 't', partition: 3, offset: 17, reason: 'beginning' }]);
    });

    it('resolves history to that many messages before the end, never before the low watermark', async () => {
      const out = await resolvePositions(
        [
          { topic: 't', partition: 0, history: 10 },
          { topic: 't', partition: 1, history: 10 },
        ],
        fakeLookups({ 't/0': { low: 0, high: 100 }, 't/1': { low: 95, high: 100 } }),
      );
      assert.deepEqual(
        out.positions.map((p) => [p.offset, p.reason]),
        [
          [90, 'history'],
          [95, 'history'],
        ],
      );
    });

    it('resolves no start to the high watermark', async () => {
      const out = await resolvePositions([{ topic: 't', partition: 0 }], fakeLookups({ 't/0': { low: 1, high: 9 } }));
      assert.deepEqual(out.positions, [{ topic: 't', partition: 0, offset: 9, reason: 'end' }]);
    });

    it('resolves a mix in order, never returning a negative offset', async () => {
      const lookups = fakeLookups(
        {
          'a/0': { low: 0, high: 0 },
          'a/1': { low: 5, high: 10 },
          'b/0': { low: 3, high: 8 },
          'b/1': { low: 0, high: 4 },
        },
        { 'b/0': 6 },
      );
      const out = await resolvePositions(
        [
          { topic: 'a', partition: 0, offset: -1 },
          { topic: 'a', partition: 1, offset: 0 },
          { topic: 'b', partition: 0, timestamp: 1, offset: 4 },
          { topic: 'b', partition: 1, beginning: true },
        ],
        lookups,
      );
      assert.deepEqual(
        out.positions.map((p) => `${p.topic}/${p.partition}@${p.offset}:${p.reason}`),
        ['a/0@0:end', 'a/1@5:clamped-low', 'b/0@4:offset', 'b/1@0:beginning'],
      );
      assert.deepEqual(lookups.timeQueries, []);
      assert.deepEqual(out.lost, [{ topic: 'a', partition: 1, requestedOffset: 0, resumedOffset: 5, lost: 5 }]);
    });

    it('passes lookup failures on', async () => {
      await assert.rejects(resolvePositions([{ topic: 'x', partition: 0 }], fakeLookups({})), /no watermarks for x\/0/);
    });
  });

  describe('PositionTracker', () => {
    const positions: ResolvedPosition[] = [
      { topic: 'eqiad.mediawiki.recentchange', partition: 0, offset: 10, reason: 'offset' },
      { topic: 'codfw.mediawiki.recentchange', partition: 0, offset: 0, reason: 'end' },
    ];

    it("writes KafkaSSE's JSON array format with the next offset of every partition", () => {
      const tracker = new PositionTracker(positions, false);
      assert.equal(
        tracker.id(),
        '[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":10},' +
          '{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":0}]',
      );
    });

    it('moves one partition to offset + 1 and keeps the others', () => {
      const tracker = new PositionTracker(positions, false);
      assert.equal(tracker.advance('eqiad.mediawiki.recentchange', 0, 10, 1575906290000), true);
      assert.equal(
        tracker.id(),
        '[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":11},' +
          '{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":0}]',
      );
      tracker.advance('codfw.mediawiki.recentchange', 0, 0, undefined);
      tracker.advance('eqiad.mediawiki.recentchange', 0, 11, undefined);
      assert.deepEqual(tracker.snapshot(), [
        { topic: 'eqiad.mediawiki.recentchange', partition: 0, offset: 12 },
        { topic: 'codfw.mediawiki.recentchange', partition: 0, offset: 1 },
      ]);
    });

    it('writes the bytes of id() with writeId() after any sequence of advances, partitions added and writes', () => {
      // Offsets near powers of ten (the number's width changes), timestamps, moves back (ignored), skipped writes.
      const offset = fc.oneof(fc.nat(30), fc.integer({ min: 95, max: 105 }), fc.integer({ min: 9990, max: 10_010 }));
      const step = fc.oneof(
        fc.record({ kind: fc.constant('advance' as const), at: fc.nat(7), offset, stamp: fc.option(fc.nat(2000)) }),
        fc.record({ kind: fc.constant('write' as const) }),
        fc.record({ kind: fc.constant('add' as const), offset: fc.nat(12) }),
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 6 }),
          fc.boolean(),
          fc.array(step, { maxLength: 60 }),
          (n, byTime, steps) => {
            const starts: ResolvedPosition[] = Array.from({ length: n }, (_, p) => ({
              topic: p % 2 ? 'tópico' : 't',
              partition: p,
              offset: 9 * p,
              reason: 'offset',
              ...(p === 1 ? { timestamp: 99 } : {}),
            }));
            const tracker = new PositionTracker(starts, byTime);
            let count = n;
            const buf = Buffer.alloc(4096, 0x2a);
            for (const s of steps) {
              if (s.kind === 'add') {
                tracker.addPartition({ topic: 'added', partition: count++, offset: s.offset, reason: 'end' });
              } else if (s.kind === 'advance') {
                tracker.advanceAt(s.at % count, s.offset, s.stamp ?? undefined);
              } else {
                const end = tracker.writeId(buf, 3);
                assert.ok(end - 3 <= tracker.idBytesBound());
                assert.equal(buf.subarray(3, end).toString(), tracker.id());
              }
            }
            const end = tracker.writeId(buf, 0);
            assert.equal(buf.subarray(0, end).toString(), tracker.id());
          },
        ),
        { numRuns: 3000 },
      );
    });

    it('ignores an unknown partition', () => {
      const tracker = new PositionTracker(positions, false);
      const before = tracker.id();
      assert.equal(tracker.advance('eqiad.mediawiki.recentchange', 1, 99, 5), false);
      assert.equal(tracker.advance('other', 0, 99, 5), false);
      assert.equal(tracker.id(), before);
    });

    it('reports the next offset of every partition, whatever the id encodes', () => {
      for (const useTimestamps of [false, true]) {
        const tracker = new PositionTracker(positions, useTimestamps);
        tracker.advance('codfw.mediawiki.recentchange', 0, 41, 2000);
        assert.deepEqual(tracker.nextOffsets(), [
          { topic: 'eqiad.mediawiki.recentchange', partition: 0, nextOffset: 10 },
          { topic: 'codfw.mediawiki.recentchange', partition: 0, nextOffset: 42 },
        ]);
      }
    });

    it('writes timestamps + 1 ms with useTimestamps; before any message, the start time or the exact offset', () => {
      const tracker = new PositionTracker(
        [
          { topic: 'a', partition: 0, offset: 5, reason: 'timestamp', timestamp: 1575906290000 },
          { topic: 'a', partition: 1, offset: 9, reason: 'end' },
        ],
        true,
      );
      assert.equal(
        tracker.id(),
        '[{"topic":"a","partition":0,"timestamp":1575906290000},{"topic":"a","partition":1,"offset":9}]',
      );
      tracker.advance('a', 0, 5, 1575906299999);
      assert.equal(
        tracker.id(),
        '[{"topic":"a","partition":0,"timestamp":1575906300000},{"topic":"a","partition":1,"offset":9}]',
      );
    });

    it('never moves a timestamp id backwards, nor on messages without a time', () => {
      const tracker = new PositionTracker(
        [{ topic: 'a', partition: 0, offset: 0, reason: 'timestamp', timestamp: 1000 }],
        true,
      );
      const seen: number[] = [];
      for (const [offset, ts] of [
        [0, 5000],
        [1, 3000],
        [2, undefined],
        [3, -1],
        [4, 5000],
        [5, 7000],
      ] as const) {
        tracker.advance('a', 0, offset, ts);
        seen.push(tracker.snapshot()[0]?.timestamp as number);
      }
      assert.deepEqual(seen, [5001, 5001, 5001, 5001, 5001, 7001]);
      for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as number) >= (seen[i - 1] as number));
    });

    it('never writes -1, even for partitions that start at the end', () => {
      const tracker = new PositionTracker(
        [
          { topic: 'a', partition: 0, offset: 0, reason: 'end' },
          { topic: 'a', partition: 1, offset: 77, reason: 'end' },
        ],
        false,
      );
      assert.ok(!tracker.id().includes('-1'), tracker.id());
      for (const e of tracker.snapshot()) assert.ok((e.offset as number) >= 0);
    });

    it('escapes topic names as JSON strings', () => {
      const tracker = new PositionTracker([{ topic: 'a.b_c-d', partition: 2, offset: 1, reason: 'offset' }], false);
      assert.deepEqual(JSON.parse(tracker.id()), [{ topic: 'a.b_c-d', partition: 2, offset: 1 }]);
    });

    it('writes an empty array when nothing is assigned', () => {
      assert.equal(new PositionTracker([], false).id(), '[]');
    });

    it('refuses a message before the current position (a rewound duplicate) and records nothing', () => {
      const tracker = new PositionTracker([{ topic: 't', partition: 0, offset: 10, reason: 'offset' }], false);
      assert.equal(tracker.advance('t', 0, 9, undefined), false);
      assert.equal(tracker.advance('t', 0, 10, undefined), true);
      assert.equal(tracker.advance('t', 0, 10, undefined), false);
      assert.equal(tracker.advance('t', 0, 14, undefined), true, 'a gap (compaction, transaction markers) is fine');
      assert.equal(tracker.id(), '[{"topic":"t","partition":0,"offset":15}]');
    });

    it('is consistent across many random advances', () => {
      let seed = 12345;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const start: ResolvedPosition[] = Array.from({ length: 5 }, (_, p) => ({
        topic: 't',
        partition: p,
        offset: p * 10,
        reason: 'offset',
      }));
      const tracker = new PositionTracker(start, false);
      const expected = start.map((p) => p.offset);
      for (let i = 0; i < 500; i++) {
        const p = rand(5);
        const offset = (expected[p] as number) + rand(3);
        tracker.advance('t', p, offset, undefined);
        expected[p] = offset + 1;
        if (i % 50 === 0) {
          assert.deepEqual(
            tracker.snapshot().map((e) => e.offset),
            expected,
          );
        }
      }
      assert.deepEqual(
        parseLastEventId(tracker.id(), 10).map((r) => (r.kind === 'partition' ? r.offset : -2)),
        expected,
      );
    });
  });
});
