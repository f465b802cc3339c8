#!/usr/bin/env node
// The benchmark's producer, run in its own process so that its CPU is not
// counted against a server or a client.
//
//   node bench/producer.mjs '{"mode":"fill","topic":"t","partitions":6,"count":200000,"size":600}'
//   node bench/producer.mjs '{"mode":"rate","topic":"t","rate":1000,"seconds":30,"size":600}'
//
// fill: as fast as possible, round-robin over partitions; prints {"event":"done",…}.
// rate: `rate` messages/s, spread evenly; each message carries bench_t = nowUs()
// taken just before produce(), and linger.ms=0 so the producer adds no batching
// delay to the latency being measured. Prints {"event":"done",…} at the end.
import Kafka from 'node-rdkafka';
import { BROKERS, nowUs, wikiEdit } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const size = args.size ?? 600;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function connect(config) {
  const producer = new Kafka.Producer({
    'metadata.broker.list': BROKERS,
    'client.id': 'kafka-sse-bridge-bench-producer',
    dr_cb: true,
    ...config,
  });
  return new Promise((resolve, reject) => {
    producer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve(producer)));
    producer.setPollInterval(20);
  });
}

function flush(producer) {
  return new Promise((resolve, reject) => producer.flush(30_000, (err) => (err ? reject(err) : resolve())));
}

async function fill() {
  const producer = await connect({
    'linger.ms': 20,
    'batch.num.messages': 10_000,
    'queue.buffering.max.messages': 500_000,
    'queue.buffering.max.kbytes': 512 * 1024,
    'compression.codec': 'none',
  });
  let delivered = 0;
  let failed = 0;
  producer.on('delivery-report', (err) => (err ? failed++ : delivered++));
  const t0 = performance.now();
  let bytes = 0;
  for (let seq = 0; seq < args.count; seq++) {
    const value = Buffer.from(wikiEdit(seq, nowUs(), size));
    bytes += value.length;
    for (;;) {
      try {
        producer.produce(args.topic, seq % args.partitions, value, null, Date.now());
        break;
      } catch (err) {
        if (err.code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (seq % 5000 === 4999) await new Promise((r) => setImmediate(r));
  }
  await flush(producer);
  while (delivered + failed < args.count) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  emit({ event: 'done', produced: delivered, failed, bytes, avgSize: bytes / args.count, seconds });
  producer.disconnect(() => process.exit(0));
}

async function rate() {
  const producer = await connect({ 'linger.ms': 0, acks: 1 });
  let failed = 0;
  producer.on('delivery-report', (err) => {
    if (err) failed++;
  });
  const partitions = args.partitions ?? 1;
  const total = Math.round(args.rate * args.seconds);
  const t0 = performance.now();
  let seq = 0;
  emit({ event: 'started' });
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * args.rate) + 1);
      while (seq < due) {
        const value = Buffer.from(wikiEdit(seq, nowUs(), size));
        producer.produce(args.topic, seq % partitions, value, null, Date.now());
        seq++;
      }
      if (seq >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = (performance.now() - t0) / 1000;
  await flush(producer);
  emit({ event: 'done', produced: seq - failed, failed, seconds });
  producer.disconnect(() => process.exit(0));
}

const run = args.mode === 'fill' ? fill : rate;
run().catch((err) => {
  emit({ event: 'error', message: String(err?.message ?? err) });
  process.exit(1);
});
