// A broker of the test's own, for tests that kill it: the shared broker on
// 9092 serves everyone else and is never stopped. Started with
// scripts/kafka.mjs on a free port pair, in a temporary directory, with a
// small admin client and producer bound to it.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { IAdminClient, LibrdKafkaError, Producer } from 'node-rdkafka';
import Kafka from 'node-rdkafka';
import { brokerSettings, start, stop } from '../../scripts/kafka.mjs';

type Settings = ReturnType<typeof brokerSettings>;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose successor (the controller's) is free too. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (port < 65000 && (await portFree(port + 1))) return port;
  }
  throw new Error('no free port pair for a private broker');
}

/** A delivery report of the private broker's producer. */
export interface Ack {
  partition: number;
  offset: number;
}

/** A single-node broker owned by one test file. */
export class PrivateBroker {
  readonly settings: Settings;
  readonly brokers: string;
  #admin: IAdminClient | undefined;
  #producer: Producer | undefined;
  #poll: NodeJS.Timeout | undefined;

  private constructor(settings: Settings) {
    this.settings = settings;
    this.brokers = settings.brokers;
  }

  /** Starts a broker on a free port pair with its data in a new temporary directory. */
  static async start(): Promise<PrivateBroker> {
    const port = await freePortPair();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-sse-private-broker-'));
    const settings = brokerSettings({ KAFKA_PORT: String(port), KAFKA_HOME_DIR: home, KAFKA_HEAP: '512m' });
    const broker = new PrivateBroker(settings);
    await start(settings, { quiet: true, timeoutMs: 120_000 });
    return broker;
  }

  /** A crash: SIGKILL, no clean shutdown. */
  async kill(): Promise<void> {
    await stop(this.settings, { quiet: true, signal: 'SIGKILL' });
  }

  /** Starts the broker again on the same port and data (after kill()). */
  async restart(): Promise<void> {
    await start(this.settings, { quiet: true, timeoutMs: 120_000 });
  }

  /** Creates a topic and waits until every partition answers ListOffsets. */
  async createTopic(name: string, partitions: number): Promise<void> {
    this.#admin ??= Kafka.AdminClient.create({ 'metadata.broker.list': this.brokers, 'client.id': 'private-admin' });
    const admin = this.#admin;
    await new Promise<void>((resolve, reject) =>
      admin.createTopic({ topic: name, num_partitions: partitions, replication_factor: 1 }, 15_000, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    await this.waitReady(name, partitions);
  }

  /** Resolves once every partition of `topic` answers a watermark query (the partition is served). */
  async waitReady(topic: string, partitions: number, timeoutMs = 60_000): Promise<void> {
    const p = await this.producer();
    const deadline = Date.now() + timeoutMs;
    for (let partition = 0; partition < partitions; partition++) {
      for (;;) {
        const ok = await new Promise<boolean>((resolve) =>
          p.queryWatermarkOffsets(topic, partition, 2_000, (err) => resolve(!err)),
        );
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`${topic}/${partition} is not served after ${timeoutMs} ms`);
        await sleep(100);
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

  /**
   * A producer that keeps messages queued while the broker is down and
   * delivers them after it returns (idempotent, so retries add no duplicates).
   */
  async producer(): Promise<Producer> {
    if (this.#producer) return this.#producer;
    const p = new Kafka.Producer(
      {
        'metadata.broker.list': this.brokers,
        'client.id': 'private-producer',
        dr_cb: true,
        'linger.ms': 0,
        'enable.idempotence': true,
      },
      { 'message.timeout.ms': 180_000 },
    );
    p.on('event.error', () => {});
    p.on('delivery-report', (err, report) => {
      const done = report.opaque as (err: LibrdKafkaError | null, ack: Ack) => void;
      done(err, { partition: report.partition, offset: report.offset });
    });
    await new Promise<void>((resolve, reject) =>
      p.connect({ timeout: 15_000 }, (err) => (err ? reject(err) : resolve())),
    );
    this.#poll = setInterval(() => p.poll(), 5);
    this.#producer = p;
    return p;
  }

  /** Produces one message; resolves with its offset once acknowledged (however long the broker is away). */
  async produce(topic: string, partition: number, value: string): Promise<Ack> {
    const p = await this.producer();
    return new Promise((resolve, reject) => {
      p.produce(topic, partition, Buffer.from(value), null, null, (err: LibrdKafkaError | null, ack: Ack) =>
        err ? reject(err) : resolve(ack),
      );
    });
  }

  /** Disconnects the clients, stops the broker and deletes its data. */
  async close(): Promise<void> {
    if (this.#poll) clearInterval(this.#poll);
    this.#admin?.disconnect();
    this.#admin = undefined;
    const p = this.#producer;
    this.#producer = undefined;
    if (p) await new Promise<void>((resolve) => p.disconnect(5_000, () => resolve()));
    await stop(this.settings, { quiet: true });
    fs.rmSync(this.settings.home, { recursive: true, force: true });
  }
}
