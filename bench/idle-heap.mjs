#!/usr/bin/env node
// What an idle live stream holds on the JavaScript heap, by constructor: the
// bridge (from dist/, default options) serves N SSE streams of one plain topic
// from its end to raw connections of a child process; a heap snapshot before
// them and one with them open are compared, and the growth is printed per
// stream, largest first. The heap is only part of a stream's RSS: sockets,
// their buffers and libuv's handles are native (bench/idle-floor.mjs).
//   npm run build && node --expose-gc bench/idle-heap.mjs [N] [--h2c] [--floor]
// (N defaults to 2000; broker running; --floor: the same server without the library;
// KEEP_SNAPSHOT=<file>: the snapshot with the streams open is also written there, for DevTools).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import v8 from 'node:v8';
import { kafkaSse } from '../dist/index.js';
import { BROKERS } from './lib/common.mjs';
import { closeAdmin, createTopic, deleteTopic } from './lib/kafka-admin.mjs';

if (process.argv[2] === '--clients') {
  const [port, n] = process.argv.slice(3, 5).map(Number);
  const topic = process.argv[5];
  if (process.argv.includes('--h2c')) {
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 65535 } });
    for (let i = 0; i < n; i++) session.request({ ':path': `/${topic}` }).on('data', () => {});
  } else {
    for (let i = 0; i < n; i++) {
      const s = net.connect(port, '127.0.0.1', () => s.write(`GET /${topic} HTTP/1.1\r\nHost: x\r\n\r\n`));
      s.on('data', () => {});
    }
  }
} else {
  const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 2000);
  const h2c = process.argv.includes('--h2c');
  const floor = process.argv.includes('--floor');
  const topic = `idle-heap-${Date.now()}`;
  await createTopic(topic, 1);
  let opened = 0;
  let onOpened = () => {};
  const options = { kafkaConfig: { 'metadata.broker.list': BROKERS } };
  const held = [];
  const handle = (req, res) => {
    if (floor) {
      // No library: the head, `:ok` and one timer each, as bench/idle-floor.mjs holds.
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      res.socket?.setNoDelay(true);
      res.write(':ok\n\n');
      held.push([res, setTimeout(() => {}, 1e9)]);
    } else kafkaSse(req, res, [topic], options).catch(() => {});
    opened++;
    if (opened === 1 || opened === N + 1) onOpened();
  };
  const server = h2c
    ? http2.createServer({ settings: { maxConcurrentStreams: N + 10 } }, handle)
    : http.createServer(handle);
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const children = [];
  const open = (n) =>
    new Promise((resolve) => {
      onOpened = () => setTimeout(resolve, 3000);
      children.push(
        spawn(
          process.execPath,
          [process.argv[1], '--clients', String(port), String(n), topic, ...(h2c ? ['--h2c'] : [])],
          {
            stdio: 'inherit',
          },
        ),
      );
    });
  // One stream first, so that the shared tail, its consumer and the code's first-use costs are in the baseline.
  await open(1);
  const before = snapshot();
  await open(N);
  if (process.env.KEEP_SNAPSHOT) v8.writeHeapSnapshot(process.env.KEEP_SNAPSHOT);
  const after = snapshot();
  const rows = [];
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, size: 0 };
    const size = a.size - b.size;
    if (Math.abs(size) / N >= 8) rows.push({ key, count: (a.count - b.count) / N, bytes: size / N });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  console.log(
    `${N} idle ${h2c ? 'HTTP/2 streams' : 'HTTP/1.1 streams'}${floor ? ' without the library' : ''}: JS heap (self sizes, rows ≥ 8 B) ${(total / 1024).toFixed(2)} KB per stream`,
  );
  console.log('   bytes/stream  objects/stream  type:name');
  for (const r of rows.slice(0, 60)) {
    console.log(`${r.bytes.toFixed(1).padStart(14)}  ${r.count.toFixed(2).padStart(14)}  ${r.key}`);
  }
  for (const c of children) c.kill();
  server.close();
  await deleteTopic(topic);
  await closeAdmin();
  process.exit(0);
}

/** Self sizes and counts of the heap's nodes by type and constructor, after a full GC. */
function snapshot() {
  globalThis.gc?.();
  globalThis.gc?.();
  const file = v8.writeHeapSnapshot(`/tmp/idle-heap-${process.pid}-${Date.now()}.heapsnapshot`);
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.unlinkSync(file);
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byKey = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    let name = snap.strings[nodes[i + nameAt]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'number') name = '(number)';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const e = byKey.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + sizeAt];
    byKey.set(key, e);
  }
  return byKey;
}
