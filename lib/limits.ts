// Admission control in front of kafkaSse(): concurrent streams in total and
// per client, and a request rate per client (token bucket). Each stream owns a
// Kafka consumer (threads, sockets, buffers), so these are what keep one
// client, or a reconnect storm, from exhausting a server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigurationError, RateLimitedError, TooManyStreamsError } from './errors.ts';
import { writeJsonError } from './response.ts';

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
   * address (IPv4-mapped IPv6 addresses unwrapped); behind a proxy, pass a
   * function that reads the address your proxy vouches for.
   */
  key?: (req: IncomingMessage) => string | undefined;
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

/** The default key: the peer address, with `::ffff:1.2.3.4` written as `1.2.3.4`. */
export function remoteAddressKey(req: IncomingMessage): string {
  const address = req.socket?.remoteAddress;
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
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
    this.#keyOf = options.key ?? remoteAddressKey;
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
