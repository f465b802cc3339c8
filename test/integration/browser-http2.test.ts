// Ten EventSources on one page, one origin, in a real headless Chromium: over
// HTTP/2 (TLS, a certificate made at test time) all ten are live at once on
// one connection; over HTTP/1.1 Chromium holds six connections per origin, so
// four never open. kafkaSse() serves both through the same handler.
//
// Chromium is required, not optional (see browser.test.ts): CI installs it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type KafkaSseOptions, kafkaSse, openConsumerCount, StreamRegistry } from '../../index.ts';
import { baseOptions } from '../helpers/bridge-server.ts';
import { type Http2TestServer, listenHttp2 } from '../helpers/http2.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { recordFigures } from '../helpers/soak.ts';
import { waitFor } from '../helpers/wait.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STREAMS = 10;

/** The page: STREAMS EventSources on this origin, each recording when it opened and what it received. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>${STREAMS} EventSources</title>
<script>
  const topic = new URLSearchParams(location.search).get('topic');
  window.opened = [];
  window.received = [];
  window.sources = [];
  for (let i = 0; i < ${STREAMS}; i++) {
    window.received[i] = [];
    const es = new EventSource('/v2/stream/' + encodeURIComponent(topic) + '?i=' + i);
    window.sources.push(es);
    es.onopen = () => window.opened.push(i);
    es.onmessage = (e) => window.received[i].push(JSON.parse(e.data).n);
  }
</script>`;

interface PageState {
  opened: number[];
  received: number[][];
}

describe(`${STREAMS} EventSources on one origin in headless Chromium`, function () {
  this.timeout(60_000);
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let page: Page | undefined;
  let h2: Http2TestServer | undefined;
  let h1: http.Server | undefined;
  /** The HTTP version of every stream request, and every kafkaSse() promise. */
  let versions: string[] = [];
  /** Stream requests that carried a Last-Event-ID header. */
  let resumes = 0;
  let streams: Promise<void>[] = [];
  let registry = new StreamRegistry();
  /** Options a test adds to every stream. */
  let extraOptions: KafkaSseOptions = {};

  function handler(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/v2\/stream\/([^/]+)$/.exec(url.pathname);
    if (!match?.[1]) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    versions.push(req.httpVersion);
    if (req.headers['last-event-id']) resumes++;
    streams.push(
      kafkaSse(
        req as IncomingMessage,
        res as ServerResponse,
        decodeURIComponent(match[1]),
        baseOptions({ heartbeatMs: 5000, registry, ...extraOptions }),
      ),
    );
  }

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH.`,
      );
    }
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-sse-bridge-chromium-h2-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // The certificate is made at test time: Chromium cannot know it.
      ignoreHTTPSErrors: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync'],
    });
  });

  after(async () => {
    await context?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  afterEach(async () => {
    await page?.close();
    page = undefined;
    await h2?.close();
    h2 = undefined;
    if (h1) {
      h1.closeAllConnections();
      await new Promise((r) => h1?.close(r));
      h1 = undefined;
    }
    await Promise.all(streams);
    streams = [];
    versions = [];
    registry = new StreamRegistry();
    extraOptions = {};
    resumes = 0;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  function state(p: Page): Promise<PageState> {
    return p.evaluate(() => {
      const w = window as unknown as PageState;
      return { opened: [...w.opened], received: w.received.map((r) => [...r]) };
    });
  }

  it('over HTTP/2 (TLS): all ten open on one connection, every one receives each live message, and closing one leaves the others live', async () => {
    const topic = uniqueTopic('browser-h2');
    await createTopic(topic, 1);
    let sessions = 0;
    h2 = await listenHttp2(handler);
    h2.server.on('session', () => sessions++);
    page = await (context as BrowserContext).newPage();
    const started = Date.now();
    await page.goto(`${h2.url}/?topic=${topic}`);
    await page.waitForFunction((n) => (window as unknown as PageState).opened.length === n, STREAMS, {
      timeout: 15_000,
    });
    const openMs = Date.now() - started;
    assert.equal(versions.length, STREAMS);
    assert.ok(
      versions.every((v) => v === '2.0'),
      `every stream on HTTP/2: ${versions.join(' ')}`,
    );
    assert.equal(sessions, 1, 'one connection for the page and its ten streams');

    const latencies: number[] = [];
    for (const n of [1, 2, 3]) {
      const sent = Date.now();
      await produce(topic, [{ value: JSON.stringify({ n }) }]);
      await page.waitForFunction(
        ([count, total]) =>
          (window as unknown as PageState).received.filter((r) => r.length === count).length === total,
        [n, STREAMS],
        { timeout: 10_000 },
      );
      latencies.push(Date.now() - sent);
    }
    const { received } = await state(page);
    assert.deepEqual(
      received,
      Array.from({ length: STREAMS }, () => [1, 2, 3]),
    );
    // Closing one EventSource cancels its stream alone (RST_STREAM): it ends on the server, the nine others go on.
    await page.evaluate(() => (window as unknown as { sources: EventSource[] }).sources[0]?.close());
    await waitFor(() => registry.list().length === STREAMS - 1, 10_000, 'the closed stream ended on the server');
    await produce(topic, [{ value: JSON.stringify({ n: 4 }) }]);
    await page.waitForFunction(
      (total) => (window as unknown as PageState).received.filter((r) => r.length === 4).length === total,
      STREAMS - 1,
      { timeout: 10_000 },
    );
    assert.deepEqual((await state(page)).received[0], [1, 2, 3]);
    assert.equal(sessions, 1, 'still the one connection');
    recordFigures('browser: 10 EventSources over HTTP/2', {
      streams: STREAMS,
      connections: sessions,
      allOpenMs: openMs,
      liveToAllTenMsMax: Math.max(...latencies),
    });
  });

  it('over HTTP/2, all ten resume by Last-Event-ID when the server ends their streams: every message once', async () => {
    const topic = uniqueTopic('browser-h2-resume');
    await createTopic(topic, 2);
    // Streams end every 1.5 s; Chromium reconnects after the 200 ms retry hint, sending its last id.
    extraOptions = { maxDurationMs: 1500, retryMs: 200 };
    h2 = await listenHttp2(handler);
    page = await (context as BrowserContext).newPage();
    await page.goto(`${h2.url}/?topic=${topic}`);
    await page.waitForFunction((n) => (window as unknown as PageState).opened.length === n, STREAMS, {
      timeout: 15_000,
    });
    const total = 20;
    for (let n = 0; n < total; n++) {
      await produce(topic, [{ value: JSON.stringify({ n }), partition: n % 2 }]);
      await new Promise((r) => setTimeout(r, 150));
    }
    await page.waitForFunction(
      ({ count, streams }) =>
        (window as unknown as PageState).received.filter((r) => r.length >= count).length === streams,
      { count: total, streams: STREAMS },
      { timeout: 15_000 },
    );
    const { opened, received } = await state(page);
    const expected = Array.from({ length: total }, (_, i) => i);
    for (const r of received)
      assert.deepEqual(
        [...r].sort((a, b) => a - b),
        expected,
        'each message exactly once',
      );
    assert.ok(opened.length >= 2 * STREAMS, `every EventSource reconnected (${opened.length} opens)`);
    // Each open after the first ten answered a request carrying Last-Event-ID (one more may be in flight).
    assert.ok(resumes >= opened.length - STREAMS, `every reconnect sent Last-Event-ID (${resumes} did)`);
    assert.ok(
      versions.every((v) => v === '2.0'),
      'reconnects on HTTP/2 too',
    );
    recordFigures('browser: 10 EventSources resuming over HTTP/2', {
      streams: STREAMS,
      messages: total,
      opens: opened.length,
    });
  });

  it('over HTTP/1.1 the same page gets six of them open, the other four wait', async () => {
    const topic = uniqueTopic('browser-h1');
    await createTopic(topic, 1);
    h1 = http.createServer(handler);
    await new Promise<void>((resolve) => h1?.listen(0, '127.0.0.1', resolve));
    const { port } = h1.address() as AddressInfo;
    page = await (context as BrowserContext).newPage();
    await page.goto(`http://127.0.0.1:${port}/?topic=${topic}`);
    await page.waitForFunction(() => (window as unknown as PageState).opened.length === 6, undefined, {
      timeout: 15_000,
    });
    await produce(topic, [{ value: JSON.stringify({ n: 1 }) }]);
    await page.waitForFunction(
      () => (window as unknown as PageState).received.filter((r) => r.length === 1).length === 6,
      undefined,
      { timeout: 10_000 },
    );
    // Give the other four every chance: they stay queued in the browser.
    await new Promise((r) => setTimeout(r, 1500));
    const { opened, received } = await state(page);
    assert.equal(opened.length, 6);
    assert.equal(received.filter((r) => r.length === 0).length, 4);
    assert.equal(versions.length, 6, 'only six requests reached the server');
    recordFigures('browser: 10 EventSources over HTTP/1.1', { streams: STREAMS, open: opened.length });
  });
});
