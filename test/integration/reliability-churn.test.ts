// Issue 6, part 2: thousands of connect/disconnect cycles, with clients that
// vanish during setup, in the middle of a batch, while the server is blocked
// on their backpressure, after a clean read, or with a refused request.
// Afterwards no consumer is alive and file descriptors, threads and memory are
// back where they started.
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import { openConsumerCount } from '../../index.ts';
import { type BridgeServer, baseOptions, startBridge } from '../helpers/bridge-server.ts';
import { createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { mib, type ProcessSnapshot, settleTo, snapshot, waitFor } from '../helpers/process-stats.ts';
import { knob, recordFigures } from '../helpers/soak.ts';

const CYCLES = knob('CHURN_CYCLES', 300, 4000);
const CONCURRENCY = knob('CHURN_CONCURRENCY', 8, 16);
const KINDS = ['setup', 'mid-batch', 'backpressure', 'clean', 'refused'] as const;
type Kind = (typeof KINDS)[number];
/** Exits before any message flowed: the consume loop never started. */
const SETUP_KINDS: readonly Kind[] = ['setup', 'refused'];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('reliability: connect/disconnect churn', function () {
  this.timeout(60_000 + CYCLES * 100);
  const topic = uniqueTopic('churn');
  let bridge: BridgeServer | undefined;
  const byCycle = new Map<string, ServerResponse>();

  before(async function () {
    this.timeout(60_000);
    await createTopic(topic, 2);
    // ~4 MB of history, so a stream from offset 0 is mid-replay for a while and can fill a socket.
    const filler = 'x'.repeat(1000);
    for (let start = 0; start < 4000; start += 1000) {
      await produce(
        topic,
        Array.from({ length: 1000 }, (_, i) => ({ value: JSON.stringify({ n: start + i, filler }), partition: i % 2 })),
      );
    }
    bridge = await startBridge((req) => {
      const cycle = String(req.headers['x-cycle'] ?? '');
      const kind = cycle.split(':')[0] as Kind;
      queueMicrotask(() => {
        const res = bridge?.responses.at(-1);
        if (res) byCycle.set(cycle, res);
      });
      return {
        // 'setup' starts at the end, so no message is in flight if the client leaves after the head.
        assignments:
          kind === 'refused'
            ? [{ topic, partition: 0, offset: -5 }]
            : kind === 'setup'
              ? topic
              : [
                  { topic, partition: 0, offset: 0 },
                  { topic, partition: 1, offset: 0 },
                ],
        options: baseOptions({ heartbeatMs: 1000 }),
      };
    });
  });

  after(async () => {
    // Bounded: a leaked consumer (see the BUG below) never lets its stream settle.
    await Promise.race([bridge?.close(), sleep(10_000)]);
  });

  /** One cycle of `kind`; resolves when the client side is done (the server may still be tearing down). */
  function cycle(kind: Kind, id: number): Promise<void> {
    const server = bridge as BridgeServer;
    const name = `${kind}:${id}`;
    return new Promise<void>((resolve) => {
      const req = http.get(`${server.url}/`, {
        agent: false,
        headers: { Accept: 'text/event-stream', 'X-Cycle': name },
      });
      const done = () => {
        req.destroy();
        resolve();
      };
      req.on('error', () => resolve());
      if (kind === 'setup') {
        // Gone before the stream started: during parsing, connecting, metadata or offset lookups.
        setTimeout(done, Math.floor(Math.random() * 120));
        return;
      }
      req.on('response', (res) => {
        res.on('error', () => {});
        if (kind === 'refused') {
          res.resume();
          res.on('end', () => resolve());
          return;
        }
        if (kind === 'backpressure') {
          // Stop reading; leave once the server is waiting for 'drain' (or after 3 s).
          res.pause();
          const deadline = Date.now() + 3000;
          const poll = setInterval(() => {
            const sres = byCycle.get(name);
            if (sres?.writableNeedDrain || Date.now() > deadline) {
              clearInterval(poll);
              done();
            }
          }, 5);
          return;
        }
        let seen = 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          seen += chunk.split('\nevent: message\n').length - 1;
          // mid-batch: leave on the first chunk with messages; clean: after a few hundred, by closing.
          if ((kind === 'mid-batch' && seen > 0) || (kind === 'clean' && seen >= 200)) done();
        });
      });
    });
  }

  async function run(count: number, offset: number, kinds: readonly Kind[]): Promise<Record<Kind, number>> {
    const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const id = offset + next++;
        const kind = kinds[id % kinds.length] as Kind;
        counts[kind]++;
        await cycle(kind, id);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return counts;
  }

  async function quiet(): Promise<void> {
    await waitFor(() => openConsumerCount() === 0, 30_000, 'every consumer released');
    await Promise.all((bridge as BridgeServer).streams);
    byCycle.clear();
    await sleep(200);
  }

  /** Warm-up, then two halves of `cycles`; asserts nothing is left and the second half did not grow memory. */
  async function churn(kinds: readonly Kind[], cycles: number, section: string): Promise<void> {
    // Warm-up: libuv's pool threads, undici/http agents and V8's code caches come once.
    await run(40, 0, kinds);
    await quiet();
    const baseline = snapshot();
    const started = Date.now();
    const half = Math.ceil(cycles / 2);
    const countsA = await run(half, 1_000_000, kinds);
    await quiet();
    const mid = await settleTo(baseline);
    const countsB = await run(cycles - half, 2_000_000, kinds);
    await quiet();
    const after: ProcessSnapshot = await settleTo(baseline);
    const elapsed = Date.now() - started;

    assert.equal(openConsumerCount(), 0);
    assert.ok(after.fds <= baseline.fds + 2, `fds: ${baseline.fds} before, ${after.fds} after`);
    assert.ok(after.threads <= baseline.threads + 2, `threads: ${baseline.threads} before, ${after.threads} after`);
    // Flat: the second half must not grow what the first half left (a leak grows with every cycle).
    const heapGrowth = after.heapUsedBytes - mid.heapUsedBytes;
    const rssGrowth = after.rssBytes - mid.rssBytes;
    assert.ok(heapGrowth < 8 * 1024 * 1024, `heap grew ${mib(heapGrowth)} MiB over ${cycles - half} cycles`);
    assert.ok(rssGrowth < 48 * 1024 * 1024, `RSS grew ${mib(rssGrowth)} MiB over ${cycles - half} cycles`);
    // Every kind of exit happened, and every response ended.
    for (const k of kinds) assert.ok((countsA[k] ?? 0) + (countsB[k] ?? 0) > 0, k);
    const server = bridge as BridgeServer;
    const ended = server.responses.filter((r) => r.writableEnded || r.destroyed).length;
    assert.equal(ended, server.responses.length, 'every response ended or destroyed');

    recordFigures(section, {
      cycles,
      kinds: kinds.join(' '),
      concurrency: CONCURRENCY,
      seconds: Math.round(elapsed / 100) / 10,
      consumersOpenAfter: openConsumerCount(),
      fdsBefore: baseline.fds,
      fdsAfter: after.fds,
      threadsBefore: baseline.threads,
      threadsAfter: after.threads,
      rssMiBBefore: mib(baseline.rssBytes),
      rssMiBMid: mib(mid.rssBytes),
      rssMiBAfter: mib(after.rssBytes),
      heapMiBBefore: mib(baseline.heapUsedBytes),
      heapMiBMid: mib(mid.heapUsedBytes),
      heapMiBAfter: mib(after.heapUsedBytes),
    });
  }

  it('leaves nothing behind when clients vanish during setup or are refused', async () => {
    await churn(SETUP_KINDS, CYCLES, 'churn: setup exits');
  });

  // Guards the quiesce before disconnect (lib/consumer.ts): a message left in
  // node-rdkafka's async queue at disconnect would make librdkafka wait forever.
  it('leaves nothing behind when clients vanish mid-batch, on backpressure and after reading', async () => {
    await churn(KINDS, CYCLES, 'churn: every exit');
  });
});
