// What is read from a request: the wire format, the resume id and the log id.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { lastEventIdOf, negotiateMode, requestIdOf, streamModeOf } from '../../lib/request.ts';

/** Just the parts of an IncomingMessage these functions read (Node lower-cases header names). */
function fakeRequest(headers: Record<string, string | string[]>, url = '/'): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request', () => {
  describe('negotiateMode', () => {
    const cases: [string | undefined, 'sse' | 'ndjson'][] = [
      [undefined, 'sse'],
      ['', 'sse'],
      ['text/event-stream', 'sse'],
      ['application/json', 'ndjson'],
      ['application/x-ndjson', 'ndjson'],
      ['application/ndjson', 'ndjson'],
      ['application/jsonl', 'ndjson'],
      ['APPLICATION/JSON', 'ndjson'],
      ['application/json; charset=utf-8', 'ndjson'],
      ['  application/json  ', 'ndjson'],
      ['*/*', 'sse'],
      ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sse'],
      ['text/plain', 'sse'],
      // Ties go to SSE, whichever comes first.
      ['text/event-stream, application/json', 'sse'],
      ['application/json, text/event-stream', 'sse'],
      ['application/json;q=0.5, text/event-stream;q=0.5', 'sse'],
      // q-values decide.
      ['application/json;q=0.9, text/event-stream;q=0.8', 'ndjson'],
      ['text/event-stream;q=0.8, application/json', 'ndjson'],
      ['text/event-stream, application/json;q=0.9', 'sse'],
      ['application/x-ndjson;q=0.1', 'ndjson'],
      ['application/json ; q=0.7 , text/event-stream ; q=0.6', 'ndjson'],
      ['application/json;q=0', 'sse'],
      ['text/event-stream;q=0, application/json;q=0', 'sse'],
      ['application/json;q=abc', 'sse'],
      ['application/json;q=', 'sse'],
      ['application/json;level=1;q=0.4, text/event-stream;q=0.3', 'ndjson'],
      ['application/json;q=0.1, application/x-ndjson;q=0.9, text/event-stream;q=0.5', 'ndjson'],
      // Garbage never throws and never picks NDJSON by accident.
      ['garbage', 'sse'],
      [';;;,,,', 'sse'],
      ['application/json;;;q', 'ndjson'],
      ['q=1', 'sse'],
      ['\u0000\uFFFF', 'sse'],
      ['application/jsonx', 'sse'],
      ['xapplication/json', 'sse'],
    ];
    for (const [accept, expected] of cases) {
      it(`${JSON.stringify(accept)} → ${expected}`, () => {
        assert.equal(negotiateMode(accept), expected);
      });
    }

    it('only looks at the first 1024 characters of a huge header', () => {
      const padding = `${'x/y, '.repeat(300)}`;
      assert.ok(padding.length > 1024);
      assert.equal(negotiateMode(`${padding}application/json`), 'sse');
      assert.equal(negotiateMode(`application/json, ${padding}`), 'ndjson');
      assert.equal(negotiateMode('a'.repeat(1_000_000)), 'sse');
    });
  });

  describe('streamModeOf', () => {
    it('reads the Accept header', () => {
      assert.equal(streamModeOf(fakeRequest({ accept: 'application/json' }), false), 'ndjson');
      assert.equal(streamModeOf(fakeRequest({ accept: 'text/event-stream' }), false), 'sse');
      assert.equal(streamModeOf(fakeRequest({}), false), 'sse');
    });

    it('gives NDJSON whatever the client accepts with disableSSEFormatting', () => {
      assert.equal(streamModeOf(fakeRequest({ accept: 'text/event-stream' }), true), 'ndjson');
      assert.equal(streamModeOf(fakeRequest({}), true), 'ndjson');
    });
  });

  describe('lastEventIdOf', () => {
    const id = '[{"topic":"t","partition":0,"offset":5}]';

    it('reads the Last-Event-ID header as it is', () => {
      assert.equal(lastEventIdOf(fakeRequest({ 'last-event-id': id })), id);
    });

    it('falls back to the lastEventId query parameter, URL-decoded', () => {
      assert.equal(lastEventIdOf(fakeRequest({}, `/stream?lastEventId=${encodeURIComponent(id)}`)), id);
      assert.equal(lastEventIdOf(fakeRequest({}, `/s?a=1&lastEventId=${encodeURIComponent(id)}&b=2`)), id);
    });

    it('also accepts last_event_id in the query', () => {
      assert.equal(lastEventIdOf(fakeRequest({}, `/s?last_event_id=${encodeURIComponent(id)}`)), id);
    });

    it('prefers the header over the query', () => {
      assert.equal(lastEventIdOf(fakeRequest({ 'last-event-id': id }, '/s?lastEventId=other')), id);
    });

    it('treats an empty or blank header as absent, falling back to the query', () => {
      assert.equal(lastEventIdOf(fakeRequest({ 'last-event-id': '' }, '/s?lastEventId=q')), 'q');
      assert.equal(lastEventIdOf(fakeRequest({ 'last-event-id': '   ' }, '/s?lastEventId=q')), 'q');
      assert.equal(lastEventIdOf(fakeRequest({ 'last-event-id': '' })), undefined);
    });

    it('treats an empty or blank query parameter as absent', () => {
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?lastEventId=')), undefined);
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?lastEventId=%20%20')), undefined);
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?lastEventId')), undefined);
    });

    it('gives undefined without header or query', () => {
      assert.equal(lastEventIdOf(fakeRequest({}, '/s')), undefined);
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?')), undefined);
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?other=1')), undefined);
      assert.equal(lastEventIdOf({ headers: {} } as unknown as IncomingMessage), undefined);
    });

    it('takes the first of several query values', () => {
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?lastEventId=a&lastEventId=b')), 'a');
    });

    it('is not fooled by a malformed query string', () => {
      // Bad percent-escapes are decoded leniently (then rejected as invalid JSON later), never thrown.
      assert.equal(typeof lastEventIdOf(fakeRequest({}, '/s?lastEventId=%E0%A4%A')), 'string');
      assert.equal(lastEventIdOf(fakeRequest({}, '/s?lastEventId=a+b')), 'a b');
    });
  });

  describe('requestIdOf', () => {
    it('keeps a safe X-Request-ID', () => {
      for (const given of ['abc', 'f47ac10b-58cc-4372-a567-0e02b2c3d479', 'req.1:2@host/path+x=y_z', 'x'.repeat(128)]) {
        assert.equal(requestIdOf(fakeRequest({ 'x-request-id': given })), given);
      }
    });

    it('replaces an unsafe or oversized X-Request-ID by a generated UUID v7', () => {
      for (const given of [
        '',
        'x'.repeat(129),
        'has space',
        'line\nbreak',
        'crlf\r\nInjected: 1',
        '<script>',
        'quote"',
        'ünïcode',
        '😀',
        'a;b',
        '\u0000',
      ]) {
        const id = requestIdOf(fakeRequest({ 'x-request-id': given }));
        assert.match(id, UUID_V7, JSON.stringify(given));
        assert.notEqual(id, given);
      }
    });

    it('generates a UUID v7 when there is no X-Request-ID, a new one each time', () => {
      const a = requestIdOf(fakeRequest({}));
      const b = requestIdOf(fakeRequest({}));
      assert.match(a, UUID_V7);
      assert.match(b, UUID_V7);
      assert.notEqual(a, b);
    });

    it('takes the first of repeated headers', () => {
      assert.equal(requestIdOf(fakeRequest({ 'x-request-id': ['first', 'second'] })), 'first');
    });

    it('never throws, whatever the header holds', () => {
      const odd: unknown[] = [[], [''], ['x'.repeat(10_000)], 'x'.repeat(1_000_000)];
      for (const value of odd) {
        const id = requestIdOf({ headers: { 'x-request-id': value } } as unknown as IncomingMessage);
        assert.equal(typeof id, 'string');
        assert.ok(id.length > 0 && id.length <= 128);
      }
    });
  });
});
