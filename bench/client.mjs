#!/usr/bin/env node
// A benchmark client process: holds one or many streams and measures what a
// real client sees. SSE streams are read with eventsource-parser (the parser
// of the `eventsource` package) and every message's data is JSON-parsed, as a
// real client would; the floor's streams are kcat processes whose stdout
// (one message per line) is read the same way.
//
//   node bench/client.mjs '<json args>'
//
// args: {
//   mode: 'replay' | 'live' | 'ttfe',
//   source: 'http' | 'kcat',
//   url, connections, rampPerSec,   (http)
//   kcatArgs,                        (kcat: argv of one kcat consumer printing '%s\n')
//   expect,                          (replay: messages to wait for)
//   repeat,                          (ttfe: sequential samples)
//   timeoutMs,
//   parse: 'json' (default: JSON.parse every message) | 'light' (read bench_t and bench_seq only)
//          | 'count' (replay only: count `data:` lines or NDJSON lines, no parser, no JSON.parse),
//   format: 'sse' (default) | 'ndjson'   (http: what the request's Accept asks for),
// }
//
// Every replay checks each message's `_kafka` partition and offset (each
// partition's offsets must come in order from 0, each exactly once) and, in
// SSE, reports the last `id:` (the runner compares it with the next offsets).
//
// Output: JSON lines on stdout. live: {"event":"connected",…} once every stream
// is open (or failed), then {"event":"result",…} after "report" arrives on stdin.
// replay and ttfe: {"event":"result",…} when done.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createParser } from 'eventsource-parser';
import { Histogram, nowUs, readJsonLines } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const t0 = nowUs();
const ms = (us) => (us === null || us === undefined ? null : Math.round(us / 10) / 100);

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const latency = new Histogram();
/** Per second of the run (since the first message): [messages, max latency µs]. */
const timeline = [];
let timelineStart = null;

function numberAfter(text, key) {
  const i = text.lastIndexOf(key);
  return i < 0 ? Number.NaN : Number.parseInt(text.slice(i + key.length, i + key.length + 20), 10);
}

/** One stream's state. Times are nowUs() values. */
class Stream {
  requestAt = nowUs();
  headersAt = null;
  firstByteAt = null;
  firstMessageAt = null;
  lastMessageAt = null;
  status = null;
  count = 0;
  bytes = 0;
  payloadBytes = 0;
  lastSeq = -1;
  outOfOrder = 0;
  errors = 0;
  errorEvents = 0;
  ended = false;
  error = null;
  onMessage = null;
  onFirstByte = null;
  /** Replay checks: the next offset expected of each partition, and how many messages broke the order. */
  next = [];
  disorder = 0;
  lastId = null;

  /** One message's `_kafka` position (replay): each partition's offsets in order, each exactly once. */
  position(partition, offset) {
    if (offset !== (this.next[partition] ?? 0)) this.disorder++;
    this.next[partition] = offset + 1;
  }

  message(data) {
    const at = nowUs();
    if (this.firstMessageAt === null) this.firstMessageAt = at;
    this.lastMessageAt = at;
    this.count++;
    this.payloadBytes += data.length;
    let msg;
    if (args.parse === 'light') {
      // Many-clients runs: thousands of streams in a few processes on a small
      // machine; reading two numbers instead of JSON-parsing every message
      // keeps the clients' CPU from dominating what is measured.
      msg = { bench_t: numberAfter(data, '"bench_t":'), bench_seq: numberAfter(data, '"bench_seq":') };
      if (Number.isNaN(msg.bench_t)) {
        this.errors++;
        return;
      }
    } else {
      try {
        msg = JSON.parse(data);
      } catch {
        this.errors++;
        return;
      }
    }
    if (args.mode === 'replay') {
      const k = msg?._kafka;
      if (k) this.position(k.partition, k.offset);
      else this.disorder++;
    }
    if (args.mode === 'live') {
      const lat = at - msg.bench_t;
      latency.record(lat);
      timelineStart ??= at;
      const sec = Math.floor((at - timelineStart) / 1e6);
      timeline[sec] ??= [0, 0];
      const slot = timeline[sec];
      slot[0]++;
      if (lat > slot[1]) slot[1] = lat;
      if (msg.bench_seq <= this.lastSeq) this.outOfOrder++;
      this.lastSeq = msg.bench_seq;
    }
    this.onMessage?.(this);
  }

  summary() {
    return {
      status: this.status,
      count: this.count,
      bytes: this.bytes,
      payloadBytes: this.payloadBytes,
      headersMs: ms(this.headersAt && this.headersAt - this.requestAt),
      firstByteMs: ms(this.firstByteAt && this.firstByteAt - this.requestAt),
      firstMessageMs: ms(this.firstMessageAt && this.firstMessageAt - this.requestAt),
      lastMessageMs: ms(this.lastMessageAt && this.lastMessageAt - this.requestAt),
      nextOffsets: this.next.map((x) => x ?? 0),
      disorder: this.disorder,
      lastId: this.lastId,
      outOfOrder: this.outOfOrder,
      parseErrors: this.errors,
      errorEvents: this.errorEvents,
      ended: this.ended,
      error: this.error,
    };
  }
}

function openHttp(onOpen) {
  const s = new Stream();
  const agent = false;
  const ndjson = args.format === 'ndjson';
  const req = http.get(args.url, {
    agent,
    headers: { Accept: ndjson ? 'application/json' : 'text/event-stream' },
  });
  s.close = () => req.destroy();
  req.on('error', (err) => {
    s.error = err.code ?? err.message;
    s.ended = true;
    onOpen?.(s);
  });
  req.on('response', (res) => {
    s.headersAt = nowUs();
    s.status = res.statusCode;
    onOpen?.(s);
    const counting = args.parse === 'count' && args.mode === 'replay';
    let feed;
    if (counting) feed = countingFeed(s, ndjson);
    else if (ndjson) feed = ndjsonFeed(s);
    else {
      const parser = createParser({
        onEvent(e) {
          if (e.event === undefined || e.event === 'message') {
            if (e.id !== undefined) s.lastId = e.id;
            s.message(e.data);
          } else if (e.event === 'error') s.errorEvents++;
        },
      });
      feed = (chunk) => parser.feed(chunk);
    }
    // The counting client reads latin1 (one char per byte, the cheapest decode: it only looks for ASCII).
    res.setEncoding(counting ? 'latin1' : 'utf8');
    res.on('data', (chunk) => {
      if (s.firstByteAt === null) {
        s.firstByteAt = nowUs();
        s.onFirstByte?.(s);
      }
      s.bytes += counting ? chunk.length : Buffer.byteLength(chunk);
      feed(chunk);
    });
    res.on('end', () => {
      s.ended = true;
    });
    res.on('error', (err) => {
      s.error = err.code ?? err.message;
      s.ended = true;
    });
  });
  return s;
}

/** NDJSON read as a real client would: one JSON.parse per line. */
function ndjsonFeed(s) {
  let rest = '';
  return (chunk) => {
    const buf = rest + chunk;
    let p = 0;
    for (let e = buf.indexOf('\n'); e >= 0; e = buf.indexOf('\n', p)) {
      const line = buf.slice(p, e);
      p = e + 1;
      if (line.startsWith('{"_error"')) s.errorEvents++;
      else if (line.length > 0) s.message(line);
    }
    rest = buf.slice(p);
  };
}

/** The digits at `i` of `s` as a number (no allocation). */
function intAt(s, i) {
  let n = 0;
  for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) n = n * 10 + c - 48;
  return n;
}

/**
 * The counting replay client: no SSE parser and no JSON.parse, so that the
 * client is not what limits the rate. It counts `data:` lines (SSE) or lines
 * (NDJSON), reads each message's `_kafka` partition and offset by position,
 * and keeps the last `id:` line as text.
 */
function countingFeed(s, ndjson) {
  let rest = '';
  return (chunk) => {
    const buf = rest.length ? rest + chunk : chunk;
    let p = 0;
    for (let e = buf.indexOf('\n', p); e >= 0; p = e + 1, e = buf.indexOf('\n', p)) {
      let isMessage;
      if (ndjson) isMessage = e > p && !buf.startsWith('{"_error"', p);
      else if (buf.startsWith('data:', p)) isMessage = true;
      else {
        if (buf.startsWith('id: ', p)) s.lastId = buf.slice(p + 4, e);
        else if (buf.startsWith('event: error', p)) s.errorEvents++;
        continue;
      }
      if (!isMessage) {
        if (e > p) s.errorEvents++;
        continue;
      }
      const k = buf.lastIndexOf('"_kafka":', e);
      if (k < p) s.disorder++;
      else s.position(intAt(buf, buf.indexOf('"partition":', k) + 12), intAt(buf, buf.indexOf('"offset":', k) + 9));
      const at = nowUs();
      if (s.firstMessageAt === null) s.firstMessageAt = at;
      s.lastMessageAt = at;
      s.count++;
      s.payloadBytes += e - p;
      s.onMessage?.(s);
    }
    rest = p < buf.length ? buf.slice(p) : '';
  };
}

function openKcat(onOpen) {
  const s = new Stream();
  const child = spawn('kcat', args.kcatArgs, { stdio: ['ignore', 'pipe', 'ignore'] });
  s.pid = child.pid;
  s.close = () => child.kill('SIGTERM');
  child.on('error', (err) => {
    s.error = err.message;
    s.ended = true;
  });
  child.on('exit', () => {
    s.ended = true;
  });
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    if (s.firstByteAt === null) s.firstByteAt = nowUs();
    s.bytes += Buffer.byteLength(chunk);
    buf += chunk;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      s.message(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  // kcat has no "connected" signal: it counts as open once spawned.
  s.status = 0;
  setImmediate(() => onOpen?.(s));
  return s;
}

const open = args.source === 'kcat' ? openKcat : openHttp;

async function replay() {
  const s = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(s), args.timeoutMs ?? 120_000);
    const s = open();
    s.onMessage = (st) => {
      if (st.count >= args.expect) {
        clearTimeout(timer);
        resolve(st);
      }
    };
  });
  const result = s.summary();
  s.close();
  emit({ event: 'result', ...result, complete: s.count >= args.expect });
  process.exit(0);
}

async function ttfe() {
  const samples = [];
  for (let i = 0; i < (args.repeat ?? 10); i++) {
    const s = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(s), args.timeoutMs ?? 15_000);
      const s = open();
      const done = (st) => {
        clearTimeout(timer);
        resolve(st);
      };
      if (args.until === 'firstByte') s.onFirstByte = done;
      else s.onMessage = done;
    });
    samples.push(s.summary());
    s.close();
    // Let the server finish tearing this stream down, so that the next sample
    // measures a request to an idle server.
    await new Promise((r) => setTimeout(r, args.gapMs ?? 1000));
  }
  emit({ event: 'result', samples });
  process.exit(0);
}

function live() {
  const n = args.connections ?? 1;
  const streams = [];
  let opened = 0;
  const onOpen = () => {
    opened++;
    if (opened === n) {
      const s = streams.map((x) => x.summary());
      emit({
        event: 'connected',
        ok: s.filter((x) => x.status === 200 || x.status === 0).length,
        failed: s.filter((x) => x.error || (x.status !== 200 && x.status !== 0)).length,
        headersMs: s.map((x) => x.headersMs).filter((x) => x !== null),
        sinceStartMs: ms(nowUs() - t0),
      });
    }
  };
  // Open at the given rate, so that many streams arrive as a steady stream
  // of connections rather than one burst.
  const perTick = Math.max(1, Math.round((args.rampPerSec ?? 1000) / 20));
  const tick = () => {
    for (let i = 0; i < perTick && streams.length < n; i++) streams.push(open(onOpen));
    if (streams.length < n) setTimeout(tick, 50);
  };
  tick();
  readJsonLines(process.stdin, (cmd) => {
    if (cmd.cmd !== 'report') return;
    const counts = streams.map((s) => s.count);
    const summaries = streams.map((s) => s.summary());
    emit({
      event: 'result',
      connections: n,
      counts,
      statuses: summaries.map((x) => x.status),
      errors: summaries.map((x) => x.error).filter(Boolean),
      ended: summaries.filter((x) => x.ended).length,
      outOfOrder: summaries.reduce((a, x) => a + x.outOfOrder, 0),
      errorEvents: summaries.reduce((a, x) => a + x.errorEvents, 0),
      latency: latency.toJSON(),
      timeline: Array.from(timeline, (x) => (x ? [x[0], Math.round(x[1] / 1000)] : [0, 0])),
    });
    for (const s of streams) s.close();
    setTimeout(() => process.exit(0), 100);
  });
}

if (args.mode === 'replay') void replay();
else if (args.mode === 'ttfe') void ttfe();
else live();
