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

  async function openPage(url: string, path = '/'): Promise<Page> {
    const p = await (context as BrowserContext).newPage();
    page = p;
    pageErrors = [];
    p.on('pageerror', (err) => pageErrors.push(err.message));
    await p.goto(`${url}${path}`);
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

  it('finds a topic by search among many, and keeps chosen topics in view', async () => {
    const wanted = uniqueTopic('browser-search-wanted');
    const other = uniqueTopic('browser-search-other');
    await createTopic(wanted, 1);
    await createTopic(other, 1);
    const url = await startServer();
    const p = await openPage(url);
    await p.waitForSelector(`input[name="topic"][value="${wanted}"]`);
    const visible = () =>
      p.$$eval('#topics label', (labels) =>
        labels.filter((l) => !(l as HTMLElement).hidden).map((l) => l.querySelector('input')?.value),
      );
    const all = await p.locator('#topics label').count();
    assert.ok(all >= 2);
    assert.equal(await p.locator('#topic-count').textContent(), `${all} topics`);

    // The unique part of the name, typed in another case.
    const needle = wanted.slice('browser-search-wanted'.length).toUpperCase();
    await p.locator('#topic-search').fill(`wanted${needle}`);
    assert.deepEqual(await visible(), [wanted]);
    assert.equal(await p.locator('#topic-count').textContent(), `1 of ${all} shown`);
    await p.locator(`input[name="topic"][value="${wanted}"]`).check();

    // Searching for another topic keeps the chosen one listed.
    await p.locator('#topic-search').fill(other);
    assert.deepEqual((await visible()).sort(), [wanted, other].sort());
    await p.locator(`input[name="topic"][value="${other}"]`).check();
    await p.locator('#topic-search').fill('');
    assert.equal(await p.locator('#topics label:not([hidden])').count(), all);

    await p.locator('#connect').click();
    await p.waitForSelector('#status[data-state="live"]', { timeout: 15_000 });
    const chosen = [other, wanted].sort();
    assert.equal(new URL(p.url()).searchParams.get('topics'), chosen.join(','));
    // Reloaded from its address, the page lists the chosen topics first.
    await p.reload();
    await p.waitForSelector('#status[data-state="live"]', { timeout: 15_000 });
    const firstTwo = await p.$$eval('#topics input[name="topic"]', (boxes) =>
      boxes.slice(0, 2).map((b) => [(b as HTMLInputElement).value, (b as HTMLInputElement).checked]),
    );
    assert.deepEqual(
      firstTwo,
      chosen.map((t) => [t, true]),
    );
    assert.deepEqual(pageErrors, []);
  });

  it('says clearly when ?topics= names a topic the server does not have, and does not connect', async () => {
    const real = uniqueTopic('browser-known');
    await createTopic(real, 1);
    const missing = uniqueTopic('browser-no-such-topic');
    const url = await startServer();
    const p = await openPage(url, `/?topics=${real},${missing}`);
    await p.waitForSelector('#notice:not([hidden])');
    assert.equal(
      await p.locator('#notice').textContent(),
      `Unknown topic in the address (?topics=): ${missing}. ` +
        'This server has no such topic, or does not serve it: pick topics from the list.',
    );
    assert.equal(await p.locator('#notice').getAttribute('data-kind'), 'error');
    assert.equal(await p.locator('#status').getAttribute('data-state'), 'idle');
    assert.equal(app?.openStreams(), 0, 'no stream was opened');
    // The topic that does exist is chosen, ready for Connect.
    assert.equal(await p.locator(`input[name="topic"][value="${real}"]`).isChecked(), true);
    assert.deepEqual(pageErrors, []);
  });

  it('is readable at 360 px: nothing wider than the screen, no event text cut off', async () => {
    const topic = uniqueTopic('browser-narrow');
    await createTopic(topic, 1);
    const url = await startServer();
    const p = await openPage(url);
    await p.setViewportSize({ width: 360, height: 740 });
    await connect(p, topic);
    const edit = {
      type: 'edit',
      server_name: 'en.wikipedia.org',
      title: 'List of compositions by Wolfgang Amadeus Mozart (chamber music for strings)',
      user: 'A very patient editor with a long user name',
      length: { old: 1200, new: 1234 },
    };
    const plain = { note: 'a plain JSON message whose text runs well past the width of a phone screen', n: 1 };
    await produce(topic, [{ value: JSON.stringify(edit) }, { value: JSON.stringify(plain) }]);
    await rowCount(p, 2, 'two events');
    const texts = await p.$$eval('li.event .text', (els) => els.map((e) => e.textContent));
    assert.deepEqual(texts, [JSON.stringify(plain), `edit en.wikipedia.org: ${edit.title} — ${edit.user} +34`]);
    const overflow = await p.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const problems: string[] = [];
      if (document.documentElement.scrollWidth > width)
        problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth}px`);
      for (const el of Array.from(document.querySelectorAll<HTMLElement>('body *'))) {
        if (el.closest('[hidden]') || el.getClientRects().length === 0) continue;
        const box = el.getBoundingClientRect();
        if (box.right > width + 0.5)
          problems.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ends at ${box.right}px`);
        // Text clipped inside its own box (overflow hidden, ellipsis).
        if (el.matches('.event summary, .event summary *') && el.scrollWidth > el.clientWidth + 1) {
          problems.push(
            `${el.tagName.toLowerCase()}.${el.className} cuts its text (${el.scrollWidth} > ${el.clientWidth})`,
          );
        }
      }
      return problems;
    });
    assert.deepEqual(overflow, []);
    const shot = path.join(os.tmpdir(), 'kafka-sse-bridge-page-360.png');
    await p.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 0);
    assert.deepEqual(pageErrors, []);
  });

  it('states the pause cap, and counts the events dropped past it', async () => {
    const topic = uniqueTopic('browser-pause-cap');
    await createTopic(topic, 1);
    const url = await startServer();
    const p = await openPage(url);
    assert.equal(
      await p.locator('#pause-cap').textContent(),
      'Pause stops drawing, not receiving: it holds the newest 500 events and drops older ones. ' +
        'The list shows the newest 500 events.',
    );
    await connect(p, topic);
    await p.locator('#pause').click();
    await produce(
      topic,
      Array.from({ length: 505 }, (_, n) => ({ value: JSON.stringify({ n }) })),
    );
    await p.waitForFunction(() => document.querySelector('#total')?.textContent === '505', undefined, {
      timeout: 15_000,
    });
    assert.equal(await p.locator('#waiting-count').textContent(), '500');
    assert.equal(await p.locator('#dropped').isVisible(), true);
    assert.equal(await p.locator('#dropped-count').textContent(), '5');
    assert.match((await p.locator('#waiting').textContent()) ?? '', /^500 waiting \(paused\), 5 older dropped$/);
    await p.locator('#pause').click();
    await rowCount(p, 500, 'the 500 held events');
    const shown = await rows(p);
    assert.equal(shown[0]?.n, 504, 'newest first');
    assert.equal(shown.at(-1)?.n, 5, 'the five oldest were the ones dropped');
    assert.deepEqual(pageErrors, []);
  });

  it("draws each topic's events per second over the last minute (inline SVG, no library)", async () => {
    const busy = uniqueTopic('browser-chart-busy');
    const quiet = uniqueTopic('browser-chart-quiet');
    await createTopic(busy, 1);
    await createTopic(quiet, 1);
    const url = await startServer();
    const p = await openPage(url);
    await p.locator(`input[name="topic"][value="${busy}"]`).check();
    await p.locator(`input[name="topic"][value="${quiet}"]`).check();
    await p.locator('#connect').click();
    await p.waitForSelector('#status[data-state="live"]', { timeout: 15_000 });
    assert.equal(await p.locator('#chart').isVisible(), true);

    await produce(
      busy,
      Array.from({ length: 6 }, (_, n) => ({ value: JSON.stringify({ n }) })),
    );
    await produce(
      quiet,
      Array.from({ length: 3 }, (_, n) => ({ value: JSON.stringify({ n }) })),
    );
    await rowCount(p, 9, 'nine events');
    const events = (topic: string) =>
      p.locator(`#rate-chart polyline[data-topic="${topic}"]`).getAttribute('data-events');
    await p.waitForFunction(
      ([a, b]) =>
        document.querySelector(`#rate-chart polyline[data-topic="${a}"]`)?.getAttribute('data-events') === '6' &&
        document.querySelector(`#rate-chart polyline[data-topic="${b}"]`)?.getAttribute('data-events') === '3',
      [busy, quiet],
      { timeout: 5000 },
    );
    assert.equal(await events(busy), '6');
    assert.equal(await events(quiet), '3');
    const series = await p.$$eval('#rate-chart polyline', (lines) =>
      lines.map((l) => ({
        topic: (l as SVGElement).dataset.topic,
        color: l.getAttribute('stroke'),
        points: (l.getAttribute('points') ?? '').split(' ').length,
        heights: new Set((l.getAttribute('points') ?? '').split(' ').map((pt) => pt.split(',')[1])).size,
      })),
    );
    assert.deepEqual(
      series.map((s) => s.topic),
      [busy, quiet],
    );
    assert.ok(
      series.every((s) => s.points === 60),
      'one point per second of the last minute',
    );
    assert.ok(
      series.every((s) => s.heights > 1),
      'each line rises where its events arrived',
    );
    assert.notEqual(series[0]?.color, series[1]?.color);
    const legend = await p.$$eval('#chart-legend li', (items) => items.map((li) => li.textContent?.trim()));
    assert.equal(legend.length, 2);
    assert.match(legend[0] ?? '', new RegExp(`^${busy} \\d+/s$`));
    assert.match(legend[1] ?? '', new RegExp(`^${quiet} \\d+/s$`));
    assert.match(
      (await p.locator('#chart figcaption').textContent()) ?? '',
      /^Events per second, last minute, by topic \(peak \d+\/s\)$/,
    );
    assert.equal(await p.locator('script[src]:not([src="app.js"])').count(), 0, 'no chart library loaded');
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
