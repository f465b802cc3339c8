// The live page (examples/public/) in a real headless Chromium, against the
// example server and the real broker: a person picks a topic, sees events
// arrive, filters and pauses, and the stream resumes after the server restarts
// with nothing lost and nothing repeated.
//
// Chromium is required, not optional: CI installs it (.ci/run). Locally:
// apt-get install -y chromium, or point CHROMIUM_PATH at another binary.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { createServer, type ExampleServer, type ServerConfig } from '../../examples/server-app.js';
import { openConsumerCount } from '../../index.ts';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { openStream } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Row {
  topic: string;
  partition: number;
  offset: number;
  n: number;
}

/** The event rows as the page shows them, newest first. */
function rows(page: Page): Promise<Row[]> {
  return page.$$eval('li.event', (items) =>
    items.map((li) => {
      const el = li as HTMLElement;
      const message = JSON.parse(el.querySelector('pre')?.textContent ?? '{}') as { n: number };
      return {
        topic: el.dataset.topic ?? '',
        partition: Number(el.dataset.partition),
        offset: Number(el.dataset.offset),
        n: message.n,
      };
    }),
  );
}

async function rowCount(page: Page, count: number, what: string): Promise<void> {
  try {
    await page.waitForFunction((n) => document.querySelectorAll('li.event').length === n, count, { timeout: 15_000 });
  } catch (err) {
    const shown = await page.locator('li.event').count();
    const status = await page.locator('#status').textContent();
    throw new Error(`${what}: the page shows ${shown} events, not ${count} (status: ${status})`, { cause: err });
  }
}

describe('live page (examples/public) in headless Chromium', function () {
  this.timeout(60_000);
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let app: ExampleServer | undefined;
  let page: Page | undefined;
  let pageErrors: string[] = [];

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH. ` +
          'This test does not skip: CI installs Chromium in .ci/run.',
      );
    }
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-sse-bridge-chromium-'));
    // A persistent context on a fresh directory: Playwright refuses --user-data-dir in args.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 800 },
    });
  });

  after(async () => {
    await context?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  async function startServer(config: ServerConfig = {}, port = 0): Promise<string> {
    app = createServer({ brokers: brokers(), logger: pino({ level: 'silent' }), retryMs: 300, ...config });
    return app.listen(port);
  }

  async function openPage(url: string): Promise<Page> {
    const p = await (context as BrowserContext).newPage();
    page = p;
    pageErrors = [];
    p.on('pageerror', (err) => pageErrors.push(err.message));
    await p.goto(`${url}/`);
    return p;
  }

  /** Picks `topic` in the list (as a person would) and connects. */
  async function connect(p: Page, topic: string): Promise<void> {
    await p.locator(`input[name="topic"][value="${topic}"]`).check();
    await p.locator('#connect').click();
    await p.waitForSelector('#status[data-state="live"]', { timeout: 15_000 });
  }

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) {
      const file = path.join(os.tmpdir(), `kafka-sse-bridge-browser-${Date.now()}.png`);
      await page.screenshot({ path: file }).catch(() => {});
      console.error(`    screenshot of the failed page: ${file}`);
    }
    await page?.close();
    page = undefined;
    await app?.close();
    app = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
  });

  it('shows produced events live, and resumes after a server restart with no loss and no duplicates', async () => {
    const topic = uniqueTopic('browser-resume');
    await createTopic(topic, 2);
    const url = await startServer();
    const port = Number(new URL(url).port);
    const p = await openPage(url);
    await connect(p, topic);

    await produce(
      topic,
      [0, 1, 2, 3, 4, 5].map((n) => ({ value: JSON.stringify({ n }), partition: n % 2 })),
    );
    await rowCount(p, 6, 'the first six events');
    const first = await rows(p);
    assert.deepEqual(
      first.map((r) => r.n).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
    );
    assert.ok(first.every((r) => r.topic === topic));
    assert.deepEqual(
      first.filter((r) => r.partition === 0).map((r) => r.offset),
      [2, 1, 0],
      'newest first',
    );
    assert.equal(await p.locator('#total').textContent(), '6');

    // The server restarts; events produced meanwhile must still arrive, once.
    await app?.close();
    await p.waitForSelector('#status[data-state="reconnecting"]', { timeout: 10_000 });
    await produce(
      topic,
      [6, 7, 8, 9, 10, 11].map((n) => ({ value: JSON.stringify({ n }), partition: n % 2 })),
    );
    await startServer({}, port);
    await rowCount(p, 12, 'all twelve events after the restart');
    assert.deepEqual(
      (await rows(p)).map((r) => r.n).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    await p.waitForSelector('#status[data-state="live"]', { timeout: 10_000 });
    assert.match((await p.locator('#status').textContent()) ?? '', /resumed/);
    assert.deepEqual(pageErrors, []);
  });

  it('filters the shown events by text, and pauses drawing while still counting', async () => {
    const topic = uniqueTopic('browser-filter');
    await createTopic(topic, 1);
    const url = await startServer();
    const p = await openPage(url);
    await connect(p, topic);

    const fruit = ['apple', 'banana', 'apple pie', 'cherry'];
    await produce(
      topic,
      fruit.map((name, n) => ({ value: JSON.stringify({ n, name }) })),
    );
    await rowCount(p, 4, 'four events');
    await p.locator('#filter').fill('APPLE');
    assert.equal(await p.locator('li.event:not([hidden])').count(), 2);
    assert.equal(await p.locator('#shown').textContent(), '2');
    await p.locator('#filter').fill('');
    assert.equal(await p.locator('li.event:not([hidden])').count(), 4);

    await p.locator('#pause').click();
    assert.equal(await p.locator('#pause').getAttribute('aria-pressed'), 'true');
    await produce(
      topic,
      [4, 5, 6].map((n) => ({ value: JSON.stringify({ n, name: 'date' }) })),
    );
    await p.waitForFunction(() => document.querySelector('#total')?.textContent === '7', undefined, {
      timeout: 10_000,
    });
    assert.equal(await p.locator('li.event').count(), 4, 'nothing drawn while paused');
    assert.equal(await p.locator('#waiting-count').textContent(), '3');
    await p.locator('#pause').click();
    await rowCount(p, 7, 'the three held events after resuming');
    assert.deepEqual(
      (await rows(p)).map((r) => r.n),
      [6, 5, 4, 3, 2, 1, 0],
    );
    assert.deepEqual(pageErrors, []);
  });

  it('says why the server refused a stream (here: past the per-client limit)', async () => {
    const topic = uniqueTopic('browser-refused');
    await createTopic(topic, 1);
    const url = await startServer({ maxStreamsPerIp: 1 });
    // Another stream from the same address holds the only slot.
    const holder = await openStream(`${url}/v2/stream/${topic}`);
    try {
      assert.equal(holder.status, 200);
      const p = await openPage(url);
      await p.locator(`input[name="topic"][value="${topic}"]`).check();
      await p.locator('#connect').click();
      await p.waitForSelector('#status[data-state="closed"]', { timeout: 10_000 });
      await p.waitForFunction(() => /\(429\)/.test(document.querySelector('#notice')?.textContent ?? ''));
      assert.equal(
        await p.locator('#notice').textContent(),
        'The server refused the stream (429): At most 1 concurrent streams per client; close one first',
      );
    } finally {
      holder.close();
    }
  });
});
