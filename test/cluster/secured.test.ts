// Issue 15, item 4: the example server (examples/server.js, as operators run
// it) reads the cluster through its SASL_SSL listener (SCRAM-SHA-512 over TLS,
// certificates made by scripts/kafka-cluster.mjs), with the security settings
// passed through to librdkafka as kafkaConfig (KAFKA_CFG_* variables). A SCRAM
// user with a password unique to this run is added first. Success and failure
// paths (wrong password, broker down) are exercised, and every log line, every
// /metrics scrape, /health, /v2/topics, /admin/streams and every stream or
// error body is kept and searched for the password and the username.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TestCluster, testCluster } from '../helpers/cluster.ts';
import { request } from '../helpers/http.ts';
import { uniqueTopic } from '../helpers/kafka.ts';
import { openStream, type StreamClient } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADMIN_TOKEN = `admin-${randomBytes(8).toString('hex')}`;
/** Nothing listens here (the top of the cluster tests' port range): a broker that is down. */
const DEAD_BROKER = '127.0.0.1:19499';

interface RunningExample {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
}

describe('cluster: SASL_SSL (SCRAM-SHA-512) through kafkaConfig, credentials never shown', function () {
  this.timeout(90_000);
  let cluster: TestCluster;
  let topic = '';
  const user = `sse-user-${randomBytes(6).toString('hex')}`;
  const password = `pw-${randomBytes(24).toString('base64url')}`;
  /** Another unique password, never given to the broker. */
  const wrongPassword = `nope-${randomBytes(24).toString('base64url')}`;
  const children: ChildProcess[] = [];
  const streams: StreamClient[] = [];
  /** Every text the tests saw: log lines, bodies, headers. */
  const transcript: string[] = [];

  before(async function () {
    this.timeout(240_000);
    cluster = await testCluster();
    cluster.addScramUser(user, password);
    topic = uniqueTopic('cluster-secured');
    await cluster.createTopic(topic, 2);
    for (let n = 0; n < 4; n++) await cluster.produce(topic, n % 2, JSON.stringify({ n }));
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    for (const child of children.splice(0)) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
  });

  /** Runs examples/server.js with these brokers and SASL credentials; resolves once it listens. */
  async function startExample(brokers: string, saslPassword: string): Promise<RunningExample> {
    const child = spawn(process.execPath, ['examples/server.js'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        // Everything the server and the library would ever log.
        LOG_LEVEL: 'trace',
        ADMIN_TOKEN,
        RETRY_MS: '500',
        KAFKA_BROKERS: brokers,
        KAFKA_CFG_SECURITY_PROTOCOL: 'sasl_ssl',
        KAFKA_CFG_SASL_MECHANISMS: 'SCRAM-SHA-512',
        KAFKA_CFG_SASL_USERNAME: user,
        KAFKA_CFG_SASL_PASSWORD: saslPassword,
        KAFKA_CFG_SSL_CA_LOCATION: cluster.caFile,
      },
    });
    children.push(child);
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.on('exit', () => transcript.push(out));
    await waitFor(() => /"url":"http:\/\/127\.0\.0\.1:\d+"/.test(out) || child.exitCode !== null, 20_000, 'listening');
    const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
    assert.ok(m?.[1], `the example server did not start:\n${out}`);
    return { url: m[1], child, output: () => out };
  }

  /** A GET whose status, headers and body go to the transcript. */
  async function get(url: string, headers: Record<string, string> = {}) {
    const res = await request(url, 'GET', headers);
    transcript.push(`${url} ${res.status} ${JSON.stringify(res.headers)}\n${res.text}`);
    return res;
  }

  async function stream(url: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const s = await openStream(url, headers);
    streams.push(s);
    return s;
  }

  function recordStream(s: StreamClient): void {
    transcript.push(`${s.status} ${JSON.stringify(s.headers)}\n${s.raw()}${JSON.stringify(s.lines)}`);
  }

  /** The search itself: none of the secrets in `texts`. */
  function assertNoCredentials(texts: readonly string[], what: string): void {
    const all = texts.join('\n');
    if (process.env.SECURED_TRANSCRIPT_FILE)
      fs.appendFileSync(process.env.SECURED_TRANSCRIPT_FILE, `=== ${what}\n${all}\n`);
    assert.ok(all.length > 0, `${what}: something was collected`);
    for (const [name, secret] of [
      ['the password', password],
      ['the wrong password', wrongPassword],
      ['the username', user],
    ] as const) {
      const at = all.indexOf(secret);
      assert.equal(at, -1, `${what}: ${name} appears: …${all.slice(Math.max(0, at - 200), at + 60)}…`);
    }
  }

  it('streams SSE and NDJSON through SASL_SSL; /health, /v2/topics, /metrics and /admin/streams answer', async () => {
    const app = await startExample(cluster.saslSslBrokers, password);
    const fromStart = JSON.stringify([0, 1].map((partition) => ({ topic, partition, offset: 0 })));
    const sse = await stream(`${app.url}/v2/stream/${topic}`, { 'Last-Event-ID': fromStart });
    assert.equal(sse.status, 200);
    await sse.until(() => sse.messages().length === 4, 20_000, 'the four messages before the stream');
    const live = await stream(`${app.url}/v2/stream/${topic}`);
    await live.until(() => live.raw().startsWith(':ok'), 20_000, 'the live stream head');
    for (let n = 4; n < 8; n++) await cluster.produce(topic, n % 2, JSON.stringify({ n }));
    await sse.until(() => sse.messages().length === 8, 20_000, 'the four messages produced during the stream');
    await live.until(() => live.messages().length === 4, 20_000, 'the live messages');
    const nd = await stream(`${app.url}/v2/stream/${topic}`, {
      Accept: 'application/x-ndjson',
      'Last-Event-ID': fromStart,
    });
    await nd.until(() => nd.lines.length === 8, 20_000, 'eight NDJSON lines');
    const ns = sse.messages().map((e) => (JSON.parse(e.data) as { n: number }).n);
    assert.deepEqual(
      [...ns].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );

    const health = await get(`${app.url}/health`);
    assert.equal(health.status, 200, health.text);
    // The public answer says reachable and how fast; the broker count is behind the admin token.
    assert.equal((JSON.parse(health.text) as { kafka: { reachable: boolean } }).kafka.reachable, true);
    const detailed = await get(`${app.url}/health`, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    assert.equal((JSON.parse(detailed.text) as { kafka: { brokerCount: number } }).kafka.brokerCount, 3);
    const topics = await get(`${app.url}/v2/topics`);
    assert.equal(topics.status, 200, topics.text);
    assert.ok(topics.text.includes(topic), 'the secured topic is listed');
    const metrics = await get(`${app.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^kafka_sse_open_streams 3$/m);
    const admin = await get(`${app.url}/admin/streams`, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    assert.equal(admin.status, 200);
    assert.equal((JSON.parse(admin.text) as { streams: unknown[] }).streams.length, 3);
    const unknown = await get(`${app.url}/v2/stream/${uniqueTopic('cluster-secured-missing')}`, {
      Accept: 'application/x-ndjson',
    });
    assert.equal(unknown.status, 404, unknown.text);
    for (const s of [sse, live, nd]) recordStream(s);
    await get(`${app.url}/metrics`);

    app.child.kill('SIGTERM');
    await new Promise((resolve) => app.child.once('exit', resolve));
    assert.match(app.output(), /listening/);
    assertNoCredentials([app.output(), ...transcript], 'secured streams');
  });

  it('a wrong password: streams refused with a retryable error, /health unavailable, no credentials shown', async () => {
    const app = await startExample(cluster.saslSslBrokers, wrongPassword);
    const sse = await stream(`${app.url}/v2/stream/${topic}`);
    await sse.ended;
    recordStream(sse);
    assert.equal(sse.status, 200, 'SSE: a 200 with an error event, so EventSource retries');
    const codes = sse.events
      .filter((e) => e.event === 'error')
      .map((e) => (JSON.parse(e.data) as { code: string }).code);
    assert.equal(codes.length, 1, sse.raw());
    const nd = await get(`${app.url}/v2/stream/${topic}`, { Accept: 'application/x-ndjson' });
    assert.ok(nd.status >= 500, `NDJSON: a 5xx, got ${nd.status} ${nd.text}`);
    const health = await get(`${app.url}/health`);
    assert.equal(health.status, 503, health.text);
    await get(`${app.url}/metrics`);
    await get(`${app.url}/admin/streams`, { Authorization: `Bearer ${ADMIN_TOKEN}` });

    app.child.kill('SIGTERM');
    await new Promise((resolve) => app.child.once('exit', resolve));
    assertNoCredentials([app.output(), ...transcript], 'wrong password');
  });

  it('the broker down: streams refused with BROKER_UNAVAILABLE, /health unavailable, no credentials shown', async () => {
    const app = await startExample(DEAD_BROKER, password);
    const sse = await stream(`${app.url}/v2/stream/${topic}`);
    await sse.ended;
    recordStream(sse);
    assert.equal(sse.status, 200);
    assert.deepEqual(
      sse.events.map((e) => [e.event, (JSON.parse(e.data) as { code: string }).code]),
      [['error', 'BROKER_UNAVAILABLE']],
    );
    const nd = await get(`${app.url}/v2/stream/${topic}`, { Accept: 'application/x-ndjson' });
    assert.equal(nd.status, 503, nd.text);
    assert.equal((JSON.parse(nd.text) as { code: string }).code, 'BROKER_UNAVAILABLE');
    const health = await get(`${app.url}/health`);
    assert.equal(health.status, 503, health.text);
    await get(`${app.url}/metrics`);
    await get(`${app.url}/admin/streams`, { Authorization: `Bearer ${ADMIN_TOKEN}` });

    app.child.kill('SIGTERM');
    await new Promise((resolve) => app.child.once('exit', resolve));
    assertNoCredentials([app.output(), ...transcript], 'broker down');
  });
});
