#!/usr/bin/env node
// The memory floor of an idle SSE stream in node:http, without the library:
// a minimal server holds N responses open (head sent, `:ok` written, one
// timer each, as a heartbeat would be), N raw connections from child
// processes; prints the server's RSS growth per connection after a GC.
//   node --expose-gc bench/idle-floor.mjs [N]      (N defaults to 10000; needs ulimit -n > N)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

if (process.argv[2] === '--clients') {
  const [port, n] = process.argv.slice(3).map(Number);
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', () => {});
  }
} else {
  const N = Number(process.argv[2] ?? 10_000);
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
  const held = [];
  const children = [];
  let base = 0;
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    res.write(':ok\n\n');
    held.push([res, setTimeout(() => {}, 1e9)]);
    if (held.length === N) setTimeout(done, 3000);
  });
  server.listen(0, '127.0.0.1', () => {
    globalThis.gc?.();
    base = rssKb();
    const { port } = server.address();
    for (let k = 0; k < 4; k++) {
      const c = spawn(process.execPath, [process.argv[1], '--clients', String(port), String(N / 4)], {
        stdio: 'inherit',
      });
      children.push(c);
    }
  });
  function done() {
    globalThis.gc?.();
    const perConnection = (rssKb() - base) / N;
    console.log(JSON.stringify({ connections: N, rssGrowthKbPerConnection: Number(perConnection.toFixed(1)) }));
    for (const c of children) c.kill();
    process.exit(0);
  }
}
