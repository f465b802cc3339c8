// While Kafka is unreachable: node-rdkafka's connect and metadata calls hold a
// libuv pool thread for their whole timeout. They must never take every thread
// (an unrelated file read would wait behind them), and every request must get
// its retryable answer within connectTimeoutMs, however many arrive at once.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { openConsumerCount } from '../../index.ts';
import { MAX_POOL_CALLS } from '../../lib/pool-gate.ts';
import { type BridgeServer, closeBridge, quietLogger, startBridge } from '../helpers/bridge-server.ts';
import { getJson } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait.ts';

/** A port on which nothing listens (bound, then closed). */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('outage: no libuv pool starvation', function () {
  this.timeout(60_000);
  let bridge: BridgeServer | undefined;

  afterEach(async () => {
    await closeBridge(bridge);
    bridge = undefined;
  });

  it('answers 10 concurrent requests within connectTimeoutMs + 10%, while a file read stays fast', async () => {
    const CONNECT_TIMEOUT_MS = 2000;
    const port = await deadPort();
    bridge = await startBridge((req) => ({
      assignments: (req.url ?? '').includes('live')
        ? 'outage-topic'
        : [{ topic: 'outage-topic', partition: 0, offset: 0 }],
      options: {
        logger: quietLogger,
        kafkaConfig: { 'metadata.broker.list': `127.0.0.1:${port}` },
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...((req.url ?? '').includes('private') ? { sharedTail: null } : {}),
      },
    }));
    const url = (bridge as BridgeServer).url;
    // A file read every 10 ms for as long as the requests are pending.
    const self = fileURLToPath(import.meta.url);
    let slowestReadMs = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const t = performance.now();
        await fs.readFile(self);
        slowestReadMs = Math.max(slowestReadMs, performance.now() - t);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const path = i % 2 === 0 ? `/private-${i}` : `/live-${i}`;
        const r = await getJson(`${url}${path}`, { Accept: 'application/x-ndjson' });
        return { status: r.status, code: (r.body as { code?: string }).code, ms: performance.now() - started };
      }),
    );
    reading = false;
    await reader;
    for (const a of answers) {
      assert.equal(a.status, 503);
      assert.equal(a.code, 'BROKER_UNAVAILABLE');
    }
    const slowestAnswerMs = Math.max(...answers.map((a) => a.ms));
    console.log(
      `      outage figures: ${JSON.stringify({ poolSlots: MAX_POOL_CALLS, slowestAnswerMs: Math.round(slowestAnswerMs), slowestReadMs: Math.round(slowestReadMs) })}`,
    );
    assert.ok(slowestAnswerMs <= CONNECT_TIMEOUT_MS * 1.1 + 500, `answers took up to ${slowestAnswerMs} ms`);
    // Without the gate the read waited for a connect's whole timeout (seconds).
    assert.ok(slowestReadMs < 250, `a file read took ${slowestReadMs} ms during the outage`);
    await waitFor(() => openConsumerCount() === 0, 30_000, 'every consumer released');
  });
});
