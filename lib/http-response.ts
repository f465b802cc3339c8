// The HTTP side of an answer, apart from the stream's body: the head (our
// headers merged with the server's, HTTP/2's forbidden ones left out), a JSON
// error before any stream began, and whether a response's socket may take
// ready-made HTTP/1.1 chunks directly.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { PublicError } from './errors.ts';

/**
 * Merges the server's extra headers under ours, keeping every Vary token from
 * both (a CORS layer's `Vary: Origin` must survive our `Vary: Accept`).
 */
export function mergeHeaders(extra: Record<string, string>, ours: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...extra, ...ours };
  const varyKeys = Object.keys(extra).filter((k) => k.toLowerCase() === 'vary');
  if (varyKeys.length > 0) {
    const tokens = new Set<string>();
    for (const k of varyKeys) for (const t of String(extra[k]).split(',')) if (t.trim()) tokens.add(t.trim());
    for (const t of String(ours.Vary ?? '').split(',')) if (t.trim()) tokens.add(t.trim());
    for (const k of varyKeys) delete out[k];
    out.Vary = [...tokens].join(', ');
  }
  return out;
}

/**
 * Header names HTTP/2 forbids in a response (RFC 9113 §8.2.2): they describe
 * one HTTP/1.1 hop, and HTTP/2 frames the body itself. node:http2 throws
 * ERR_HTTP2_INVALID_CONNECTION_HEADERS on most of them (and drops `Connection`
 * with a warning), so an `options.headers` written for HTTP/1.1 would make every
 * answer fail on HTTP/2; a Fetch `Response` has no use for them either.
 */
export const CONNECTION_SPECIFIC_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
]);

/** `headers` without the ones CONNECTION_SPECIFIC_HEADERS names (any case). */
function withoutConnectionHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!CONNECTION_SPECIFIC_HEADERS.has(k.toLowerCase())) out[k] = v;
  return out;
}

/**
 * Sends the head. On HTTP/2 (node:http2's compatibility API) connection-specific
 * headers are left out; on HTTP/1.1 they pass untouched, as they always did.
 */
export function writeHead(res: ServerResponse, status: number, headers: Record<string, string>): void {
  const h2 = (res as unknown) instanceof Http2ServerResponse;
  res.writeHead(status, h2 ? withoutConnectionHeaders(headers) : headers);
  // node:http's own responses only: an adapter's (the Fetch entry's) keeps no such head.
  if ((res as unknown) instanceof ServerResponse) flattenHead(res);
}

/** Where flattenHead() puts the character it reads, so that no optimizer drops the read. */
let _flattenedLast = 0;

/**
 * node:http builds the head it sends by appending each header line to a
 * string, and keeps that string (as `_header`) for the response's life: a
 * rope of some 30 pieces and their leaves, ~0.7 KB more heap per stream than
 * the flat string (writer.test.ts, bench/idle-heap.mjs). Reading a character
 * of a rope makes V8 flatten it in place, one string of the head's length;
 * the value is the same.
 */
function flattenHead(res: ServerResponse): void {
  const head = (res as { _header?: unknown })._header;
  if (typeof head === 'string' && head.length > 0) _flattenedLast ^= head.charCodeAt(head.length - 1);
}

/** Answers a request with a JSON error, before any stream began. */
export function writeJsonError(
  res: ServerResponse,
  error: PublicError,
  extraHeaders: Record<string, string>,
  retryAfterSeconds?: number,
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = JSON.stringify(error);
  const headers = mergeHeaders(extraHeaders, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    Vary: 'Accept',
  });
  if (retryAfterSeconds !== undefined) headers['Retry-After'] = String(retryAfterSeconds);
  writeHead(res, error.status, headers);
  res.end(body);
}

/**
 * The socket of a plain node:http response that sends its body in chunks,
 * when a shared frame's chunk may be written to it as it is: the response's
 * own write() (no compression layer or framework replaced it: those must see
 * every byte) and no flush() of such a layer, its head sent, chunked encoding
 * on (not HTTP/1.0 or a Content-Length), and the socket its own (a pipelined
 * response waiting its turn has none yet). Anything else gets undefined and
 * every byte goes through res.write(). Bytes written either way reach the
 * socket in the order written: res.write() hands them to it at once.
 */
export function directSocket(res: ServerResponse): Socket | undefined {
  if (!(res instanceof ServerResponse) || res.write !== ServerResponse.prototype.write) return undefined;
  const r = res as ServerResponse & { chunkedEncoding?: boolean; flush?: unknown };
  if (r.chunkedEncoding !== true || typeof r.flush === 'function' || !res.headersSent) return undefined;
  const socket = res.socket;
  if (!socket || socket.destroyed || !socket.writable) return undefined;
  return socket;
}

/**
 * Lets a node:http request nobody reads end now, at the start of its stream.
 * Node aborts every request still open when its socket ends or closes, and
 * destroying one formats its error's stack; an ended request is skipped
 * (bench/results/2026-12-04-request-ends-early). Node discards an unread body
 * itself once the response finishes, which for a stream is when the client
 * leaves; a request someone reads, or has paused, is left alone.
 *
 * Node also destroyed the socket as it aborted the request when the client
 * half-closed; without that it would only end its own side, and what the
 * stream writes until the socket closes would fail (a formatted stack each
 * time). So the socket is destroyed at the client's end, as before, unless
 * the server allows half-open connections.
 */
export function endUnreadRequest(req: IncomingMessage, res: ServerResponse): void {
  if (!(req instanceof IncomingMessage) || req.readableEnded || req.readableFlowing !== null) return;
  req.resume();
  const socket = req.socket as Socket & { server?: { httpAllowHalfOpen?: boolean } };
  if (socket.server?.httpAllowHalfOpen === true) return;
  // on(), not once(): each once() makes a wrapper, its state and a bound function, held while the stream lasts.
  const onEnd = () => socket.destroy();
  const onClose = () => {
    socket.off('end', onEnd);
    res.off('close', onClose);
  };
  socket.on('end', onEnd);
  res.on('close', onClose);
}

/** `frame` as one HTTP/1.1 chunk: its size in hex, CRLF, its bytes, CRLF. */
export function httpChunk(frame: string): Buffer {
  return Buffer.from(`${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n`, 'utf8');
}

const chunkBodies = new WeakMap<Buffer, Buffer>();

/** The frame inside an {@link httpChunk} chunk: a view of its bytes, made once per chunk. */
export function chunkBody(chunk: Buffer): Buffer {
  let body = chunkBodies.get(chunk);
  if (body === undefined) {
    body = chunk.subarray(chunk.indexOf(10) + 1, chunk.length - 2);
    chunkBodies.set(chunk, body);
  }
  return body;
}

/** What both stream heads carry besides their Content-Type: no caching, no proxy buffering. */
const STREAM_HEADERS = {
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Vary: 'Accept',
};

/** The head of an SSE stream (the writer adds the caller's headers). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  ...STREAM_HEADERS,
};

/** The head of an NDJSON stream. */
export const NDJSON_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/x-ndjson; charset=utf-8',
  ...STREAM_HEADERS,
};
