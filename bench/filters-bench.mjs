#!/usr/bin/env node
// Per-message cost of subscription filters (lib/filters.ts): compiled once,
// then CompiledFilter.test() on deserialized messages shaped like Wikimedia
// recentchange events, with half or so matching. JSON.parse of the same
// messages is shown for scale: it is what every message costs anyway.
//
//   npm run build && node bench/filters-bench.mjs [--quick]
//
// No broker needed. Prints a table (median of 5 runs, ns per message) and the
// machine it ran on.
import os from 'node:os';
import { compileFilter, parseFilterQuery } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const CALLS = quick ? 300_000 : 2_000_000;
const RUNS = 5;

const DOMAINS = [
  'en.wikipedia.org',
  'de.wikipedia.org',
  'commons.wikimedia.org',
  'www.wikidata.org',
  'fr.wikipedia.org',
];
const TYPES = ['edit', 'new', 'log', 'categorize'];

/** 1024 distinct messages, so the filter cannot specialise on one object. */
const messages = Array.from({ length: 1024 }, (_, i) => {
  const value = JSON.stringify({
    $schema: '/mediawiki/recentchange/1.0.0',
    meta: { domain: DOMAINS[i % DOMAINS.length], dt: '2024-05-01T12:00:00Z', id: `id-${i}` },
    type: TYPES[i % TYPES.length],
    namespace: i % 6,
    title: i % 3 === 0 ? `Talk:Page ${i}` : `Page ${i}`,
    user: i % 7 === 0 ? `Bot${i}` : `User${i}`,
    bot: i % 7 === 0,
    length: { old: 1000 + i, new: 1000 + ((i * 37) % 900) },
    revision: { old: 100_000 + i, new: 100_001 + i },
    comment: 'x'.repeat(i % 200),
  });
  return {
    raw: Buffer.from(value),
    message: {
      topic: 'recentchange',
      partition: i % 3,
      offset: i,
      timestamp: 1_714_564_800_000 + i,
      size: value.length,
      value: Buffer.from(value),
      key: Buffer.from(`key-${i % 50}`),
      headers: [{ source: Buffer.from(i % 2 ? 'api' : 'web') }],
      message: JSON.parse(value),
    },
  };
});

const manyDomains = Array.from({ length: 200 }, (_, i) => `lang${i}.wikipedia.org`).concat(['de.wikipedia.org']);

/** [label, query string or spec] */
const SHAPES = [
  ['one field, equality: filter[type]=edit', 'filter[type]=edit'],
  ['nested path + set: meta.domain, type=edit,new', 'filter[meta.domain]=en.wikipedia.org&filter[type]=edit,new'],
  ['set of 201 values on meta.domain', { 'meta.domain': manyDomains }],
  ['glob: meta.domain=*.wikipedia.org', 'filter[meta.domain]=*.wikipedia.org'],
  ['range: length.new=1200..1600', 'filter[length.new]=1200..1600'],
  ['regex: title=/^talk:/i', `filter[title]=${encodeURIComponent('/^talk:/i')}`],
  ['negation: !bot=true', 'filter[!bot]=true'],
  ['Kafka key glob + header', 'filter[$key]=key-1*&filter[$header.source]=api'],
  [
    'realistic: domain set, type set, !bot, title regex',
    `filter[meta.domain]=en.wikipedia.org,de.wikipedia.org&filter[type]=edit,new&filter[!bot]=true&filter[title]=${encodeURIComponent('/^Talk:/')}`,
  ],
];

/**
 * Median CPU time per call (user + system, in ns) over RUNS runs. CPU time
 * rather than wall time, so other processes on a busy machine distort it less.
 */
function time(fn) {
  const samples = [];
  for (let r = 0; r < RUNS; r++) {
    const before = process.cpuUsage();
    fn();
    const used = process.cpuUsage(before);
    samples.push(((used.user + used.system) * 1000) / CALLS);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(RUNS / 2)];
}

let sink = 0;
const rows = [];

// For scale: what JSON-parsing each message costs (the default deserializer does it for every message).
for (let i = 0; i < 50_000; i++) sink += JSON.parse(messages[i & 1023].raw.toString('utf8')).namespace;
rows.push([
  '(for scale) JSON.parse of the message',
  time(() => {
    for (let i = 0; i < CALLS; i++) sink += JSON.parse(messages[i & 1023].raw.toString('utf8')).namespace;
  }),
  '',
]);

const noFilter = compileFilter([]);
for (let i = 0; i < 200_000; i++) if (noFilter.test(messages[i & 1023].message)) sink++;
rows.push([
  'empty filter (call overhead)',
  time(() => {
    for (let i = 0; i < CALLS; i++) if (noFilter.test(messages[i & 1023].message)) sink++;
  }),
  '100%',
]);

for (const [label, shape] of SHAPES) {
  const filter = compileFilter(typeof shape === 'string' ? parseFilterQuery(shape) : shape);
  let kept = 0;
  for (let i = 0; i < 1024; i++) if (filter.test(messages[i].message)) kept++;
  for (let i = 0; i < 200_000; i++) if (filter.test(messages[i & 1023].message)) sink++;
  const ns = time(() => {
    for (let i = 0; i < CALLS; i++) if (filter.test(messages[i & 1023].message)) sink++;
  });
  rows.push([label, ns, `${Math.round((kept / 1024) * 100)}%`]);
}

// The worst a client regex may cost: the most expensive accepted shape on its worst 1024-character value.
const worst = compileFilter(parseFilterQuery(`filter[t]=${encodeURIComponent('/\\d?\\d?\\d*x/')}`));
const worstMessage = { ...messages[0].message, message: { t: '1'.repeat(1024) } };
for (let i = 0; i < 3; i++) worst.test(worstMessage);
const worstRuns = [];
for (let r = 0; r < RUNS; r++) {
  const before = process.cpuUsage();
  for (let i = 0; i < 20; i++) worst.test(worstMessage);
  const used = process.cpuUsage(before);
  worstRuns.push(((used.user + used.system) * 1000) / 20);
}
worstRuns.sort((a, b) => a - b);

const cpus = os.cpus();
console.log(`filters-bench: ${CALLS.toLocaleString('en')} calls × ${RUNS} runs, median CPU time per message`);
console.log(
  `machine: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, load average ${os.loadavg()[0]?.toFixed(1)}`,
);
console.log('');
console.log(`| filter | ns/message | kept |`);
console.log(`|---|---:|---:|`);
for (const [label, ns, kept] of rows) console.log(`| ${label} | ${ns.toFixed(1)} | ${kept} |`);
console.log('');
console.log(
  `worst accepted client regex (/\\d?\\d?\\d*x/ on a 1024-digit value): ${(worstRuns[Math.floor(RUNS / 2)] / 1e6).toFixed(2)} ms/message`,
);
if (sink === -1) console.log(sink);
