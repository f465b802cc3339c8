#!/usr/bin/env node
// @ts-check
// A command-line client for any kafka-sse-bridge stream: prints each event's
// JSON on its own line (pipe it to jq), or with --count a count and rate per
// second. A dropped connection is resumed with Last-Event-ID, so nothing is
// lost or repeated; Ctrl-C prints the id to resume from later. When the server
// cannot be reached it says why, and gives up after --max-attempts tries in a
// row. Piped into `head`, it stops quietly once `head` has read enough.
//
//   node examples/client.js demo.wiki-edits
//   node examples/client.js --since 10m --count demo.wiki-edits
//   node examples/client.js demo.wiki-edits | head -n 5
//   node examples/client.js --url 'https://stream.example.org/v2/stream/a,b'
//
// Uses the `eventsource` package (v4): npm install eventsource
import { parseArgs } from 'node:util';
import { EventSource } from 'eventsource';

const USAGE = `usage: node examples/client.js [options] <topic>[,<topic>…]
       node examples/client.js [options] --url <stream URL>

  --server URL          the example server (default $STREAM_SERVER or http://127.0.0.1:6927)
  --url URL             a full stream URL instead of --server and topics
  --since TIME          start at TIME: ms since the epoch, an ISO-8601 date, or a duration ago (30s, 10m, 2h, 1d)
  --last-event-id ID    resume after the event with this id (as printed on exit)
  --count               print a count and the rate every second instead of the events
  --max-attempts N      give up (exit 1) after N connection attempts in a row fail; 0: never give up
                        (default $STREAM_MAX_ATTEMPTS or 5)
  -h, --help            this help

Exit status: 0 on Ctrl-C or when the reader of a pipe (head) closes it; 1 when the server
refuses the stream or cannot be reached --max-attempts times in a row; 2 for bad usage.`;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
/** @type {Record<string, number>} */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * @param {string} message
 * @returns {never}
 */
function usage(message) {
  console.error(`client: ${message}\n${USAGE}`);
  process.exit(2);
}

/**
 * `--since` as the server expects it: durations ago become milliseconds since
 * the epoch; anything else is passed through for the server to judge.
 * @param {string} value
 */
function sinceParam(value) {
  const m = DURATION.exec(value.trim());
  if (!m) return value;
  return String(Math.round(Date.now() - Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1)));
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        server: { type: 'string' },
        url: { type: 'string' },
        since: { type: 'string' },
        'last-event-id': { type: 'string' },
        count: { type: 'boolean', default: false },
        'max-attempts': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

/** @type {URL} */
let url;
try {
  if (values.url) {
    if (positionals.length > 0) usage('give either --url or topics, not both');
    url = new URL(values.url);
  } else {
    if (positionals.length === 0) usage('which topics? e.g. node examples/client.js my-topic');
    const server = values.server ?? process.env.STREAM_SERVER ?? 'http://127.0.0.1:6927';
    const topics = positionals.flatMap((p) => p.split(',')).filter(Boolean);
    url = new URL(
      `v2/stream/${topics.map(encodeURIComponent).join(',')}`,
      server.endsWith('/') ? server : `${server}/`,
    );
  }
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
if (values.since) url.searchParams.set('since', sinceParam(values.since));

const maxAttempts = (() => {
  const raw = values['max-attempts'] ?? process.env.STREAM_MAX_ATTEMPTS ?? '5';
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
    usage(`--max-attempts (or STREAM_MAX_ATTEMPTS) must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return n;
})();

// `node examples/client.js … | head -n 5`: once head exits, the next write
// fails with EPIPE. That is the reader saying "enough", not an error: stop quietly.
process.stdout.on('error', (err) => {
  if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EPIPE') throw err;
  source.close();
  process.exit(0);
});

let lastEventId = values['last-event-id'] ?? '';
/** Body of the last non-200 answer, which EventSource itself does not expose. */
let refusal = '';
/** Why the last connection attempt failed before any answer (refused, DNS, TLS…). */
let failure = '';
/** Connection attempts in a row that did not open a stream. */
let failedAttempts = 0;

const source = new EventSource(url, {
  fetch: async (input, init) => {
    const headers = { ...init?.headers };
    // EventSource sends Last-Event-ID on reconnects; the first connect sends ours.
    if (lastEventId !== '' && !Object.keys(headers).some((h) => h.toLowerCase() === 'last-event-id')) {
      headers['Last-Event-ID'] = lastEventId;
    }
    failure = '';
    try {
      const res = await fetch(input, { ...init, headers });
      if (res.status !== 200) refusal = await res.clone().text();
      return res;
    } catch (err) {
      failure = networkError(err);
      throw err;
    }
  },
});

let total = 0;
let connectedOnce = false;
source.addEventListener('open', () => {
  console.error(connectedOnce ? 'reconnected: resuming where the stream stopped' : `connected to ${url}`);
  connectedOnce = true;
  failedAttempts = 0;
});
source.addEventListener('message', (e) => {
  total++;
  lastEventId = e.lastEventId;
  if (!values.count) process.stdout.write(`${e.data}\n`);
});
source.addEventListener('lost', (e) => {
  const range = JSON.parse(/** @type {MessageEvent} */ (e).data);
  console.error(`warning: messages of ${range.topic}/${range.partition} were deleted by retention before being read`);
});
source.addEventListener('error', (e) => {
  // The server's `event: error` frame carries JSON; a connection error does not.
  if (e instanceof MessageEvent) {
    console.error(`server error: ${describe(String(e.data))}`);
    return;
  }
  if (source.readyState === EventSource.CLOSED) {
    const status = /** @type {{ code?: number }} */ (e).code;
    console.error(
      `the server refused the stream${status ? ` (${status})` : ''}: ${describe(refusal) || 'no reason given'}`,
    );
    stop(1);
  } else if (failure !== '') {
    failedAttempts++;
    const tries = maxAttempts === 0 ? `attempt ${failedAttempts}` : `attempt ${failedAttempts} of ${maxAttempts}`;
    if (maxAttempts !== 0 && failedAttempts >= maxAttempts) {
      console.error(`cannot connect to ${url}: ${failure} (${tries}); giving up`);
      stop(1);
    }
    console.error(`cannot connect to ${url}: ${failure} (${tries}); retrying…`);
  } else {
    console.error('connection lost: reconnecting with Last-Event-ID…');
  }
});

/**
 * A failed fetch() as a person reads it: undici hides the system error
 * (ECONNREFUSED, ENOTFOUND…) in `cause`, behind a bare "fetch failed".
 * @param {unknown} err
 */
function networkError(err) {
  const cause = /** @type {{ cause?: { code?: string, message?: string } }} */ (err)?.cause;
  if (cause?.message) return cause.message;
  if (cause?.code) return cause.code;
  return err instanceof Error ? err.message : String(err);
}

/** @param {string} text */
function describe(text) {
  try {
    const body = JSON.parse(text);
    return typeof body?.message === 'string' ? body.message : text;
  } catch {
    return text;
  }
}

if (values.count) {
  let previous = 0;
  let previousAt = Date.now();
  setInterval(() => {
    const now = Date.now();
    const rate = ((total - previous) * 1000) / (now - previousAt);
    previous = total;
    previousAt = now;
    process.stdout.write(`${new Date(now).toISOString().slice(11, 19)}  total ${total}  ${rate.toFixed(1)}/s\n`);
  }, 1000).unref();
}

/** @param {number} code */
function stop(code) {
  source.close();
  if (lastEventId !== '') console.error(`last event id (resume with --last-event-id):\n${lastEventId}`);
  process.exit(code);
}

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
