// StreamLimiter with a fake clock and fake requests: concurrency per key and in
// total, the token bucket, bounded memory, and the 429 answer.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { remoteAddressKey } from '../../lib/client-key.ts';
import { ConfigurationError } from '../../lib/errors.ts';
import { FILTER_LIMITS } from '../../lib/filter-spec.ts';
import { compileFilter } from '../../lib/filters.ts';
import { StreamLimiter } from '../../lib/limits.ts';

function req(address = '10.0.0.1', headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: address }, headers } as unknown as IncomingMessage;
}

interface FakeResponse extends ServerResponse {
  status?: number;
  sentHeaders?: Record<string, string>;
  body?: string;
}

function res(): FakeResponse {
  const r = new EventEmitter() as unknown as FakeResponse;
  Object.assign(r, {
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    writeHead(status: number, headers: Record<string, string>) {
      r.status = status;
      r.sentHeaders = headers;
      return r;
    },
    end(body: string) {
      r.body = body;
      return r;
    },
  });
  return r;
}

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('limits: StreamLimiter', () => {
  it('admits everything when no limit is set', () => {
    const limiter = new StreamLimiter();
    const releases = Array.from({ length: 100 }, () => limiter.acquire(req(), res()));
    assert.ok(releases.every((r) => typeof r === 'function'));
    assert.equal(limiter.open, 100);
    for (const r of releases) r?.();
    assert.equal(limiter.open, 0);
  });

  it('limits concurrent streams per key, and frees a slot on release (idempotent)', () => {
    const limiter = new StreamLimiter({ maxStreamsPerKey: 2 });
    const a1 = limiter.acquire(req('1.1.1.1'), res());
    const a2 = limiter.acquire(req('1.1.1.1'), res());
    const refused = res();
    assert.equal(limiter.acquire(req('1.1.1.1'), refused), null);
    assert.equal(refused.status, 429);
    assert.equal(refused.sentHeaders?.['Retry-After'], '5');
    assert.match(String(refused.sentHeaders?.['Content-Type']), /^application\/json/);
    const body = JSON.parse(refused.body ?? '{}');
    assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'name', 'status', 'statusCode']);
    assert.equal(body.code, 'TOO_MANY_STREAMS');
    assert.equal(body.name, 'TooManyStreamsError');
    assert.equal(body.status, 429);
    assert.ok(limiter.acquire(req('2.2.2.2'), res()), 'another key is not affected');
    assert.equal(limiter.openFor('1.1.1.1'), 2);
    a1?.();
    a1?.();
    assert.equal(limiter.openFor('1.1.1.1'), 1, 'a second release does nothing');
    assert.ok(limiter.acquire(req('1.1.1.1'), res()));
    a2?.();
  });

  it('limits concurrent streams in total', () => {
    const limiter = new StreamLimiter({ maxStreams: 3, retryAfterSeconds: 2 });
    for (let i = 0; i < 3; i++) assert.ok(limiter.acquire(req(`10.0.0.${i}`), res()));
    const refused = res();
    assert.equal(limiter.acquire(req('10.0.0.9'), refused), null);
    assert.equal(refused.status, 429);
    assert.equal(refused.sentHeaders?.['Retry-After'], '2');
    assert.match(JSON.parse(refused.body ?? '{}').message, /as many open streams as it allows/);
  });

  it('releases a slot when the response closes, even if release() is never called', () => {
    const limiter = new StreamLimiter({ maxStreamsPerKey: 1 });
    const r = res();
    assert.ok(limiter.acquire(req(), r));
    assert.equal(limiter.acquire(req(), res()), null);
    r.emit('close');
    assert.equal(limiter.open, 0);
    assert.ok(limiter.acquire(req(), res()));
  });

  it('keys by any function of the request, e.g. a token subject', () => {
    const limiter = new StreamLimiter({ maxStreamsPerKey: 1, key: (r) => r.headers['x-tenant'] as string | undefined });
    assert.ok(limiter.acquire(req('1.1.1.1', { 'x-tenant': 'a' }), res()));
    assert.equal(limiter.acquire(req('2.2.2.2', { 'x-tenant': 'a' }), res()), null, 'same tenant, other address');
    assert.ok(limiter.acquire(req('1.1.1.1', { 'x-tenant': 'b' }), res()));
    assert.ok(limiter.acquire(req('1.1.1.1'), res()), 'no key: counted as unknown');
    assert.equal(limiter.keyOf(req('1.1.1.1')), 'unknown');
  });

  it('unwraps IPv4-mapped IPv6 addresses in the default key', () => {
    assert.equal(remoteAddressKey(req('::ffff:192.0.2.1')), '192.0.2.1');
    assert.equal(remoteAddressKey(req('::FFFF:c000:0201')), '192.0.2.1', 'the hex spelling too');
    assert.equal(remoteAddressKey(req('192.0.2.1')), '192.0.2.1');
    assert.equal(remoteAddressKey({ socket: {} } as unknown as IncomingMessage), 'unknown');
    assert.equal(remoteAddressKey('not an address:x'), 'not an address:x');
  });

  // Issue 14, row 9: keyed on full IPv6 addresses, one /64 had unlimited budgets.
  it('keys IPv6 clients by their /64 (configurable), whatever the spelling', () => {
    const k = '2001:db8:1:2:0:0:0:0/64';
    for (const a of ['2001:db8:1:2::1', '2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2:a:b:c:d%eth0']) {
      assert.equal(remoteAddressKey(a), k, a);
    }
    assert.notEqual(remoteAddressKey('2001:db8:1:3::1'), k);
    assert.equal(remoteAddressKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200:0:0:0:0/56');
    assert.equal(remoteAddressKey('::1', 128), '0:0:0:0:0:0:0:1/128');
    assert.equal(remoteAddressKey('64:ff9b::192.0.2.1', 96), '64:ff9b:0:0:0:0:0:0/96');

    const limiter = new StreamLimiter({ maxStreamsPerKey: 2 });
    assert.ok(limiter.acquire(req('2001:db8:1:2::1'), res()));
    assert.ok(limiter.acquire(req('2001:db8:1:2::2'), res()));
    const refused = res();
    assert.equal(limiter.acquire(req('2001:db8:1:2:dead:beef:0:1'), refused), null, 'a third address of the same /64');
    assert.equal(refused.status, 429);
    assert.ok(limiter.acquire(req('2001:db8:1:3::1'), res()), 'another /64');
    const wide = new StreamLimiter({ maxStreamsPerKey: 1, ipv6PrefixLength: 48 });
    assert.ok(wide.acquire(req('2001:db8:1:2::1'), res()));
    assert.equal(wide.acquire(req('2001:db8:1:ffff::1'), res()), null, 'the same /48');
    assert.throws(
      () => new StreamLimiter({ ipv6PrefixLength: 129 }),
      /ipv6PrefixLength must be an integer from 0 to 128/,
    );
  });

  // Issue 14, row 2: 10 streams × 8 regexes from one address cost 110–220 ms per long message.
  it('bounds the client regexes one key holds across its open streams', () => {
    const limiter = new StreamLimiter();
    const eight = compileFilter({ x: Array.from({ length: 8 }, (_, i) => ({ regex: `^a${i}` })) });
    assert.equal(eight.regexCount, 8);
    const held = [];
    for (let i = 0; i < 4; i++) {
      const a = limiter.admitRegexes(req('10.0.0.1'), eight);
      assert.ok(a.ok);
      held.push(a.release);
    }
    assert.equal(limiter.regexesFor('10.0.0.1'), FILTER_LIMITS.maxRegexesPerKey);
    const fifth = limiter.admitRegexes(req('10.0.0.1'), eight);
    assert.equal(fifth.ok, false);
    if (!fifth.ok) {
      assert.equal(fifth.error.code, 'TOO_MANY_STREAMS');
      assert.equal(fifth.error.statusCode, 429);
      assert.match(fifth.error.message, /already hold 32 regular expressions; this one adds 8, at most 32/);
    }
    assert.ok(limiter.admitRegexes(req('10.0.0.2'), eight).ok, 'another client');
    assert.ok(limiter.admitRegexes(req('10.0.0.1'), compileFilter({ x: 'plain' })).ok, 'no regex: always admitted');
    assert.ok(limiter.admitRegexes(req('10.0.0.1'), [null, undefined]).ok);
    held[0]?.();
    held[0]?.();
    assert.equal(limiter.regexesFor('10.0.0.1'), 24, 'released once');
    assert.ok(limiter.admitRegexes('10.0.0.1', [eight, null]).ok);
    const own = new StreamLimiter({ maxRegexesPerKey: 10 });
    assert.ok(own.admitRegexes('k', 8).ok);
    assert.equal(own.admitRegexes('k', 3).ok, false);
    const off = new StreamLimiter({ maxRegexesPerKey: null });
    for (let i = 0; i < 10; i++) assert.ok(off.admitRegexes('k', eight).ok);
    const roomy = compileFilter({ x: { regex: 'a' } }, { maxRegexesPerKey: 2 });
    const byFilter = new StreamLimiter();
    assert.ok(byFilter.admitRegexes('k', roomy).ok);
    assert.ok(byFilter.admitRegexes('k', roomy).ok);
    assert.equal(byFilter.admitRegexes('k', roomy).ok, false, "the filter's own maxRegexesPerKey");
  });

  it('rate-limits new streams per key with a burst, refilling over time (token bucket)', () => {
    const c = clock();
    const limiter = new StreamLimiter({ ratePerSecond: 2, burst: 3, now: c.now });
    const take = (key = '1.1.1.1') => limiter.tryAcquire(req(key));
    for (let i = 0; i < 3; i++) {
      const a = take();
      assert.ok(a.ok);
      a.release();
    }
    const refused = take();
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.equal(refused.error.code, 'RATE_LIMITED');
      assert.equal(refused.error.statusCode, 429);
      assert.equal(refused.error.retryAfterSeconds, 1);
    }
    assert.ok(take('9.9.9.9').ok, 'other keys have their own bucket');
    c.t += 499;
    assert.equal(take().ok, false, 'not yet a whole token');
    c.t += 1;
    assert.ok(take().ok, 'one token after 500 ms at 2/s');
    assert.equal(take().ok, false);
    c.t += 1000;
    assert.ok(take().ok, 'two more after another second');
    assert.ok(take().ok);
    assert.equal(take().ok, false);
    c.t += 60_000;
    for (let i = 0; i < 3; i++) assert.ok(take().ok, 'refilled to the burst, not beyond');
    assert.equal(take().ok, false);
  });

  it('answers a rate-limited request 429 RATE_LIMITED with Retry-After in whole seconds', () => {
    const c = clock();
    const limiter = new StreamLimiter({ ratePerSecond: 0.1, burst: 1, now: c.now });
    assert.ok(limiter.acquire(req(), res()));
    const refused = res();
    assert.equal(limiter.acquire(req(), refused), null);
    assert.equal(refused.status, 429);
    assert.equal(refused.sentHeaders?.['Retry-After'], '10');
    assert.equal(JSON.parse(refused.body ?? '{}').code, 'RATE_LIMITED');
  });

  it('keeps bounded memory: forgets idle keys, and the least recently seen beyond maxTrackedKeys', () => {
    const c = clock();
    const limiter = new StreamLimiter({ ratePerSecond: 1, burst: 2, maxTrackedKeys: 100, now: c.now });
    for (let i = 0; i < 10_000; i++) limiter.tryAcquire(req(`k${i}`)).ok;
    assert.equal(limiter.trackedKeys, 100);
    c.t += 2_000;
    limiter.tryAcquire(req('fresh'));
    assert.equal(limiter.trackedKeys, 1, 'every idle (full again) bucket was forgotten');
  });

  it('wraps a handler: runs it only when admitted, releases when it settles, even when it throws', async () => {
    const limiter = new StreamLimiter({ maxStreamsPerKey: 1 });
    let finish!: () => void;
    const calls: string[] = [];
    const handler = limiter.wrap(async (_req, _res, label: string) => {
      calls.push(label);
      if (label === 'boom') throw new Error('boom');
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    const first = handler(req(), res(), 'first');
    const refused = res();
    await handler(req(), refused, 'second');
    assert.equal(refused.status, 429);
    assert.deepEqual(calls, ['first']);
    finish();
    await first;
    assert.equal(limiter.open, 0);
    await assert.rejects(handler(req(), res(), 'boom'), /boom/);
    assert.equal(limiter.open, 0);
  });

  it('validates its options', () => {
    assert.throws(() => new StreamLimiter({ maxStreams: 0 }), ConfigurationError);
    assert.throws(() => new StreamLimiter({ maxStreamsPerKey: 1.5 }), /positive integer/);
    assert.throws(() => new StreamLimiter({ ratePerSecond: -1 }), /positive number/);
    assert.throws(() => new StreamLimiter({ key: 'ip' as unknown as () => string }), /key must be a function/);
    assert.doesNotThrow(() => new StreamLimiter({ maxStreams: null, ratePerSecond: 0.5 }));
  });
});
