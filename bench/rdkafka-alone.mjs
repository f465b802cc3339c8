#!/usr/bin/env node
// The Node floor of replay: node-rdkafka consuming a topic from offset 0 with
// nothing else (no HTTP, no JSON, no copy of the value), the ceiling of any
// Node bridge built on it. Run by bench/run.mjs as the `rdkafka` contender.
//
//   node bench/rdkafka-alone.mjs '{"topic":"t","partitions":6,"expect":200000,"mode":"batched"}'
//
// mode: 'batched' (a consume(batch) loop, the next call as soon as a batch
// arrives) or 'flowing' (consume() with no arguments: node-rdkafka's own
// consume thread, one 'data' event per message).
//
// Times run from the first message to the last; every partition's offsets
// must arrive in order, each exactly once. CPU is the process's own
// utime+stime from /proc, for the whole process (start-up included) and for
// the window from the first message to the last.
// Prints {"event":"result",…} and exits.
import fs from 'node:fs';
import Kafka from 'node-rdkafka';
import { BROKERS } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const batch = args.batch ?? 10_000;
const timeoutMs = args.timeoutMs ?? 60_000;

function cpuSeconds() {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

const consumer = new Kafka.KafkaConsumer(
  {
    'metadata.broker.list': BROKERS,
    'group.id': `kafka-sse-bridge-bench-rdkafka-${process.pid}`,
    'enable.auto.commit': false,
    'client.id': 'kafka-sse-bridge-bench-rdkafka',
  },
  {},
);

const next = new Array(args.partitions).fill(0);
let count = 0;
let disorder = 0;
let firstAt = null;
let lastAt = null;
let cpuAtFirst = null;
let finished = false;

function finish(reason) {
  if (finished) return;
  finished = true;
  const cpuEnd = cpuSeconds();
  const seconds = firstAt === null ? null : (lastAt - firstAt) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      event: 'result',
      mode: args.mode,
      reason,
      messages: count,
      complete: count === args.expect && disorder === 0,
      disorder,
      nextOffsets: next,
      firstMessageMs: firstAt === null ? null : Math.round(firstAt - t0),
      seconds,
      cpuS: cpuEnd,
      windowCpuS: cpuAtFirst === null ? null : cpuEnd - cpuAtFirst,
      peakRssMb:
        Math.round(Number(/^VmHWM:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]) / 102.4) / 10,
    })}\n`,
  );
  // Exit without a clean disconnect: its time is not part of what is measured.
  process.exit(0);
}

function onMessage(m) {
  if (firstAt === null) {
    firstAt = performance.now();
    cpuAtFirst = cpuSeconds();
  }
  if (m.offset !== next[m.partition]) disorder++;
  next[m.partition] = m.offset + 1;
  count++;
}

const t0 = performance.now();
setTimeout(() => finish('timeout'), timeoutMs).unref();

consumer.connect({ timeout: 10_000 }, (err) => {
  if (err) {
    process.stdout.write(`${JSON.stringify({ event: 'error', message: String(err.message ?? err) })}\n`);
    process.exit(1);
  }
  consumer.assign(
    Array.from({ length: args.partitions }, (_, partition) => ({ topic: args.topic, partition, offset: 0 })),
  );
  if (args.mode === 'flowing') {
    consumer.on('data', (m) => {
      onMessage(m);
      if (count >= args.expect) {
        lastAt = performance.now();
        finish('done');
      }
    });
    consumer.consume();
  } else {
    // Without a short per-message wait a batch returns as soon as librdkafka's queue is empty.
    consumer.setDefaultConsumeTimeout(10);
    const loop = () =>
      consumer.consume(batch, (e, messages) => {
        if (e) return setImmediate(loop);
        for (const m of messages) onMessage(m);
        if (count >= args.expect) {
          lastAt = performance.now();
          finish('done');
          return;
        }
        loop();
      });
    loop();
  }
});
