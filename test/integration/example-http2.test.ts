// examples/http2.js run as its users run it (a child process, against dist/):
// TLS with a certificate made at start, TLS with TLS_CERT/TLS_KEY files,
// HTTP/1.1 on the TLS port, cleartext h2c with H2C=1, and a clean shutdown.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { connectHttp2, openH2Stream, testCertificate } from '../helpers/http2.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Example {
  child: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<number | null>;
}

/** Starts examples/http2.js on a free port and resolves with the URL it logs. */
function startExample(env: Record<string, string>): Promise<Example> {
  const child = spawn(process.execPath, ['examples/http2.js'], {
    cwd: ROOT,
    env: { ...process.env, KAFKA_BROKERS: brokers(), PORT: '0', LOG_LEVEL: 'info', RETRY_MS: '300', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`examples/http2.js did not start:\n${log}`)), 15_000);
    const onData = (chunk: string) => {
      log += chunk;
      const url = /"url":"([^"]+)"/.exec(log)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ child, url, log: () => log, exited });
      }
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', onData);
    void exited.then((code) => reject(new Error(`examples/http2.js exited with ${code}:\n${log}`)));
  });
}

describe('examples/http2.js (child process)', function () {
  this.timeout(45_000);
  const children: ChildProcess[] = [];
  const sessions: ClientHttp2Session[] = [];
  let tmp: string | undefined;

  afterEach(() => {
    for (const s of sessions.splice(0)) s.destroy();
    for (const c of children.splice(0)) c.kill('SIGKILL');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    tmp = undefined;
  });

  async function streamTwoMessages(session: ClientHttp2Session, topic: string): Promise<void> {
    const stream = await openH2Stream(session, `/v2/stream/${topic}`);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    await stream.until(() => stream.raw().includes('retry: 300'), 5000, 'the retry hint');
    await produce(topic, [{ value: JSON.stringify({ n: 1 }) }, { value: JSON.stringify({ n: 2 }) }]);
    await stream.until(() => stream.messages().length === 2, 10_000, 'two messages');
    assert.deepEqual(
      stream.messages().map((e) => (JSON.parse(e.data) as { n: number }).n),
      [1, 2],
    );
  }

  it('TLS by default (certificate made at start): streams, /health and the page over HTTP/2, HTTP/1.1 too, and stops cleanly', async () => {
    const topic = uniqueTopic('example-h2');
    await createTopic(topic, 1);
    const example = await startExample({});
    children.push(example.child);
    assert.match(example.url, /^https:\/\//);
    assert.match(example.log(), /self-signed certificate made at start/);

    const session = await connectHttp2(example.url, { rejectUnauthorized: false });
    sessions.push(session);
    assert.equal(session.alpnProtocol, 'h2');
    await streamTwoMessages(session, topic);

    const dispatcher = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } });
    try {
      const health = await undiciFetch(`${example.url}/health`, { dispatcher });
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, 'ok');
      const page = await undiciFetch(`${example.url}/`, { dispatcher });
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      await page.text();
    } finally {
      await dispatcher.destroy();
    }

    // allowHTTP1: a client without HTTP/2 on the same port.
    const h1 = await new Promise<{ status: number; version: string; body: string }>((resolve, reject) => {
      https
        .get(`${example.url}/health`, { rejectUnauthorized: false, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion, body }));
        })
        .on('error', reject);
    });
    assert.equal(h1.status, 200);
    assert.equal(h1.version, '1.1');

    example.child.kill('SIGTERM');
    assert.equal(await example.exited, 0);
    assert.match(example.log(), /every consumer released/);
  });

  it('TLS with TLS_CERT and TLS_KEY files: a client trusting that certificate connects', async () => {
    const topic = uniqueTopic('example-h2-cert');
    await createTopic(topic, 1);
    const { cert, key } = await testCertificate();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-sse-bridge-tls-'));
    fs.writeFileSync(path.join(tmp, 'cert.pem'), cert);
    fs.writeFileSync(path.join(tmp, 'key.pem'), key);
    const example = await startExample({ TLS_CERT: path.join(tmp, 'cert.pem'), TLS_KEY: path.join(tmp, 'key.pem') });
    children.push(example.child);
    assert.doesNotMatch(example.log(), /self-signed/);
    // connectHttp2 trusts exactly the test certificate: verification passes only if the server serves it.
    const session = await connectHttp2(example.url);
    sessions.push(session);
    await streamTwoMessages(session, topic);
  });

  it('H2C=1: cleartext HTTP/2', async () => {
    const topic = uniqueTopic('example-h2c');
    await createTopic(topic, 1);
    const example = await startExample({ H2C: '1' });
    children.push(example.child);
    assert.match(example.url, /^http:\/\//);
    const session = await connectHttp2(example.url);
    sessions.push(session);
    await streamTwoMessages(session, topic);
    const health = await openH2Stream(session, '/health', { accept: 'application/json' });
    await health.closed;
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.raw()) as { status: string }).status, 'ok');
  });
});
