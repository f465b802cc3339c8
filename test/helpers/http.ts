import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerTeardown } from './hooks.ts';

/** A server started by listen(). */
export interface TestServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:38123`. */
  url: string;
  server: http.Server;
  /** Destroys open connections (SSE streams included) and resolves once the server is closed. Idempotent. */
  close(): Promise<void>;
}

const open = new Set<TestServer>();

// A test that forgot its after hook must not keep mocha's process or a Kafka consumer alive.
registerTeardown(async () => {
  await Promise.all([...open].map((s) => s.close()));
});

/** Starts a node:http server with `handler` on 127.0.0.1, on a free port. */
export function listen(handler: http.RequestListener): Promise<TestServer> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      let closing: Promise<void> | undefined;
      const testServer: TestServer = {
        url: `http://127.0.0.1:${port}`,
        server,
        close() {
          closing ??= new Promise<void>((done, fail) => {
            open.delete(testServer);
            // close() first so no new connection slips in, then cut the long-lived ones it would wait for.
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          });
          return closing;
        },
      };
      open.add(testServer);
      resolve(testServer);
    });
  });
}

/** One HTTP request (any method, no agent): status, headers and the body as text. */
export function request(
  url: string,
  method: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}
