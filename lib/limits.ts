// Admission control in front of kafkaSse(): concurrent streams in total and
// per client, a request rate per client (token bucket), and the client regular
// expressions a client's open streams hold together. Each stream owns a
// Kafka consumer (threads, sockets, buffers) and each regex costs CPU on
// every message, so these are what keep one client, or a reconnect storm,
// from exhausting a server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { remoteAddressKey } from './client-key.ts';
import { ConfigurationError, RateLimitedError, TooManyStreamsError } from './errors.ts';
import { FILTER_LIMITS } from './filter-spec.ts';
import { writeJsonError } from './http-response.ts';

/** Options of a {@link StreamLimiter}. Every limit is off (`null`) unless set. */
export interface StreamLimiterOptions {
  /** Most concurrent streams in total. `null`: no limit. Default: `null`. */
  maxStreams?: number | null;
  /** Most concurrent streams per key (client). `null`: no limit. Default: `null`. */
  maxStreamsPerKey?: number | null;
  /** Streams a key may open per second, on average (token bucket). `null`: no rate limit. Default: `null`. */
  ratePerSecond?: number | null;
  /** Streams a key may open in a burst before the rate applies (the bucket's size). Default: `max(1, ceil(ratePerSecond))`. */
  burst?: number;
  /**
   * The key requests are counted under: a client address, a token's subject, a
   * tenant. `undefined` counts as `'unknown'`. Default: the socket's remote
   * address through {@link remoteAddressKey} (IPv4 as is, IPv4-mapped IPv6
   * unwrapped, other IPv6 addresses by their `ipv6PrefixLength` prefix);
   * behind a proxy, pass a function that reads the address your proxy vouches
   * for (and hand it to `remoteAddressKey` for the same grouping).
   */
  key?: (req: IncomingMessage) => string | undefined;
  /**
   * With the default `key`: how many leading bits of an IPv6 address make a
   * client. One subscriber usually holds a whole /64 (and often a /56 or /48),
   * so keying on full addresses would give it unlimited budgets. Default: `64`.
   */
  ipv6PrefixLength?: number;
  /**
   * Most client regular expressions (`{regex}` matchers) the open streams of
   * one key may hold together; see {@link StreamLimiter.admitRegexes}.
   * `null`: no limit. Default: `FILTER_LIMITS.maxRegexesPerKey` (32), or the
   * filter's own `maxRegexesPerKey` when it was compiled with another.
   */
  maxRegexesPerKey?: number | null;
  /**
   * Most keys whose request rate is remembered. Keys idle long enough to have a
   * full bucket again are forgotten first; past this many, the least recently
   * seen are (which lets them start afresh). Default: `10000`.
   */
  maxTrackedKeys?: number;
  /** `Retry-After` (seconds) when a concurrency limit refuses. Default: `5`. */
  retryAfterSeconds?: number;
  /** Extra headers on 429 answers (CORS headers, for instance). Default: `{}`. */
  headers?: Record<string, string>;
  /** The clock, in milliseconds (tests pass a fake). Default: `Date.now`. */
  now?: () => number;
}

/** The outcome of {@link StreamLimiter.tryAcquire}. */
export type Admission =
  | { ok: true; key: string; release: () => void }
  | { ok: false; key: string; error: TooManyStreamsError | RateLimitedError };

interface Bucket {
  tokens: number;
  updated: number;
}

function positiveOrNull(options: Record<string, unknown>, name: string, integer: boolean): number | null {
  const v = options[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
    throw new ConfigurationError(
      `StreamLimiter option ${name} must be a positive ${integer ? 'integer' : 'number'} or null, got ${String(v)}`,
    );
  }
  return v;
}

/**
 * Limits concurrent streams (in total and per key) and the rate at which a key
 * opens them. A refused request is answered 429 with `Retry-After` and the
 * usual JSON error body (`TOO_MANY_STREAMS` or `RATE_LIMITED`).
 *
 * ```js
 * const limiter = new StreamLimiter({ maxStreams: 1000, maxStreamsPerKey: 4, ratePerSecond: 1, burst: 10 });
 * const release = limiter.acquire(req, res);
 * if (!release) return;            // already answered 429
 * await kafkaSse(req, res, topics, options);
 * release();                       // also released when the response closes
 * ```
 *
 * Client regexes cost CPU on every message of every stream that holds them:
 * `admitRegexes(req, compiledFilter)` counts them per key (`maxRegexesPerKey`).
 * IPv6 clients are keyed by their /64 by default (`ipv6PrefixLength`).
 *
 * Note that browsers' EventSource does not reconnect after a 429: a page should
 * handle the `error` event and retry later itself.
 */
export class StreamLimiter {
  readonly #maxStreams: number | null;
  readonly #maxPerKey: number | null;
  readonly #rate: number | null;
  readonly #burst: number;
  readonly #keyOf: (req: IncomingMessage) => string | undefined;
  readonly #maxTrackedKeys: number;
  readonly #retryAfterSeconds: number;
  readonly #headers: Record<string, string>;
  readonly #now: () => number;
  /** Ms for an empty bucket to fill up: a bucket untouched this long is full, so it can be forgotten. */
  readonly #refillMs: number;
  readonly #open = new Map<string, number>();
  /** In order of last use (each use re-inserts), so the idle ones are at the front. */
  readonly #buckets = new Map<string, Bucket>();
  #total = 0;
  readonly #maxRegexesPerKey: number | null | undefined;
  /** Client regular expressions held by each key's open streams. */
  readonly #regexes = new Map<string, number>();

  constructor(options: StreamLimiterOptions = {}) {
    const o = options as Record<string, unknown>;
    this.#maxStreams = positiveOrNull(o, 'maxStreams', true);
    this.#maxPerKey = positiveOrNull(o, 'maxStreamsPerKey', true);
    this.#rate = positiveOrNull(o, 'ratePerSecond', false);
    this.#burst = positiveOrNull(o, 'burst', true) ?? Math.max(1, Math.ceil(this.#rate ?? 1));
    this.#maxTrackedKeys = positiveOrNull(o, 'maxTrackedKeys', true) ?? 10_000;
    this.#retryAfterSeconds = positiveOrNull(o, 'retryAfterSeconds', true) ?? 5;
    if (options.key !== undefined && typeof options.key !== 'function') {
      throw new ConfigurationError('StreamLimiter option key must be a function of the request');
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new ConfigurationError('StreamLimiter option now must be a function returning milliseconds');
    }
    const prefix = options.ipv6PrefixLength ?? 64;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) {
      throw new ConfigurationError(
        `StreamLimiter option ipv6PrefixLength must be an integer from 0 to 128, got ${String(prefix)}`,
      );
    }
    this.#maxRegexesPerKey =
      options.maxRegexesPerKey === undefined ? undefined : positiveOrNull(o, 'maxRegexesPerKey', true);
    this.#keyOf = options.key ?? ((req) => remoteAddressKey(req, prefix));
    this.#headers = options.headers ?? {};
    this.#now = options.now ?? Date.now;
    this.#refillMs = this.#rate === null ? 0 : (this.#burst / this.#rate) * 1000;
  }

  /** Streams currently admitted and not yet released. */
  get open(): number {
    return this.#total;
  }

  /** Streams currently admitted for one key. */
  openFor(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  /** Client regular expressions the open streams of one key hold (see {@link admitRegexes}). */
  regexesFor(key: string): number {
    return this.#regexes.get(key) ?? 0;
  }

  /** Keys whose request rate is currently remembered (bounded by `maxTrackedKeys`). */
  get trackedKeys(): number {
    return this.#buckets.size;
  }

  /** The key this limiter counts `req` under. */
  keyOf(req: IncomingMessage): string {
    const key = this.#keyOf(req);
    return typeof key === 'string' && key !== '' ? key : 'unknown';
  }

  /**
   * Decides without answering. On admission, call `release()` exactly when the
   * stream is over (later calls do nothing).
   */
  tryAcquire(req: IncomingMessage): Admission {
    const key = this.keyOf(req);
    if (this.#rate !== null) {
      const wait = this.#take(key, this.#rate);
      if (wait > 0) {
        return {
          ok: false,
          key,
          error: new RateLimitedError('Too many new streams from this client; slow down', {
            retryAfterSeconds: wait,
          }),
        };
      }
    }
    const mine = this.#open.get(key) ?? 0;
    if (this.#maxPerKey !== null && mine >= this.#maxPerKey) {
      return {
        ok: false,
        key,
        error: new TooManyStreamsError(`This client already has ${mine} open streams; at most ${this.#maxPerKey}`, {
          retryAfterSeconds: this.#retryAfterSeconds,
        }),
      };
    }
    if (this.#maxStreams !== null && this.#total >= this.#maxStreams) {
      return {
        ok: false,
        key,
        error: new TooManyStreamsError('The server has as many open streams as it allows; try again later', {
          retryAfterSeconds: this.#retryAfterSeconds,
        }),
      };
    }
    this.#open.set(key, mine + 1);
    this.#total++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#total--;
      const n = (this.#open.get(key) ?? 1) - 1;
      if (n <= 0) this.#open.delete(key);
      else this.#open.set(key, n);
    };
    return { ok: true, key, release };
  }

  /**
   * Counts a stream's client regular expressions against its key's budget
   * (`maxRegexesPerKey`): every regex runs on every message of every stream
   * that holds it, so ten streams of eight regexes from one client cost ten
   * times one stream. Pass the request (or its key) and the compiled filters
   * of the stream (or their `regexCount` sum); call `release()` when the
   * stream ends. A filter with no `{regex}` matcher is always admitted.
   * Refused: `TOO_MANY_STREAMS` (429), which the client may retry once it
   * closed other streams.
   */
  admitRegexes(
    req: IncomingMessage | string,
    filters:
      | number
      | { regexCount: number; maxRegexesPerKey: number }
      | null
      | undefined
      | readonly ({ regexCount: number; maxRegexesPerKey: number } | null | undefined)[],
  ): Admission {
    const key = typeof req === 'string' ? req : this.keyOf(req);
    const list = Array.isArray(filters) ? filters : [filters];
    let count = 0;
    let fromFilters: number | undefined;
    for (const f of list) {
      if (typeof f === 'number') count += f;
      else if (f) {
        count += f.regexCount;
        fromFilters = Math.min(fromFilters ?? f.maxRegexesPerKey, f.maxRegexesPerKey);
      }
    }
    const limit =
      this.#maxRegexesPerKey === undefined ? (fromFilters ?? FILTER_LIMITS.maxRegexesPerKey) : this.#maxRegexesPerKey;
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new ConfigurationError('StreamLimiter.admitRegexes needs compiled filters or a count of regexes');
    }
    if (count === 0) return { ok: true, key, release: () => {} };
    const held = this.#regexes.get(key) ?? 0;
    if (limit !== null && held + count > limit) {
      return {
        ok: false,
        key,
        error: new TooManyStreamsError(
          `This client's open streams already hold ${held} regular expressions; this one adds ${count}, at most ${limit} in all`,
          { retryAfterSeconds: this.#retryAfterSeconds },
        ),
      };
    }
    this.#regexes.set(key, held + count);
    let released = false;
    return {
      ok: true,
      key,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#regexes.get(key) ?? count) - count;
        if (n <= 0) this.#regexes.delete(key);
        else this.#regexes.set(key, n);
      },
    };
  }

  /**
   * Admits the request and returns its release function, or answers it 429
   * (with `Retry-After`) and returns `null`. The slot is released when the
   * response closes, so a forgotten `release()` cannot leak it.
   */
  acquire(req: IncomingMessage, res: ServerResponse): (() => void) | null {
    const admission = this.tryAcquire(req);
    if (!admission.ok) {
      const e = admission.error;
      writeJsonError(res, e.toJSON(), this.#headers, e.retryAfterSeconds);
      return null;
    }
    const { release } = admission;
    res.once('close', release);
    return () => {
      res.off('close', release);
      release();
    };
  }

  /**
   * Wraps a request handler (such as one calling kafkaSse) so that it runs only
   * when admitted, and releases its slot when it settles.
   */
  wrap<A extends unknown[]>(
    handler: (req: IncomingMessage, res: ServerResponse, ...rest: A) => unknown,
  ): (req: IncomingMessage, res: ServerResponse, ...rest: A) => Promise<void> {
    return async (req, res, ...rest) => {
      const release = this.acquire(req, res);
      if (!release) return;
      try {
        await handler(req, res, ...rest);
      } finally {
        release();
      }
    };
  }

  /** Takes a token from `key`'s bucket: 0 when one was there, else the seconds until one will be. */
  #take(key: string, rate: number): number {
    const now = this.#now();
    this.#forgetIdle(now);
    const bucket = this.#buckets.get(key);
    let tokens = this.#burst;
    if (bucket) {
      tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.updated) * rate) / 1000);
      this.#buckets.delete(key);
    } else if (this.#buckets.size >= this.#maxTrackedKeys) {
      // Forget the least recently seen key: at worst it gets a fresh burst.
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (tokens >= 1) {
      this.#buckets.set(key, { tokens: tokens - 1, updated: now });
      return 0;
    }
    this.#buckets.set(key, { tokens, updated: now });
    return Math.max(1, Math.ceil((1 - tokens) / rate));
  }

  /** Drops buckets that have refilled completely: remembering them changes nothing. */
  #forgetIdle(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.updated < this.#refillMs) break;
      this.#buckets.delete(key);
    }
  }
}
