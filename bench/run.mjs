#!/usr/bin/env node
// The benchmark runner: every scenario against kafka-sse-bridge, the
// predecessor (kafka-sse 0.4.2) and the floors (node-rdkafka alone, kcat), in
// one run, on the same broker and the same data. Started by scripts/bench.mjs
// (`npm run bench`).
//
//   --quick                 smaller sizes, shorter phases (for trying things; under 5 minutes)
//   --scenario=a,b          replay, live, live10k, clients, clients-h2, connect, ttfe
//                           (default: all of them)
//   --no-h2                 leave clients-h2 (10,000 and 50,000 HTTP/2 streams) out; --h2 is accepted
//                           and changes nothing (it once added the scenario)
//   --contenders=a,b        bridge, predecessor, rdkafka, kcat, floor, bridge@<variant>, fanout (default: per scenario, below)
//   --<scenario>-contenders=a,b  the same for one scenario
//   --clients=1000,10000    client counts of the "clients" scenario; --clients-seconds=<s>
//   --h2-streams=10000,50000  stream counts of "clients-h2"
//   --max-private-clients=<n>  the most clients for contenders with a consumer per client (2000)
//   --ramp-per-sec=<n>      how fast the load generators open their streams, in all
//   --connect-rates=a,b     offered rates of the "connect" scenario
//   --bridge-config=<json>  librdkafka settings added to the bridge's (experiments)
//   --http-hwm=<bytes>      the servers' socket write high-water mark (experiments)
//   --replay-partitions=1,6 partition counts of the replay topics
//   --replay-formats=sse,ndjson  what the replay client asks for
//   --replay-messages=<n>   messages per replay topic
//   --replay-runs=<n>       runs per contender
//   --profile               run the bridge under --cpu-prof, stats to bench/results/tmp
//                           (--profile=cpu: the profile only, e.g. for the clients scenario)
//   --out=<dir>             where RESULTS.md, results.json and chart.* go (default: bench/ for a
//                           full run, bench/results/tmp/last for a quick, partial or experimental one)
//   --label=<text>          a note stored with the results
//   --report-only           only rewrite RESULTS.md and chart.* from --out's results.json
//   --loadgen=go|node       the HTTP/1.1 live streams' load generator: Go (bench/loadgen-go,
//                           built by npm run bench when Go is installed; the default then) or Node
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeChart } from './lib/chart.mjs';
import { BROKERS, Histogram, machine, median, ProcSampler, procStats, pssKb, round, sleep } from './lib/common.mjs';
import { closeAdmin, createTopic, deleteTopic, highWatermark, listTopics } from './lib/kafka-admin.mjs';
import { BENCH_DIR, Child, killAll, node } from './lib/proc.mjs';
import { writeReport } from './lib/report.mjs';
import { parseContender, VARIANTS } from './variants.mjs';

const ROOT = path.resolve(BENCH_DIR, '..');
const TMP = path.join(BENCH_DIR, 'results', 'tmp');

// ---- options ----

function parseArgs(argv) {
  const o = {};
  for (const a of argv) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a}`);
    o[m[1]] = m[2] ?? true;
  }
  return o;
}
const argv = parseArgs(process.argv.slice(2));
const QUICK = Boolean(argv.quick);
/** Every scenario by default; --no-h2 leaves the HTTP/2 one out (it adds ~3.5 minutes). */
const SCENARIOS = String(
  argv.scenario ?? `replay,live,live10k,clients,${argv['no-h2'] ? '' : 'clients-h2,'}connect,ttfe`,
).split(',');
/**
 * Who runs in which scenario: the library with default options, the
 * predecessor and the floor. Variants (bridge@<name>, see variants.mjs) and
 * the old shared-tail prototype (fanout) run only when named with
 * --contenders or --<scenario>-contenders.
 */
const DEFAULT_CONTENDERS = {
  replay: ['kcat', 'rdkafka', 'replay-floor', 'bridge', 'predecessor'],
  live: ['kcat', 'bridge', 'predecessor'],
  live10k: ['kcat', 'bridge', 'predecessor'],
  // kcat (one process per client) runs only when named: at 10,000 clients it would take the machine.
  // The socket floor is for the large counts: --quick (under 5 minutes) leaves it out.
  clients: QUICK ? ['bridge', 'predecessor'] : ['bridge', 'floor', 'predecessor'],
  'clients-h2': ['bridge'],
  connect: ['bridge', 'predecessor'],
  ttfe: ['kcat', 'bridge', 'predecessor'],
};
const contendersOf = (scenario) =>
  String(argv[`${scenario}-contenders`] ?? argv.contenders ?? DEFAULT_CONTENDERS[scenario].join(',')).split(',');
const CONTENDERS = [...new Set(SCENARIOS.flatMap(contendersOf))];
/**
 * bench/RESULTS.md, results.json and chart.* are the latest full run: a run
 * with smaller sizes, a selection or an experiment writes to
 * bench/results/tmp/last unless --out says where.
 */
const PARTIAL_ARGS = [
  'quick',
  'scenario',
  'contenders',
  'clients',
  'clients-seconds',
  'ramp-per-sec',
  'h2-streams',
  'no-h2',
];
const PARTIAL_ARGS_MORE = [
  'connect-rates',
  'profile',
  'bridge-config',
  'http-hwm',
  'predecessor-threadpool',
  'max-private-clients',
];
const FULL_RUN = !Object.keys(argv).some(
  (k) =>
    PARTIAL_ARGS.includes(k) || PARTIAL_ARGS_MORE.includes(k) || k.endsWith('-contenders') || k.startsWith('replay-'),
);
const OUT = path.resolve(
  ROOT,
  String(argv.out ?? (FULL_RUN || argv['report-only'] ? 'bench' : 'bench/results/tmp/last')),
);
const PROFILE = Boolean(argv.profile);
const BRIDGE_CONFIG = argv['bridge-config'] ? JSON.parse(argv['bridge-config']) : {};
const PREDECESSOR_THREADPOOL = Number(argv['predecessor-threadpool'] ?? 128);
const HTTP_HWM = argv['http-hwm'] ? Number(argv['http-hwm']) : null;
const REPLAY_PARTITIONS = String(argv['replay-partitions'] ?? '1,6')
  .split(',')
  .map(Number);

/** Sizes. The full run uses the sizes of issue 5; --quick is for development only. */
/** The Go load generator, when built (scripts/bench.mjs) and not turned off. */
const GO_LOADGEN = path.join(BENCH_DIR, '.bin', 'loadgen-go');
const USE_GO_LOADGEN = argv.loadgen !== 'node' && fs.existsSync(GO_LOADGEN);
if (argv.loadgen === 'go' && !USE_GO_LOADGEN) throw new Error(`--loadgen=go: ${GO_LOADGEN} is not built (needs Go)`);

/**
 * One load-generator process: the Go one over HTTP/1.1 when it is built (one
 * OS thread, GOMAXPROCS=1), else bench/loadgen.mjs. Both speak the same JSON
 * lines. Live streams' wakes are batched (S.loadgenBatchMs); a connect run's
 * are not, as they would add to every time to first byte it measures.
 */
function loadgen(args) {
  if (USE_GO_LOADGEN && !args.h2) {
    const batched = args.mode === 'live' ? { batchMs: S.loadgenBatchMs } : {};
    return new Child(GO_LOADGEN, [JSON.stringify({ ...args, ...batched })], {
      raiseLimits: true,
      env: { GOMAXPROCS: '1' },
    });
  }
  return node('loadgen.mjs', [JSON.stringify(args)], { raiseLimits: true });
}

const S = {
  replayMessages: Number(argv['replay-messages'] ?? (QUICK ? 50_000 : 200_000)),
  messageBytes: 600,
  replayRuns: Number(argv['replay-runs'] ?? (QUICK ? 1 : 3)),
  replayTimeoutS: QUICK ? 20 : 45,
  liveRate: 1000,
  liveSeconds: QUICK ? 6 : 30,
  liveFastRate: 10_000,
  clientCounts: String(argv.clients ?? (QUICK ? '100,500' : '1000,10000'))
    .split(',')
    .map(Number),
  clientsRate: 10,
  clientsMessageBytes: 350,
  clientsSeconds: Number(argv['clients-seconds'] ?? (QUICK ? 8 : 20)),
  /** Streams per load-generator process (bench/loadgen.mjs); kcat's client processes hold 250 each. */
  clientsPerProcess: 2500,
  /**
   * The Go load generator's wake batching (bench/loadgen-go, batchMs): at
   * 10,000 clients it took its CPU from 67.8% to 53.7% of a core; latencies
   * are stamped after the wait, so they can only be overstated, by ≤ 5 ms.
   */
  loadgenBatchMs: 5,
  kcatClientsPerProcess: 250,
  clientsGraceS: QUICK ? 3 : 5,
  rampPerSec: Number(argv['ramp-per-sec'] ?? 1000),
  maxPrivateClients: Number(argv['max-private-clients'] ?? 2000),
  h2StreamCounts: String(argv['h2-streams'] ?? (QUICK ? '1000' : '10000,50000'))
    .split(',')
    .map(Number),
  h2Rate: 2,
  h2StreamsPerSession: 500,
  h2StreamsPerProcess: 10_000,
  connectRates: String(argv['connect-rates'] ?? (QUICK ? '100,250' : '100,250,500,1000,2000,3000,4000'))
    .split(',')
    .map(Number),
  connectSeconds: QUICK ? 4 : 10,
  connectBackground: 100,
  resumeBack: 100,
  ttfeSamples: QUICK ? 5 : 10,
};

const RUN_ID = `${Date.now().toString(36)}`;
const topicName = (what) => `bench-${what}-${RUN_ID}`;
const createdTopics = [];

const int = (v) => Math.round(v).toLocaleString('en-US');

function log(...a) {
  const t = new Date().toISOString().slice(11, 19);
  console.log(`[${t}]`, ...a);
}

// ---- environment ----

function versions() {
  const read = (p) => {
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8'));
    } catch {
      return null;
    }
  };
  const kcat = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  const kcatVersion = /Version (\S+).*?librdkafka (\S+)/s.exec(kcat.stdout ?? '');
  let kafka = 'unknown';
  for (const root of checkoutRoots()) {
    try {
      const cp = fs.readFileSync(path.join(root, '.kafka', 'classpath-pinned.txt'), 'utf8');
      kafka = /kafka_[\d.]+-([\d.]+)\.jar/.exec(cp)?.[1] ?? kafka;
      break;
    } catch {
      // another broker (KAFKA_BROKERS)
    }
  }
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib', 'index.ts'], { cwd: ROOT, encoding: 'utf8' })
      .trim()
      .includes(' ');
  } catch {
    // not a checkout
  }
  return {
    bridge: `${read(path.join(ROOT, 'package.json'))?.version} (${commit}${dirty ? ', lib/ modified' : ''})`,
    predecessor: read(path.join(BENCH_DIR, 'node_modules', 'kafka-sse', 'package.json'))?.version ?? 'not installed',
    nodeRdkafkaBridge: read(path.join(ROOT, 'node_modules', 'node-rdkafka', 'package.json'))?.version,
    nodeRdkafkaPredecessor: read(path.join(BENCH_DIR, 'node_modules', 'node-rdkafka', 'package.json'))?.version,
    librdkafka: read(path.join(ROOT, 'node_modules', 'node-rdkafka', 'package.json'))?.librdkafka,
    kcat: kcatVersion ? `${kcatVersion[1]} (librdkafka ${kcatVersion[2]})` : 'not installed',
    kafka,
    eventsourceParser: read(path.join(ROOT, 'node_modules', 'eventsource-parser', 'package.json'))?.version,
    node: process.version,
  };
}

/** CPU busy time of the whole machine (all cores), in seconds, from /proc/stat. */
function machineCpuSeconds() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + line[4];
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

/** Processes not started by this run that used noticeable CPU over one second. */
function otherActivity(ownPids) {
  const snap = () => {
    const m = new Map();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        m.set(Number(d), { comm, cpu: (Number(rest[11]) + Number(rest[12])) / 100, ppid: Number(rest[1]) });
      } catch {
        // gone
      }
    }
    return m;
  };
  const a = snap();
  spawnSync('sleep', ['1']);
  const b = snap();
  const out = [];
  for (const [pid, x] of b) {
    const before = a.get(pid);
    if (!before || ownPids.has(pid) || pid === process.pid) continue;
    const pct = (x.cpu - before.cpu) * 100;
    if (pct >= 10) out.push({ pid, comm: x.comm, cpuPct: round(pct) });
  }
  return out;
}

/** This checkout and, in a git worktree, the main checkout (whose .kafka/ runs the local broker). */
function checkoutRoots() {
  const roots = [ROOT];
  try {
    const common = execFileSync('git', ['rev-parse', '--git-common-dir'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const main = path.dirname(path.resolve(ROOT, common));
    if (main !== ROOT) roots.push(main);
  } catch {
    // not a checkout
  }
  return roots;
}

/** The broker's pid when it is the local one of scripts/kafka.mjs (its CPU is reported beside the servers'). */
function brokerPid() {
  for (const root of checkoutRoots()) {
    try {
      const pid = Number(fs.readFileSync(path.join(root, '.kafka', 'broker.pid'), 'utf8').trim());
      if (fs.existsSync(`/proc/${pid}`)) return pid;
    } catch {
      // not there
    }
  }
  return null;
}

// ---- contenders ----

async function startServer(contender, { h2c = false } = {}) {
  const { base, variant } = parseContender(contender);
  const script = {
    bridge: 'servers/bridge.mjs',
    predecessor: 'servers/predecessor.mjs',
    fanout: 'servers/fanout-prototype.mjs',
    floor: 'servers/socket-floor.mjs',
    'replay-floor': 'servers/replay-floor.mjs',
    'replay-floor-threads': 'servers/replay-floor-threads.mjs',
  }[base];
  if (!script) throw new Error(`unknown contender ${contender}`);
  const env = {};
  const nodeArgs = [];
  const hwm = variant?.httpHighWaterMark ?? HTTP_HWM;
  if (hwm) env.BENCH_HTTP_HWM = String(hwm);
  if (base === 'bridge') {
    if (variant?.nodeArgs) nodeArgs.push(...variant.nodeArgs);
    const kafkaConfig = { ...BRIDGE_CONFIG, ...variant?.kafkaConfig };
    if (Object.keys(kafkaConfig).length) env.BENCH_KAFKA_CONFIG = JSON.stringify(kafkaConfig);
    if (variant?.deserializer) env.BENCH_DESERIALIZER = variant.deserializer;
    if (variant?.sharedTail) env.BENCH_SHARED_TAIL = variant.sharedTail;
    if (PROFILE) {
      fs.mkdirSync(TMP, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${TMP}`);
      // --profile=cpu: no librdkafka statistics (their handler makes every stream's consumer its own).
      if (argv.profile !== 'cpu') env.BENCH_STATS_FILE = path.join(TMP, `stats-${Date.now()}.jsonl`);
    }
  } else if (base === 'predecessor') {
    env.UV_THREADPOOL_SIZE = String(PREDECESSOR_THREADPOOL);
  }
  const child = node(script, h2c ? ['--h2c'] : [], { env, nodeArgs, raiseLimits: true, stdin: 'ignore' });
  const ready = await child.next('ready', 15_000);
  child.port = ready.port;
  child.serverPid = ready.pid;
  return child;
}

function streamUrl(server, { topic, assign, since }) {
  const base = `http://127.0.0.1:${server.port}`;
  if (assign) return `${base}/stream?assign=${encodeURIComponent(JSON.stringify(assign))}`;
  return `${base}/stream/${encodeURIComponent(topic)}${since !== undefined ? `?since=${since}` : ''}`;
}

const clientScript = (args) => node('client.mjs', [JSON.stringify(args)], { raiseLimits: true });

// ---- data ----

async function fill(topic, partitions, count) {
  await createTopic(topic, partitions);
  createdTopics.push(topic);
  const p = node('producer.mjs', [JSON.stringify({ mode: 'fill', topic, partitions, count, size: S.messageBytes })]);
  const done = await p.next('done', 300_000);
  await p.wait();
  if (done.produced !== count) throw new Error(`filled ${done.produced}/${count} messages into ${topic}`);
  return done;
}

async function produceAtRate(topic, rate, seconds, size = S.messageBytes) {
  const p = node('producer.mjs', [JSON.stringify({ mode: 'rate', topic, rate, seconds, size })]);
  await p.next('started', 30_000);
  return { done: p.next('done', (seconds + 60) * 1000).finally(() => p.wait()), stop: () => p.stop() };
}

// ---- scenario 1: replay ----

/**
 * kcat reading the topic from offset 0, timed from its first message to its
 * last: its stdout (one value per line) goes to this process, which only
 * notes when bytes arrive and counts lines. Timing the whole process would
 * add kcat's ~0.5 s of start-up and first fetch (NOTES.md §7); the whole
 * process's time is kept beside it. `-u` (unbuffered output): block-buffered,
 * kcat held the topic's last few thousand messages back until it saw the end
 * of every partition, one fetch wait (~0.5 s) later.
 */
async function replayKcat(topic, partitions, count) {
  const t0 = performance.now();
  // GNU time reports kcat's own CPU and peak RSS (sampling /proc would miss its last moments).
  const proc = spawn(
    '/usr/bin/time',
    ['-f', 'TIME %U %S %M', 'kcat', '-C', '-b', BROKERS, '-t', topic, '-o', 'beginning', '-e', '-u', '-f', '%s\n'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  let lines = 0;
  let firstAt = null;
  let lastAt = null;
  proc.stdout.on('data', (chunk) => {
    const at = performance.now();
    firstAt ??= at;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
    if (lines >= count) lastAt ??= at;
  });
  await new Promise((r) => proc.on('exit', r));
  const wholeSeconds = (performance.now() - t0) / 1000;
  const [, user, sys, maxKb] = /TIME (\S+) (\S+) (\d+)/.exec(stderr) ?? [];
  // "% Reached end of topic T [p] at offset N: exiting" per partition tells how much it read.
  const ends = [...stderr.matchAll(/\[(\d+)\] at offset (\d+)/g)].map((m) => Number(m[2]));
  const read = ends.reduce((a, b) => a + b, 0);
  // The first chunk holds many messages already: count the window from the first message on.
  const seconds = firstAt !== null && lastAt !== null ? (lastAt - firstAt) / 1000 : wholeSeconds;
  const cpuS = round(Number(user) + Number(sys), 2);
  return {
    seconds: round(seconds, 3),
    wholeSeconds: round(wholeSeconds, 3),
    firstMessageMs: firstAt === null ? null : round(firstAt - t0),
    messages: read,
    complete: read === count && ends.length === partitions && lines === count,
    msgPerSec: round(read / seconds),
    wholeMsgPerSec: round(read / wholeSeconds),
    cpuS,
    usPerMessage: round((1e6 * cpuS) / Math.max(1, read), 1),
    peakRssMb: round(Number(maxKb) / 1024, 1),
    peakThreads: null,
  };
}

/** node-rdkafka alone (bench/rdkafka-alone.mjs), batched or flowing: the Node floor. */
async function replayRdkafka(topic, partitions, count, mode, timeoutS) {
  const c = node('rdkafka-alone.mjs', [
    JSON.stringify({ topic, partitions, expect: count, mode, timeoutMs: timeoutS * 1000 }),
  ]);
  const r = await c.next('result', (timeoutS + 30) * 1000);
  await c.wait();
  const wholeSeconds = (r.firstMessageMs + r.seconds * 1000) / 1000;
  return {
    seconds: round(r.seconds, 3),
    firstMessageMs: r.firstMessageMs,
    messages: r.messages,
    complete: r.complete,
    disorder: r.disorder,
    msgPerSec: round(r.messages / r.seconds),
    wholeMsgPerSec: round(r.messages / wholeSeconds),
    cpuS: round(r.cpuS, 2),
    usPerMessage: round((1e6 * r.cpuS) / Math.max(1, r.messages), 2),
    windowUsPerMessage: round((1e6 * r.windowCpuS) / Math.max(1, r.messages), 2),
    peakRssMb: r.peakRssMb,
  };
}

/**
 * One client reading the whole topic from offset 0 through a server. The
 * counting client (parse 'count') gives the headline; the JSON-parsing one
 * (parse 'json', eventsource-parser + JSON.parse) is reported beside it.
 * Complete = every message once, each partition's offsets in order, and (SSE)
 * the last id naming every partition's next offset.
 */
async function replaySse(
  server,
  topic,
  partitions,
  count,
  timeoutS,
  { format = 'sse', parse = 'count', noIds = false } = {},
) {
  const assign = Array.from({ length: partitions }, (_, p) => ({ topic, partition: p, offset: 0 }));
  const sampler = new ProcSampler(() => [server.serverPid], 100).start();
  const bpid = brokerPid();
  const brokerSampler = bpid ? new ProcSampler(() => [bpid], 500).start() : null;
  const c = clientScript({
    mode: 'replay',
    source: 'http',
    format,
    parse,
    url: streamUrl(server, { assign }),
    expect: count,
    timeoutMs: timeoutS * 1000,
  });
  // The client's own CPU: on a small machine it shares the cores with the server and the broker.
  const clientSampler = new ProcSampler(() => [c.pid], 100).start();
  const r = await c.next('result', (timeoutS + 30) * 1000);
  const clientRes = clientSampler.stop();
  await c.wait();
  const res = sampler.stop();
  const brokerRes = brokerSampler?.stop();
  const seconds = r.lastMessageMs / 1000;
  const expectedNext = await Promise.all(assign.map((a) => highWatermark(topic, a.partition)));
  const nextOk = expectedNext.every((x, p) => r.nextOffsets[p] === x);
  let idOk = null;
  // The replay floor sends no resume id: its runs are complete without one.
  if (format === 'sse' && !noIds) {
    try {
      const id = JSON.parse(r.lastId);
      idOk = expectedNext.every((x, p) => id.find((e) => e.partition === p && e.topic === topic)?.offset === x);
    } catch {
      idOk = false;
    }
  }
  return {
    format,
    client: parse,
    seconds: round(seconds, 3),
    messages: r.count,
    complete: r.complete && r.count === count && r.disorder === 0 && nextOk && idOk !== false,
    disorder: r.disorder,
    lastIdOk: idOk,
    msgPerSec: round(r.count / seconds),
    steadyMsgPerSec: round(r.count / ((r.lastMessageMs - r.firstMessageMs) / 1000)),
    wireMb: round(r.bytes / 1e6, 1),
    wireMbPerSec: round(r.bytes / 1e6 / seconds, 1),
    firstMessageMs: r.firstMessageMs,
    serverCpuS: res.cpuS,
    serverCpuPct: res.cpuPct,
    serverPeakRssMb: res.peakRssMb,
    serverPeakThreads: res.peakThreads,
    serverUsPerMessage: round((1e6 * res.cpuS) / Math.max(1, r.count), 1),
    clientCpuS: clientRes.cpuS,
    clientUsPerMessage: round((1e6 * clientRes.cpuS) / Math.max(1, r.count), 1),
    brokerCpuPct: brokerRes?.cpuPct ?? null,
  };
}

/** The run reported of several: the median rate. */
function medianRun(runs) {
  return runs.find((r) => r.msgPerSec === median(runs.map((x) => x.msgPerSec))) ?? runs[0];
}

/** Formats of the replay scenario (--replay-formats=sse,ndjson). */
const REPLAY_FORMATS = String(argv['replay-formats'] ?? 'sse,ndjson').split(',');

async function scenarioReplay(results) {
  const out = { messages: S.replayMessages, messageBytes: null, formats: REPLAY_FORMATS, topics: {} };
  for (const partitions of REPLAY_PARTITIONS) {
    const topic = topicName(`replay-${partitions}p`);
    log(`replay: filling ${topic} with ${S.replayMessages} messages in ${partitions} partition(s)`);
    const filled = await fill(topic, partitions, S.replayMessages);
    out.messageBytes = round(filled.avgSize);
    const entry = { topic, partitions, fillSeconds: round(filled.seconds, 1) };
    out.topics[`${partitions}p`] = entry;
    const record = (key, runs, extra = {}) => {
      for (const r of runs) r.payloadMbPerSec = round((r.msgPerSec * filled.avgSize) / 1e6, 1);
      const best = medianRun(runs);
      entry[key] = { ...best, runs: runs.map((r) => r.msgPerSec), ...extra };
      log(
        `replay ${partitions}p ${key}: ${best.msgPerSec} msg/s (${best.messages} messages in ${best.seconds} s${
          best.complete ? '' : ', INCOMPLETE'
        }${best.serverUsPerMessage !== undefined ? `, server ${best.serverUsPerMessage} µs/msg` : ''}${
          best.usPerMessage !== undefined ? `, ${best.usPerMessage} µs/msg` : ''
        }), runs ${runs.map((r) => r.msgPerSec).join(', ')}`,
      );
      return entry[key];
    };
    for (const contender of contendersOf('replay')) {
      if (contender === 'kcat') {
        const runs = [];
        for (let i = 0; i < S.replayRuns; i++) runs.push(await replayKcat(topic, partitions, S.replayMessages));
        record('kcat', runs);
      } else if (contender === 'rdkafka') {
        // Both ways node-rdkafka hands messages over; the faster one is the floor.
        for (const mode of ['batched', 'flowing']) {
          const runs = [];
          for (let i = 0; i < S.replayRuns; i++) {
            runs.push(await replayRdkafka(topic, partitions, S.replayMessages, mode, S.replayTimeoutS));
          }
          record(mode === 'batched' ? 'rdkafka' : 'rdkafka@flowing', runs, { mode });
        }
      } else {
        // A run is capped at replayTimeoutS (the rate is then what arrived in that time);
        // only runs that finish well within it are repeated.
        const server = await startServer(contender);
        for (const format of REPLAY_FORMATS) {
          const key = format === 'sse' ? contender : `${contender}+ndjson`;
          const runs = [];
          for (let i = 0; i < S.replayRuns; i++) {
            const r = await replaySse(server, topic, partitions, S.replayMessages, S.replayTimeoutS, {
              format,
              noIds: contender.startsWith('replay-floor'),
            });
            runs.push(r);
            if (r.seconds > S.replayTimeoutS / 3) break;
          }
          const rec = record(key, runs);
          // The JSON-parsing client (what a real client costs), once, beside the counting one; not
          // for a contender that is far slower than any client.
          if (rec.msgPerSec > 20_000 && !contender.startsWith('replay-floor')) {
            const j = await replaySse(server, topic, partitions, S.replayMessages, S.replayTimeoutS, {
              format,
              parse: 'json',
            });
            rec.jsonClient = {
              msgPerSec: j.msgPerSec,
              complete: j.complete,
              seconds: j.seconds,
              clientUsPerMessage: j.clientUsPerMessage,
              serverUsPerMessage: j.serverUsPerMessage,
            };
            log(
              `replay ${partitions}p ${key} (JSON-parsing client): ${j.msgPerSec} msg/s${j.complete ? '' : ', INCOMPLETE'}`,
            );
          }
        }
        await server.stop();
      }
    }
  }
  results.replay = out;
}

// ---- scenario 2: live latency ----

/**
 * One client per contender, messages produced at `rate` per second (the live
 * scenario at 1,000/s, live10k at 10,000/s). kcat and the library (and its
 * variants) read the same produced messages at the same time, so a stall of
 * the producer, the broker or the machine reaches all of them alike and
 * "≤ kcat's p99 + 2 ms" compares like with like; the predecessor, which
 * cannot keep up at 10,000/s and would load the machine for the others, runs
 * alone afterwards on messages of its own.
 */
async function scenarioLive(results, key = 'live', rate = S.liveRate) {
  const topic = topicName(key);
  await createTopic(topic, 1);
  createdTopics.push(topic);
  const contenders = contendersOf(key);
  const together = contenders.filter((c) => c !== 'predecessor');
  const groups = [together, ...contenders.filter((c) => c === 'predecessor').map((c) => [c])].filter((g) => g.length);
  const out = { rate, seconds: S.liveSeconds, topic, together, contenders: {} };
  for (const group of groups) {
    const runs = [];
    for (const contender of group) {
      let server = null;
      let client;
      if (contender === 'kcat') {
        const hw = await highWatermark(topic, 0);
        client = clientScript({
          mode: 'live',
          source: 'kcat',
          connections: 1,
          kcatArgs: ['-C', '-b', BROKERS, '-t', topic, '-p', '0', '-o', String(hw), '-u', '-q', '-f', '%s\\n'],
        });
      } else {
        server = await startServer(contender);
        client = clientScript({ mode: 'live', source: 'http', connections: 1, url: streamUrl(server, { topic }) });
      }
      runs.push({ contender, server, client, connected: await client.next('connected', 30_000) });
    }
    await sleep(2000);
    for (const run of runs) {
      const pid = run.server?.serverPid;
      run.sampler = pid ? new ProcSampler(() => [pid], 250).start() : null;
    }
    const bpid = brokerPid();
    const brokerSampler = bpid ? new ProcSampler(() => [bpid], 1000).start() : null;
    log(`${key} ${group.join(' + ')}: producing ${rate}/s for ${S.liveSeconds} s`);
    const prod = await produceAtRate(topic, rate, S.liveSeconds);
    const done = await prod.done;
    await sleep(2000);
    for (const run of runs) run.client.send({ cmd: 'report' });
    const reports = await Promise.all(runs.map((run) => run.client.next('result', 30_000)));
    const brokerRes = brokerSampler?.stop();
    for (const [i, run] of runs.entries()) {
      const r = reports[i];
      await run.client.wait();
      const res = run.sampler?.stop();
      await run.server?.stop();
      const lat = Histogram.from(r.latency).summaryMs();
      out.contenders[run.contender] = {
        connectedMs: run.connected.headersMs[0] ?? null,
        together: group.length > 1 ? group : undefined,
        produced: done.produced,
        received: r.counts[0],
        complete: r.counts[0] === done.produced,
        outOfOrder: r.outOfOrder,
        latencyMs: lat,
        timeline: r.timeline,
        serverCpuPct: res?.cpuPct ?? null,
        serverPeakRssMb: res?.peakRssMb ?? null,
        brokerCpuPct: brokerRes?.cpuPct ?? null,
      };
      log(
        `${key} ${run.contender}: ${r.counts[0]}/${done.produced} received; latency p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms`,
      );
    }
  }
  results[key] = out;
}

// ---- scenario 3: many clients ----

/** The floor of the many-clients scenario: one kcat process per client (bench/client.mjs runs them). */
async function manyClientsKcat(contender, topic, n) {
  const procs = Math.ceil(n / S.kcatClientsPerProcess);
  const server = contender === 'kcat' ? null : await startServer(contender);
  await sleep(1000);
  const baseline = server ? procStats(server.serverPid) : null;
  const hw = await highWatermark(topic, 0);
  const clients = [];
  const t0 = performance.now();
  for (let i = 0; i < procs; i++) {
    const connections = Math.floor(n / procs) + (i < n % procs ? 1 : 0);
    const common = { mode: 'live', connections, rampPerSec: 250 / procs, parse: 'light' };
    clients.push(
      contender === 'kcat'
        ? clientScript({
            ...common,
            source: 'kcat',
            kcatArgs: ['-C', '-b', BROKERS, '-t', topic, '-p', '0', '-o', String(hw), '-u', '-q', '-f', '%s\\n'],
          })
        : clientScript({ ...common, source: 'http', url: streamUrl(server, { topic }) }),
    );
  }
  const connectTimeout = 30_000 + (n / 250) * 1000;
  const connected = await Promise.all(clients.map((c) => c.next('connected', connectTimeout).catch((e) => e)));
  const connectSeconds = (performance.now() - t0) / 1000;
  const failedConnect = connected.reduce((a, c) => a + (c instanceof Error ? 0 : c.failed), 0);
  const timedOut = connected.filter((c) => c instanceof Error).length;
  const headers = connected.flatMap((c) => (c instanceof Error ? [] : c.headersMs));
  await sleep(3000);
  // The pids to measure: the server, or (floor) every kcat process.
  const kcatPids = () => {
    const pids = [];
    for (const c of clients) {
      try {
        for (const line of fs.readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim().split(/\s+/)) {
          if (line) pids.push(Number(line));
        }
      } catch {
        // gone
      }
    }
    return pids;
  };
  const measured = server ? () => [server.serverPid] : kcatPids;
  const idle = sumStats(measured());
  const sampler = new ProcSampler(measured, 500).start();
  const bpid = brokerPid();
  const brokerSampler = bpid ? new ProcSampler(() => [bpid], 1000).start() : null;
  const prod = await produceAtRate(topic, S.clientsRate, S.clientsSeconds, S.clientsMessageBytes);
  const done = await prod.done;
  await sleep(S.clientsGraceS * 1000);
  const res = sampler.stop();
  const brokerRes = brokerSampler?.stop();
  const serverAlive = server ? !server.exited : true;
  for (const c of clients) c.send({ cmd: 'report' });
  const reports = await Promise.all(clients.map((c) => c.next('result', 60_000).catch((e) => e)));
  await Promise.all(clients.map((c) => c.stop()));
  await server?.stop();
  const counts = reports.flatMap((r) => (r instanceof Error ? [] : r.counts));
  while (counts.length < n) counts.push(0);
  const h = new Histogram();
  for (const r of reports) if (!(r instanceof Error)) h.merge(r.latency);
  const complete = counts.filter((x) => x >= done.produced).length;
  const delivered = counts.reduce((a, b) => a + Math.min(b, done.produced), 0);
  // Server: RSS growth per client. kcat: PSS per process (RSS would count its shared libraries once per process).
  const perClientMb = idle && baseline ? (idle.rssKb - baseline.rssKb) / 1024 / n : idle ? idle.pssKb / 1024 / n : null;
  return {
    clients: n,
    produced: done.produced,
    connectSeconds: round(connectSeconds, 1),
    connectFailed: failedConnect + timedOut * S.kcatClientsPerProcess,
    headersP50Ms: median(headers),
    headersMaxMs: headers.length ? Math.max(...headers) : null,
    clientsComplete: complete,
    completenessPct: round((100 * delivered) / (n * done.produced), 2),
    latencyMs: h.summaryMs(),
    baselineRssMb: baseline ? round(baseline.rssKb / 1024, 1) : null,
    idleRssMb: idle ? round(idle.rssKb / 1024, 1) : null,
    idlePssMb: idle?.pssKb !== undefined ? round(idle.pssKb / 1024, 1) : null,
    perClientMb: round(perClientMb, 2),
    peakRssMb: res.peakRssMb,
    threads: idle?.threads ?? null,
    peakThreads: res.peakThreads,
    fds: idle?.fds ?? null,
    cpuPct: res.cpuPct,
    brokerCpuPct: brokerRes?.cpuPct ?? null,
    serverAlive,
    serverExit: server?.exited ?? null,
    serverStderr: server?.exited ? server.stderr.slice(-500) : undefined,
  };
}

/**
 * N live streams held by load-generator processes (bench/loadgen.mjs, up to
 * `perProcess` streams each) on one server process, then `rate` messages/s of
 * ~350 B for clientsSeconds. Every stream must receive every message. The
 * server's CPU and memory are read from /proc, the load generators' CPU
 * beside them.
 */
async function manyClientsLoadgen(contender, topic, n, { h2 = false, rate, perProcess, ramp = S.rampPerSec }) {
  const server = await startServer(contender, { h2c: h2 });
  await sleep(1000);
  const baseline = procStats(server.serverPid);
  const procs = Math.ceil(n / perProcess);
  const gens = [];
  const t0 = performance.now();
  for (let i = 0; i < procs; i++) {
    const connections = Math.floor(n / procs) + (i < n % procs ? 1 : 0);
    gens.push(
      loadgen({
        mode: 'live',
        url: streamUrl(server, { topic }),
        connections,
        rampPerSec: ramp / procs,
        h2,
        streamsPerSession: S.h2StreamsPerSession,
      }),
    );
  }
  const connectTimeout = 30_000 + (n / ramp) * 1000;
  const connected = await Promise.all(gens.map((g) => g.next('connected', connectTimeout).catch((e) => e)));
  const connectSeconds = (performance.now() - t0) / 1000;
  const timedOut = connected.filter((c) => c instanceof Error).length;
  const failedConnect = connected.reduce((a, c) => a + (c instanceof Error ? 0 : c.failed), 0);
  const ttfb = new Histogram();
  for (const c of connected) if (!(c instanceof Error)) ttfb.merge(c.ttfb);
  await sleep(3000);
  const idle = sumStats([server.serverPid]);
  const sampler = new ProcSampler(() => [server.serverPid], 500).start();
  const genSampler = new ProcSampler(() => gens.map((g) => g.pid), 1000).start();
  const bpid = brokerPid();
  const brokerSampler = bpid ? new ProcSampler(() => [bpid], 1000).start() : null;
  const prod = await produceAtRate(topic, rate, S.clientsSeconds, S.clientsMessageBytes);
  const done = await prod.done;
  await sleep(S.clientsGraceS * 1000);
  const res = sampler.stop();
  const genRes = genSampler.stop();
  const brokerRes = brokerSampler?.stop();
  const serverAlive = !server.exited;
  for (const g of gens) g.send({ cmd: 'report' });
  const reports = await Promise.all(gens.map((g) => g.next('result', 60_000).catch((e) => e)));
  await Promise.all(gens.map((g) => g.stop()));
  await server.stop();
  const counts = reports.flatMap((r) => (r instanceof Error ? [] : r.counts));
  while (counts.length < n) counts.push(0);
  const h = new Histogram();
  for (const r of reports) if (!(r instanceof Error)) h.merge(r.latency);
  const complete = counts.filter((x) => x >= done.produced).length;
  const delivered = counts.reduce((a, b) => a + Math.min(b, done.produced), 0);
  const slowest = counts.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const kbPerClient = (kb) => (baseline && kb ? round((kb - baseline.rssKb) / n, 1) : null);
  return {
    clients: n,
    http: h2 ? 'h2c' : 'http/1.1',
    loadgenProcesses: procs,
    loadgen: USE_GO_LOADGEN && !h2 ? 'go' : 'node',
    sessions: h2 ? reports.reduce((a, r) => a + (r instanceof Error ? 0 : r.sessions), 0) : null,
    produced: done.produced,
    connectSeconds: round(connectSeconds, 1),
    connectFailed: failedConnect + timedOut * perProcess,
    headersP50Ms: ttfb.summaryMs().p50,
    headersMaxMs: ttfb.summaryMs().max,
    clientsComplete: complete,
    slowestClientMessages: slowest,
    completenessPct: round((100 * delivered) / (n * done.produced), 2),
    latencyMs: h.summaryMs(),
    baselineRssMb: baseline ? round(baseline.rssKb / 1024, 1) : null,
    idleRssMb: idle ? round(idle.rssKb / 1024, 1) : null,
    perClientMb: idle && baseline ? round((idle.rssKb - baseline.rssKb) / 1024 / n, 3) : null,
    idleKbPerClient: kbPerClient(idle?.rssKb),
    peakKbPerClient: kbPerClient(res.peakRssMb * 1024),
    peakRssMb: res.peakRssMb,
    threads: idle?.threads ?? null,
    peakThreads: res.peakThreads,
    fds: idle?.fds ?? null,
    cpuPct: res.cpuPct,
    usPerDelivery: delivered ? round((1e6 * res.cpuS) / delivered, 2) : null,
    loadgenCpuPct: genRes.cpuPct,
    // The Go load generator's own split (getrusage at its report): the kernel's share is most of it.
    loadgenSystemCpuS: reports.some((r) => !(r instanceof Error) && r.systemCpuS !== undefined)
      ? round(
          reports.reduce((a, r) => a + (r instanceof Error ? 0 : (r.systemCpuS ?? 0)), 0),
          2,
        )
      : undefined,
    loadgenReads: reports.reduce((a, r) => a + (r instanceof Error ? 0 : (r.reads ?? 0)), 0) || undefined,
    loadgenEpollWaits: reports.reduce((a, r) => a + (r instanceof Error ? 0 : (r.epollWaits ?? 0)), 0) || undefined,
    loadgenUserCpuS: reports.some((r) => !(r instanceof Error) && r.userCpuS !== undefined)
      ? round(
          reports.reduce((a, r) => a + (r instanceof Error ? 0 : (r.userCpuS ?? 0)), 0),
          2,
        )
      : undefined,
    loadgenUsPerDelivery: delivered ? round((1e6 * genRes.cpuS) / delivered, 2) : null,
    brokerCpuPct: brokerRes?.cpuPct ?? null,
    serverAlive,
    serverExit: server.exited ?? null,
    serverStderr: server.exited ? server.stderr.slice(-500) : undefined,
  };
}

function sumStats(pids) {
  const out = { rssKb: 0, threads: 0, fds: 0, pssKb: 0, processes: 0 };
  for (const pid of pids) {
    const s = procStats(pid);
    if (!s) continue;
    out.rssKb += s.rssKb;
    out.threads += s.threads;
    out.fds += s.fds ?? 0;
    out.pssKb += pssKb(pid) ?? 0;
    out.processes++;
  }
  return out.processes ? out : null;
}

/**
 * Kills the kcat processes reading `topic`. A client process that dies (the
 * floor at 1,000 clients) leaves its kcat children running, reparented to
 * init; they loaded the machine for the contenders measured after it.
 */
async function reapKcat(topic) {
  const pattern = `kcat -C .* -t ${topic} `;
  spawnSync('pkill', ['-f', pattern]);
  for (let i = 0; i < 50 && spawnSync('pgrep', ['-f', pattern]).status === 0; i++) await sleep(200);
  spawnSync('pkill', ['-9', '-f', pattern]);
}

/**
 * Many live clients in one server process: `clients` over HTTP/1.1 (10
 * msg/s of ~350 B; kcat only when named), `clients-h2` over h2c (2 msg/s,
 * many streams per session; part of the full run unless --no-h2).
 * A contender stops at the first count where it breaks.
 */
async function scenarioClients(results, { h2 = false } = {}) {
  const key = h2 ? 'clients-h2' : 'clients';
  const topic = topicName(key);
  await createTopic(topic, 1);
  createdTopics.push(topic);
  const rate = h2 ? S.h2Rate : S.clientsRate;
  const countsToRun = h2 ? S.h2StreamCounts : S.clientCounts;
  const out = {
    rate,
    seconds: S.clientsSeconds,
    messageBytes: S.clientsMessageBytes,
    http: h2 ? 'h2c' : 'http/1.1',
    counts: countsToRun,
    topic,
    contenders: {},
  };
  for (const contender of contendersOf(key)) {
    const rows = [];
    out.contenders[contender] = rows;
    for (const n of countsToRun) {
      // One consumer per client (the predecessor, bridge@private): 5 threads and ~20 MB native
      // memory each; past this many the machine, not the contender, would be what breaks.
      const privateConsumers = contender === 'predecessor' || contender === 'bridge@private';
      if (privateConsumers && n > S.maxPrivateClients) {
        rows.push({ clients: n, verdict: `not run: over ${int(S.maxPrivateClients)} private consumers` });
        log(`${key} ${contender}: ${n} clients not run (--max-private-clients=${S.maxPrivateClients})`);
        break;
      }
      log(`${key} ${contender}: ${n} clients`);
      let r;
      try {
        r =
          contender === 'kcat'
            ? await manyClientsKcat(contender, topic, n)
            : await manyClientsLoadgen(contender, topic, n, {
                h2,
                rate,
                perProcess: h2 ? S.h2StreamsPerProcess : S.clientsPerProcess,
                // A consumer per client: opened at the pace of the earlier runs, not the bridge's.
                ramp: privateConsumers ? Math.min(250, S.rampPerSec) : S.rampPerSec,
              });
      } catch (err) {
        r = { clients: n, error: String(err.message ?? err) };
      } finally {
        if (contender === 'kcat') await reapKcat(topic);
      }
      r.verdict = verdict(r);
      rows.push(r);
      log(
        `${key} ${contender} ×${n}: ${r.completenessPct ?? '-'}% delivered, ${r.clientsComplete ?? '-'} complete (slowest ${r.slowestClientMessages ?? '-'}/${r.produced ?? '-'}), ` +
          `RSS ${r.idleRssMb ?? '-'} MB (${r.idleKbPerClient ?? '-'} KB/client idle, ${r.peakKbPerClient ?? '-'} KB/client peak), threads ${r.threads ?? '-'}, ` +
          `CPU ${r.cpuPct ?? '-'}% (${r.usPerDelivery ?? '-'} µs/delivery; load generators ${r.loadgenCpuPct ?? '-'}%, broker ${r.brokerCpuPct ?? '-'}%), p50/p99 ${r.latencyMs?.p50 ?? '-'}/${r.latencyMs?.p99 ?? '-'} ms → ${r.verdict}`,
      );
      if (!r.verdict.startsWith('ok')) break;
    }
  }
  results[key] = out;
}

// ---- scenario: connect rate ----

/**
 * New streams per second one server process accepts. With messages flowing
 * (connectBackground msg/s) and one stream holding the shared tail open,
 * streams are opened at each offered rate for connectSeconds and closed
 * once answered: live streams from the end (closed at their first byte) and
 * resumes with a Last-Event-ID `resumeBack` messages behind the end (served
 * from the shared tail's log; closed at their first message). Rates step up
 * until the p99 time to first byte (resumes: first message) passes 100 ms
 * or a stream fails.
 */
async function scenarioConnect(results) {
  const topic = topicName('connect');
  await createTopic(topic, 1);
  createdTopics.push(topic);
  const out = {
    rates: S.connectRates,
    seconds: S.connectSeconds,
    background: S.connectBackground,
    resumeBack: S.resumeBack,
    topic,
    contenders: {},
  };
  for (const contender of contendersOf('connect')) {
    const server = await startServer(contender);
    const url = streamUrl(server, { topic });
    const holder = loadgen({ mode: 'live', url, connections: 1 });
    await holder.next('connected', 30_000);
    const seconds = S.connectRates.length * 2 * (S.connectSeconds + 3) + 30;
    const prod = await produceAtRate(topic, S.connectBackground, seconds, S.clientsMessageBytes);
    await sleep(1000);
    const rows = { live: [], resume: [] };
    out.contenders[contender] = rows;
    for (const kind of ['live', 'resume']) {
      for (const rate of S.connectRates) {
        const sampler = new ProcSampler(() => [server.serverPid], 500).start();
        const g = loadgen({
          mode: 'connect',
          url,
          rate,
          count: rate * S.connectSeconds,
          closeAfter: kind === 'live' ? 'firstByte' : 'firstMessage',
          resumeBack: kind === 'resume' ? S.resumeBack : undefined,
        });
        const genSampler = new ProcSampler(() => [g.pid], 500).start();
        // Open descriptors of the server: streams answered late pile up towards the process's limit.
        let serverPeakFds = 0;
        const fdWatch = setInterval(() => {
          try {
            serverPeakFds = Math.max(serverPeakFds, fs.readdirSync(`/proc/${server.serverPid}/fd`).length);
          } catch {
            // Gone, or not Linux.
          }
        }, 500);
        let r;
        try {
          r = await g.next('result', (S.connectSeconds + 60) * 1000);
        } catch (err) {
          r = { error: String(err.message ?? err) };
        }
        clearInterval(fdWatch);
        const genRes = genSampler.stop();
        await g.stop();
        const res = sampler.stop();
        const t = Histogram.from(kind === 'live' ? (r.ttfb ?? { counts: [], n: 0 }) : (r.ttfm ?? { counts: [], n: 0 }));
        const lat = t.summaryMs();
        const row = {
          offered: rate,
          achievedPerSec: round(r.achievedPerSec, 0),
          completed: r.completed ?? 0,
          failed: r.failed ?? null,
          error: r.error ?? (r.errors?.length ? r.errors.join(', ') : undefined),
          statuses: r.statuses,
          latencyMs: lat,
          measures: kind === 'live' ? 'first byte' : 'first message',
          serverCpuPct: res.cpuPct,
          serverPeakRssMb: res.peakRssMb,
          serverPeakFds,
          loadgenCpuPct: genRes.cpuPct,
          loadgen: USE_GO_LOADGEN ? 'go' : 'node',
        };
        row.ok = !r.error && row.failed === 0 && lat.p99 !== null && lat.p99 < 100;
        rows[kind].push(row);
        log(
          `connect ${contender} ${kind} at ${rate}/s: ${row.achievedPerSec ?? '-'}/s achieved, ${row.completed} ok, ${row.failed ?? '-'} failed, ` +
            `${row.measures} p50/p99 ${lat.p50 ?? '-'}/${lat.p99 ?? '-'} ms, server CPU ${res.cpuPct}% (${serverPeakFds} fds at most), ` +
            `load generator ${genRes.cpuPct}%${row.error ? ` (${row.error})` : ''}`,
        );
        await sleep(1000);
        if (!row.ok) break;
      }
    }
    holder.send({ cmd: 'report' });
    await holder.next('result', 10_000).catch(() => null);
    await holder.stop();
    await server.stop();
    await prod.stop();
    await prod.done.catch(() => null);
  }
  results.connect = out;
}

/**
 * "ok" when every client connected and received every message within the
 * grace period after production ended ("ok, lagging" when the p99 latency was
 * over a second); otherwise what broke. Only "ok…" goes on to the next count.
 */
function verdict(r) {
  if (r.error) return `failed: ${r.error}`;
  if (!r.serverAlive) return 'server crashed';
  if (r.connectFailed > 0) return `${r.connectFailed} connections failed`;
  if (r.clientsComplete < r.clients) return `${r.clients - r.clientsComplete} clients incomplete`;
  if (r.latencyMs.p99 > 1000) return `ok, lagging (p99 ${round(r.latencyMs.p99 / 1000, 1)} s)`;
  return 'ok';
}

// ---- scenario 4: time to first event ----

async function scenarioTtfe(results, replayTopic) {
  let topic = replayTopic;
  if (!topic) {
    topic = topicName('ttfe');
    await fill(topic, 1, 10_000);
  }
  // since: a time before the first message, so the first message is offset 0.
  const since = Date.now() - 24 * 3600 * 1000;
  const out = { topic, samples: S.ttfeSamples, contenders: {} };
  for (const contender of contendersOf('ttfe')) {
    let server;
    let args;
    if (contender === 'kcat') {
      args = {
        source: 'kcat',
        kcatArgs: [
          '-C',
          '-b',
          BROKERS,
          '-t',
          topic,
          '-p',
          '0',
          '-o',
          `s@${since}`,
          '-c',
          '1',
          '-u',
          '-q',
          '-f',
          '%s\\n',
        ],
      };
    } else {
      server = await startServer(contender);
      args = { source: 'http', url: streamUrl(server, { topic, since }) };
    }
    const c = clientScript({ mode: 'ttfe', repeat: S.ttfeSamples, ...args });
    const r = await c.next('result', 120_000);
    await c.wait();
    // The first byte without ?since (a live stream from the end).
    let liveFirstByte = null;
    if (server) {
      const c2 = clientScript({
        mode: 'ttfe',
        repeat: S.ttfeSamples,
        source: 'http',
        url: streamUrl(server, { topic }),
        until: 'firstByte',
        timeoutMs: 5000,
      });
      const r2 = await c2.next('result', 120_000);
      await c2.wait();
      liveFirstByte = median(r2.samples.map((s) => s.firstByteMs).filter((x) => x !== null));
    }
    await server?.stop();
    const pick = (k) => r.samples.map((s) => s[k]).filter((x) => x !== null);
    const firstMessage = pick('firstMessageMs');
    out.contenders[contender] = {
      firstByteMs: contender === 'kcat' ? null : round(median(pick('firstByteMs')), 1),
      firstByteLiveMs: round(liveFirstByte, 1),
      firstMessageMs: round(median(firstMessage), 1),
      firstMessageMaxMs: firstMessage.length ? Math.max(...firstMessage) : null,
      failures: r.samples.length - firstMessage.length,
    };
    log(`ttfe ${contender}: ${JSON.stringify(out.contenders[contender])}`);
  }
  results.ttfe = out;
}

// ---- main ----

/** --report-only: rewrite RESULTS.md and the chart from the results.json in --out (after editing findings.md). */
async function reportOnly() {
  const results = JSON.parse(fs.readFileSync(path.join(OUT, 'results.json'), 'utf8'));
  await writeChart(results, OUT);
  writeReport(results, OUT);
  log(`rewrote ${path.relative(ROOT, OUT)}/RESULTS.md and chart.* from results.json`);
}

async function main() {
  if (argv['report-only']) return reportOnly();
  const started = Date.now();
  const cpu0 = machineCpuSeconds();
  fs.mkdirSync(OUT, { recursive: true });
  // Leftovers of an interrupted earlier run.
  for (const t of await listTopics()) if (/^bench-[a-z0-9-]+-[a-z0-9]+$/.test(t)) await deleteTopic(t);
  const results = {
    runId: RUN_ID,
    startedAt: new Date(started).toISOString(),
    label: argv.label ?? null,
    buildNote: process.env.BENCH_BUILD_NOTE || null,
    quick: QUICK,
    machine: machine(),
    versions: versions(),
    settings: {
      ...S,
      contenders: CONTENDERS,
      scenarios: SCENARIOS,
      bridgeKafkaConfig: BRIDGE_CONFIG,
      variants: Object.fromEntries(
        CONTENDERS.map((c) => parseContender(c).variant)
          .filter(Boolean)
          .map((v) => [v.name, VARIANTS[v.name]]),
      ),
      predecessorThreadpool: PREDECESSOR_THREADPOOL,
      httpHighWaterMark: HTTP_HWM,
      profile: PROFILE,
    },
    otherActivity: [],
  };
  results.brokerPid = brokerPid() ?? undefined;
  // The local broker is the benchmark's own: its CPU is reported beside the servers'.
  const ownPids = new Set([process.pid, results.brokerPid].filter(Boolean));
  log(`kafka-sse-bridge bench ${RUN_ID}${QUICK ? ' (quick)' : ''}: ${SCENARIOS.join(', ')} × ${CONTENDERS.join(', ')}`);
  const noteActivity = (when) => {
    const other = otherActivity(ownPids);
    results.otherActivity.push({ when, loadavg: os.loadavg().map((x) => round(x, 2)), processes: other });
    if (other.length) log(`other processes busy ${when}: ${other.map((p) => `${p.comm} ${p.cpuPct}%`).join(', ')}`);
  };
  try {
    let replayTopic;
    if (SCENARIOS.includes('replay')) {
      noteActivity('before replay');
      await scenarioReplay(results);
      replayTopic = results.replay.topics['1p']?.topic;
    }
    if (SCENARIOS.includes('ttfe')) {
      noteActivity('before ttfe');
      await scenarioTtfe(results, replayTopic);
    }
    if (SCENARIOS.includes('live')) {
      noteActivity('before live');
      await scenarioLive(results);
    }
    if (SCENARIOS.includes('live10k')) {
      noteActivity('before live10k');
      await scenarioLive(results, 'live10k', S.liveFastRate);
    }
    if (SCENARIOS.includes('clients')) {
      noteActivity('before clients');
      await scenarioClients(results);
    }
    if (SCENARIOS.includes('clients-h2')) {
      noteActivity('before clients-h2');
      await scenarioClients(results, { h2: true });
    }
    if (SCENARIOS.includes('connect')) {
      noteActivity('before connect');
      await scenarioConnect(results);
    }
    noteActivity('at the end');
  } finally {
    for (const t of createdTopics) await deleteTopic(t);
    await closeAdmin();
  }
  const cpu1 = machineCpuSeconds();
  results.durationS = round((Date.now() - started) / 1000);
  results.machineCpuBusyPct = round((100 * (cpu1.busy - cpu0.busy)) / (cpu1.total - cpu0.total), 1);
  const json = path.join(OUT, 'results.json');
  fs.writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
  formatJson(json);
  await writeChart(results, OUT);
  writeReport(results, OUT);
  log(`done in ${results.durationS} s: ${path.relative(ROOT, OUT)}/RESULTS.md, results.json, chart.svg, chart.png`);
}

/** Formats the JSON as the repository's formatter (Biome) would, so `npm run lint` stays clean. */
function formatJson(file) {
  const biome = path.join(ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  if (!fs.existsSync(biome)) return;
  spawnSync(process.execPath, [biome, 'format', '--write', file], { cwd: ROOT, stdio: 'ignore' });
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
