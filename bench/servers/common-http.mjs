// The HTTP side shared by the contenders' servers: one plain node:http server
// per process, routes parsed the same way for every contender.
//
//   GET /stream/<topic[,topic…]>[?since=<ms>]   plain topics (the end, or since)
//   GET /stream?assign=<json>                   explicit [{topic, partition, offset}]
//
// Prints {"event":"ready","port":N} when listening. SIGTERM exits at once (so
// that --cpu-prof writes its profile).
import http from 'node:http';

/** Starts the server; `handle(req, res, assignments, atTimestamp)` streams one request. */
export function serve(name, handle) {
  // BENCH_HTTP_HWM: an experiment knob (the sockets' write high-water mark, bytes); unset = Node's default.
  const hwm = Number(process.env.BENCH_HTTP_HWM || 0);
  const server = http.createServer(hwm ? { highWaterMark: hwm } : {}, (req, res) => {
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
  });
  // Streams are long: no request/keep-alive timeouts may cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(
      `${JSON.stringify({ event: 'ready', name, port: server.address().port, pid: process.pid })}\n`,
    );
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  return server;
}
