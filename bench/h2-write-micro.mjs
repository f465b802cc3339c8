#!/usr/bin/env node
// What one write of a ~350-byte SSE frame costs on an HTTP/2 stream, as a
// string (encoded per stream), as a Buffer made once for all, and as that
// Buffer written to the Http2Stream itself (no compatibility layer): N streams in
// sessions of 500, the client in another process, 40 rounds of one write to
// every stream 50 ms apart; server CPU (user + system) per write.
//   node bench/h2-write-micro.mjs [streams] [pairs]
import { fork } from 'node:child_process';
import http2 from 'node:http2';

if (process.argv[2] === '--client') {
  const [port, n] = [Number(process.argv[3]), Number(process.argv[4])];
  for (let s = 0; s < n / 500; s++) {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    for (let i = 0; i < 500; i++) {
      const stream = session.request({ ':path': '/' });
      stream.on('data', () => {});
      stream.on('error', () => {});
    }
  }
} else {
  const n = Number(process.argv[2] ?? 2000);
  const pairs = Number(process.argv[3] ?? 2);
  const frame = `id: [{"topic":"t","partition":0,"offset":123456}]\nevent: message\ndata: ${JSON.stringify({ x: 'y'.repeat(250), stamp: 1 })}\n\n`;
  const bytes = Buffer.from(frame);

  /** Server CPU µs per write of `what` to each of n streams. */
  async function measure(what) {
    const streams = [];
    let ready;
    const allOpen = new Promise((resolve) => {
      ready = resolve;
    });
    const server = http2.createServer({ settings: { maxConcurrentStreams: 100_000 } }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(':ok\n\n');
      streams.push(res);
      if (streams.length === n) ready();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = fork(new URL(import.meta.url).pathname, ['--client', String(server.address().port), String(n)]);
    await allOpen;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const t0 = process.cpuUsage();
    for (let round = 0; round < 40; round++) {
      if (what === 'stream') for (const res of streams) res.stream.write(bytes);
      else for (const res of streams) res.write(what === 'string' ? frame : bytes);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const used = process.cpuUsage(t0);
    client.kill();
    server.close();
    for (const res of streams) res.stream.destroy();
    return (used.user + used.system) / (n * 40);
  }

  console.log(`${n} HTTP/2 streams, ${frame.length}-byte frame, 40 writes each, server CPU per write:`);
  for (let p = 0; p < pairs; p++) {
    for (const what of ['string', 'Buffer', 'stream'])
      console.log(`  ${what.padEnd(7)} ${(await measure(what)).toFixed(2)} µs`);
  }
  process.exit(0);
}
