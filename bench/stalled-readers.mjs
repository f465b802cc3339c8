#!/usr/bin/env node
// What a replay client that never reads costs the server, and that the cost
// goes away: N clients open a replay of a ~20 MB topic and stop reading; the
// server's RSS and threads are sampled until stalledWriteTimeoutMs has ended
// every stream, then once more after. Clients and server share this process
// (a paused client holds its data in the kernel, not in the heap).
//
//   node bench/stalled-readers.mjs [--clients=100] [--timeout-ms=10000] [--out=bench/results/tmp/stalled.json]
//
// Uses dist/ (npm run build first) and the broker at KAFKA_BROKERS (default 127.0.0.1:9092).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Kafka from 'node-rdkafka';
import { kafkaSse, openConsumerCount } from '../dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);
const CLIENTS = Number(args.clients ?? 100);
const TIMEOUT_MS = Number(args['timeout-ms'] ?? 10_000);
const OUT = args.out ?? 'bench/results/tmp/stalled.json';
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const TOPIC = `bench-stalled-${Date.now().toString(36)}`;
const MESSAGES = 2000;
const VALUE = JSON.stringify({ filler: 'x'.repeat(10_000) });

function status() {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, threads: kb('Threads') };
}

async function admin(fn) {
  const client = Kafka.AdminClient.create({ 'metadata.broker.list': BROKERS });
  try {
    return await new Promise((resolve, reject) => fn(client, (err, v) => (err ? reject(err) : resolve(v))));
  } finally {
    client.disconnect();
  }
}

async function produce() {
  const producer = new Kafka.Producer({ 'metadata.broker.list': BROKERS, dr_cb: true, 'linger.ms': 5 });
  await new Promise((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
  let delivered = 0;
  const done = new Promise((resolve) =>
    producer.on('delivery-report', () => {
      if (++delivered === MESSAGES) resolve();
    }),
  );
  producer.setPollInterval(10);
  for (let i = 0; i < MESSAGES; i++) {
    for (;;) {
      try {
        producer.produce(TOPIC, 0, Buffer.from(VALUE));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
  await done;
  await new Promise((resolve) => producer.disconnect(resolve));
}

async function main() {
  await admin((c, cb) => c.createTopic({ topic: TOPIC, num_partitions: 1, replication_factor: 1 }, cb));
  await produce();
  const options = {
    kafkaConfig: { 'metadata.broker.list': BROKERS },
    sharedTail: null,
    stalledWriteTimeoutMs: TIMEOUT_MS,
    heartbeatMs: null,
  };
  const streams = [];
  const server = http.createServer((req, res) => {
    streams.push(kafkaSse(req, res, [{ topic: TOPIC, partition: 0, offset: 0 }], options));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  global.gc?.();
  await new Promise((r) => setTimeout(r, 500));
  const baseline = status();
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  for (let i = 0; i < CLIENTS; i++) {
    http
      .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
        // Never read: the response stays paused and the socket fills.
        res.pause();
        res.on('error', () => {});
      })
      .on('error', () => {});
  }
  let peak = { rssMb: 0, threads: 0 };
  let peakConsumers = 0;
  const started = Date.now();
  while (Date.now() - started < TIMEOUT_MS * 3 + 30_000) {
    const s = status();
    peak = { rssMb: Math.max(peak.rssMb, s.rssMb), threads: Math.max(peak.threads, s.threads) };
    peakConsumers = Math.max(peakConsumers, openConsumerCount());
    if (streams.length === CLIENTS && openConsumerCount() === 0 && Date.now() - started > 2000) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const releasedAfterS = (Date.now() - started) / 1000;
  await Promise.all(streams);
  await new Promise((r) => setTimeout(r, 2000));
  global.gc?.();
  const after = status();
  const result = {
    clients: CLIENTS,
    stalledWriteTimeoutMs: TIMEOUT_MS,
    topicMb: Math.round((MESSAGES * VALUE.length) / 1e6),
    baseline,
    peak,
    peakConsumers,
    perStalledReaderMb: Math.round(((peak.rssMb - baseline.rssMb) / CLIENTS) * 100) / 100,
    threadsPerStalledReader: Math.round(((peak.threads - baseline.threads) / CLIENTS) * 10) / 10,
    allReleasedAfterS: Math.round(releasedAfterS * 10) / 10,
    after,
    date: new Date().toISOString(),
    node: process.version,
  };
  console.log(JSON.stringify(result, null, 2));
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  server.close();
  await admin((c, cb) => c.deleteTopic(TOPIC, cb)).catch(() => {});
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
