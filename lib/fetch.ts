// kafkaSseResponse(): kafkaSse() for Fetch-style handlers, `(Request) => Response`
// (Hono, Next.js route handlers, SvelteKit and Remix endpoints) on Node.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigurationError, KafkaSseError } from './errors.ts';
import { FetchRequestAdapter, FetchResponseAdapter } from './fetch-adapter.ts';
import { writeJsonError } from './http-response.ts';
import { kafkaSse } from './kafka-sse.ts';
import type { StreamLimiter } from './limits.ts';
import type { KafkaSseOptions } from './options.ts';
import type { Assignments } from './positions.ts';

/** Options of {@link kafkaSseResponse}: those of kafkaSse(), and three of its own. */
export interface KafkaSseResponseOptions extends KafkaSseOptions {
  /**
   * The client's address, when the server knows it (a Request does not carry
   * it): shown in stream stats, and StreamLimiter's default key. With Hono on
   * @hono/node-server: `c.env.incoming.socket.remoteAddress`. Default: unknown.
   */
  remoteAddress?: string | undefined;
  /**
   * Admits the stream first, as `limiter.acquire(req, res)` does for node:http:
   * a refused request is answered 429 with `Retry-After` and the JSON error body;
   * an admitted one holds its slot until the stream is over. A `key` function
   * receives a request-like object: `headers` (lower-cased names), `url` (path
   * and query), `method`, `socket.remoteAddress`. Default: none.
   */
  limiter?: StreamLimiter;
  /**
   * Called once the stream is over and its consumer released (what kafkaSse()'s
   * promise settling means), after an error answer too: a server's shutdown
   * waits for these. Default: none.
   */
  onSettled?: () => void;
}

/**
 * Streams Kafka messages as Server-Sent Events (or NDJSON) in answer to a
 * Fetch `Request`: the same positions, formats, errors, heartbeats and limits
 * as {@link kafkaSse}, which it runs. Node only (node-rdkafka is a native addon).
 *
 * The promise resolves with the `Response` as soon as the answer is known:
 * after setup, a 200 whose body is a ReadableStream of events; before it, an
 * error status with the JSON error body. It never rejects.
 *
 * The body is pulled: a client that does not read (behind a server that
 * honours backpressure, as @hono/node-server does) makes the stream pause
 * Kafka as a full socket does. The request's `signal` aborting, or the body
 * being cancelled, ends the stream and releases its consumer. Should the
 * request be aborted before the answer was known, the promise resolves with a
 * 503 (code `STREAM_ABORTED`) that no one will read.
 *
 * ```js
 * app.get('/v2/stream/:topics', (c) => kafkaSseResponse(c.req.raw, c.req.param('topics'), options));
 * ```
 *
 * @param request the Fetch request (its headers, URL and signal are read)
 * @param assignments topic names (array or comma-separated string) and/or `{topic, partition, offset|timestamp}` objects
 * @param options see {@link KafkaSseResponseOptions}
 * @param atTimestamp start plain topics at the first message at or after this time (ms, numeric string or Date)
 */
export async function kafkaSseResponse(
  request: Request,
  assignments: Assignments,
  options: KafkaSseResponseOptions = {},
  atTimestamp?: number | string | Date | null,
): Promise<Response> {
  const { remoteAddress, limiter, onSettled } = options;
  const res = new FetchResponseAdapter(typeof remoteAddress === 'string' ? remoteAddress : undefined);
  const invalid = invalidOption(options);
  if (invalid !== undefined) {
    // Answered like kafkaSse()'s own invalid options: a 500 CONFIGURATION error, and a log line.
    if (options.logger) options.logger.error({ err: invalid }, 'kafkaSseResponse called with invalid options');
    else process.emitWarning(`kafka-sse-bridge: ${invalid.message}`);
    writeJsonError(res as unknown as ServerResponse, invalid.toJSON(), {});
    return res.response;
  }
  const req = new FetchRequestAdapter(request, remoteAddress);
  // The adapters stand in for node:http's objects: they have every member the library uses (fetch-adapter.ts).
  const nodeReq = req as unknown as IncomingMessage;
  const nodeRes = res as unknown as ServerResponse;
  let release: (() => void) | null = null;
  if (limiter !== undefined) {
    release = limiter.acquire(nodeReq, nodeRes);
    if (release === null) {
      settled(onSettled, options);
      return res.response;
    }
  }
  const done = kafkaSse(nodeReq, nodeRes, assignments, streamOptionsOf(options), atTimestamp);
  // After kafkaSse() listens for 'close' (it does so before its first await), so an abort already signalled is heard.
  const onAbort = () => res.destroy();
  const signal = request.signal;
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  void done.then(() => {
    signal.removeEventListener('abort', onAbort);
    release?.();
    if (!res.headersSent) {
      // Only a client that left during setup gets no answer from kafkaSse().
      const error = new KafkaSseError('The request was aborted before the stream started', 'STREAM_ABORTED', 503);
      res.respondWith(
        new Response(JSON.stringify(error.toJSON()), {
          status: error.statusCode,
          headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
        }),
      );
    }
    settled(onSettled, options);
  });
  return res.response;
}

// The stream options of recent requests, newest first (see streamOptionsOf).
const recentStreamOptions: { stream: KafkaSseOptions; keys: number }[] = [];
const RECENT_STREAM_OPTIONS = 8;
const OWN_OPTIONS = new Set(['remoteAddress', 'limiter', 'onSettled']);

/**
 * The options to pass on to kafkaSse(): `options` without this entry's own.
 * kafkaSse() checks an options object once and shares the checked form for as
 * long as it is the same object (normalizeOptionsOnce), but a Fetch handler
 * builds a new object per request (its remoteAddress and onSettled are the
 * request's): options holding the same values (compared by reference) as one
 * of the last few requests' are given that request's object, so they are
 * checked once too; a change inside a value is still seen, by kafkaSse().
 */
export function streamOptionsOf(options: KafkaSseResponseOptions): KafkaSseOptions {
  const keys = Object.keys(options);
  const own = keys.filter((k) => !OWN_OPTIONS.has(k));
  const values = options as Record<string, unknown>;
  for (const seen of recentStreamOptions) {
    if (seen.keys !== own.length) continue;
    const held = seen.stream as Record<string, unknown>;
    if (own.every((k) => Object.hasOwn(held, k) && held[k] === values[k])) return seen.stream;
  }
  const stream: Record<string, unknown> = {};
  for (const k of own) stream[k] = values[k];
  recentStreamOptions.unshift({ stream, keys: own.length });
  if (recentStreamOptions.length > RECENT_STREAM_OPTIONS) recentStreamOptions.pop();
  return stream as KafkaSseOptions;
}

/** Calls the caller's onSettled; a throw there is logged, never left unhandled. */
function settled(onSettled: (() => void) | undefined, options: KafkaSseOptions): void {
  try {
    onSettled?.();
  } catch (err) {
    if (options.logger) options.logger.error({ err }, 'onSettled threw');
    else process.emitWarning(`kafka-sse-bridge: onSettled threw: ${String(err)}`);
  }
}

/** The first of this entry's own options that is invalid, as a ConfigurationError naming it. */
function invalidOption(options: KafkaSseResponseOptions): ConfigurationError | undefined {
  const { remoteAddress, limiter, onSettled } = options;
  if (remoteAddress !== undefined && typeof remoteAddress !== 'string') {
    return new ConfigurationError('options.remoteAddress must be a string (the client address) or undefined');
  }
  if (limiter !== undefined && typeof (limiter as { acquire?: unknown } | null)?.acquire !== 'function') {
    return new ConfigurationError('options.limiter must be a StreamLimiter');
  }
  if (onSettled !== undefined && typeof onSettled !== 'function') {
    return new ConfigurationError('options.onSettled must be a function');
  }
  return undefined;
}
