// The HTTP side shared by the contenders' servers: one plain node:http server
// per process, routes parsed the same way for every contender.
//
//   GET /stream/<topic[,topic…]>[?since=<ms>]   plain topics (the end, or since)
//   GET /stream?assign=<json>                   explicit [{topic, partition, offset}]
//
// `--h2c`: HTTP/2 without TLS instead of HTTP/1.1 (bench/servers/bridge.mjs --h2c).
//
// Prints {"event":"ready","port":N} when listening. SIGTERM exits at once (so
// that --cpu-prof writes its profile).
import http from 'node:http';
import http2 from 'node:http2';

/**
 * Starts the server; `handle(req, res, assignments, atTimestamp)` streams one
 * request. With `--h2c` on the command line it is a node:http2 server without
 * TLS (HTTP/2 prior knowledge), serving through node:http2's compatibility
 * API, many streams per connection.
 */
export function serve(name, handle) {
  // BENCH_HTTP_HWM: an experiment knob (the sockets' write high-water mark, bytes); unset = Node's default.
  const hwm = Number(process.env.BENCH_HTTP_HWM || 0);
  // BENCH_LISTEN_BACKLOG: an experiment knob (listen()'s accept-queue length); unset = Node's default (511).
  const backlog = Number(process.env.BENCH_LISTEN_BACKLOG || 0) || undefined;
  const h2c = process.argv.includes('--h2c');
  const route = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://bench');
    if (url.pathname === '/health') {
      res.end('ok');
      return;
    }
    let assignments;
    const assign = url.searchParams.get('assign');
    if (assign) assignments = JSON.parse(assign);
    else if (url.pathname.startsWith('/stream/')) assignments = decodeURIComponent(url.pathname.slice(8)).split(',');
    else {
      res.statusCode = 404;
      res.end();
      return;
    }
    const since = url.searchParams.get('since');
    handle(req, res, assignments, since ? Number(since) : undefined);
  };
  const server = h2c
    ? http2.createServer({ settings: { maxConcurrentStreams: 100_000 } }, route)
    : http.createServer(hwm ? { highWaterMark: hwm } : {}, route);
  // Streams are long: no request/keep-alive timeouts may cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  server.setTimeout(0);
  server.listen({ port: 0, host: '127.0.0.1', backlog }, () => {
    process.stdout.write(
      `${JSON.stringify({ event: 'ready', name, http: h2c ? 'h2c' : 'http/1.1', port: server.address().port, pid: process.pid })}\n`,
    );
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  return server;
}

/**
 * serve() for the prototypes that read one plain topic from its end with one
 * consumer per topic: `openTail(topic)` makes that topic's tail (with a
 * `ready` promise), `attach(tail, res)` adds a client once the SSE head and a
 * first comment are out.
 */
export function serveTopicTails(name, openTail, attach) {
  const tails = new Map();
  return serve(name, async (_req, res, assignments) => {
    if (!Array.isArray(assignments) || assignments.length !== 1 || typeof assignments[0] !== 'string') {
      res.statusCode = 400;
      res.end(`${name} serves one plain topic from the end`);
      return;
    }
    const topic = assignments[0];
    let tail = tails.get(topic);
    if (!tail) {
      tail = openTail(topic);
      tails.set(topic, tail);
    }
    await tail.ready;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
    res.socket?.setNoDelay(true);
    res.write(':ok\n\n');
    attach(tail, res);
  });
}
