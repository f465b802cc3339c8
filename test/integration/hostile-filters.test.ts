// Issue 14, rows 1, 2 and 8, against the real broker and a real HTTP server:
// the client regexes that passed the old vetting are refused with 400
// INVALID_FILTER; the ones that backtrack on V8 are accepted and run on RE2
// without stalling the event loop; one client's streams share a regex budget;
// globs on huge values cost nothing; and an NDJSON message cannot forge a
// control line.
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { DeserializedMessage, KafkaMessage } from '../../index.ts';
import {
  compileFilter,
  KafkaSseError,
  kafkaSse,
  openConsumerCount,
  parseFilterQuery,
  StreamLimiter,
} from '../../index.ts';
import { writeJsonError } from '../../lib/http-response.ts';
import { NDJSON_CONTROL_KEY } from '../../lib/sse-format.ts';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { listen, type TestServer } from '../helpers/http.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { recordFigures } from '../helpers/soak.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Worst event-loop delay while `work` runs. Before this change the same
 * scenarios stalled the loop for 0.8 to 5.8 s; the bound is generous because
 * this machine is shared (a busy neighbour alone can cost tens of ms).
 */
const MAX_LOOP_DELAY_MS = 1000;

async function loopDelayDuring(work: () => Promise<void>): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    await work();
  } finally {
    h.disable();
  }
  return h.max / 1e6;
}

const q = (values: string[]) => values.map((v) => `filter[title]=${encodeURIComponent(v)}`).join('&');

describe('hostile filters: against the broker', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;
  let server: TestServer | undefined;
  const clients: StreamClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    server = undefined;
    await closeBridge(bridge);
    bridge = undefined;
    await waitFor(() => openConsumerCount() === 0, 5000, 'every consumer released');
  });

  it('row 1: answers 400 INVALID_FILTER (JSON) to each regex that passed the old vetting, before any consumer', async () => {
    bridge = await startBridge(() => ({
      assignments: ['no-such-topic-for-hostile-filters'],
      options: baseOptions({ queryFilters: true }),
    }));
    const cases: [string, RegExp][] = [
      ['/^(a|aa){0000000000000000000001,}$/', /repetition count 000000000000 with leading zeros/],
      ['/^(\\u{1,}){1,}$/', /\\u\{…\}, which needs the u flag/],
      ['/^(\\p{1,}){1,}$/', /\\p, which needs the u flag/],
      ['/(a)\\1/', /backreference/],
      ['/x(?=y)/', /lookahead or lookbehind/],
      ['/.{500}x/', /too large for the matcher/],
      ['/\\p{L}{20}x/u', /too large for the matcher/],
      ['/a{1001}/', /more than 1000 times/],
    ];
    let consumers = 0;
    for (const [regex, message] of cases) {
      const res = await getJson(`${bridge.url}/?${q([regex])}`);
      consumers = Math.max(consumers, openConsumerCount());
      assert.equal(res.status, 400, regex);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const body = res.body as { name: string; code: string; message: string; status: number };
      assert.equal(body.code, 'INVALID_FILTER', regex);
      assert.equal(body.name, 'InvalidFilterError');
      assert.equal(body.status, 400);
      assert.match(body.message, message);
      assert.ok(!/RE2|re2\.node|at [A-Za-z]+ \(/.test(body.message) || /\(RE2\)/.test(body.message), body.message);
    }
    assert.equal(consumers, 0, 'no consumer was created for a refused filter');
    await bridge.settled();
  });

  it('row 1: the regexes that backtrack on V8 run on RE2 without stalling the loop (1 KB values)', async () => {
    const topic = uniqueTopic('hostile-regex');
    await createTopic(topic, 1);
    bridge = await startBridge(() => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({ queryFilters: true }),
    }));
    // /^(a|aa){1,}$/ cost 0.8 s on 35 characters on V8; /\d*\d*\d*\d*x/ is polynomial (95 s on 1,024).
    const client = await openStream(`${bridge.url}/?${q(['/^(a|aa)+$/', '/^\\d*\\d*\\d*\\d*x$/', '/(x+x+)+y/'])}`);
    clients.push(client);
    assert.equal(client.status, 200);
    const hostile = [`${'a'.repeat(1000)}!`, '1'.repeat(1000), 'x'.repeat(1000)];
    const delay = await loopDelayDuring(async () => {
      await produce(topic, [
        ...Array.from({ length: 30 }, (_, i) => ({ value: JSON.stringify({ n: i, title: hostile[i % 3] }) })),
        { value: JSON.stringify({ n: 30, title: 'aaaa' }) },
      ]);
      await client.until(() => client.messages().length === 1, 20_000, 'the one matching message');
    });
    assert.deepEqual(
      client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [30],
    );
    recordFigures('hostile regexes over HTTP', { loopDelayMs: Number(delay.toFixed(1)) });
    assert.ok(delay < MAX_LOOP_DELAY_MS, `the event loop stalled ${delay.toFixed(0)} ms`);
  });

  it('row 2: one client’s streams share a regex budget (429 past it), and globs on 64 KB / 900 KB values cost nothing', async () => {
    const topic = uniqueTopic('hostile-budget');
    await createTopic(topic, 1);
    const limiter = new StreamLimiter();
    // What a server (or the session) does: compile the client's filter, admit its regexes, stream.
    server = await listen((req, res) => {
      let filter: ReturnType<typeof compileFilter>;
      try {
        filter = compileFilter(parseFilterQuery(req.url ?? ''));
      } catch (err) {
        if (!(err instanceof KafkaSseError)) throw err;
        writeJsonError(res, err.toJSON(), {});
        return;
      }
      const admission = limiter.admitRegexes(req, filter);
      if (!admission.ok) {
        writeJsonError(res, admission.error.toJSON(), {}, admission.error.retryAfterSeconds);
        return;
      }
      void kafkaSse(req, res, [{ topic, partition: 0, offset: 0 }], baseOptions({ filter })).finally(admission.release);
    });
    const eight = q(Array.from({ length: 8 }, (_, i) => `/^(a|aa)+${i}$/`));
    for (let i = 0; i < 4; i++) {
      const c = await openStream(`${server.url}/?${eight}`);
      clients.push(c);
      assert.equal(c.status, 200);
    }
    const refused = await getJson(`${server.url}/?${eight}`);
    assert.equal(refused.status, 429);
    assert.equal((refused.body as { code: string }).code, 'TOO_MANY_STREAMS');
    assert.match((refused.body as { message: string }).message, /already hold 32 regular expressions/);
    assert.equal(refused.headers['retry-after'], '5');

    // Ten globs of 1 KB (the 15 cost 0.28 s on 64 KB, 3.6 s on 1 MB) on a fifth stream.
    const part = `${'a'.repeat(509)}b${'a'.repeat(509)}`;
    const globs = Array.from({ length: 10 }, (_, i) => `filter[body]=*${part}${i}*`).join('&');
    const globClient = await openStream(`${server.url}/?${globs}&filter[n]=-1,0,1,2`);
    clients.push(globClient);
    assert.equal(globClient.status, 200);
    const delay = await loopDelayDuring(async () => {
      await produce(topic, [
        { value: JSON.stringify({ n: 0, title: `${'a'.repeat(1000)}!`, body: 'a'.repeat(65_536) }) },
        { value: JSON.stringify({ n: 1, title: `${'a'.repeat(1000)}!`, body: 'a'.repeat(900_000) }) },
        // The first glob matches; a later one would not (one glob test on this value
        // already uses most of maxMatchWorkPerMessage: 1,022 characters × a 1,020-character part).
        { value: JSON.stringify({ n: 2, title: 'aa7', body: `x${part}0x` }) },
      ]);
      await globClient.until(() => globClient.messages().length === 1, 20_000, 'the glob match');
      await Promise.all(clients.slice(0, 4).map((c) => c.until(() => c.messages().length === 1, 20_000, 'aa7')));
    });
    assert.deepEqual(
      globClient.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [2],
    );
    recordFigures('regex budget per key', { loopDelayMs: Number(delay.toFixed(1)) });
    assert.ok(delay < MAX_LOOP_DELAY_MS, `the event loop stalled ${delay.toFixed(0)} ms`);
    // Closing a stream gives its regexes back.
    clients[0]?.close();
    await waitFor(() => limiter.regexesFor('127.0.0.1') === 24, 5000, 'the closed stream released its regexes');
    const again = await openStream(`${server.url}/?${eight}`);
    clients.push(again);
    assert.equal(again.status, 200);
  });

  it('row 8: an NDJSON message cannot forge a control line, whatever the deserializer returns', async () => {
    const topic = uniqueTopic('hostile-ndjson');
    await createTopic(topic, 1);
    const forgedError = JSON.stringify({
      [NDJSON_CONTROL_KEY]: 'error',
      data: { name: 'KafkaSseError', code: 'INTERNAL', message: 'forged', status: 500 },
    });
    const oldForgery = '{"_error":{"name":"KafkaSseError","code":"INTERNAL","message":"forged","status":500}}';
    await produce(topic, [{ value: forgedError }, { value: oldForgery }, { value: '{"n":"fail here"}' }]);
    const deserializers: Record<string, (m: KafkaMessage) => DeserializedMessage> = {
      // KafkaSSE style: the parsed payload, nothing added.
      parsed: (m) => ({ ...m, message: JSON.parse(String(m.value)) }),
      // The raw payload as it is.
      raw: (m) => ({ ...m, message: String(m.value) }),
    };
    bridge = await startBridge((req) => ({
      assignments: [{ topic, partition: 0, offset: 0 }],
      options: baseOptions({
        ...(req.url === '/default' ? {} : { deserializer: deserializers[(req.url ?? '/').slice(1)] }),
        // A real control line to compare with: the third message makes the filterer throw.
        filterer: (m) => {
          if (String(m.value).includes('fail here')) throw new Error('boom');
          return true;
        },
      }),
    }));
    for (const kind of ['parsed', 'raw', 'default']) {
      const client = await openStream(`${bridge.url}/${kind}`, { Accept: 'application/x-ndjson' });
      clients.push(client);
      assert.equal(client.status, 200);
      await client.ended;
      const lines = client
        .raw()
        .split('\n')
        .filter((l) => l !== '');
      assert.equal(lines.length, 3, `${kind}: ${client.raw()}`);
      const controls = lines.filter((l) => l.startsWith('{"$kafkaSse":') && !l.startsWith('{"$kafkaSse":"message",'));
      assert.equal(controls.length, 1, `${kind}: only the real error is a control line`);
      const real = JSON.parse(controls[0] as string) as { $kafkaSse: string; data: { code: string } };
      assert.equal(real.$kafkaSse, 'error');
      assert.equal(real.data.code, 'FILTER_FAILED');
      assert.equal(lines.at(-1), controls[0], 'and it is the last line');
      // The forgeries arrive as messages a reader gets back intact.
      const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
      if (kind === 'raw') {
        assert.equal(first, forgedError, 'a raw payload is a JSON string');
      } else {
        assert.equal(first.$kafkaSse, 'message');
        assert.equal((first.data as Record<string, unknown>).$kafkaSse, 'error');
        assert.equal(((first.data as { data: { message: string } }).data as { message: string }).message, 'forged');
      }
      assert.ok(!lines.includes(forgedError), `${kind}: no line is byte-identical to the forged control`);
      assert.ok(!lines[1]?.startsWith('{"$kafkaSse":'), `${kind}: the old {"_error":…} forgery is a plain message`);
    }
  });
});
