// Issue 6, part 4, without a network: every parser of client input, fed
// fast-check's hostile inputs by the tens of thousands (by the hundred
// thousand under `npm run soak`). Each either accepts the input with a
// well-formed result or refuses it with a 4xx KafkaSseError whose message is
// short (it never echoes a huge input back); none throws anything else, and
// none takes long. The framing encoders round-trip whatever they are given.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { ERROR_CODES, KafkaSseError } from '../../lib/errors.ts';
import { PositionTracker } from '../../lib/position-tracker.ts';
import {
  isValidTopicName,
  MAX_LAST_EVENT_ID_LENGTH,
  parseAssignments,
  parseAtTimestamp,
  parseLastEventId,
  type Requested,
} from '../../lib/positions.ts';
import { lastEventIdOf, negotiateMode, requestIdOf } from '../../lib/request.ts';
import { ndjsonLine, serializeForNdjson, serializeForSse, sseEvent } from '../../lib/sse-format.ts';
import * as arb from '../helpers/hostile-arbitraries.ts';
import { knob, recordFigures } from '../helpers/soak.ts';

const RUNS = knob('PROPERTY_RUNS', 10_000, 150_000);
const KNOWN = ['events', 'page-create', 'a.b_c-1'];
const MAX_ENTRIES = 30;
const MAX_TIMESTAMP_MS = 253402300799999;
/** An error message longer than this would be echoing input back. */
const MAX_MESSAGE_LENGTH = 300;
/** Slowest single parse allowed, GC pauses included: a complexity bug takes seconds. */
const MAX_PARSE_MS = 250;

function fakeRequest(headers: Record<string, string>, url = '/'): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

/** Runs `parse`; refusals must be 400 KafkaSseErrors with a short message. Returns the result and its duration. */
function judge<T>(parse: () => T): { value: T | undefined; ms: number } {
  const t0 = performance.now();
  try {
    const value = parse();
    return { value, ms: performance.now() - t0 };
  } catch (err) {
    const ms = performance.now() - t0;
    assert.ok(err instanceof KafkaSseError, `threw a ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.equal(err.statusCode, 400, `${err.code}: ${err.message}`);
    assert.ok((ERROR_CODES as readonly string[]).includes(err.code));
    assert.ok(err.message.length <= MAX_MESSAGE_LENGTH, `a ${err.message.length}-character message`);
    return { value: undefined, ms };
  }
}

function checkRequested(list: Requested[], max: number): void {
  assert.ok(list.length >= 1 && list.length <= max, `${list.length} entries`);
  const seen = new Set<string>();
  for (const r of list) {
    assert.ok(isValidTopicName(r.topic), `topic ${JSON.stringify(r.topic)}`);
    const key = r.kind === 'topic' ? r.topic : `${r.topic}/${r.partition}`;
    assert.ok(!seen.has(key), `duplicate ${key}`);
    seen.add(key);
    if (r.kind === 'partition') {
      assert.ok(Number.isInteger(r.partition) && r.partition >= 0 && r.partition <= 2 ** 31 - 1);
      if (r.offset !== undefined) assert.ok(Number.isSafeInteger(r.offset) && r.offset >= -1);
      if (r.timestamp !== undefined) {
        assert.ok(Number.isSafeInteger(r.timestamp) && r.timestamp >= 0 && r.timestamp <= MAX_TIMESTAMP_MS);
      }
    }
  }
}

/** Counts cases and the slowest one for the figures table. */
function tally(name: string) {
  let cases = 0;
  let accepted = 0;
  let maxMs = 0;
  return {
    add(ms: number, ok: boolean) {
      cases++;
      if (ok) accepted++;
      maxMs = Math.max(maxMs, ms);
      assert.ok(ms < MAX_PARSE_MS, `one parse took ${ms.toFixed(1)} ms`);
    },
    done() {
      recordFigures(`property: ${name}`, {
        cases,
        accepted,
        refused: cases - accepted,
        maxMs: Math.round(maxMs * 100) / 100,
      });
    },
  };
}

describe('hostile input, property-based: the pure parsers', function () {
  this.timeout(60_000 + RUNS * 5);

  it('Last-Event-ID: accepted well-formed or refused with a 400', () => {
    const t = tally('Last-Event-ID (parser)');
    fc.assert(
      fc.property(arb.lastEventId(KNOWN, MAX_ENTRIES * 2), (id) => {
        const { value, ms } = judge(() => parseLastEventId(id, MAX_ENTRIES));
        if (value) {
          checkRequested(value, MAX_ENTRIES);
          for (const r of value)
            assert.ok(r.kind === 'partition' && (r.offset !== undefined || r.timestamp !== undefined));
        }
        t.add(ms, value !== undefined);
      }),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('Last-Event-ID: oversized and deeply nested values are refused quickly', () => {
    const huge = `[${'{"topic":"events","partition":0,"offset":1},'.repeat(2000)}]`;
    assert.ok(huge.length > MAX_LAST_EVENT_ID_LENGTH);
    for (const id of [huge, '['.repeat(1_000_000), `${'['.repeat(30_000)}${']'.repeat(30_000)}`, ' '.repeat(70_000)]) {
      const { value, ms } = judge(() => parseLastEventId(id, MAX_ENTRIES));
      assert.equal(value, undefined);
      assert.ok(ms < 200, `${ms} ms`);
    }
  });

  it('assignments: accepted well-formed or refused with a 400', () => {
    const t = tally('assignments (parser)');
    fc.assert(
      fc.property(arb.assignments(KNOWN), (a) => {
        const { value, ms } = judge(() => parseAssignments(a, MAX_ENTRIES));
        if (value) checkRequested(value, MAX_ENTRIES);
        t.add(ms, value !== undefined);
      }),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('atTimestamp (?since=): a time in range or a 400', () => {
    const t = tally('since (parser)');
    fc.assert(
      fc.property(fc.oneof(arb.since, arb.edgeNumber, fc.anything(), fc.date()), (v) => {
        const { value, ms } = judge(() => parseAtTimestamp(v));
        if (value !== undefined) assert.ok(Number.isSafeInteger(value) && value >= 0 && value <= MAX_TIMESTAMP_MS);
        t.add(ms, value !== undefined);
      }),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('Accept: always a mode, SSE unless a JSON type is explicitly preferred', () => {
    const t = tally('Accept (parser)');
    fc.assert(
      fc.property(fc.oneof(arb.accept, arb.anyString), (accept) => {
        const t0 = performance.now();
        const mode = negotiateMode(accept);
        t.add(performance.now() - t0, true);
        assert.ok(mode === 'sse' || mode === 'ndjson');
        if (!/json/i.test(accept.slice(0, 1024))) assert.equal(mode, 'sse');
      }),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('X-Request-ID: the safe token as given, else a fresh UUIDv7; never a line break', () => {
    const t = tally('X-Request-ID (parser)');
    const SAFE = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
    const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    fc.assert(
      fc.property(fc.oneof(arb.requestId, arb.anyString), (given) => {
        const t0 = performance.now();
        const id = requestIdOf(fakeRequest({ 'x-request-id': given }));
        t.add(performance.now() - t0, id === given);
        if (SAFE.test(given)) assert.equal(id, given);
        else assert.match(id, UUID_V7);
      }),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('lastEventId query parameter: read without throwing, whatever the URL', () => {
    const t = tally('lastEventId query (reader)');
    fc.assert(
      fc.property(
        fc.oneof(arb.percentBytes, arb.lastEventId(KNOWN).map(encodeURIComponent), fc.webPath(), arb.anyString),
        fc.constantFrom('lastEventId', 'last_event_id', 'lastEventID', 'x'),
        (value, name) => {
          const t0 = performance.now();
          const got = lastEventIdOf(fakeRequest({}, `/stream?a=1&${name}=${value}&b=2`));
          t.add(performance.now() - t0, got !== undefined);
          if (got !== undefined) assert.ok(name === 'lastEventId' || name === 'last_event_id');
        },
      ),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('resume ids round-trip: what the tracker writes, the parser reads back exactly', () => {
    const t = tally('id round-trip');
    const position = fc.record({
      topic: fc.stringMatching(/^[a-zA-Z0-9._-]{1,60}$/).filter(isValidTopicName),
      partition: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      offset: fc.maxSafeNat(),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(position, { minLength: 1, maxLength: 20, selector: (p) => `${p.topic}/${p.partition}` }),
        (positions) => {
          const tracker = new PositionTracker(
            positions.map((p) => ({ ...p, reason: 'offset' as const })),
            false,
          );
          const t0 = performance.now();
          const parsed = parseLastEventId(tracker.id(), 100);
          t.add(performance.now() - t0, true);
          assert.deepEqual(
            parsed,
            positions.map((p) => ({ kind: 'partition', ...p })),
          );
        },
      ),
      { numRuns: Math.ceil(RUNS / 5) },
    );
    t.done();
  });

  it('SSE framing: any text arrives as one event, CR and CRLF as LF, and the next event intact', () => {
    const t = tally('SSE framing');
    fc.assert(
      fc.property(
        fc.oneof(arb.anyString, fc.string({ unit: 'grapheme', maxLength: 100 })),
        fc.jsonValue(),
        (text, json) => {
          const events: EventSourceMessage[] = [];
          const parser = createParser({ onEvent: (e) => events.push(e) });
          const id = '[{"topic":"events","partition":0,"offset":1}]';
          const next = { after: json };
          const t0 = performance.now();
          const wire = sseEvent('message', serializeForSse(text), id) + sseEvent('message', serializeForSse(next), id);
          t.add(performance.now() - t0, true);
          parser.feed(wire);
          // (An EventSource then drops an event whose data is empty, as the SSE spec says.)
          assert.deepEqual(
            events.map((e) => e.data),
            [text.replace(/\r\n|\r/g, '\n'), JSON.stringify(next)],
          );
          for (const e of events) {
            assert.equal(e.id, id);
            assert.equal(e.event, 'message');
          }
        },
      ),
      { numRuns: RUNS },
    );
    t.done();
  });

  it('NDJSON framing: any value is exactly one line that parses back to it', () => {
    const t = tally('NDJSON framing');
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), arb.anyString), (value) => {
        const t0 = performance.now();
        const line = ndjsonLine(serializeForNdjson(value));
        t.add(performance.now() - t0, true);
        assert.equal(line.indexOf('\n'), line.length - 1);
        assert.ok(!line.includes('\r'));
        assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: RUNS },
    );
    t.done();
  });
});
