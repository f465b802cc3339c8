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
import Kafka from 'node-rdkafka';
import { writeInt } from '../../dist/lib/byte-batch.js';
import { KAFKA_DEFAULTS, KAFKA_FORCED } from '../../dist/lib/kafka-defaults.js';
import { BROKERS } from '../lib/common.mjs';
import { serve } from './common-http.mjs';

const PARTITION = Buffer.from(',"_kafka":{"partition":');
const OFFSET = Buffer.from(',"offset":');
const DATA = Buffer.from('data: ');

serve('replay-floor', (req, res, assignments) => {
  const sse = !/application\/(x-nd)?json/.test(req.headers.accept ?? '');
  const consumer = new Kafka.KafkaConsumer(
    { ...KAFKA_DEFAULTS, ...KAFKA_FORCED, 'metadata.broker.list': BROKERS, event_cb: false },
    { 'auto.offset.reset': 'earliest' },
  );
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
    const value = m.value;
    if (!value) return;
    const need = value.length + 80;
    if (end + need > slab.length) {
      const pending = slab.subarray(start, end);
      slab = Buffer.allocUnsafe(Math.max(256 * 1024, 2 * (pending.length + need)));
      pending.copy(slab, 0);
      start = 0;
      end = pending.length;
    }
    if (sse) {
      slab.set(DATA, end);
      end += DATA.length;
    }
    let close = value.length - 1;
    while (value[close] !== 125) close--;
    slab.set(value, end);
    end += close;
    slab.set(PARTITION, end);
    end = writeInt(slab, end + PARTITION.length, m.partition);
    slab.set(OFFSET, end);
    end = writeInt(slab, end + OFFSET.length, m.offset);
    slab[end++] = 125;
    slab[end++] = 125;
    slab[end++] = 10;
    if (sse) slab[end++] = 10;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  consumer.connect({ timeout: 10_000 }, (err) => {
    if (err) {
      res.destroy();
      return;
    }
    consumer.assign(assignments);
    consumer.setDefaultConsumeTimeout(50);
    consumer.setDefaultConsumeLoopTimeoutDelay(0);
    consumer.on('data', onMessage);
    consumer.consume();
  });
  res.on('close', () => {
    if (consumer.isConnected()) consumer.disconnect();
  });
});
