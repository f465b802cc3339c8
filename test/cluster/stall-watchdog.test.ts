// The stall watchdog must not fire falsely: a far-behind
// resume, read by a consumer of its own that is neither paused nor out of
// work, while the leader of its partition freezes (SIGSTOP: a VM pause, a long
// GC, a network partition) for 25 s. The controller fences it after
// broker.session.timeout.ms (Kafka's default 9 s) and elects a new leader;
// librdkafka finds it by itself and carries on. Meanwhile nothing is delivered
// and the consumer's cached end of the partition stays past its position, which
// looks like a stuck consumer after two quiet checks (10-15 s): watchForStall
// (lib/stall-watch.ts) asks the cluster for the partition's end before it ends a
// stream, and a lookup that fails (no leader yet) starts its count over.
import assert from 'node:assert/strict';
import pino from 'pino';
import { type BridgeServer, baseOptions, closeBridge, startBridge } from '../helpers/bridge-server.ts';
import { type Ack, type TestCluster, testCluster } from '../helpers/cluster.ts';
import { RawSseClient, SequenceCheck } from '../helpers/cluster-clients.ts';
import { uniqueTopic } from '../helpers/kafka.ts';
import { knob, recordFigures } from '../helpers/soak.ts';
import { waitFor } from '../helpers/wait.ts';

/** Messages in the partition before the client comes: more than it reads before the leader dies. */
const BACKLOG = knob('CLUSTER_STALL_BACKLOG', 40_000, 40_000);
/** socket.timeout.ms of the stream's consumer (0: the library's default, librdkafka's 60 s). */
const SOCKET_TIMEOUT_MS = knob('CLUSTER_STALL_SOCKET_TIMEOUT_MS', 0, 0);
/** How long the leader stays frozen, in ms. */
const FREEZE_MS = 25_000;
/** The consumer's prefetch (queued.max.messages.kbytes): small, as NOTES §4 advises for per-request consumers. */
const PREFETCH_KB = 64;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function payload(n: number): string {
  // The shape cluster-clients.ts reads: partition, sequence, send time, phase.
  return `{"p":0,"n":${n},"t":${Date.now()},"ph":0}`;
}

describe('cluster: a far-behind private consumer while its leader freezes', function () {
  this.timeout(240_000);
  let cluster: TestCluster;
  let bridge: BridgeServer | undefined;
  let client: RawSseClient | undefined;

  before(async function () {
    this.timeout(240_000);
    cluster = await testCluster();
  });

  afterEach(async function () {
    this.timeout(240_000);
    client?.close();
    client = undefined;
    await closeBridge(bridge);
    bridge = undefined;
    await cluster.ensureAllRunning();
  });

  it('is not ended by the stall watchdog while the leader moves', async () => {
    const started = Date.now();
    const topic = uniqueTopic('cluster-stall');
    await cluster.createTopic(topic, 1);
    const doomed = await cluster.leaderOf(topic, 0);
    let next = 0;
    const backlog: Promise<Ack>[] = [];
    for (let i = 0; i < BACKLOG; i++) backlog.push(cluster.produce(topic, 0, payload(next++)));
    await Promise.all(backlog);

    const logLines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    const options = baseOptions({
      logger,
      kafkaConfig: {
        'metadata.broker.list': cluster.brokers,
        'queued.max.messages.kbytes': PREFETCH_KB,
        ...(SOCKET_TIMEOUT_MS > 0 ? { 'socket.timeout.ms': SOCKET_TIMEOUT_MS } : {}),
      },
      sharedTail: null,
      retryMs: 500,
      heartbeatMs: 5000,
    });
    bridge = await startBridge(() => ({ assignments: [{ topic, partition: 0, offset: 0 }], options }));
    const check = new SequenceCheck([0]);
    // It reads as fast as it can: the server is never blocked on it, so the consumer is never paused.
    client = new RawSseClient('far-behind', `${bridge.url}/`, check);

    let producing = true;
    const acks: Promise<Ack>[] = [];
    const producer = (async () => {
      while (producing) {
        acks.push(cluster.produce(topic, 0, payload(next++)));
        await sleep(50);
      }
    })();

    await waitFor(() => check.received >= 2000, 60_000, 'the client reading its backlog');
    const frozenAt = Date.now();
    const behindBy = BACKLOG - check.received;
    cluster.freeze(doomed);
    let electionMs = -1;
    try {
      await cluster.waitForLeadersOff(topic, 1, doomed);
      electionMs = Date.now() - frozenAt;
      await sleep(Math.max(0, FREEZE_MS - (Date.now() - frozenAt)));
    } finally {
      cluster.thaw(doomed);
    }
    await cluster.waitForFullIsr(topic, 1);
    producing = false;
    await producer;
    await Promise.all(acks);
    assert.equal(await cluster.highWatermark(topic, 0), next);
    await waitFor(() => check.reached([next]), 90_000, 'the client caught up').catch(() => {});

    const figures = {
      lost: check.missing([next]),
      duplicated: check.duplicated,
      reconnects: client.connections() - 1,
      errorEvents: client.errorEvents.length,
      stallLogs: logLines.filter((l) => /stopped delivering/.test(l)).length,
      behindBy,
      electionMs,
      longestGapMs: check.longestGapMs,
      messages: next,
      durationS: Math.round((Date.now() - started) / 1000),
    };
    console.log(`      figures: ${JSON.stringify(figures)}`);
    recordFigures('cluster far-behind leader kill', figures);
    assert.equal(figures.lost, 0, 'no message lost');
    assert.equal(figures.duplicated, 0, 'no message twice');
    assert.equal(figures.stallLogs, 0, 'the stall watchdog did not fire during a leader election');
    assert.equal(figures.errorEvents, 0, 'no error event reached the client');
    assert.equal(figures.reconnects, 0, 'the client did not reconnect');
  });
});
