#!/usr/bin/env node
// kafka-sse-bridge (this project, from dist/) with default options.
// BENCH_KAFKA_CONFIG (JSON) adds librdkafka settings on top of the library's
// defaults, for trying tuning without touching lib/. BENCH_STATS_FILE turns on
// librdkafka statistics (every second) and appends them there as JSON lines;
// BENCH_DEBUG turns on librdkafka's debug log (see below).
// `--h2c`: serve HTTP/2 without TLS (node:http2, through its compatibility API)
// instead of HTTP/1.1, for the clients-h2 scenario.
import fs from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { kafkaSse, SharedTail } from '../../dist/index.js';
import { BROKERS } from '../lib/common.mjs';
import { serve } from './common-http.mjs';

const kafkaConfig = { 'metadata.broker.list': BROKERS, ...JSON.parse(process.env.BENCH_KAFKA_CONFIG || '{}') };
const options = { kafkaConfig };
const statsFile = process.env.BENCH_STATS_FILE;
if (statsFile) {
  kafkaConfig['statistics.interval.ms'] = 1000;
  options.kafkaEventHandlers = {
    'event.stats': (stats) => fs.appendFileSync(statsFile, `${stats.message}\n`),
  };
}

// BENCH_DEBUG=<librdkafka debug contexts>: librdkafka's debug log to stderr (diagnosis only).
if (process.env.BENCH_DEBUG) {
  kafkaConfig.debug = process.env.BENCH_DEBUG;
  options.kafkaEventHandlers = {
    ...options.kafkaEventHandlers,
    'event.log': (log) =>
      fs.appendFileSync(process.env.BENCH_DEBUG_FILE ?? '/dev/stderr', `${Date.now()} ${log.fac} ${log.message}\n`),
  };
}

// BENCH_DESERIALIZER=splice: validate with JSON.parse, then send the original
// text with _kafka spliced in, instead of re-serializing the parsed object (an
// experiment for a faster default deserializer; see bench/variants.mjs).
if (process.env.BENCH_DESERIALIZER === 'splice') {
  options.deserializer = (m) => {
    const text = m.value === null || m.value === undefined ? 'null' : m.value.toString('utf8');
    const parsed = JSON.parse(text);
    const meta = JSON.stringify({
      topic: m.topic,
      partition: m.partition,
      offset: m.offset,
      timestamp: m.timestamp,
      key: m.key === undefined || m.key === null ? null : m.key.toString(),
    });
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const end = text.lastIndexOf('}');
      const empty = Object.keys(parsed).length === 0;
      m.message = `${empty ? '{' : `${text.slice(0, end)},`}"_kafka":${meta}}`;
    } else {
      m.message = `{"value":${JSON.stringify(parsed)},"_kafka":${meta}}`;
    }
    return m;
  };
}

// BENCH_SHARED_TAIL=off: every stream owns a consumer (the bridge@private variant); any other
// value is the JSON of SharedTail options (e.g. {"ringMessages":500}), for trying a log size.
if (process.env.BENCH_SHARED_TAIL === 'off') options.sharedTail = null;
else if (process.env.BENCH_SHARED_TAIL) options.sharedTail = new SharedTail(JSON.parse(process.env.BENCH_SHARED_TAIL));

// BENCH_GC_FILE: one line per garbage collection (when it ended, its kind, how
// long it paused the thread), to tell GC pauses from other stalls (diagnosis only).
if (process.env.BENCH_GC_FILE) {
  const gcFile = process.env.BENCH_GC_FILE;
  const kinds = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
  new PerformanceObserver((list) => {
    let lines = '';
    for (const e of list.getEntries()) {
      const m = process.memoryUsage();
      lines += `${Math.round(performance.timeOrigin + e.startTime + e.duration)} ${kinds[e.detail?.kind] ?? e.detail?.kind} ${e.duration.toFixed(2)} heap=${(m.heapUsed / 1048576).toFixed(1)}/${(m.heapTotal / 1048576).toFixed(1)} external=${(m.external / 1048576).toFixed(1)} flags=${e.detail?.flags}\n`;
    }
    fs.appendFileSync(gcFile, lines);
  }).observe({ entryTypes: ['gc'] });
}

// BENCH_TRACE_FILE: log when res.write() returns false and when 'drain' follows (diagnosis only).
const traceFile = process.env.BENCH_TRACE_FILE;

// BENCH_DESERIALIZER=raw: the value as text, unparsed (an upper bound, not a proposal).
if (process.env.BENCH_DESERIALIZER === 'raw') {
  options.deserializer = (m) => {
    m.message = m.value === null || m.value === undefined ? 'null' : m.value.toString('utf8');
    return m;
  };
}

serve('bridge', (req, res, assignments, atTimestamp) => {
  if (traceFile) {
    const t0 = Date.now();
    fs.appendFileSync(traceFile, `${t0} request ${req.url}\n`);
    const writeHead = res.writeHead;
    res.writeHead = function (...args) {
      fs.appendFileSync(traceFile, `${Date.now()} writeHead +${Date.now() - t0} ms\n`);
      return writeHead.apply(this, args);
    };
    const write = res.write;
    res.write = function (...args) {
      const ok = write.apply(this, args);
      if (!ok) fs.appendFileSync(traceFile, `${Date.now()} write-false buffered=${res.writableLength}\n`);
      return ok;
    };
    res.on('drain', () => fs.appendFileSync(traceFile, `${Date.now()} drain\n`));
  }
  void kafkaSse(req, res, assignments, options, atTimestamp);
});
