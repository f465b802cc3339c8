// Shared pieces of the benchmark: the clock, the message shape, histograms,
// /proc sampling and small process helpers. No library code is imported here.
import fs from 'node:fs';
import os from 'node:os';

/** Broker the benchmark uses. */
export const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

/**
 * Microseconds on CLOCK_MONOTONIC. Every process on the machine reads the same
 * clock, so a producer's stamp and a client's stamp are directly comparable,
 * with sub-millisecond resolution (Kafka timestamps only have milliseconds).
 */
export function nowUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

const WIKIS = ['enwiki', 'dewiki', 'frwiki', 'commonswiki', 'wikidatawiki', 'eswiki', 'jawiki', 'ruwiki'];
const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore'.split(
  ' ',
);

/**
 * A JSON message shaped like a Wikimedia recentchange event, about `size`
 * bytes long. `seq` and `t` (nowUs() at production) let clients check
 * completeness and measure latency.
 */
export function wikiEdit(seq, t, size = 600) {
  const wiki = WIKIS[seq % WIKIS.length];
  const domain = `${wiki.replace('wiki', '')}.wikipedia.org`;
  const title = `${WORDS[seq % WORDS.length]}_${WORDS[(seq * 7) % WORDS.length]}_${seq % 9973}`;
  const ev = {
    $schema: '/mediawiki/recentchange/1.0.0',
    meta: {
      uri: `https://${domain}/wiki/${title}`,
      request_id: `${(seq * 2654435761) % 4294967296}`.padStart(10, '0'),
      id: `bench-${seq}`,
      dt: new Date().toISOString(),
      domain,
      stream: 'mediawiki.recentchange',
    },
    id: 1_500_000_000 + seq,
    type: 'edit',
    namespace: 0,
    title,
    comment: '',
    timestamp: Math.floor(Date.now() / 1000),
    user: `User${seq % 5000}`,
    bot: seq % 5 === 0,
    minor: seq % 3 === 0,
    length: { old: 1000 + (seq % 500), new: 1010 + (seq % 700) },
    revision: { old: 1_100_000_000 + seq, new: 1_100_000_001 + seq },
    server_url: `https://${domain}`,
    server_name: domain,
    wiki,
    bench_seq: seq,
    bench_t: t,
  };
  const base = JSON.stringify(ev).length;
  let comment = '';
  for (let i = 0; comment.length < size - base; i++) comment += `${WORDS[(seq + i) % WORDS.length]} `;
  ev.comment = comment.slice(0, Math.max(0, size - base));
  return JSON.stringify(ev);
}

// ---- histogram: log buckets with 1% resolution, mergeable across processes ----

const BUCKETS_PER_DECADE = 200;

/** A mergeable latency histogram (values in microseconds). */
export class Histogram {
  counts = new Map();
  n = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  record(us) {
    const v = Math.max(1, us);
    const b = Math.floor(Math.log10(v) * BUCKETS_PER_DECADE);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.n++;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  toJSON() {
    return { counts: [...this.counts], n: this.n, sum: this.sum, min: this.min, max: this.max };
  }

  static from(json) {
    const h = new Histogram();
    h.merge(json);
    return h;
  }

  merge(json) {
    for (const [b, c] of json.counts) this.counts.set(b, (this.counts.get(b) ?? 0) + c);
    this.n += json.n;
    this.sum += json.sum;
    if (json.n > 0) {
      this.min = Math.min(this.min, json.min);
      this.max = Math.max(this.max, json.max);
    }
  }

  /** The value (µs) at quantile q (0..1); the upper edge of its bucket, capped by the exact max. */
  quantile(q) {
    if (this.n === 0) return null;
    const target = Math.ceil(q * this.n);
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(b);
      if (seen >= target) return Math.min(this.max, 10 ** ((b + 1) / BUCKETS_PER_DECADE));
    }
    return this.max;
  }

  /** Summary in milliseconds. */
  summaryMs() {
    const ms = (us) => (us === null ? null : Math.round(us) / 1000);
    return {
      count: this.n,
      p50: ms(this.quantile(0.5)),
      p90: ms(this.quantile(0.9)),
      p99: ms(this.quantile(0.99)),
      p999: ms(this.quantile(0.999)),
      max: this.n ? ms(this.max) : null,
      mean: this.n ? ms(this.sum / this.n) : null,
    };
  }
}

// ---- /proc ----

const CLK_TCK = 100;

/** RSS (KiB), peak RSS, threads and CPU seconds (user, system) of a process, or null when it is gone. */
export function procStats(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    // Fields after the command name (which may hold spaces) start at index 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      rssKb: field('VmRSS'),
      hwmKb: field('VmHWM'),
      threads: field('Threads'),
      utime: Number(rest[11]) / CLK_TCK,
      stime: Number(rest[12]) / CLK_TCK,
      fds: countFds(pid),
    };
  } catch {
    return null;
  }
}

function countFds(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Proportional set size (KiB) of a process: shared pages divided among sharers. */
export function pssKb(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
  } catch {
    return null;
  }
}

/** Samples a set of pids every `intervalMs`: peak RSS and threads, CPU over the window. */
export class ProcSampler {
  #pids;
  #timer;
  #first = new Map();
  #last = new Map();
  #t0 = 0;
  #t1 = 0;
  peakRssKb = 0;
  peakThreads = 0;
  samples = [];

  constructor(pids, intervalMs = 250) {
    this.#pids = pids;
    this.intervalMs = intervalMs;
  }

  start() {
    this.#t0 = performance.now();
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.intervalMs);
    return this;
  }

  #sample() {
    let rss = 0;
    let threads = 0;
    for (const pid of this.#pids()) {
      const s = procStats(pid);
      if (!s) continue;
      if (!this.#first.has(pid)) this.#first.set(pid, s);
      this.#last.set(pid, s);
      rss += s.rssKb;
      threads += s.threads;
    }
    this.#t1 = performance.now();
    this.peakRssKb = Math.max(this.peakRssKb, rss);
    this.peakThreads = Math.max(this.peakThreads, threads);
    this.samples.push({ t: Math.round(this.#t1 - this.#t0), rssKb: rss, threads });
  }

  /** Stops and returns the figures of the window. */
  stop() {
    clearInterval(this.#timer);
    this.#sample();
    let cpu = 0;
    for (const [pid, last] of this.#last) {
      const first = this.#first.get(pid);
      cpu += last.utime + last.stime - (first.utime + first.stime);
    }
    const wall = (this.#t1 - this.#t0) / 1000;
    const last = this.samples.at(-1);
    return {
      wallS: round(wall, 2),
      cpuS: round(cpu, 2),
      cpuPct: wall > 0 ? round((100 * cpu) / wall, 1) : null,
      peakRssMb: round(this.peakRssKb / 1024, 1),
      endRssMb: round((last?.rssKb ?? 0) / 1024, 1),
      peakThreads: this.peakThreads,
    };
  }
}

// ---- misc ----

export function round(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Reads newline-delimited JSON from a stream, calling `onMessage` for each object. */
export function readJsonLines(stream, onMessage) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) {
        try {
          onMessage(JSON.parse(line));
        } catch {
          // not ours (a library log line)
        }
      }
      i = buf.indexOf('\n');
    }
  });
}

/** Machine description for the results. */
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadavg: os.loadavg().map((x) => round(x, 2)),
  };
}
