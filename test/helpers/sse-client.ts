// A raw SSE/NDJSON reader for tests: what a client really receives, byte for
// byte, parsed by eventsource-parser (the parser the `eventsource` package uses).
import http, { type IncomingHttpHeaders } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface ReceivedEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface StreamClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** Every byte received, as text. */
  raw(): string;
  events: ReceivedEvent[];
  comments: string[];
  /** NDJSON lines (non-empty), parsed. */
  lines: unknown[];
  /** Message events only. */
  messages(): ReceivedEvent[];
  /** Resolves once `predicate` holds (checked on every chunk); rejects after `timeoutMs`. */
  until(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when the server ended the response. */
  ended: Promise<void>;
  /** Stops reading from the socket (backpressure), or resumes. */
  pause(): void;
  resume(): void;
  close(): void;
}

/** Opens a stream and resolves once the status line and headers arrived. */
export function openStream(url: string, headers: Record<string, string> = {}): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      let raw = '';
      let lineBuf = '';
      const events: ReceivedEvent[] = [];
      const comments: string[] = [];
      const lines: unknown[] = [];
      const waiters = new Set<() => void>();
      const isNdjson = /^application\/(x-ndjson|json)/.test(String(res.headers['content-type'] ?? ''));
      const parser = createParser({
        onEvent(e: EventSourceMessage) {
          events.push({ event: e.event ?? 'message', id: e.id, data: e.data });
        },
        onComment(c: string) {
          comments.push(c);
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        if (isNdjson) {
          lineBuf += chunk;
          const parts = lineBuf.split('\n');
          lineBuf = parts.pop() ?? '';
          for (const p of parts) if (p !== '') lines.push(JSON.parse(p));
        } else {
          parser.feed(chunk);
        }
        for (const w of waiters) w();
      });
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => {
        endedResolve = r;
      });
      const onEnd = () => {
        endedResolve();
        for (const w of waiters) w();
      };
      res.on('end', onEnd);
      res.on('close', onEnd);
      res.on('error', () => {});
      const client: StreamClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        raw: () => raw,
        events,
        comments,
        lines,
        messages: () => events.filter((e) => e.event === 'message'),
        until(predicate, timeoutMs = 15000, what = 'condition') {
          return new Promise((ok, fail) => {
            if (predicate()) return ok();
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(
                new Error(
                  `timed out after ${timeoutMs} ms waiting for ${what}; received ${events.length} events, ${lines.length} lines`,
                ),
              );
            }, timeoutMs);
            const check = () => {
              if (predicate()) {
                clearTimeout(timer);
                waiters.delete(check);
                ok();
              }
            };
            waiters.add(check);
          });
        },
        ended,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => {
          req.destroy();
        },
      };
      resolve(client);
    });
  });
}

/** Fetches a URL and resolves with status, headers and the parsed JSON body. */
export function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
  });
}
