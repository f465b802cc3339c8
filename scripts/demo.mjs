#!/usr/bin/env node
// `npm run demo`: a local broker, a topic of simulated wiki edits produced at a
// varying rate, and the example server with its live page.
//
//   npm ci && npm run demo        then open the printed URL
//
// It builds dist/ if missing, starts the local broker unless one answers (or
// KAFKA_BROKERS names a cluster), creates `demo.wiki-edits` (3 partitions) if
// missing, produces edits, and serves examples/server-app.js. Ctrl-C stops what
// it started, and only that: a broker that was already running keeps running.
//
// Environment: PORT (default 6927), HOST (default 127.0.0.1), KAFKA_BROKERS.
import { spawnSync } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop } from './kafka.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOPIC = 'demo.wiki-edits';
const PARTITIONS = 3;

/** Every step that needs undoing, last first. */
const cleanups = [];
let stopping = false;

async function main() {
  ensureBuilt();

  let brokers = process.env.KAFKA_BROKERS;
  if (brokers) {
    console.log(`Using the Kafka cluster in KAFKA_BROKERS: ${brokers}`);
  } else {
    console.log('Looking for a local Kafka broker (starting one can take a minute the first time)…');
    const broker = await start();
    brokers = broker.brokers;
    // Stop the broker on exit only if this run started it.
    if (broker.started) cleanups.push(() => stop(undefined, { quiet: false }));
  }
  if (stopping) return;

  // Loaded after the build: the example server imports the library from dist/.
  const { default: Kafka } = await import('node-rdkafka');
  const { createServer } = await import('../examples/server-app.js');
  const { default: pino } = await import('pino');

  await ensureTopic(Kafka, brokers);
  if (stopping) return;
  const producer = await startProducer(Kafka, brokers);
  cleanups.push(() => producer.stop());
  if (stopping) return;

  const app = createServer({ brokers, logger: pino({ name: 'demo', level: process.env.LOG_LEVEL ?? 'warn' }) });
  cleanups.push(() => app.close());
  const url = await app.listen(Number(process.env.PORT ?? 6927), process.env.HOST ?? '127.0.0.1');

  console.log(`
  Live page:  ${url}/?topics=${TOPIC}
  Terminal:   curl -N ${url}/v2/stream/${TOPIC}
  NDJSON:     curl -N -H 'Accept: application/json' ${url}/v2/stream/${TOPIC}
  Last hour:  curl -N '${url}/v2/stream/${TOPIC}?since=${new Date(Date.now() - 3_600_000).toISOString()}'
  Client:     node examples/client.js --count ${TOPIC}

  Producing simulated wiki edits to ${TOPIC} (${PARTITIONS} partitions), between a few and a few hundred per second.
  Ctrl-C stops the demo.
`);
  producer.onReport = (total, perSecond) => {
    if (process.stdout.isTTY) process.stdout.write(`\r  produced ${total} edits · now ${perSecond}/s     `);
  };
}

function ensureBuilt() {
  if (fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) return;
  console.log('Building dist/ (first run)…');
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (res.status !== 0) throw new Error('the build failed (see above); did you run `npm ci`?');
}

/** Creates the demo topic unless it exists. */
async function ensureTopic(Kafka, brokers) {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokers, 'client.id': 'kafka-sse-bridge-demo' });
  try {
    await new Promise((resolve, reject) => {
      admin.createTopic({ topic: TOPIC, num_partitions: PARTITIONS, replication_factor: 1 }, 15_000, (err) => {
        if (!err || err.code === Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS) resolve();
        else reject(new Error(`could not create ${TOPIC}: ${err.message}`));
      });
    });
  } finally {
    admin.disconnect();
  }
}

// ---- simulated wiki edits ----

const WIKIS = [
  ['enwiki', 'en.wikipedia.org', 30],
  ['wikidatawiki', 'www.wikidata.org', 25],
  ['commonswiki', 'commons.wikimedia.org', 10],
  ['dewiki', 'de.wikipedia.org', 7],
  ['frwiki', 'fr.wikipedia.org', 6],
  ['jawiki', 'ja.wikipedia.org', 5],
  ['eswiki', 'es.wikipedia.org', 5],
  ['ruwiki', 'ru.wikipedia.org', 4],
  ['itwiki', 'it.wikipedia.org', 4],
  ['zhwiki', 'zh.wikipedia.org', 4],
];
const WIKI_WEIGHT = WIKIS.reduce((sum, w) => sum + w[2], 0);
const SUBJECTS = [
  'Lake Baikal',
  'Ada Lovelace',
  'Battle of Hastings',
  'Photosynthesis',
  'Mount Kilimanjaro',
  'Jazz',
  'Great Barrier Reef',
  'Marie Curie',
  'Byzantine Empire',
  'Quantum entanglement',
  'Rio de Janeiro',
  'Tardigrade',
  'The Beatles',
  'Silk Road',
  'Apollo 11',
  'Kyoto',
  'Volcano',
  'Printing press',
];
const PATTERNS = [(s) => s, (s) => `History of ${s}`, (s) => `List of ${s} topics`, (s) => `${s} (disambiguation)`];
const USERS = ['Materialscientist', 'Ymblanter', 'Edwardx', 'Lotje', 'Fram', 'Pppery', 'Mike Peel', 'Rosiestep'];
const BOTS = ['InternetArchiveBot', 'Cewbot', 'QuickStatementsBot', 'SchlurcherBot', 'GreenC bot'];
const COMMENTS = ['copyedit', 'Added citation', 'Reverted vandalism', 'Update infobox', 'typo', 'expand section', ''];
const LOGS = [
  ['upload', 'upload', 'uploaded a new file'],
  ['move', 'move', 'moved page'],
  ['newusers', 'create', 'created a new account'],
  ['delete', 'delete', 'deleted page'],
  ['block', 'block', 'blocked a vandal'],
];

function pick(items) {
  return items[randomInt(items.length)];
}

function pickWiki() {
  let n = randomInt(WIKI_WEIGHT);
  for (const w of WIKIS) {
    n -= w[2];
    if (n < 0) return w;
  }
  return WIKIS[0];
}

let rcid = 1_700_000_000;
let revision = 1_250_000_000;

/** One edit shaped like Wikimedia's mediawiki.recentchange events. */
function simulatedEdit() {
  const [wiki, domain] = pickWiki();
  const now = Date.now();
  const r = Math.random();
  const type = r < 0.8 ? 'edit' : r < 0.9 ? 'new' : 'log';
  const bot = wiki === 'wikidatawiki' ? Math.random() < 0.7 : Math.random() < 0.15;
  const anonymous = !bot && Math.random() < 0.12;
  const user = bot ? pick(BOTS) : anonymous ? `203.0.113.${randomInt(1, 255)}` : pick(USERS);
  const title = wiki === 'wikidatawiki' ? `Q${randomInt(1, 120_000_000)}` : pick(PATTERNS)(pick(SUBJECTS));
  const event = {
    $schema: '/mediawiki/recentchange/1.0.0',
    meta: {
      uri: `https://${domain}/wiki/${encodeURIComponent(title.replaceAll(' ', '_'))}`,
      id: randomUUID(),
      dt: new Date(now).toISOString(),
      domain,
      stream: 'mediawiki.recentchange',
    },
    id: ++rcid,
    type,
    namespace: 0,
    title,
    comment: type === 'log' ? '' : pick(COMMENTS),
    timestamp: Math.floor(now / 1000),
    user,
    bot,
    server_url: `https://${domain}`,
    server_name: domain,
    wiki,
  };
  if (type === 'log') {
    const [logType, logAction, text] = pick(LOGS);
    return { ...event, log_type: logType, log_action: logAction, log_action_comment: text };
  }
  const oldLength = type === 'new' ? undefined : randomInt(200, 90_000);
  // Most edits change a few bytes; some add or remove a lot.
  const delta = Math.round((Math.random() - 0.35) * (Math.random() < 0.1 ? 8000 : 400));
  const newLength = type === 'new' ? randomInt(300, 6000) : Math.max(0, oldLength + delta);
  const oldRevision = type === 'new' ? undefined : revision;
  revision += randomInt(1, 50);
  return {
    ...event,
    minor: type === 'edit' && Math.random() < 0.3,
    length: { old: oldLength, new: newLength },
    revision: { old: oldRevision, new: revision },
  };
}

/**
 * Events per second at `t` (ms): a slow swell between a few and a few hundred
 * per second, with occasional bursts, so the page's rate has something to show.
 */
function rateAt(t) {
  const swell = (1 - Math.cos((2 * Math.PI * t) / 90_000)) / 2; // 0…1 over 90 s
  const base = 3 + 250 * swell ** 2;
  const burst = Math.sin(t / 7000) > 0.97 ? 150 : 0;
  return base + burst;
}

async function startProducer(Kafka, brokers) {
  const producer = new Kafka.Producer({
    'metadata.broker.list': brokers,
    'client.id': 'kafka-sse-bridge-demo-producer',
    'linger.ms': 20,
    'log.connection.close': false,
  });
  producer.on('event.error', (err) => console.error(`\nproducer: ${err.message}`));
  await new Promise((resolve, reject) => {
    producer.connect({ timeout: 15_000 }, (err) => (err ? reject(new Error(`producer: ${err.message}`)) : resolve()));
  });
  producer.setPollInterval(100);

  const started = Date.now();
  let total = 0;
  let carry = 0;
  let lastReport = started;
  let sinceReport = 0;
  const control = {
    onReport: undefined,
    stop: () =>
      new Promise((resolve) => {
        clearInterval(timer);
        producer.flush(5000, () => producer.disconnect(5000, () => resolve()));
      }),
  };
  const TICK_MS = 50;
  const timer = setInterval(() => {
    const now = Date.now();
    carry += (rateAt(now - started) * TICK_MS) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    for (let i = 0; i < n; i++) {
      const edit = simulatedEdit();
      try {
        producer.produce(TOPIC, null, Buffer.from(JSON.stringify(edit)), edit.wiki, now);
        total++;
        sinceReport++;
      } catch (err) {
        // A full local queue (broker gone): drop this edit, it is a simulation.
        if (err.code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw err;
      }
    }
    if (now - lastReport >= 1000) {
      control.onReport?.(total, Math.round((sinceReport * 1000) / (now - lastReport)));
      lastReport = now;
      sinceReport = 0;
    }
  }, TICK_MS);
  return control;
}

// ---- shutdown ----

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log('Stopping the demo…');
  // A step still starting (the broker, say) finishes first, so it can be undone.
  await running.catch(() => {});
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      console.error(`cleanup failed: ${err.message}`);
    }
  }
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) {
      console.error('Stopping now, without waiting.');
      process.exit(130);
    }
    void shutdown(0);
  });
}

const running = main();
running.catch((err) => {
  console.error(`demo: ${err.message}`);
  void shutdown(1);
});
