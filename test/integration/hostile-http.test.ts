// Issue 6, part 4, over HTTP: a real server (an EventStreams-like route in
// front of kafkaSse) fed fast-check's hostile inputs in every place a client
// controls: the Last-Event-ID header, the lastEventId query parameter, the
// assignments (path and a JSON query parameter), ?since=, Accept, X-Request-ID
// and topic names, with oversized and deeply nested values and huge partition
// lists. The server never crashes and never answers 5xx; every refusal is a
// 4xx with a small JSON error and no stack trace; a valid request gets a
// proper stream (closed at once). Afterwards every consumer is released.
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
import { ERROR_CODES, openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, startBridge } from '../helpers/bridge-server.ts';
import * as arb from '../helpers/hostile-arbitraries.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/process-stats.ts';
import { knob, recordFigures } from '../helpers/soak.ts';

const RUNS = knob('HOSTILE_HTTP_RUNS', 1200, 8000);
/** Below Node's 16 KiB limit for the request head, so the library (not Node's parser) judges the input. */
const MAX_FIELD = 12_000;
const STREAM_TYPES = new Set([
  'text/event-stream; charset=utf-8',
  'application/x-ndjson; charset=utf-8',
  'application/json; charset=utf-8',
]);

/** C0 controls except tab, and DEL: what Node's header parser refuses. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROLS_BUT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/g;

/** What a client's bytes become in a Node header: UTF-8 read as latin1, controls dropped, capped. */
function asHeader(value: string): string {
  return Buffer.from(value.slice(0, MAX_FIELD), 'utf8')
    .toString('latin1')
    .replace(CONTROLS_BUT_TAB, '')
    .slice(0, MAX_FIELD);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** A URL component from any string (lone surrogates made U+FFFD first, as a browser would), capped. */
function asQuery(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\ufffd'))
    .slice(0, MAX_FIELD)
    .replace(/%[0-9A-F]?$/, '');
}

/** JSON text of a generated value; when too deep for JSON.stringify, deep text of the same kind. */
function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return `${'['.repeat(5000)}${']'.repeat(5000)}`;
  }
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

describe('hostile input, property-based, over HTTP', function () {
  this.timeout(120_000 + RUNS * 8 * 20);
  const real = uniqueTopic('hostile-real');
  const wide = uniqueTopic('hostile-wide');
  const secret = uniqueTopic('hostile-secret');
  const KNOWN = [real, wide, secret];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let bridge: BridgeServer | undefined;
  const statuses = new Map<string, Map<number, number>>();

  before(async function () {
    this.timeout(60_000);
    await createTopic(real, 2);
    await createTopic(wide, 8);
    await createTopic(secret, 1);
    await produce(real, [{ value: '{"n":0}', partition: 0 }]);
    bridge = await startBridge((req) => {
      // The application's part: read what the client asked for, never throwing.
      const url = new URL(req.url ?? '/', 'http://localhost');
      let topics = url.pathname.replace(/^\/stream\/?/, '');
      try {
        topics = decodeURIComponent(topics);
      } catch {
        // Keep the raw text: kafkaSse judges it.
      }
      let assignments: unknown = topics;
      const assign = url.searchParams.get('assign');
      if (assign !== null) {
        try {
          assignments = JSON.parse(assign);
        } catch {
          assignments = assign;
        }
      }
      return {
        assignments: assignments as never,
        atTimestamp: url.searchParams.get('since'),
        options: baseOptions({ allowedTopics: [real, wide], maxPartitions: 4 }),
      };
    });
  });

  after(async () => {
    agent.destroy();
    await bridge?.close();
    const figures: Record<string, string | number> = {};
    for (const [input, byStatus] of statuses) {
      figures[input] = [...byStatus].map(([s, n]) => `${s}×${n}`).join(' ');
    }
    recordFigures('hostile HTTP: statuses per input', figures);
  });

  function request(path: string, headers: Record<string, string>): Promise<Answer> {
    const server = bridge as BridgeServer;
    return new Promise((resolve, reject) => {
      const req = http.get(`${server.url}${path}`, { agent, headers: { Accept: 'text/event-stream', ...headers } });
      req.on('error', reject);
      req.on('response', (res) => {
        const contentType = String(res.headers['content-type'] ?? '');
        if (res.statusCode === 200) {
          // A valid request: the stream opened. Close it; the consumer must be released.
          req.destroy();
          resolve({ status: 200, contentType, body: '' });
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType, body }));
        res.on('error', reject);
      });
    });
  }

  /** The contract for any client input. */
  async function judge(input: string, path: string, headers: Record<string, string>): Promise<void> {
    const a = await request(path, headers);
    const byStatus = statuses.get(input) ?? new Map<number, number>();
    byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    statuses.set(input, byStatus);
    const what = `${a.status} for ${path.slice(0, 200)} ${JSON.stringify(headers).slice(0, 300)}: ${a.body.slice(0, 300)}`;
    assert.ok(a.status < 500, `a server error: ${what}`);
    if (a.status === 200) {
      assert.ok(STREAM_TYPES.has(a.contentType), `stream content type ${a.contentType}`);
      return;
    }
    assert.ok(a.status >= 400, what);
    assert.equal(a.contentType, 'application/json; charset=utf-8', what);
    const body = JSON.parse(a.body) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'name', 'status', 'statusCode'], what);
    assert.equal(body.status, a.status, what);
    assert.ok((ERROR_CODES as readonly string[]).includes(body.code as string), what);
    assert.ok(typeof body.message === 'string' && body.message.length <= 300, `a long message: ${what}`);
    assert.ok(!/\n\s+at |node_modules|\.ts:\d/.test(a.body), `a stack trace: ${what}`);
  }

  /** Mostly a topic that is not allowed (refused before any consumer exists), sometimes one that streams. */
  const basePath = fc.oneof(
    { weight: 19, arbitrary: fc.constant(`/stream/${secret}`) },
    { weight: 1, arbitrary: fc.constant(`/stream/${real}`) },
  );

  const property = (name: string, arbitrary: fc.Arbitrary<[string, Record<string, string>]>) =>
    it(`${name}: a 4xx JSON error or a valid stream, never a 5xx (${RUNS} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(arbitrary, async ([path, headers]) => judge(name, path, headers)),
        { numRuns: RUNS },
      );
      recordFigures(`hostile HTTP: ${name}`, { cases: RUNS, answers: JSON.stringify([...(statuses.get(name) ?? [])]) });
    });

  property(
    'Last-Event-ID',
    fc.tuple(
      fc.constant(`/stream/${real}`),
      arb.lastEventId(KNOWN).map((id) => ({ 'Last-Event-ID': asHeader(id) })),
    ),
  );
  property(
    'lastEventId query',
    fc.tuple(
      fc.oneof(arb.lastEventId(KNOWN).map(asQuery), arb.percentBytes).map((q) => `/stream/${real}?lastEventId=${q}`),
      fc.constant({}),
    ),
  );
  property(
    'assignments',
    fc.tuple(
      arb.assignments(KNOWN).map((a) => `/stream/x?assign=${asQuery(jsonText(a))}`),
      fc.constant({}),
    ),
  );
  property(
    'topic names',
    fc.tuple(
      fc
        .oneof(
          arb.topicName(KNOWN).map(asQuery),
          fc.array(arb.topicName(KNOWN), { maxLength: 4 }).map((a) => asQuery(a.join(','))),
          arb.percentBytes,
        )
        .map((t) => `/stream/${t}`),
      fc.constant({}),
    ),
  );
  property(
    'since',
    fc.tuple(
      fc.tuple(basePath, arb.since).map(([p, s]) => `${p}?since=${asQuery(s)}`),
      fc.constant({}),
    ),
  );
  property(
    'Accept',
    fc.tuple(
      basePath,
      arb.accept.map((a) => ({ Accept: asHeader(a) })),
    ),
  );
  property(
    'X-Request-ID',
    fc.tuple(
      basePath,
      arb.requestId.map((id) => ({ 'X-Request-ID': asHeader(id) })),
    ),
  );

  it('oversized and deeply nested values, huge partition lists: refused with a 4xx, the server goes on', async () => {
    const nested = '['.repeat(MAX_FIELD - 10);
    const many = JSON.stringify(Array.from({ length: 200 }, (_, p) => ({ topic: real, partition: p, offset: 0 })));
    const cases: [string, Record<string, string>, number][] = [
      [`/stream/${real}`, { 'Last-Event-ID': nested }, 400],
      [`/stream/${real}?lastEventId=${asQuery(nested)}`, {}, 400],
      [`/stream/x?assign=${asQuery(`${'['.repeat(3000)}${']'.repeat(3000)}`)}`, {}, 400],
      [`/stream/${real}`, { 'Last-Event-ID': many }, 400],
      [
        `/stream/${real}`,
        { 'Last-Event-ID': JSON.stringify([{ topic: real, partition: 2 ** 31 - 1, offset: 0 }]) },
        400,
      ],
      [`/stream/${wide}`, {}, 400],
      [`/stream/x?assign=${asQuery(JSON.stringify([{ topic: real, partition: 5, offset: 0 }]))}`, {}, 400],
      [`/stream/${real}?since=${'9'.repeat(5000)}`, {}, 400],
      [`/stream/${real},${real}`, {}, 400],
    ];
    for (const [path, headers, status] of cases) {
      const a = await request(path, headers);
      assert.equal(a.status, status, `${path.slice(0, 80)}: ${a.body}`);
      await judge('oversized', path, headers);
    }
    // Past Node's own 16 KiB limit for the request head, Node's HTTP parser answers (431) before kafkaSse runs.
    const tooBig = await request(`/stream/${real}`, { 'Last-Event-ID': 'x'.repeat(20_000) }).catch(() => undefined);
    if (tooBig) assert.equal(tooBig.status, 431);
  });

  it('releases every consumer and stays up', async () => {
    await waitFor(() => openConsumerCount() === 0, 20_000, 'every consumer released');
    await Promise.all((bridge as BridgeServer).streams);
    const ok = await request(`/stream/${real}`, {});
    assert.equal(ok.status, 200);
    await waitFor(() => openConsumerCount() === 0, 10_000, 'the last consumer released');
    recordFigures('hostile HTTP: total', {
      requests: (bridge as BridgeServer).streams.length,
      consumersOpenAfter: openConsumerCount(),
    });
  });
});
