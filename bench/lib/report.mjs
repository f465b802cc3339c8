// bench/RESULTS.md from results.json's object: machine, versions, settings,
// targets, one table per scenario. bench/findings.md (hand-written analysis of
// a run: profiles, causes, recommended changes) is appended when present.
import fs from 'node:fs';
import path from 'node:path';
import { contenderOrder, NAMES } from './chart.mjs';

const fmt = (v, d = 1) => (v === null || v === undefined ? '–' : typeof v === 'number' ? v.toFixed(d) : String(v));
const int = (v) => (v === null || v === undefined ? '–' : Math.round(v).toLocaleString('en-US'));

function table(head, rows) {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const GO_LOADGEN_NAME = 'bench/loadgen-go (Go)';
const NODE_LOADGEN_NAME = 'bench/loadgen.mjs (Node)';

/** Which load generator made these rows: Go when any says so (rows before the field was recorded: Node). */
const loadgenOf = (rows) => (rows.some((x) => x.loadgen === 'go') ? GO_LOADGEN_NAME : NODE_LOADGEN_NAME);

/** The load generator of a clients scenario (HTTP/2 streams are always Node's). */
const clientsLoadgen = (r, sk) => loadgenOf(Object.values(r[sk]?.contenders ?? {}).flat());

/** The connect scenario's load generator. */
const connectLoadgen = (r) =>
  loadgenOf(Object.values(r.connect?.contenders ?? {}).flatMap((x) => [...x.live, ...x.resume]));

/** The load generators a run used for its many clients and connect rates. */
function loadgenNames(r) {
  const names = new Set();
  if (r.clients) names.add(clientsLoadgen(r, 'clients'));
  if (r['clients-h2']) names.add(NODE_LOADGEN_NAME);
  if (r.connect) names.add(connectLoadgen(r));
  return [...names].join(' and ') || NODE_LOADGEN_NAME;
}

/** The replay keys of a topic entry: a contender, `<contender>+ndjson`, `rdkafka@flowing`. */
const floorOf = (t) => {
  const xs = [t.rdkafka, t['rdkafka@flowing']].filter(Boolean);
  return xs.length ? xs.reduce((a, b) => (b.msgPerSec > a.msgPerSec ? b : a)) : null;
};

/**
 * The targets of issue 12, evaluated on a run for one contender (`bridge`, or
 * a variant). Each: {target, measured, met}; measured is null when not run.
 */
export function targets(r, key = 'bridge') {
  const out = [];
  const add = (target, measured, met) => out.push({ target, measured, met: Boolean(met) });
  for (const [k, t] of Object.entries(r.replay?.topics ?? {})) {
    const floor = floorOf(t);
    for (const format of r.replay.formats ?? ['sse']) {
      const sfx = format === 'sse' ? '' : '+ndjson';
      const x = t[`${key}${sfx}`];
      const pred = t[`predecessor${sfx}`];
      const what = `Replay ${k} ${format.toUpperCase()}`;
      if (!x) continue;
      // The replay floor (node-rdkafka + HTTP, nothing of a library's own) in the same run: what any Node bridge reaches.
      const bare = t[`replay-floor${sfx}`];
      const threads = t[`replay-floor-threads${sfx}`];
      add(
        `${what}: ≥ 75% of node-rdkafka alone`,
        floor
          ? `${((100 * x.msgPerSec) / floor.msgPerSec).toFixed(0)}% (${int(x.msgPerSec)} vs ${int(floor.msgPerSec)} msg/s, ${floor.mode ?? 'batched'})` +
              (bare
                ? `; replay floor ${((100 * bare.msgPerSec) / floor.msgPerSec).toFixed(0)}% (${int(bare.msgPerSec)})`
                : '') +
              (threads
                ? `; in a worker thread ${((100 * threads.msgPerSec) / floor.msgPerSec).toFixed(0)}% (${int(threads.msgPerSec)})`
                : '')
          : null,
        floor && x.complete && x.msgPerSec >= 0.75 * floor.msgPerSec,
      );
      add(`${what}: server CPU ≤ 8 µs per message`, `${fmt(x.serverUsPerMessage)} µs`, x.serverUsPerMessage <= 8);
      add(
        `${what}: ≥ 25× the predecessor`,
        pred ? `${(x.msgPerSec / pred.msgPerSec).toFixed(1)}× (${int(pred.msgPerSec)} msg/s)` : null,
        pred && x.msgPerSec >= 25 * pred.msgPerSec,
      );
      add(
        `${what}: every message once, correct ids`,
        `${int(x.messages)} messages, ${int(x.disorder ?? 0)} out of order${x.lastIdOk === false ? ', last id wrong' : x.lastIdOk ? ', last id = next offsets' : ''}`,
        x.complete,
      );
    }
  }
  for (const [sk, limit] of [
    ['live', 5],
    ['live10k', 20],
  ]) {
    const live = r[sk]?.contenders?.[key];
    if (!live) continue;
    const kcat = r[sk].contenders.kcat;
    add(
      `Live ${int(r[sk].rate)} msg/s: p99 < ${limit} ms, every message`,
      `p99 ${fmt(live.latencyMs.p99, 1)} ms (p50 ${fmt(live.latencyMs.p50, 2)}, max ${fmt(live.latencyMs.max, 0)}), ${int(live.received)}/${int(live.produced)}`,
      live.complete && live.latencyMs.p99 !== null && live.latencyMs.p99 < limit,
    );
    if (kcat) {
      add(
        `Live ${int(r[sk].rate)} msg/s: p99 ≤ kcat's p99 + 2 ms`,
        `${fmt(live.latencyMs.p99, 1)} vs ${fmt(kcat.latencyMs.p99, 1)} ms`,
        live.latencyMs.p99 !== null && live.latencyMs.p99 <= kcat.latencyMs.p99 + 2,
      );
    }
  }
  for (const sk of ['clients', 'clients-h2']) {
    const rows = r[sk]?.contenders?.[key];
    if (!rows) continue;
    const counts = r[sk].counts ?? r.settings.clientCounts;
    const maxN = Math.max(...counts);
    const row = rows.find((x) => x.clients === maxN);
    const last = rows.at(-1);
    const label = `${int(maxN)} ${sk === 'clients-h2' ? 'HTTP/2 streams' : 'clients'} at ${r[sk].rate} msg/s`;
    if (!row) {
      add(`${label}: every client every message`, `not run: at ${int(last?.clients)} ${last?.verdict}`, false);
      continue;
    }
    add(
      `${label}: every client every message, p99 < 1 s`,
      `${int(row.clientsComplete ?? 0)}/${int(maxN)} complete (slowest ${int(row.slowestClientMessages)}/${int(row.produced)}), p99 ${fmt(row.latencyMs?.p99, 0)} ms`,
      row.clientsComplete === maxN && row.latencyMs?.p99 < 1000,
    );
    // The socket floor (no library) in the same run, when it ran: what any Node server pays.
    const floor = r[sk].contenders?.floor?.find((x) => x.clients === maxN && x.usPerDelivery !== undefined);
    add(
      `${label}: server ≤ 40% of a core, ≤ 4 µs per delivery`,
      `${fmt(row.cpuPct)}%, ${fmt(row.usPerDelivery, 2)} µs (load generators${row.loadgen === 'go' ? ', Go,' : ''} ${fmt(row.loadgenCpuPct)}%)` +
        (floor ? `; socket floor ${fmt(floor.cpuPct)}%, ${fmt(floor.usPerDelivery, 2)} µs` : ''),
      row.cpuPct <= 40 && row.usPerDelivery <= 4,
    );
    add(
      `${label}: ≤ 16 KB per idle client, peak ≤ 30 KB per client`,
      `${fmt(row.idleKbPerClient)} KB idle, ${fmt(row.peakKbPerClient)} KB peak` +
        (floor ? `; socket floor ${fmt(floor.idleKbPerClient)} KB idle` : ''),
      row.idleKbPerClient <= 16 && row.peakKbPerClient <= 30,
    );
    add(
      `${label}: the load generators cost less than the server`,
      `${fmt(row.loadgenCpuPct)}% (${int(row.loadgenProcesses)} ${row.loadgen === 'go' ? 'Go' : 'Node'} processes) vs ${fmt(row.cpuPct)}% of a core`,
      row.loadgenCpuPct < row.cpuPct,
    );
  }
  const conn = r.connect?.contenders?.[key];
  if (conn) {
    for (const kind of ['live', 'resume']) {
      const ok = conn[kind].filter((x) => x.ok);
      const best = ok.at(-1);
      add(
        `Connect rate, ${kind === 'live' ? 'new live streams' : 'resumes from the tail’s log'}: p99 ${kind === 'live' ? 'time to first byte' : 'time to first message'} < 100 ms`,
        best
          ? `${int(best.achievedPerSec)}/s with p99 ${fmt(best.latencyMs.p99, 1)} ms (highest offered rate that held: ${int(best.offered)}/s of ${conn[kind].map((x) => int(x.offered)).join(', ')})`
          : `not even at ${int(conn[kind][0]?.offered)}/s (p99 ${fmt(conn[kind][0]?.latencyMs?.p99, 0)} ms)`,
        Boolean(best),
      );
    }
  }
  return out;
}

const liveTable = (r, sk, keys) =>
  table(
    ['Contender', 'Received', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'Server CPU %', 'Server peak RSS MB'],
    keys
      .filter((c) => r[sk].contenders[c])
      .map((c) => {
        const x = r[sk].contenders[c];
        return [
          NAMES[c] ?? c,
          `${int(x.received)}/${int(x.produced)}`,
          fmt(x.latencyMs.p50, 2),
          fmt(x.latencyMs.p90, 2),
          fmt(x.latencyMs.p99, 2),
          fmt(x.latencyMs.p999, 2),
          fmt(x.latencyMs.max, 1),
          fmt(x.serverCpuPct),
          fmt(x.serverPeakRssMb),
        ];
      }),
  );

const clientsTable = (r, sk, keys) => {
  const rows = [];
  for (const c of keys) {
    for (const x of r[sk].contenders[c] ?? []) {
      rows.push([
        NAMES[c] ?? c,
        int(x.clients),
        x.verdict.startsWith('ok') ? x.verdict : `**${x.verdict}**`,
        x.clientsComplete === undefined
          ? '–'
          : `${int(x.clientsComplete)} (${fmt(x.completenessPct, 2)}%; slowest ${int(x.slowestClientMessages)}/${int(x.produced)})`,
        fmt(x.connectSeconds),
        x.latencyMs ? `${fmt(x.latencyMs.p50, 1)} / ${fmt(x.latencyMs.p99, 1)} / ${fmt(x.latencyMs.max, 0)}` : '–',
        fmt(x.cpuPct),
        fmt(x.usPerDelivery, 2),
        x.idleKbPerClient === undefined ? fmt((x.perClientMb ?? 0) * 1024, 0) : fmt(x.idleKbPerClient),
        fmt(x.peakKbPerClient),
        `${fmt(x.idleRssMb)} / ${fmt(x.peakRssMb)}`,
        int(x.threads),
        x.loadgenCpuPct === undefined
          ? '–'
          : `${fmt(x.loadgenCpuPct)} (${int(x.loadgenProcesses)} ${x.loadgen === 'go' ? 'Go' : 'Node'} proc.)`,
        fmt(x.brokerCpuPct),
      ]);
    }
  }
  return table(
    [
      'Contender',
      'Clients',
      'Verdict',
      'Complete clients',
      'Connect s',
      'Latency p50/p99/max ms',
      'Server CPU %',
      'µs per delivery',
      'KB per idle client',
      'Peak KB per client',
      'RSS idle / peak MB',
      'Threads',
      'Load generators CPU %',
      'Broker CPU %',
    ],
    rows,
  );
};

export function reportMarkdown(r, findings) {
  const keys = contenderOrder(r.settings.contenders);
  const L = [];
  L.push('# Benchmark results');
  L.push('');
  L.push(
    `Generated by \`npm run bench${r.quick ? ' -- --quick' : ''}\` (run \`${r.runId}\`, ${r.startedAt}, ${Math.floor(r.durationS / 60)} min ${r.durationS % 60} s). ` +
      'Every figure below comes from that one run: all contenders against the same broker and the same data, one after the other. ' +
      'Raw figures: [results.json](results.json).',
  );
  if (r.label) L.push('', `Note: ${r.label}`);
  if (r.buildNote) L.push('', `Build: ${r.buildNote}.`);
  L.push('', '![headline comparisons](chart.png)', '');

  L.push('## Targets (issue 12)', '');
  const cell = (t) => (t.measured === null ? '–' : `${t.met ? 'yes' : '**no**'}: ${t.measured}`);
  L.push(
    table(
      ['Target', 'kafka-sse-bridge, defaults'],
      targets(r, 'bridge').map((t) => [t.target, cell(t)]),
    ),
  );
  L.push('');

  L.push('## Machine and versions', '');
  // The local broker is part of the benchmark (its CPU is reported beside the servers'), not other work.
  const busy = r.otherActivity
    .map((a) => ({ ...a, processes: a.processes.filter((p) => p.pid !== r.brokerPid) }))
    .filter((a) => a.processes.length > 0);
  L.push(
    table(
      ['', ''],
      [
        ['CPU', `${r.machine.cpu}, ${r.machine.cores} cores`],
        ['Memory', `${r.machine.memGiB} GiB`],
        ['Kernel', r.machine.kernel],
        ['Node.js', r.versions.node],
        ['Kafka broker', `${r.versions.kafka}, single KRaft node on 127.0.0.1 (scripts/kafka.mjs), same machine`],
        [
          'kafka-sse-bridge',
          `${r.versions.bridge}, from dist/, node-rdkafka ${r.versions.nodeRdkafkaBridge} (librdkafka ${r.versions.librdkafka})`,
        ],
        [
          'predecessor',
          `kafka-sse ${r.versions.predecessor}, node-rdkafka overridden to ${r.versions.nodeRdkafkaPredecessor}`,
        ],
        [
          'floors',
          `node-rdkafka ${r.versions.nodeRdkafkaBridge} alone (bench/rdkafka-alone.mjs); kcat ${r.versions.kcat}`,
        ],
        [
          'Clients',
          `replay: a counting client (no parser, no JSON.parse) and, beside it, eventsource-parser ${r.versions.eventsourceParser} + JSON.parse; live: eventsource-parser + JSON.parse; many clients and connect rate: ${loadgenNames(r)} (raw sockets, frame counter)`,
        ],
        [
          'Shared machine',
          busy.length
            ? `yes: other work ran during the run (${[...new Set(busy.flatMap((a) => a.processes.map((p) => p.comm)))].join(', ')}); whole-machine CPU busy ${fmt(r.machineCpuBusyPct)}% on average`
            : `no other busy process seen at the checkpoints; whole-machine CPU busy ${fmt(r.machineCpuBusyPct)}% on average (this includes the benchmark itself)`,
        ],
      ],
    ),
  );
  L.push('');

  L.push('## Settings', '');
  const s = r.settings;
  L.push(
    `- **kafka-sse-bridge**: default options (\`kafkaConfig\` = \`metadata.broker.list\` only${
      Object.keys(s.bridgeKafkaConfig).length
        ? ` plus \`${JSON.stringify(s.bridgeKafkaConfig)}\` (an experiment, not the defaults)`
        : ''
    }); Node's default libuv thread pool.`,
  );
  L.push(
    `- **kafka-sse 0.4.2**: called as its README shows, with \`kafkaConfig\` = \`metadata.broker.list\` and a bunyan logger at level \`warn\` (its own default logs every message at \`debug\` with source locations); \`UV_THREADPOOL_SIZE=${s.predecessorThreadpool}\`, as its own test scripts set (its consume(1) calls run on the thread pool).`,
  );
  for (const [name, v] of Object.entries(s.variants ?? {})) {
    L.push(`- **bridge@${name}**: kafka-sse-bridge with ${v.description}. Not the defaults.`);
  }
  L.push(
    '- **node-rdkafka alone** (bench/rdkafka-alone.mjs): a process that assigns every partition at offset 0 and only counts messages and checks their offsets (no HTTP, no JSON), batched (a `consume(10000)` loop) and flowing (`consume()`, one `data` event per message); timed from its first message to its last. CPU per message is the whole process’s utime+stime (start-up included) ÷ messages.',
  );
  L.push(
    "- **replay floor** (bench/servers/replay-floor.mjs, replay only): not a library. A node-rdkafka consumer per request, flowing, with the library's librdkafka settings; each value sent as it came with `_kafka` partition and offset written in, one buffer and one `res.write()` per node-rdkafka turn; no JSON or UTF-8 check, no resume id, no backpressure. What any Node bridge pays per replayed message before doing anything of its own.",
  );
  if (s.contenders.includes('replay-floor-threads')) {
    L.push(
      "- **replay floor, consuming in a worker thread** (bench/servers/replay-floor-threads.mjs, replay only, not run by default): not a library. The replay floor with every consumer in one worker thread (node-rdkafka loads in one thread of a process only), which builds the same bytes and transfers each turn's buffer to the main thread, which only writes it. How near node-rdkafka alone a Node bridge could come on two cores.",
    );
  }
  L.push(
    '- **kcat**: `kcat -C -u` with librdkafka defaults, printing `%s\\n`; replay is timed from its first message to its last as they reach the runner through a pipe (the whole process’s time is in results.json), live prints to a pipe read by the same client code as the SSE streams.',
  );
  L.push(
    `- Each contender's server is a plain \`node:http\` server in its own process (bench/servers/; \`--h2c\`: node:http2 without TLS), measured from /proc (VmRSS, Threads, utime+stime). Many clients: load-generator processes of up to ${int(s.clientsPerProcess)} raw HTTP/1.1 connections each (HTTP/2: ${int(s.h2StreamsPerProcess)} streams in sessions of ${int(s.h2StreamsPerSession)}), opened at ${int(s.rampPerSec)}/s in all (250/s for contenders with a consumer per client, which stop past ${int(s.maxPrivateClients ?? 2000)} clients).`,
  );
  L.push(
    `- Sizes: replay ${int(s.replayMessages)} messages of ~${r.replay?.messageBytes ?? s.messageBytes} B (median of ${s.replayRuns} runs; a run is capped at ${s.replayTimeoutS} s, and a run longer than a third of that is not repeated); live ${int(s.liveRate)} and ${int(s.liveFastRate)} msg/s for ${s.liveSeconds} s; clients ${s.clientsRate} msg/s of ~${s.clientsMessageBytes} B for ${s.clientsSeconds} s at ${s.clientCounts.map(int).join(', ')} clients; HTTP/2 streams ${s.h2Rate} msg/s at ${(s.h2StreamCounts ?? []).map(int).join(', ')}; connect rates ${(s.connectRates ?? []).map(int).join(', ')}/s for ${s.connectSeconds} s each; time to first event: median of ${s.ttfeSamples}.`,
  );
  L.push('');

  if (r.replay) {
    L.push('## 1. Replay throughput', '');
    L.push(
      `One client reads ${int(r.replay.messages)} messages from offset 0 until it has them all, as SSE and as NDJSON (\`Accept: application/json\`). Time runs from the request to the last message (node-rdkafka alone and kcat: from their first message to their last; their whole-process rate is beside it). The headline client only counts \`data:\` lines (NDJSON: lines) and reads each message's \`_kafka\` partition and offset by position, so that the client is not what limits the rate; the JSON-parsing client's rate (eventsource-parser + JSON.parse) is beside it. Complete = every message exactly once, each partition's offsets in order, and the last SSE id naming every partition's next offset. Server CPU per message: the server's utime+stime over the request ÷ messages.`,
    );
    L.push('');
    const rows = [];
    for (const [k, t] of Object.entries(r.replay.topics)) {
      const order = [
        ...['rdkafka', 'rdkafka@flowing', 'kcat'],
        ...keys.filter((c) => !['rdkafka', 'kcat'].includes(c)).flatMap((c) => [c, `${c}+ndjson`]),
      ];
      for (const c of order) {
        const x = t[c];
        if (!x) continue;
        const floor = c === 'kcat' || c.startsWith('rdkafka');
        rows.push([
          k.replace('p', ' partition(s)'),
          NAMES[c] ?? c,
          `${int(x.msgPerSec)}${x.complete ? '' : ` (**incomplete**: ${int(x.messages)} in ${fmt(x.seconds)} s)`}`,
          floor ? `${int(x.wholeMsgPerSec)} (whole process)` : x.jsonClient ? int(x.jsonClient.msgPerSec) : '–',
          fmt(x.payloadMbPerSec),
          fmt(x.seconds, 2),
          x.runs.map(int).join(', '),
          floor ? `${fmt(x.usPerMessage, 1)} µs/msg (own)` : `${fmt(x.serverUsPerMessage)} µs/msg`,
          x.clientUsPerMessage === undefined ? '–' : `${fmt(x.clientUsPerMessage)} µs/msg`,
          floor ? fmt(x.peakRssMb) : fmt(x.serverPeakRssMb),
          x.brokerCpuPct === undefined || x.brokerCpuPct === null ? '–' : fmt(x.brokerCpuPct),
        ]);
      }
    }
    L.push(
      table(
        [
          'Topic',
          'Contender',
          'Messages/s',
          'JSON-parsing client msg/s',
          'Payload MB/s',
          'Seconds',
          'All runs (msg/s)',
          'Server CPU',
          'Client CPU',
          'Peak RSS MB',
          'Broker CPU %',
        ],
        rows,
      ),
    );
    L.push('');
  }

  for (const [sk, n] of [
    ['live', '2'],
    ['live10k', '3'],
  ]) {
    if (!r[sk]) continue;
    L.push(`## ${n}. Live latency at ${int(r[sk].rate)} messages/s`, '');
    L.push(
      `${int(r[sk].rate)} messages/s produced for ${r[sk].seconds} s (node-rdkafka producer, linger.ms=0) to a 1-partition topic with one connected client per contender${r[sk].together?.length > 1 ? `; ${r[sk].together.map((c) => NAMES[c] ?? c).join(' and ')} read the same messages at the same time (a stall of the producer, the broker or the machine reaches them alike), the predecessor alone afterwards on messages of its own` : ''}. Latency = client's CLOCK_MONOTONIC at parse time − the producer's CLOCK_MONOTONIC stamp embedded in the message (same machine, same clock, µs resolution); every message counts, none are dropped as warm-up.`,
    );
    L.push('', liveTable(r, sk, keys), '');
  }

  for (const [sk, n] of [
    ['clients', '4'],
    ['clients-h2', '5'],
  ]) {
    if (!r[sk]) continue;
    const h2 = sk === 'clients-h2';
    L.push(`## ${n}. Many live ${h2 ? 'streams over HTTP/2 (h2c)' : 'clients'}`, '');
    L.push(
      `N ${h2 ? 'HTTP/2 streams (many per session)' : 'clients'} connect to one server process (plain topic, from the end), then ${r[sk].rate} messages/s of ~${r[sk].messageBytes ?? 350} B are produced for ${r[sk].seconds} s. A client is complete when it received every produced message by ${r.settings.clientsGraceS} s after production ended. Server CPU is over the production window, as % of one core (the machine has ${r.machine.cores}); µs per delivery = that CPU ÷ messages delivered to all clients. KB per idle client = (RSS with N idle clients − RSS before any) ÷ N; peak KB per client = (peak RSS while messages flowed − RSS before any) ÷ N. The load generators (${clientsLoadgen(r, sk)}) hold thousands of streams per process, count frames holding a producer stamp and record one latency per frame; their CPU is beside the server's. A contender stops at the first N where it breaks.`,
    );
    L.push('', clientsTable(r, sk, keys), '');
  }

  if (r.connect) {
    L.push('## 6. Connect rate', '');
    L.push(
      `With ${r.connect.background} messages/s flowing and one stream holding the shared tail open, one load-generator process, ${connectLoadgen(r)}, opens new streams at each offered rate for ${r.connect.seconds} s: live streams from the end (closed at their first byte) and resumes whose \`Last-Event-ID\` is ${r.connect.resumeBack} messages behind the end (the shared tail's log; closed at their first message). Achieved = streams answered ÷ time from the first request to the last answer. Rates step up until the p99 passes 100 ms or a stream fails. CPU is as % of one core over the step, the load generator's beside the server's.`,
    );
    L.push('');
    const rows = [];
    for (const c of keys) {
      const x = r.connect.contenders[c];
      if (!x) continue;
      for (const kind of ['live', 'resume']) {
        for (const row of x[kind]) {
          rows.push([
            NAMES[c] ?? c,
            kind === 'live' ? 'new live stream' : 'resume from the log',
            int(row.offered),
            int(row.achievedPerSec),
            `${int(row.completed)} / ${int(row.failed)}`,
            row.measures,
            `${fmt(row.latencyMs.p50, 1)} / ${fmt(row.latencyMs.p99, 1)} / ${fmt(row.latencyMs.max, 0)}`,
            fmt(row.serverCpuPct),
            fmt(row.loadgenCpuPct),
            row.ok ? 'ok' : `**${row.error ?? 'p99 ≥ 100 ms or failures'}**`,
          ]);
        }
      }
    }
    L.push(
      table(
        [
          'Contender',
          'Kind',
          'Offered /s',
          'Achieved /s',
          'OK / failed',
          'Measures',
          'p50 / p99 / max ms',
          'Server CPU %',
          'Load generator CPU %',
          'Verdict',
        ],
        rows,
      ),
    );
    L.push('');
  }

  if (r.ttfe) {
    L.push('## 7. Time to first event', '');
    L.push(
      `Median of ${r.ttfe.samples} sequential requests to a server that is already running. First byte: request → first body byte, with \`?since=\` and, in parentheses, without (a live stream from the end). First message: request → first message parsed, with \`?since=\` 24 h ago (so the answer is offset 0 of the 1-partition replay topic). kcat: process start → first message (\`-o s@<ms> -c 1\`).`,
    );
    L.push('');
    L.push(
      table(
        ['Contender', 'First byte ms (live)', 'First message ms', 'Slowest first message ms'],
        keys
          .filter((c) => r.ttfe.contenders[c])
          .map((c) => {
            const x = r.ttfe.contenders[c];
            return [
              NAMES[c] ?? c,
              x.firstByteMs === null ? 'n/a' : `${fmt(x.firstByteMs)} (${fmt(x.firstByteLiveMs)})`,
              fmt(x.firstMessageMs),
              fmt(x.firstMessageMaxMs),
            ];
          }),
      ),
    );
    L.push('');
  }

  L.push('## Reproducing', '');
  L.push(
    '`npm run bench` (builds dist/ first; installs kafka-sse 0.4.2 into bench/node_modules on first use); `npm run bench -- --quick` runs smaller sizes in under 5 minutes; `--scenario=replay,live,live10k,clients,clients-h2,connect,ttfe` and `--contenders=…` select; `--no-h2` leaves the HTTP/2 scenario out. See bench/README.md.',
  );
  L.push('');
  if (findings) {
    L.push(findings.trim());
    L.push('');
  }
  return L.join('\n');
}

/** Writes RESULTS.md; bench/findings.md (an analysis of the run, when written) is appended to the main results only. */
export function writeReport(results, dir) {
  const benchDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const findingsFile = path.join(benchDir, 'findings.md');
  const findings =
    path.resolve(dir) === benchDir && fs.existsSync(findingsFile) ? fs.readFileSync(findingsFile, 'utf8') : null;
  fs.writeFileSync(path.join(dir, 'RESULTS.md'), reportMarkdown(results, findings));
}
