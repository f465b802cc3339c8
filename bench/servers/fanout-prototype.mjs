#!/usr/bin/env node
// NOT a contender and NOT the library: a ~100-line prototype that measures
// what a shared live tail would give. One Kafka consumer per topic serves
// every client reading that topic from the end; each message is deserialized
// (the default way: JSON.parse + _kafka), serialized and framed once, and the
// same frame (same id: every client has the same assignment) is written to
// every client. Only `GET /stream/<topic>` (live, from the end) is supported.
// It exists so that the "many clients" recommendation in bench/findings.md
// rests on a measurement, not on a guess.
import { serveTopicTails } from './common-http.mjs';
import { consumeFromEnd } from './tail-consumer.mjs';

const MAX_BUFFERED = 4 * 1024 * 1024;

function sseFrame(data, id) {
  return `event: message\nid: ${id}\ndata: ${data}\n\n`;
}

function openTail(topic) {
  const tail = { clients: new Set(), pending: '', scheduled: false, positions: new Map(), ready: null };
  const flush = () => {
    tail.scheduled = false;
    const chunk = tail.pending;
    tail.pending = '';
    for (const res of tail.clients) {
      if (res.writableLength > MAX_BUFFERED) {
        // A client this far behind would hold the others back: drop it (it reconnects with its id).
        tail.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(chunk);
    }
  };
  tail.ready = consumeFromEnd(topic, 'fanout-prototype', { 'queued.min.messages': 100000 }, (m) => {
    let message;
    try {
      message = JSON.parse(m.value.toString('utf8'));
    } catch {
      return;
    }
    message._kafka = { topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: null };
    tail.positions.set(m.partition, { topic: m.topic, partition: m.partition, offset: m.offset + 1 });
    tail.pending += sseFrame(JSON.stringify(message), JSON.stringify([...tail.positions.values()]));
    if (!tail.scheduled) {
      tail.scheduled = true;
      setImmediate(flush);
    }
  });
  return tail;
}

serveTopicTails('fanout-prototype', openTail, (tail, res) => {
  tail.clients.add(res);
  res.on('close', () => tail.clients.delete(res));
});
