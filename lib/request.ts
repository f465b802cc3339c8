// What kafkaSse() reads from the request: content negotiation, the resume id
// and the request id. Pure functions of headers and URL.
import type { IncomingMessage } from 'node:http';
import { v7 as uuidv7 } from 'uuid';
import type { StreamMode } from './types.ts';

/** Longest Accept header looked at; the rest is ignored rather than parsed. */
const MAX_ACCEPT_LENGTH = 1024;
const NDJSON_TYPES = new Set(['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl']);
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) return v[0];
  return v;
}

/**
 * Picks SSE or NDJSON from the Accept header: NDJSON only when a JSON type is
 * preferred over text/event-stream (by q-value, ties going to SSE), so
 * browsers' EventSource (which sends text/event-stream) always gets SSE.
 */
export function negotiateMode(accept: string | undefined): StreamMode {
  if (!accept) return 'sse';
  let best: StreamMode = 'sse';
  let sseQ = -1;
  let jsonQ = -1;
  for (const part of accept.slice(0, MAX_ACCEPT_LENGTH).split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'q' && v !== undefined) {
        const n = Number(v);
        q = Number.isFinite(n) ? n : 0;
      }
    }
    if (type.trim() === 'text/event-stream') sseQ = Math.max(sseQ, q);
    else if (NDJSON_TYPES.has(type.trim())) jsonQ = Math.max(jsonQ, q);
  }
  if (jsonQ > 0 && jsonQ > sseQ) best = 'ndjson';
  return best;
}

/**
 * The Content-Type of an NDJSON stream: `application/json` when that is the
 * JSON type the client preferred (KafkaSSE's answer to it), else
 * `application/x-ndjson`. The body is the same either way.
 */
export function ndjsonContentType(req: IncomingMessage): string {
  const accept = headerValue(req, 'accept');
  let best = '';
  let bestQ = 0;
  for (const part of (accept ?? '').slice(0, MAX_ACCEPT_LENGTH).split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const t = type.trim();
    if (!NDJSON_TYPES.has(t)) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'q' && v !== undefined) q = Number.isFinite(Number(v)) ? Number(v) : 0;
    }
    if (q > bestQ) {
      best = t;
      bestQ = q;
    }
  }
  return best === 'application/json' ? 'application/json; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
}

/** The stream format for this request. */
export function streamModeOf(req: IncomingMessage, disableSSEFormatting: boolean): StreamMode {
  return disableSSEFormatting ? 'ndjson' : negotiateMode(headerValue(req, 'accept'));
}

/**
 * The resume id: the Last-Event-ID header, or when absent the `lastEventId`
 * query parameter (a browser cannot set the header on its first connect).
 * Empty values count as absent.
 */
export function lastEventIdOf(req: IncomingMessage): string | undefined {
  const header = headerValue(req, 'last-event-id');
  if (header !== undefined && header.trim() !== '') return header;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const params = new URLSearchParams(url.slice(q + 1));
  const fromQuery = params.get('lastEventId') ?? params.get('last_event_id');
  return fromQuery !== null && fromQuery.trim() !== '' ? fromQuery : undefined;
}

/**
 * The id used in logs for this request: the client's X-Request-ID when it is a
 * reasonable token, else a fresh time-ordered UUID. It is never used for
 * anything but logging (not for group.id, not for client.id).
 */
export function requestIdOf(req: IncomingMessage): string {
  const given = headerValue(req, 'x-request-id');
  if (given !== undefined && SAFE_REQUEST_ID.test(given)) return given;
  return uuidv7();
}
