#!/usr/bin/env node
// The cheap load generator: one process holding thousands of live streams,
// so that the clients cost less than the server they measure. HTTP/1.1 over
// raw `net` sockets (a hand-written request, a chunked-body decoder and a
// frame counter; no http module, no EventSource, no SSE parser, no JSON), or
// HTTP/2 without TLS (h2c) as many streams on a few node:http2 sessions.
//
//   node bench/loadgen.mjs '<json args>'
//
// args: {
//   url,                      http://host:port/path
//   mode: 'live' | 'connect',
//   connections,              live: streams to hold
//   rampPerSec,               live: how fast to open them
//   h2, streamsPerSession,    HTTP/2 (h2c), streams per session (default 500)
//   rate, count,              connect: open `count` streams at `rate` per second
//   closeAfter,               connect: 'firstByte' | 'firstMessage'
//   resumeBack,               connect: send Last-Event-ID = the anchor stream's
//                             latest id with every offset `resumeBack` lower
// }
//
// A message is a frame holding `"bench_t":<µs>` (the producer's
// CLOCK_MONOTONIC stamp): counted per stream, its latency recorded once per
// frame. Output: JSON lines. live: {"event":"connected",…} when every stream
// answered (or failed), then {"event":"result",…} after "report" on stdin.
// connect: {"event":"result",…} when every stream is done.
import http2 from 'node:http2';
import net from 'node:net';
import { Histogram, nowUs, readJsonLines } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(args.url);
const host = url.hostname;
const port = Number(url.port);
const reqPath = `${url.pathname}${url.search}`;
const latency = new Histogram();
const ttfb = new Histogram();
const ttfm = new Histogram();

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const STAMP = '"bench_t":';

/** One stream's counters and its frame counter. */
class Stream {
  startAt = nowUs();
  status = 0;
  firstByteAt = 0;
  firstMessageAt = 0;
  count = 0;
  error = null;
  ended = false;
  lastId = null;
  rest = '';
  onFirstByte = null;
  onFirstMessage = null;
  close = () => {};

  /** Body text (decoded): count complete frames holding a stamp. */
  body(text) {
    const at = nowUs();
    if (this.firstByteAt === 0) {
      this.firstByteAt = at;
      ttfb.record(at - this.startAt);
      this.onFirstByte?.(this);
    }
    const buf = this.rest.length ? this.rest + text : text;
    const end = buf.lastIndexOf('\n\n');
    if (end < 0) {
      this.rest = buf;
      return;
    }
    const before = this.count;
    for (let i = buf.indexOf(STAMP); i >= 0 && i < end; i = buf.indexOf(STAMP, i + 20)) {
      this.count++;
      let t = 0;
      for (let j = i + STAMP.length, c = buf.charCodeAt(j); c >= 48 && c <= 57; c = buf.charCodeAt(++j)) {
        t = t * 10 + c - 48;
      }
      latency.record(at - t);
    }
    if (this.wantsId) {
      const k = buf.lastIndexOf('\nid: ', end);
      if (k >= 0) this.lastId = buf.slice(k + 5, buf.indexOf('\n', k + 5));
    }
    this.rest = end + 2 < buf.length ? buf.slice(end + 2) : '';
    if (before === 0 && this.count > 0) {
      this.firstMessageAt = at;
      ttfm.record(at - this.startAt);
      this.onFirstMessage?.(this);
    }
  }
}

/** A response head, then the body: chunked (HTTP/1.1's default for a stream) or raw. */
function openNet(s, headers) {
  const socket = net.connect(port, host);
  socket.setNoDelay(true);
  socket.setEncoding('latin1');
  s.close = () => socket.destroy();
  let extra = '';
  for (const [k, v] of Object.entries(headers)) extra += `${k}: ${v}\r\n`;
  socket.write(`GET ${reqPath} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
  let head = '';
  let inBody = false;
  let chunked = false;
  // Chunked decoding state: bytes left in the current chunk, CRLF to skip, a partial size line.
  let need = 0;
  let skip = 0;
  let line = '';
  const dechunk = (text) => {
    let out = '';
    let i = 0;
    while (i < text.length) {
      if (need > 0) {
        const take = Math.min(need, text.length - i);
        out += text.slice(i, i + take);
        need -= take;
        i += take;
        if (need === 0) skip = 2;
      } else if (skip > 0) {
        i++;
        skip--;
      } else {
        const j = text.indexOf('\n', i);
        if (j < 0) {
          line += text.slice(i);
          break;
        }
        const size = Number.parseInt(line + text.slice(i, j), 16);
        line = '';
        i = j + 1;
        if (size === 0) {
          s.ended = true;
          break;
        }
        need = size;
      }
    }
    return out;
  };
  socket.on('data', (data) => {
    if (!inBody) {
      head += data;
      const h = head.indexOf('\r\n\r\n');
      if (h < 0) return;
      s.status = Number(head.slice(9, 12));
      chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head.slice(0, h));
      data = head.slice(h + 4);
      head = '';
      inBody = true;
      s.onHeaders?.(s);
      if (data.length === 0) return;
    }
    const text = chunked ? dechunk(data) : data;
    if (text.length) s.body(text);
  });
  socket.on('error', (err) => {
    s.error = err.code ?? err.message;
  });
  socket.on('close', () => {
    s.ended = true;
    if (!inBody) s.onHeaders?.(s);
  });
}

// HTTP/2: sessions are opened on demand, `streamsPerSession` streams each.
const sessions = [];
let sessionStreams = 0;
function session() {
  const per = args.streamsPerSession ?? 500;
  let current = sessions.at(-1);
  if (!current || sessionStreams >= per) {
    current = http2.connect(`http://${host}:${port}`, {
      settings: { initialWindowSize: 1 << 20, enablePush: false },
      peerMaxConcurrentStreams: per,
    });
    current.on('connect', () => current.setLocalWindowSize(64 << 20));
    current.on('error', () => {});
    sessions.push(current);
    sessionStreams = 0;
  }
  sessionStreams++;
  return current;
}

function openH2(s, headers) {
  const req = session().request({ ':path': reqPath, accept: 'text/event-stream', ...headers });
  req.setEncoding('latin1');
  s.close = () => req.close();
  req.on('response', (h) => {
    s.status = Number(h[':status']);
    s.onHeaders?.(s);
  });
  req.on('data', (text) => s.body(text));
  req.on('error', (err) => {
    s.error = err.code ?? err.message;
  });
  req.on('close', () => {
    s.ended = true;
    if (!s.status) s.onHeaders?.(s);
  });
}

function open(headers = {}) {
  const s = new Stream();
  (args.h2 ? openH2 : openNet)(s, headers);
  return s;
}

const streams = [];

function report() {
  const counts = streams.map((s) => s.count);
  let min = Number.POSITIVE_INFINITY;
  for (const c of counts) if (c < min) min = c;
  return {
    connections: streams.length,
    counts,
    minCount: streams.length ? min : null,
    statuses: streams.reduce((m, s) => {
      m[s.status] = (m[s.status] ?? 0) + 1;
      return m;
    }, {}),
    errors: [...new Set(streams.map((s) => s.error).filter(Boolean))].slice(0, 10),
    ended: streams.filter((s) => s.ended).length,
    latency: latency.toJSON(),
    ttfb: ttfb.toJSON(),
    ttfm: ttfm.toJSON(),
    sessions: sessions.length,
  };
}

function live() {
  const n = args.connections ?? 1;
  let answered = 0;
  const onHeaders = (s) => {
    if (s.answered) return;
    s.answered = true;
    answered++;
    if (answered === n) {
      emit({
        event: 'connected',
        ok: streams.filter((x) => x.status === 200).length,
        failed: streams.filter((x) => x.status !== 200).length,
        ttfb: ttfb.toJSON(),
      });
    }
  };
  const perTick = Math.max(1, Math.round((args.rampPerSec ?? 1000) / 50));
  const tick = () => {
    for (let i = 0; i < perTick && streams.length < n; i++) {
      const s = open();
      s.onHeaders = onHeaders;
      streams.push(s);
    }
    if (streams.length < n) setTimeout(tick, 20);
  };
  tick();
  readJsonLines(process.stdin, (cmd) => {
    if (cmd.cmd !== 'report') return;
    emit({ event: 'result', ...report() });
    for (const s of streams) s.close();
    setTimeout(() => process.exit(0), 100);
  });
}

/** `count` new streams at `rate`/s, each closed once it has its first byte (or first message). */
async function connect() {
  let anchor = null;
  if (args.resumeBack) {
    // One live stream whose latest id the resumes start from.
    anchor = open();
    anchor.wantsId = true;
    const t = Date.now();
    while (anchor.lastId === null && Date.now() - t < 15_000) await new Promise((r) => setTimeout(r, 20));
    if (anchor.lastId === null) {
      emit({ event: 'result', error: 'the anchor stream received no message in 15 s' });
      process.exit(0);
    }
    ttfb.counts.clear();
    ttfb.n = 0;
    ttfm.counts.clear();
    ttfm.n = 0;
  }
  const resumeId = () => {
    const id = JSON.parse(anchor.lastId);
    return JSON.stringify(id.map((e) => ({ ...e, offset: Math.max(0, e.offset - args.resumeBack) })));
  };
  const closeAfter = args.closeAfter ?? 'firstByte';
  let done = 0;
  let lastDoneAt = 0;
  const t0 = nowUs();
  await new Promise((resolve) => {
    const finish = (s) => {
      if (s.done) return;
      s.done = true;
      s.close();
      done++;
      lastDoneAt = nowUs();
      if (done === args.count) resolve();
    };
    const timeout = setTimeout(resolve, (args.count / args.rate + 30) * 1000);
    timeout.unref();
    const perTick = Math.max(1, Math.round(args.rate / 100));
    const tickMs = (1000 * perTick) / args.rate;
    let opened = 0;
    const tick = () => {
      const due = Math.min(args.count, Math.floor((Number(nowUs() - t0) / 1e6) * args.rate) + 1);
      while (opened < due) {
        const s = open(anchor ? { 'last-event-id': resumeId() } : {});
        opened++;
        if (closeAfter === 'firstMessage') s.onFirstMessage = finish;
        else s.onFirstByte = finish;
        s.onHeaders = (x) => {
          if (x.status !== 200) finish(x);
        };
        streams.push(s);
      }
      if (opened < args.count) setTimeout(tick, tickMs);
    };
    tick();
  });
  const spanS = (lastDoneAt - t0) / 1e6;
  const failed = streams.filter((s) => s.status !== 200 || (closeAfter === 'firstMessage' && !s.firstMessageAt)).length;
  anchor?.close();
  emit({
    event: 'result',
    ...report(),
    counts: undefined,
    offered: args.rate,
    completed: streams.length - failed,
    failed,
    achievedPerSec: spanS > 0 ? (streams.length - failed) / spanS : null,
  });
  process.exit(0);
}

if (args.mode === 'connect') void connect();
else live();
