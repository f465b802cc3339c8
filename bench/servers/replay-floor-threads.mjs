#!/usr/bin/env node
// NOT the library: the replay floor (replay-floor.mjs) with the HTTP side moved
// off the consuming thread, the "replay-floor-threads" contender of the replay
// scenario (not run by default: --contenders=replay-floor-threads). It asks one
// question for the planners: how near node-rdkafka alone could a Node bridge
// come if node-rdkafka's per-message work and the socket writes ran on two
// cores instead of one?
//
// node-rdkafka cannot run in a worker thread: it loads in one thread of a
// process only ("Module did not self-register" in a second), and its consume
// loop's callbacks are bound to the process's default event loop, so consuming
// in a worker aborts the process (V8: "Cannot create a handle without a
// HandleScope", tried here). So the main thread keeps every request's consumer
// and a worker thread runs the HTTP server. The main thread builds the same
// bytes as replay-floor.mjs into a slab per node-rdkafka turn and transfers the
// slab's memory to the worker (no copy; a new slab follows), which writes it
// with one res.write(). Same settings, same missing parts: no JSON or UTF-8
// check, no resume id, no backpressure.
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

if (!isMainThread) {
  const { serve } = await import('./common-http.mjs');
  const main = parentPort;
  const streams = new Map();
  let nextId = 0;
  main.on('message', ({ id, chunk, length, error }) => {
    const res = streams.get(id);
    if (!res) return;
    if (error) res.destroy();
    else res.write(new Uint8Array(chunk, 0, length));
  });
  serve('replay-floor-threads', (req, res, assignments) => {
    const id = nextId++;
    streams.set(id, res);
    const sse = !/application\/(x-nd)?json/.test(req.headers.accept ?? '');
    res.writeHead(200, { 'Content-Type': sse ? 'text/event-stream' : 'application/x-ndjson' });
    res.flushHeaders();
    main.postMessage({ open: id, assignments, sse });
    res.on('close', () => {
      streams.delete(id);
      main.postMessage({ close: id });
    });
  });
} else {
  const worker = new Worker(new URL(import.meta.url));
  // Signals reach the main thread only (serve() listens for them in the worker).
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  const { floorConsumer, frameInto, frameRoom } = await import('./floor-parts.mjs');
  const SLAB = 256 * 1024;
  const consumers = new Map();

  const open = (id, assignments, sse) => {
    // Never pooled (allocUnsafeSlow): its whole ArrayBuffer is this slab, so it can be transferred.
    let slab = Buffer.allocUnsafeSlow(SLAB);
    let end = 0;
    let scheduled = false;
    /** Hands the slab's memory to the HTTP thread (transferred, not copied); the caller makes a new one. */
    const send = () => {
      worker.postMessage({ id, chunk: slab.buffer, length: end }, [slab.buffer]);
      end = 0;
    };
    const flush = () => {
      scheduled = false;
      if (end === 0) return;
      send();
      slab = Buffer.allocUnsafeSlow(SLAB);
    };
    const onMessage = (m) => {
      if (!m.value) return;
      const need = frameRoom(m.value.length);
      if (end + need > slab.length) {
        send();
        slab = Buffer.allocUnsafeSlow(Math.max(SLAB, need));
      }
      end = frameInto(slab, end, m, sse);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };
    const onError = () => worker.postMessage({ id, error: true });
    consumers.set(
      id,
      floorConsumer(assignments, onMessage, onError, () => consumers.has(id)),
    );
  };

  worker.on('message', (msg) => {
    if (msg.open !== undefined) open(msg.open, msg.assignments, msg.sse);
    else {
      const consumer = consumers.get(msg.close);
      consumers.delete(msg.close);
      if (consumer?.isConnected()) consumer.disconnect();
    }
  });
}
