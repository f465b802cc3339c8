// The three-node test cluster (scripts/kafka-cluster.mjs) from a test's side:
// start it when nothing answers (and stop it after the run, if started here),
// create replicated topics, find partition leaders and ISRs, crash or restart
// one node, and produce with acks=all. node-rdkafka directly, so nothing here
// depends on the code under test.
import { randomBytes } from 'node:crypto';
import type { IAdminClient, LibrdKafkaError, Metadata, Producer } from 'node-rdkafka';
import Kafka from 'node-rdkafka';
import {
  addScramUser,
  clusterSettings,
  clusterStatus,
  NODE_IDS,
  signalNode,
  startCluster,
  startNode,
  stopCluster,
  stopNode,
} from '../../scripts/kafka-cluster.mjs';
import { registerTeardown } from './hooks.ts';

type Settings = ReturnType<typeof clusterSettings>;

const TIMEOUT_MS = 15_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where a partition's replicas are, as the cluster's metadata says now. */
export interface PartitionPlacement {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/** A delivery report: where an acknowledged message landed. */
export interface Ack {
  partition: number;
  offset: number;
}

/** The test cluster, its admin client and an acks=all producer. */
export class TestCluster {
  readonly settings: Settings;
  /** Bootstrap servers of the PLAINTEXT listeners (KAFKA_CLUSTER_BROKERS when set). */
  readonly brokers: string;
  /** Bootstrap servers of the SASL_SSL listeners. */
  readonly saslSslBrokers: string;
  /** The CA certificate that signed the brokers' TLS certificate. */
  readonly caFile: string;
  readonly nodeIds: readonly number[] = NODE_IDS;
  #admin: IAdminClient | undefined;
  #producer: Promise<Producer> | undefined;
  #poll: NodeJS.Timeout | undefined;
  #topics = new Set<string>();

  constructor(settings: Settings) {
    this.settings = settings;
    this.brokers = process.env.KAFKA_CLUSTER_BROKERS ?? settings.brokers;
    this.saslSslBrokers = settings.saslSslBrokers;
    this.caFile = settings.caFile;
  }

  #adminClient(): IAdminClient {
    this.#admin ??= Kafka.AdminClient.create({
      'metadata.broker.list': this.brokers,
      'client.id': 'cluster-tests-admin',
    });
    return this.#admin;
  }

  /** Creates a topic replicated on all three nodes and waits until every partition is served with a full ISR. */
  async createTopic(name: string, partitions: number): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.#adminClient().createTopic(
        { topic: name, num_partitions: partitions, replication_factor: 3, config: { 'min.insync.replicas': '2' } },
        TIMEOUT_MS,
        (err) => (err ? reject(new Error(`could not create ${name}: ${err.message}`)) : resolve()),
      ),
    );
    this.#topics.add(name);
    await this.waitForFullIsr(name, partitions, 60_000);
    // The producer has lived through the earlier faults (a frozen node, a
    // killed one): if it no longer reaches the new topic's leaders while a
    // fresh client does, it is replaced, so one scenario's damage cannot fail
    // the next one's setup.
    let lastError = await this.#served(await this.producer(), name, partitions, 20_000);
    if (lastError) {
      console.error(`      (cluster: the producer does not reach ${name} (${lastError}); asking with a new client)`);
      const fresh = await this.#served(undefined, name, partitions, 40_000);
      if (fresh) throw new Error(`${name} is not served: ${fresh}`);
      await this.#replaceProducer();
      lastError = await this.#served(await this.producer(), name, partitions, 40_000);
      if (lastError) throw new Error(`${name} is not served to the producer: ${lastError}`);
    }
  }

  /**
   * Asks every partition's watermarks through `client` (a new consumer when
   * undefined) until all answer or `timeoutMs` passes. Resolves with the last
   * error, or undefined once every partition answered.
   */
  async #served(
    client: Producer | undefined,
    topic: string,
    partitions: number,
    timeoutMs: number,
  ): Promise<string | undefined> {
    const probe = client ?? (await this.#probeConsumer());
    const deadline = Date.now() + timeoutMs;
    let lastError: string | undefined;
    try {
      for (let partition = 0; partition < partitions; partition++) {
        for (;;) {
          const err = await new Promise<LibrdKafkaError | null>((resolve) =>
            probe.queryWatermarkOffsets(topic, partition, 2_000, (e) => resolve(e ?? null)),
          );
          if (!err) break;
          lastError = `${topic}/${partition}: ${err.message}`;
          if (Date.now() > deadline) return lastError;
          await sleep(100);
        }
      }
      return undefined;
    } finally {
      if (!client) await new Promise<void>((resolve) => probe.disconnect(() => resolve()));
    }
  }

  /** A consumer that only asks watermarks (no group, never subscribes). */
  #probeConsumer(): Promise<Kafka.KafkaConsumer> {
    return new Promise((resolve, reject) => {
      const c = new Kafka.KafkaConsumer(
        {
          'metadata.broker.list': this.brokers,
          'group.id': `cluster-tests-probe-${randomBytes(3).toString('hex')}`,
          'client.id': 'cluster-tests-probe',
          'socket.timeout.ms': 10_000,
        },
        {},
      );
      c.on('event.error', () => {});
      c.connect({ timeout: TIMEOUT_MS }, (err) =>
        err ? reject(new Error(`probe could not connect to ${this.brokers}: ${err.message}`)) : resolve(c),
      );
    });
  }

  /** Disconnects the producer; the next call to producer() makes a new one. */
  async #replaceProducer(): Promise<void> {
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
    const pending = this.#producer;
    this.#producer = undefined;
    const p = await pending?.catch(() => undefined);
    if (p) await new Promise<void>((resolve) => p.disconnect(5_000, () => resolve()));
  }

  /** Leader, replicas and ISR of every partition of `topic`, asked of the cluster now. */
  async placement(topic: string): Promise<PartitionPlacement[]> {
    const p = await this.producer();
    const metadata = await new Promise<Metadata>((resolve, reject) =>
      p.getMetadata({ topic, timeout: 5_000 }, (err, data) => (err ? reject(err) : resolve(data))),
    );
    const found = metadata.topics.find((t) => t.name === topic);
    return (found?.partitions ?? [])
      .map((x) => ({ partition: x.id, leader: x.leader, replicas: x.replicas, isr: x.isrs }))
      .sort((a, b) => a.partition - b.partition);
  }

  /** Resolves once metadata shows every partition of `topic` led by a node other than `nodeId`. */
  async waitForLeadersOff(topic: string, partitions: number, nodeId: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const placed = await this.placement(topic).catch(() => []);
      if (placed.length === partitions && placed.every((x) => x.leader >= 0 && x.leader !== nodeId)) return;
      if (Date.now() > deadline) throw new Error(`${topic}: node ${nodeId} still leads after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** The node leading `topic`/`partition` now (-1 while none does). */
  async leaderOf(topic: string, partition: number): Promise<number> {
    return (await this.placement(topic)).find((x) => x.partition === partition)?.leader ?? -1;
  }

  /** Resolves once every partition of `topic` has a leader and all three replicas in sync. */
  async waitForFullIsr(topic: string, partitions: number, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const placed = await this.placement(topic).catch(() => []);
      if (placed.length === partitions && placed.every((x) => x.leader >= 0 && x.isr.length === 3)) return;
      if (Date.now() > deadline)
        throw new Error(`${topic}: ISRs not full after ${timeoutMs} ms: ${JSON.stringify(placed)}`);
      await sleep(250);
    }
  }

  /** A crash of one node: SIGKILL, no controlled shutdown. */
  async kill(nodeId: number): Promise<void> {
    await stopNode(this.settings, nodeId, { signal: 'SIGKILL' });
  }

  /** A clean stop of one node (controlled shutdown: its leaderships move first). */
  async stop(nodeId: number): Promise<void> {
    await stopNode(this.settings, nodeId, { signal: 'SIGTERM' });
  }

  /** Freezes one node (SIGSTOP): its sockets stay open and nothing answers, as in a VM pause or a partition. */
  freeze(nodeId: number): void {
    signalNode(this.settings, nodeId, 'SIGSTOP');
  }

  /** Lets a frozen node run again (SIGCONT). */
  thaw(nodeId: number): void {
    signalNode(this.settings, nodeId, 'SIGCONT');
  }

  /** Starts a stopped node again and waits until it answers and sees the cluster. */
  async restart(nodeId: number): Promise<void> {
    await startNode(this.settings, nodeId, { timeoutMs: 120_000 });
  }

  /** Starts any node a test left stopped, and waits until all three answer and see each other. */
  async ensureAllRunning(): Promise<void> {
    for (const id of NODE_IDS) {
      try {
        signalNode(this.settings, id, 'SIGCONT');
      } catch {
        // Not running: started below.
      }
    }
    await startCluster(this.settings, { quiet: true, timeoutMs: 180_000 });
  }

  /** Adds a SCRAM-SHA-512 user the SASL_SSL listeners accept. */
  addScramUser(user: string, password: string): void {
    addScramUser(this.settings, user, password);
  }

  /**
   * An idempotent acks=all producer that keeps messages queued across a
   * leader move and delivers them once (retries add no duplicates).
   */
  producer(): Promise<Producer> {
    this.#producer ??= new Promise<Producer>((resolve, reject) => {
      const p = new Kafka.Producer(
        {
          'metadata.broker.list': this.brokers,
          'client.id': `cluster-tests-producer-${randomBytes(3).toString('hex')}`,
          dr_cb: true,
          'linger.ms': 5,
          'enable.idempotence': true,
          // A frozen broker (SIGSTOP) keeps its sockets open: without this, a
          // request to it (metadata included) waits librdkafka's 60 s default,
          // and the test's own view of the cluster would lag the move.
          'socket.timeout.ms': 10_000,
        },
        { 'message.timeout.ms': 180_000, 'request.required.acks': -1 },
      );
      p.on('event.error', () => {});
      p.on('delivery-report', (err, report) => {
        const done = report.opaque as (err: LibrdKafkaError | null, ack: Ack) => void;
        done(err, { partition: report.partition, offset: report.offset });
      });
      p.connect({ timeout: TIMEOUT_MS }, (err) => {
        if (err) {
          this.#producer = undefined;
          return reject(new Error(`producer could not connect to ${this.brokers}: ${err.message}`));
        }
        this.#poll = setInterval(() => p.poll(), 5);
        resolve(p);
      });
    });
    return this.#producer;
  }

  /** Produces one message to a partition; resolves once all in-sync replicas have it. */
  async produce(topic: string, partition: number, value: string): Promise<Ack> {
    const p = await this.producer();
    for (;;) {
      try {
        return await new Promise<Ack>((resolve, reject) => {
          p.produce(topic, partition, Buffer.from(value), null, null, (err: LibrdKafkaError | null, ack: Ack) =>
            err ? reject(new Error(`delivery to ${topic}/${partition} failed: ${err.message}`)) : resolve(ack),
          );
        });
      } catch (err) {
        // A full local queue empties as deliveries are polled: wait and try again.
        if ((err as LibrdKafkaError).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw err;
        await sleep(10);
      }
    }
  }

  /** The partition's high watermark (next offset to be written). */
  async highWatermark(topic: string, partition: number): Promise<number> {
    const p = await this.producer();
    return new Promise((resolve, reject) =>
      p.queryWatermarkOffsets(topic, partition, 10_000, (err, w) => (err ? reject(err) : resolve(w.highOffset))),
    );
  }

  /** Deletes the topics made here and disconnects the clients. The cluster keeps running. */
  async close(): Promise<void> {
    const admin = this.#admin;
    if (admin) {
      await Promise.all(
        [...this.#topics].map((t) => new Promise<void>((resolve) => admin.deleteTopic(t, 5_000, () => resolve()))),
      );
      admin.disconnect();
    }
    this.#topics.clear();
    this.#admin = undefined;
    await this.#replaceProducer();
  }
}

let shared: Promise<TestCluster> | undefined;

/**
 * The test cluster, started if it does not answer (then stopped once the run
 * ends). `npm test` starts it beforehand (scripts/test.mjs) and sets
 * KAFKA_CLUSTER_BROKERS; a direct mocha run of a cluster file starts it here.
 * Every node is started again if a test left one stopped.
 */
export function testCluster(): Promise<TestCluster> {
  shared ??= (async () => {
    const settings = clusterSettings();
    const status = await clusterStatus(settings);
    if (!status.up) {
      const result = await startCluster(settings, { quiet: true, timeoutMs: 180_000 });
      if (result?.started && !process.env.KAFKA_CLUSTER_BROKERS) {
        registerTeardown(async () => {
          await stopCluster(settings, { quiet: true });
        });
      }
    }
    const cluster = new TestCluster(settings);
    registerTeardown(() => cluster.close());
    return cluster;
  })();
  return shared;
}
