// HTTP/2 for tests: a certificate made at test time, servers (TLS or h2c) on
// port 0 through node:http2's compatibility API, and an SSE reader over one
// node:http2 client stream, so several streams can share one connection.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createParser } from 'eventsource-parser';
import { generate } from 'selfsigned';
import { registerTeardown } from './hooks.ts';
import type { ReceivedEvent } from './sse-client.ts';

/** A certificate for `localhost` and 127.0.0.1, and its key, in PEM. */
export interface TestCertificate {
  cert: string;
  key: string;
}

let certificate: Promise<TestCertificate> | undefined;

/** One self-signed certificate per test process (EC P-256: made in milliseconds). */
export function testCertificate(): Promise<TestCertificate> {
  certificate ??= generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
  return certificate;
}

export interface Http2TestServer {
  /** `https://127.0.0.1:<port>` or `http://127.0.0.1:<port>` (h2c). */
  url: string;
  server: http2.Http2Server | http2.Http2SecureServer;
  /** Ends every session at once and resolves once the server is closed. Idempotent. */
  close(): Promise<void>;
}

const open = new Set<Http2TestServer>();
registerTeardown(async () => {
  await Promise.all([...open].map((s) => s.close()));
});

/**
 * Starts an HTTP/2 server on 127.0.0.1, port 0, with `handler` as its compat
 * request listener: TLS (with `allowHTTP1`) unless `h2c` is set.
 */
export async function listenHttp2(
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  { h2c = false, allowHTTP1 = true }: { h2c?: boolean; allowHTTP1?: boolean } = {},
): Promise<Http2TestServer> {
  const server = h2c
    ? http2.createServer(handler)
    : http2.createSecureServer({ ...(await testCertificate()), allowHTTP1 }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // HTTP/1.1 connections of a TLS server with allowHTTP1 are not sessions.
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const testServer: Http2TestServer = {
    url: `${h2c ? 'http' : 'https'}://127.0.0.1:${port}`,
    server,
    close() {
      closing ??= new Promise<void>((resolve) => {
        open.delete(testServer);
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
  open.add(testServer);
  return testServer;
}

/** A client session to `url`, trusting the test certificate. Closed by the root teardown if a test forgets. */
export async function connectHttp2(
  url: string,
  options: http2.SecureClientSessionOptions = {},
): Promise<ClientHttp2Session> {
  const ca = url.startsWith('https:') ? (await testCertificate()).cert : undefined;
  const session = http2.connect(url, { ...(ca ? { ca } : {}), ...options });
  sessions.add(session);
  session.once('close', () => sessions.delete(session));
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

const sessions = new Set<ClientHttp2Session>();
registerTeardown(() => {
  for (const s of sessions) s.destroy();
});

/** One HTTP/2 stream read as SSE (or NDJSON), like sse-client's StreamClient. */
export interface H2StreamClient {
  status: number;
  headers: IncomingHttpHeaders;
  stream: ClientHttp2Stream;
  raw(): string;
  events: ReceivedEvent[];
  lines: unknown[];
  messages(): ReceivedEvent[];
  until(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when the stream closed (ended by the server, or reset). */
  closed: Promise<void>;
  /** Cancels this stream alone: RST_STREAM with CANCEL, as a browser does when an EventSource is closed. */
  cancel(): void;
}

/** Opens `path` on `session` and resolves once the response head arrived. */
export function openH2Stream(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string> = {},
): Promise<H2StreamClient> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, accept: 'text/event-stream', ...headers });
    stream.once('error', reject);
    stream.once('response', (head) => {
      stream.off('error', reject);
      stream.on('error', () => {});
      let raw = '';
      let lineBuf = '';
      const events: ReceivedEvent[] = [];
      const lines: unknown[] = [];
      const waiters = new Set<() => void>();
      const ndjson = String(head['content-type'] ?? '').startsWith('application/x-ndjson');
      const parser = createParser({
        onEvent: (e) => events.push({ event: e.event ?? 'message', id: e.id, data: e.data }),
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        raw += chunk;
        if (ndjson) {
          lineBuf += chunk;
          const parts = lineBuf.split('\n');
          lineBuf = parts.pop() ?? '';
          for (const p of parts) if (p !== '') lines.push(JSON.parse(p));
        } else {
          parser.feed(chunk);
        }
        for (const w of waiters) w();
      });
      const closed = new Promise<void>((done) =>
        stream.once('close', () => {
          done();
          for (const w of waiters) w();
        }),
      );
      resolve({
        status: Number(head[':status']),
        headers: head,
        stream,
        raw: () => raw,
        events,
        lines,
        messages: () => events.filter((e) => e.event === 'message'),
        until(predicate, timeoutMs = 15_000, what = 'condition') {
          return new Promise((ok, fail) => {
            if (predicate()) return ok();
            const check = () => {
              if (!predicate()) return;
              clearTimeout(timer);
              waiters.delete(check);
              ok();
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${events.length} events`));
            }, timeoutMs);
            waiters.add(check);
          });
        },
        closed,
        cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL),
      });
    });
    stream.end();
  });
}
