// The example server (examples/server-app.js) seen from its clients: streams,
// ?since=, NDJSON, the per-IP limit, CORS, /v2/topics, /health, the page,
// the command-line client and the shutdown.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createServer, type ExampleServer, type ServerConfig } from '../../examples/server-app.js';
import { openConsumerCount } from '../../index.ts';
import { request } from '../helpers/http.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { getJson, openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function json(n: number): string {
  return JSON.stringify({ n });
}

function messagesOf(client: StreamClient): number[] {
  return client.messages().map((e) => (JSON.parse(e.data) as { n: number }).n);
}

describe('example server (examples/server-app.js)', function () {
  this.timeout(30_000);
  let app: ExampleServer | undefined;
  let url = '';
  const clients: StreamClient[] = [];
  const children: ChildProcess[] = [];

  async function start(config: ServerConfig = {}): Promise<string> {
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }), retryMs: 200, ...config });
    url = await app.listen(0);
    return url;
  }

  async function stream(path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const client = await openStream(`${url}${path}`, headers);
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const client of clients.splice(0)) client.close();
    await app?.close();
    app = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  it('streams a topic as SSE from the end, with the retry hint and resumable ids', async () => {
    const topic = uniqueTopic('example-live');
    await createTopic(topic, 2);
    await start();
    const client = await stream(`/v2/stream/${topic}`);
    assert.equal(client.status, 200);
    assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
    await client.until(() => client.raw().includes('retry: 200'), 5000, 'the retry hint');
    await produce(
      topic,
      [0, 1, 2, 3].map((n) => ({ value: json(n), partition: n % 2 })),
    );
    await client.until(() => client.messages().length === 4, 10_000, 'four messages');
    assert.deepEqual(
      messagesOf(client).sort((a, b) => a - b),
      [0, 1, 2, 3],
    );
    const lastId = JSON.parse(client.messages().at(-1)?.id ?? '[]');
    assert.deepEqual(lastId, [
      { topic, partition: 0, offset: 2 },
      { topic, partition: 1, offset: 2 },
    ]);
  });

  it('starts at ?since= given as epoch milliseconds or as an ISO-8601 date', async () => {
    const topic = uniqueTopic('example-since');
    await createTopic(topic, 1);
    const now = Date.now();
    await produce(topic, [
      { value: json(0), timestamp: now - 3 * 3_600_000 },
      { value: json(1), timestamp: now - 2 * 3_600_000 },
      { value: json(2), timestamp: now - 3_600_000 },
      { value: json(3), timestamp: now - 60_000 },
    ]);
    await start();
    const byMs = await stream(`/v2/stream/${topic}?since=${now - 2 * 3_600_000}`);
    await byMs.until(() => byMs.messages().length === 3, 10_000, 'three messages since 2 h ago');
    assert.deepEqual(messagesOf(byMs), [1, 2, 3]);
    const iso = new Date(now - 90 * 60_000).toISOString();
    const byIso = await stream(`/v2/stream/${topic}?since=${encodeURIComponent(iso)}`);
    await byIso.until(() => byIso.messages().length === 2, 10_000, 'two messages since 90 min ago');
    assert.deepEqual(messagesOf(byIso), [2, 3]);
  });

  it('answers 400 with a JSON message for a ?since= that is not a time', async () => {
    const topic = uniqueTopic('example-bad-since');
    await createTopic(topic, 1);
    await start();
    for (const since of ['yesterday', '-5', '1e12', '2024-13-45', '12:00']) {
      const res = await getJson(`${url}/v2/stream/${topic}?since=${encodeURIComponent(since)}`);
      assert.equal(res.status, 400, `since=${since}`);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      const body = res.body as { code: string; message: string; status: number };
      assert.equal(body.code, 'INVALID_TIMESTAMP');
      assert.equal(body.status, 400);
      assert.match(body.message, /\?since must be milliseconds since the epoch or an ISO-8601 date/);
    }
  });

  it('writes NDJSON for Accept: application/json', async () => {
    const topic = uniqueTopic('example-ndjson');
    await createTopic(topic, 1);
    await produce(topic, [{ value: json(0) }, { value: json(1) }]);
    await start();
    const client = await stream(`/v2/stream/${topic}?since=0`, { Accept: 'application/json' });
    assert.equal(client.headers['content-type'], 'application/json; charset=utf-8');
    await client.until(() => client.lines.length === 2, 10_000, 'two lines');
    assert.deepEqual(
      client.lines.map((l) => (l as { n: number }).n),
      [0, 1],
    );
  });

  it('resumes from Last-Event-ID (header or lastEventId query), replacing ?since=', async () => {
    const topic = uniqueTopic('example-resume');
    await createTopic(topic, 1);
    await produce(
      topic,
      [0, 1, 2, 3, 4].map((n) => ({ value: json(n) })),
    );
    await start();
    const id = JSON.stringify([{ topic, partition: 0, offset: 3 }]);
    const byHeader = await stream(`/v2/stream/${topic}?since=0`, { 'Last-Event-ID': id });
    await byHeader.until(() => byHeader.messages().length === 2, 10_000, 'two messages after the id');
    assert.deepEqual(messagesOf(byHeader), [3, 4]);
    const byQuery = await stream(`/v2/stream/${topic}?lastEventId=${encodeURIComponent(id)}`);
    await byQuery.until(() => byQuery.messages().length === 2, 10_000, 'two messages after the id');
    assert.deepEqual(messagesOf(byQuery), [3, 4]);
  });

  it('answers 429 with Retry-After and JSON past MAX_STREAMS_PER_IP, and accepts again once a stream closes', async () => {
    const topic = uniqueTopic('example-limit');
    await createTopic(topic, 1);
    await start({ maxStreamsPerIp: 2 });
    const first = await stream(`/v2/stream/${topic}`);
    await stream(`/v2/stream/${topic}`);
    const refused = await getJson(`${url}/v2/stream/${topic}`);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '10');
    assert.equal(refused.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(refused.body, {
      name: 'ExampleServerError',
      code: 'TOO_MANY_STREAMS',
      message: 'At most 2 concurrent streams per client; close one first',
      status: 429,
    });
    first.close();
    await waitFor(() => app?.openStreams() === 1, 10_000, 'the closed stream to be released');
    const again = await stream(`/v2/stream/${topic}`);
    assert.equal(again.status, 200);
  });

  it('answers CORS preflights for EventSource (Last-Event-ID allowed, origin echoed with credentials)', async () => {
    const topic = uniqueTopic('example-cors');
    await createTopic(topic, 1);
    await start({ corsOrigins: ['https://app.example'] });
    const preflight = await request(`${url}/v2/stream/${topic}`, 'OPTIONS', {
      Origin: 'https://app.example',
      'Access-Control-Request-Method': 'GET',
      'Access-Control-Request-Headers': 'last-event-id',
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
    assert.match(String(preflight.headers['access-control-allow-headers']), /(^|, )Last-Event-ID(,|$)/);
    assert.match(String(preflight.headers['access-control-allow-methods']), /GET/);
    assert.match(String(preflight.headers.vary), /Origin/);
    assert.ok(Number(preflight.headers['access-control-max-age']) > 0);

    const other = await request(`${url}/v2/stream/${topic}`, 'OPTIONS', {
      Origin: 'https://evil.example',
      'Access-Control-Request-Method': 'GET',
    });
    assert.equal(other.status, 403);
    assert.equal(other.headers['access-control-allow-origin'], undefined);

    const allowed = await stream(`/v2/stream/${topic}`, { Origin: 'https://app.example' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
    const foreign = await stream(`/v2/stream/${topic}`, { Origin: 'https://evil.example' });
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });

  it('allows any origin, without credentials, when CORS_ORIGINS is *', async () => {
    const topic = uniqueTopic('example-cors-any');
    await createTopic(topic, 1);
    await start({ corsOrigins: ['*'] });
    const client = await stream(`/v2/stream/${topic}`, { Origin: 'https://anywhere.example' });
    assert.equal(client.headers['access-control-allow-origin'], '*');
    assert.equal(client.headers['access-control-allow-credentials'], undefined);
    const refused = await getJson(`${url}/v2/stream/${topic}?since=soon`, { Origin: 'https://anywhere.example' });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers['access-control-allow-origin'], '*', 'errors are readable cross-origin too');
  });

  it('lists only the topics that exist and are allowed at /v2/topics', async () => {
    const a = uniqueTopic('example-topics-a');
    const b = uniqueTopic('example-topics-b');
    await createTopic(a, 3);
    await createTopic(b, 1);
    await start({ allowedTopics: [a, 'example-topic-that-does-not-exist'] });
    const res = await getJson(`${url}/v2/topics`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { topics: [{ name: a, partitions: 3 }] });
    const refused = await getJson(`${url}/v2/stream/${b}`);
    assert.equal(refused.status, 404);
    await app?.close();

    await start();
    const all = (await getJson(`${url}/v2/topics`)).body as { topics: { name: string; partitions: number }[] };
    assert.deepEqual(
      all.topics.filter((t) => t.name === a || t.name === b),
      [
        { name: a, partitions: 3 },
        { name: b, partitions: 1 },
      ].sort((x, y) => x.name.localeCompare(y.name)),
    );
    assert.ok(
      all.topics.every((t) => !t.name.startsWith('__')),
      'internal topics are not listed',
    );
  });

  // Issue 14, row 7: the public answer had the broker list and librdkafka's error text.
  it('reports reachability and latency only at /health; the details only with the admin token', async () => {
    const topic = uniqueTopic('example-health');
    await createTopic(topic, 1);
    await start({ adminToken: 'health-admin-token' });
    await stream(`/v2/stream/${topic}`);
    await stream(`/v2/stream/${topic}`, { Accept: 'application/json' });
    const res = await getJson(`${url}/health`);
    assert.equal(res.status, 200);
    const body = res.body as { status: string; kafka: { reachable: boolean; latencyMs: number } };
    assert.deepEqual(Object.keys(body).sort(), ['kafka', 'status']);
    assert.deepEqual(Object.keys(body.kafka).sort(), ['latencyMs', 'reachable']);
    assert.equal(body.status, 'ok');
    assert.equal(body.kafka.reachable, true);
    assert.ok(Number.isInteger(body.kafka.latencyMs));
    assert.ok(!res.text.includes(brokers()), 'no broker address');
    assert.match(String(res.headers.vary), /Authorization/);
    for (const authorization of ['Bearer wrong', 'health-admin-token', 'Basic aGVhbHRoLWFkbWluLXRva2Vu']) {
      const other = await getJson(`${url}/health`, { Authorization: authorization });
      assert.deepEqual(other.body, {
        ...body,
        kafka: { ...body.kafka, latencyMs: (other.body as typeof body).kafka.latencyMs },
      });
    }
    const admin = await getJson(`${url}/health`, { Authorization: 'Bearer health-admin-token' });
    const details = admin.body as {
      kafka: { reachable: boolean; brokers: string; brokerCount: number };
      streams: { open: number };
    };
    assert.equal(details.kafka.reachable, true);
    assert.equal(details.kafka.brokers, brokers());
    assert.equal(details.kafka.brokerCount, 1);
    assert.equal(details.streams.open, 2);
  });

  it('answers 503 at /health when the broker cannot be reached, without librdkafka’s text unless admin', async () => {
    await start({ brokers: '127.0.0.1:1', adminToken: 'health-admin-token' });
    const res = await getJson(`${url}/health`);
    assert.equal(res.status, 503);
    const body = res.body as { status: string; kafka: { reachable: boolean } };
    assert.equal(body.status, 'unavailable');
    assert.equal(body.kafka.reachable, false);
    assert.deepEqual(Object.keys(body.kafka).sort(), ['latencyMs', 'reachable']);
    assert.ok(!/127\.0\.0\.1:1|cannot reach|Local|Broker|transport/i.test(res.text), res.text);
    const admin = await getJson(`${url}/health`, { Authorization: 'Bearer health-admin-token' });
    assert.equal(admin.status, 503);
    const details = admin.body as { kafka: { brokers: string; error: string } };
    assert.equal(details.kafka.brokers, '127.0.0.1:1');
    assert.match(details.kafka.error, /cannot reach Kafka/);
  });

  it('serves the live page and its assets', async () => {
    await start();
    const page = await request(`${url}/`, 'GET');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.match(page.text, /<script type="module" src="app.js">/);
    const script = await request(`${url}/app.js`, 'GET');
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    const missing = await getJson(`${url}/../package.json`);
    assert.equal(missing.status, 404);
  });

  it('on close(), ends every open stream, releases every consumer, and stops listening', async () => {
    const topic = uniqueTopic('example-shutdown');
    await createTopic(topic, 2);
    const consumersBefore = openConsumerCount();
    await start();
    const sse = await stream(`/v2/stream/${topic}`);
    const ndjson = await stream(`/v2/stream/${topic}`, { Accept: 'application/json' });
    await sse.until(() => sse.raw().startsWith(':ok'), 5000, ':ok');
    assert.equal(app?.openStreams(), 2);
    // Both read the topic from its end: they share one consumer (lib/shared-tail.ts).
    assert.equal(openConsumerCount(), consumersBefore + 1);
    await app?.close();
    await Promise.all([sse.ended, ndjson.ended]);
    // A clean end (the client comes back later), not an error.
    assert.equal(sse.events.filter((e) => e.event === 'error').length, 0);
    assert.equal(app?.openStreams(), 0);
    assert.equal(openConsumerCount(), consumersBefore);
    await assert.rejects(request(`${url}/health`, 'GET'), /ECONNREFUSED/);
  });

  it('examples/client.js prints every event once across a dropped connection', async () => {
    const topic = uniqueTopic('example-client');
    await createTopic(topic, 2);
    await start();
    const child = spawn(process.execPath, ['examples/client.js', '--server', url, topic], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const printed = () =>
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { n: number }).n);
    await waitFor(() => stderr.includes('connected to'), 10_000, 'the client to connect');
    await produce(
      topic,
      [0, 1, 2, 3].map((n) => ({ value: json(n), partition: n % 2 })),
    );
    await waitFor(() => printed().length === 4, 10_000, 'four events printed');
    // A network failure, as the client sees it.
    app?.server.closeAllConnections();
    await waitFor(() => stderr.includes('reconnected'), 10_000, 'the client to reconnect');
    await produce(
      topic,
      [4, 5, 6, 7].map((n) => ({ value: json(n), partition: n % 2 })),
    );
    await waitFor(() => printed().length >= 8, 10_000, 'eight events printed');
    assert.deepEqual(
      printed().sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(stderr, /last event id \(resume with --last-event-id\):\n\[\{"topic"/);
  });

  /** Runs a shell command line (a real pipeline, as a user types it) and collects its output. */
  function shell(line: string, env: Record<string, string> = {}) {
    const child = spawn('bash', ['-c', line], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    children.push(child);
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out.stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      out.stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, out, exited };
  }

  /** A port nothing listens on: listened on, then closed. */
  async function closedPort(): Promise<number> {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return port;
  }

  it('examples/client.js piped into head stops quietly (status 0, no EPIPE trace) once head has read enough', async () => {
    const topic = uniqueTopic('example-client-head');
    await createTopic(topic, 1);
    await start();
    // PIPESTATUS[0]: the client's own exit status, not head's.
    const run = shell(
      `node examples/client.js --server ${url} ${topic} | head -n 3; echo "client=\${PIPESTATUS[0]}" >&2`,
    );
    await waitFor(() => run.out.stderr.includes('connected to'), 10_000, 'the client to connect');
    await produce(
      topic,
      [0, 1, 2, 3, 4].map((n) => ({ value: json(n) })),
    );
    await waitFor(() => run.out.stdout.split('\n').filter(Boolean).length === 3, 10_000, 'head to print three lines');
    // head has exited; the next events meet a closed pipe.
    await produce(
      topic,
      [5, 6, 7, 8, 9].map((n) => ({ value: json(n) })),
    );
    assert.equal(await run.exited, 0);
    assert.deepEqual(
      run.out.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { n: number }).n),
      [0, 1, 2],
    );
    assert.match(run.out.stderr, /^client=0$/m, run.out.stderr);
    assert.doesNotMatch(run.out.stderr, /EPIPE|Error|at /, 'no stack trace');
    await waitFor(() => app?.openStreams() === 0, 10_000, 'the client to have closed its stream');
  });

  it('examples/client.js names the URL and the error when it cannot connect, and gives up after --max-attempts', async function () {
    this.timeout(20_000);
    const port = await closedPort();
    const target = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const run = shell(`node examples/client.js --server ${target} --max-attempts 2 some-topic`);
    const status = await run.exited;
    assert.equal(status, 1);
    const lines = run.out.stderr.trim().split('\n');
    assert.deepEqual(lines, [
      `cannot connect to ${target}/v2/stream/some-topic: connect ECONNREFUSED 127.0.0.1:${port} (attempt 1 of 2); retrying…`,
      `cannot connect to ${target}/v2/stream/some-topic: connect ECONNREFUSED 127.0.0.1:${port} (attempt 2 of 2); giving up`,
    ]);
    assert.equal(run.out.stdout, '');
    // EventSource's own wait between attempts (3 s): bounded, not a tight loop.
    assert.ok(Date.now() - started >= 2500, 'waited between attempts');
  });

  it('examples/client.js takes the attempt limit from STREAM_MAX_ATTEMPTS, and refuses a bad one', async () => {
    const port = await closedPort();
    const once = shell(`node examples/client.js --server http://127.0.0.1:${port} t`, { STREAM_MAX_ATTEMPTS: '1' });
    assert.equal(await once.exited, 1);
    assert.match(once.out.stderr, /\(attempt 1 of 1\); giving up\n$/);
    const bad = shell(`node examples/client.js --server http://127.0.0.1:${port} --max-attempts 2.5 t`);
    assert.equal(await bad.exited, 2);
    assert.match(
      bad.out.stderr,
      /^client: --max-attempts \(or STREAM_MAX_ATTEMPTS\) must be a non-negative integer, got "2.5"/,
    );
  });
});
