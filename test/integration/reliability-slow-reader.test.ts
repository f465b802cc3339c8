// Issue 6, part 3: clients that read about 1 KB/s while tens of MB are
// produced. The server holds a bounded amount for them (it stops reading
// Kafka instead of buffering), a fast client on the same server keeps getting
// live messages promptly, and the slow clients lose nothing: one catches up on
// the same connection, the other reconnects with its last id.
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createParser } from 'eventsource-parser';
import { openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { mib, waitFor } from '../helpers/process-stats.ts';
import { knob, recordFigures } from '../helpers/soak.ts';
import { openStream } from '../helpers/sse-client.ts';

/** Megabytes produced to the bulk topic while the slow clients crawl. */
const BULK_MB = knob('SLOW_BULK_MB', 20, 120);
/** How long the slow clients read at ~1 KB/s before catching up. */
const SLOW_SECONDS = knob('SLOW_SECONDS', 8, 60);
const MESSAGE_BYTES = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An SSE reader over a raw response that can crawl (1 KB/s) or run, and tracks the `n` of every message. */
class SlowReader {
  readonly ns: number[] = [];
  lastId: string | undefined;
  bytes = 0;
  readonly #res: IncomingMessage;
  readonly #req: http.ClientRequest;
  #crawl: NodeJS.Timeout | undefined;
  readonly #parser = createParser({
    onEvent: (e) => {
      if ((e.event ?? 'message') !== 'message') return;
      this.ns.push((JSON.parse(e.data) as { n: number }).n);
      this.lastId = e.id;
    },
  });
  readonly ended: Promise<void>;

  private constructor(req: http.ClientRequest, res: IncomingMessage) {
    this.#req = req;
    this.#res = res;
    res.setEncoding('utf8');
    this.ended = new Promise((resolve) => res.once('close', resolve));
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<SlowReader> {
    return new Promise((resolve, reject) => {
      const req = http.get(url, { agent: false, headers: { Accept: 'text/event-stream', ...headers } });
      req.on('error', reject);
      req.on('response', (res) => {
        res.on('error', () => {});
        resolve(new SlowReader(req, res));
      });
    });
  }

  #take(chunk: string): void {
    this.bytes += Buffer.byteLength(chunk);
    this.#parser.feed(chunk);
  }

  /** About 1 KB/s: 100 bytes every 100 ms, nothing more. */
  crawl(): void {
    this.#res.pause();
    this.#crawl = setInterval(() => {
      const chunk = this.#res.read(100) as string | null;
      if (chunk !== null) this.#take(chunk);
    }, 100);
  }

  /** Reads as fast as the data comes. */
  run(): void {
    clearInterval(this.#crawl);
    for (let chunk = this.#res.read() as string | null; chunk !== null; chunk = this.#res.read() as string | null) {
      this.#take(chunk);
    }
    this.#res.on('data', (chunk: string) => this.#take(chunk));
    this.#res.resume();
  }

  close(): void {
    clearInterval(this.#crawl);
    this.#req.destroy();
  }
}

describe('reliability: slow readers', function () {
  this.timeout(120_000 + SLOW_SECONDS * 1000 + BULK_MB * 2000);
  const bulk = uniqueTopic('slow-bulk');
  const live = uniqueTopic('slow-live');
  let bridge: BridgeServer | undefined;
  const readers: SlowReader[] = [];

  before(async () => {
    await createTopic(bulk, 2);
    await createTopic(live, 1);
  });

  after(async () => {
    for (const r of readers) r.close();
    await bridge?.close();
  });

  it('bounds server memory, keeps a fast client prompt, and loses nothing for the slow ones', async () => {
    const byPath = new Map<string, ServerResponse[]>();
    bridge = await startBridge((req) => {
      const path = req.url ?? '/';
      queueMicrotask(() => {
        const res = bridge?.responses.at(-1);
        if (res) byPath.set(path, [...(byPath.get(path) ?? []), res]);
      });
      return {
        assignments: path.startsWith('/live')
          ? live
          : [
              { topic: bulk, partition: 0, offset: 0 },
              { topic: bulk, partition: 1, offset: 0 },
            ],
        options: baseOptions({ heartbeatMs: 1000 }),
      };
    });
    const url = bridge.url;

    // The fast client, and the live messages it should get promptly: each carries its send time.
    const fast = await openStream(`${url}/live`);
    await fast.until(() => fast.raw().startsWith(':ok'), 5000, ':ok');
    const latencies: number[] = [];
    let liveSent = 0;
    let liveOn = true;
    const liveProducer = (async () => {
      while (liveOn) {
        await produce(live, [{ value: JSON.stringify({ sent: Date.now(), i: liveSent++ }) }]);
        await sleep(100);
      }
    })();
    const onLive = () => {
      while (latencies.length < fast.messages().length) {
        const m = fast.messages()[latencies.length];
        latencies.push(Date.now() - (JSON.parse(m?.data ?? '{}') as { sent: number }).sent);
      }
    };
    const liveTimer = setInterval(onLive, 5);

    const rssBefore = process.memoryUsage().rss;
    const catcher = await SlowReader.open(`${url}/bulk`);
    const resumer = await SlowReader.open(`${url}/bulk`);
    readers.push(catcher, resumer);
    catcher.crawl();
    resumer.crawl();

    // Tens of MB while they crawl; sample what the server holds for them.
    let maxWritable = 0;
    let maxRss = rssBefore;
    const sampler = setInterval(() => {
      for (const res of byPath.get('/bulk') ?? []) maxWritable = Math.max(maxWritable, res.writableLength);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }, 50);
    const total = Math.floor((BULK_MB * 1_000_000) / MESSAGE_BYTES);
    const filler = 'x'.repeat(MESSAGE_BYTES - 40);
    const produceStarted = Date.now();
    for (let start = 0; start < total; start += 2000) {
      const count = Math.min(2000, total - start);
      await produce(
        bulk,
        Array.from({ length: count }, (_, i) => ({
          value: JSON.stringify({ n: start + i, filler }),
          partition: (start + i) % 2,
        })),
      );
    }
    const produceMs = Date.now() - produceStarted;
    const remaining = SLOW_SECONDS * 1000 - produceMs;
    if (remaining > 0) await sleep(remaining);
    const crawled = Math.min(catcher.bytes, resumer.bytes);
    clearInterval(sampler);
    const liveDuringSlow = [...latencies];

    // Catch up: one on the same connection, the other by reconnecting with its last id.
    catcher.run();
    const lastId = resumer.lastId;
    const before = [...resumer.ns];
    resumer.close();
    await resumer.ended;
    const again = await SlowReader.open(`${url}/bulk`, lastId ? { 'Last-Event-ID': lastId } : {});
    readers.push(again);
    again.run();
    await waitFor(() => catcher.ns.length >= total && before.length + again.ns.length >= total, 60_000, 'catch-up');
    await sleep(200);

    liveOn = false;
    await liveProducer;
    await fast.until(() => fast.messages().length === liveSent, 5000, 'every live message');
    onLive();
    clearInterval(liveTimer);

    // Nothing lost, nothing twice, in order per partition.
    const check = (ns: number[], who: string) => {
      assert.equal(ns.length, total, `${who}: ${ns.length} of ${total} messages`);
      assert.deepEqual(
        [...ns].sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
        `${who}: every message once`,
      );
      for (const p of [0, 1]) {
        const mine = ns.filter((n) => n % 2 === p);
        assert.ok(
          mine.every((n, i) => i === 0 || n > (mine[i - 1] as number)),
          `${who}: in order on partition ${p}`,
        );
      }
    };
    check(catcher.ns, 'caught up on the same connection');
    check([...before, ...again.ns], 'resumed with Last-Event-ID');

    // Bounded: what the server buffered for a crawling client, and the process as a whole.
    assert.ok(maxWritable < 2 * 1024 * 1024, `server buffered up to ${maxWritable} bytes for one slow client`);
    const rssGrowth = maxRss - rssBefore;
    assert.ok(rssGrowth < 200 * 1024 * 1024, `RSS grew ${mib(rssGrowth)} MiB while ${BULK_MB} MB were produced`);
    // The fast client was not held up by the slow ones.
    const sorted = [...liveDuringSlow].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length * 0.5)] ?? 0;
    const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0;
    const maxLatency = sorted.at(-1) ?? 0;
    assert.ok(sorted.length >= 10, `${sorted.length} live messages during the slow phase`);
    assert.ok(p50 < 100, `live latency p50 ${p50} ms`);
    assert.ok(maxLatency < 1500, `live latency max ${maxLatency} ms`);

    fast.close();
    await bridge.close();
    bridge = undefined;
    await waitFor(() => openConsumerCount() === 0, 10_000, 'every consumer released');
    recordFigures('slow readers', {
      producedMB: BULK_MB,
      messages: total,
      slowSeconds: Math.round(Math.max(produceMs, SLOW_SECONDS * 1000) / 1000),
      slowClientBytesRead: crawled,
      maxServerBufferedKiB: Math.round(maxWritable / 1024),
      rssGrowthMiB: mib(rssGrowth),
      liveMessages: sorted.length,
      liveLatencyP50ms: p50,
      liveLatencyP99ms: p99,
      liveLatencyMaxMs: maxLatency,
      lost: 0,
      duplicated: 0,
    });
  });
});
