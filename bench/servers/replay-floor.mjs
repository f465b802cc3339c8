#!/usr/bin/env node
// NOT the library: the floor of replay over HTTP from Node on this machine, the
// "replay floor" contender of the replay scenario. One node-rdkafka consumer per
// request, assigned where the request says, flowing, with the library's own
// librdkafka settings and consume waits; each message's value is sent as it
// came with `,"_kafka":{"partition":P,"offset":O}` written before its closing
// brace (what the counting client reads), as `data:` lines (SSE) or lines
// (NDJSON), into one slab per turn and one res.write() after node-rdkafka's
// turn. No JSON check, no UTF-8 check, no resume id, no topic or timestamp in
// `_kafka`, no backpressure (a slow client makes the process buffer). What is
// left is node-rdkafka's hand-over, one copy and the socket write: what any
// Node bridge pays per replayed message before doing anything of its own.
import { serve } from './common-http.mjs';
import { floorConsumer, frameInto, frameRoom } from './floor-parts.mjs';

serve('replay-floor', (req, res, assignments) => {
  const sse = !/application\/(x-nd)?json/.test(req.headers.accept ?? '');
  res.writeHead(200, { 'Content-Type': sse ? 'text/event-stream' : 'application/x-ndjson' });
  let slab = Buffer.allocUnsafe(256 * 1024);
  let start = 0;
  let end = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (end > start) res.write(slab.subarray(start, end));
    // The written piece stays the socket's (never written over): the slab's rest serves the next turns.
    start = end;
  };
  const onMessage = (m) => {
    if (!m.value) return;
    const need = frameRoom(m.value.length);
    if (end + need > slab.length) {
      const pending = slab.subarray(start, end);
      slab = Buffer.allocUnsafe(Math.max(256 * 1024, 2 * (pending.length + need)));
      pending.copy(slab, 0);
      start = 0;
      end = pending.length;
    }
    end = frameInto(slab, end, m, sse);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const consumer = floorConsumer(assignments, onMessage, () => res.destroy());
  res.on('close', () => {
    if (consumer.isConnected()) consumer.disconnect();
  });
});
