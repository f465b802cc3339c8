// A Kafka of arrays, and consumers that read it the way node-rdkafka's flowing
// mode does (batches per event-loop turn, a few messages handed over even
// after pause()), passed to the library through its consumer-factory seam.
// For unit tests of the session, both sources and the shared tail's log.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BridgeConsumer, KafkaMessage, TopicPartitionOffset, Watermarks } from '../../lib/consumer.ts';
import type { ConsumerFactory } from '../../lib/shared-tail.ts';

interface FakePartition {
  low: number;
  messages: KafkaMessage[];
}

/** Topics of partitions of messages, and every consumer made on them. */
export class FakeKafka {
  readonly topics = new Map<string, FakePartition[]>();
  readonly consumers: FakeConsumer[] = [];
  /** While true, connect() fails (after `connectDelayMs`). */
  down = false;
  /** While true, watermark lookups fail (a leader election, an unreachable cluster). */
  lookupsFail = false;
  connectDelayMs = 0;
  /** Messages a consumer still hands over after pause(), like node-rdkafka's queue. */
  inflightAfterPause = 3;
  /** Messages a consumer delivers per event-loop turn. */
  batch = 50;

  readonly factory: ConsumerFactory = (_config, handlers) => {
    const c = new FakeConsumer(this, handlers);
    this.consumers.push(c);
    return c;
  };

  createTopic(name: string, partitions: number): void {
    this.topics.set(
      name,
      Array.from({ length: partitions }, () => ({ low: 0, messages: [] })),
    );
  }

  addPartitions(name: string, total: number): void {
    const parts = this.topics.get(name) as FakePartition[];
    while (parts.length < total) parts.push({ low: 0, messages: [] });
  }

  /** Appends messages (values as strings) to a partition and wakes its readers. */
  produce(topic: string, partition: number, values: readonly string[], timestamp = Date.now()): void {
    const p = (this.topics.get(topic) as FakePartition[])[partition] as FakePartition;
    for (const v of values) {
      const offset = p.low + p.messages.length;
      p.messages.push({
        topic,
        partition,
        offset,
        value: Buffer.from(v),
        size: v.length,
        key: null,
        timestamp,
      } as unknown as KafkaMessage);
    }
    for (const c of this.consumers) c.wake();
  }

  /** Retention: drops messages before `offset`. */
  deleteBefore(topic: string, partition: number, offset: number): void {
    const p = (this.topics.get(topic) as FakePartition[])[partition] as FakePartition;
    p.messages = p.messages.filter((m) => m.offset >= offset);
    p.low = Math.max(p.low, offset);
  }

  partition(topic: string, partition: number): FakePartition | undefined {
    return this.topics.get(topic)?.[partition];
  }

  /** Consumers made and not yet disconnected. */
  get open(): number {
    return this.consumers.filter((c) => !c.disconnected).length;
  }
}

/** A BridgeConsumer over a FakeKafka. */
export class FakeConsumer implements BridgeConsumer {
  readonly #kafka: FakeKafka;
  readonly handlers: Record<string, (...args: unknown[]) => void> | undefined;
  /** Next offset per assigned partition. */
  readonly next = new Map<string, { topic: string; partition: number; offset: number }>();
  disconnected = false;
  #connected = false;
  #paused = false;
  #inflight = 0;
  #onMessage: ((m: KafkaMessage) => void) | undefined;
  #onError: ((err: Error) => void) | undefined;
  #scheduled = false;
  #arrivals = 0;
  /** While true, nothing is delivered (a stuck consume loop) although partitions move on. */
  stuck = false;

  constructor(kafka: FakeKafka, handlers: Record<string, (...args: unknown[]) => void> | undefined) {
    this.#kafka = kafka;
    this.handlers = handlers;
  }

  async connect(): Promise<void> {
    if (this.#kafka.connectDelayMs > 0) await new Promise((r) => setTimeout(r, this.#kafka.connectDelayMs));
    if (this.#kafka.down) throw new Error('connect failed: all brokers down');
    this.#connected = true;
  }

  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const t of topics) {
      const parts = this.#kafka.topics.get(t);
      if (parts) counts.set(t, parts.length);
    }
    return counts;
  }

  async watermarks(topic: string, partition: number): Promise<Watermarks> {
    if (this.#kafka.lookupsFail) throw new Error('watermarks unavailable: no leader');
    return this.#marks(topic, partition);
  }

  #marks(topic: string, partition: number): Watermarks {
    const p = this.#kafka.partition(topic, partition) as FakePartition;
    return { low: p.low, high: p.low + p.messages.length };
  }

  async offsetsForTimes(
    entries: readonly { topic: string; partition: number; timestamp: number }[],
  ): Promise<TopicPartitionOffset[]> {
    return entries.map((e) => {
      const p = this.#kafka.partition(e.topic, e.partition) as FakePartition;
      const m = p.messages.find((x) => (x.timestamp ?? 0) >= e.timestamp);
      return { topic: e.topic, partition: e.partition, offset: m ? m.offset : -1 };
    });
  }

  start(
    positions: readonly TopicPartitionOffset[],
    onMessage: (message: KafkaMessage) => void,
    onError: (err: Error) => void,
  ): void {
    if (!this.#connected) throw new Error('start() before connect()');
    for (const p of positions) this.next.set(`${p.topic}\u0000${p.partition}`, { ...p });
    this.#onMessage = onMessage;
    this.#onError = onError;
    this.wake();
  }

  addPartitions(positions: readonly TopicPartitionOffset[]): void {
    for (const p of positions) this.next.set(`${p.topic}\u0000${p.partition}`, { ...p });
    this.wake();
  }

  /** Reports a consume error, as node-rdkafka's callback would. */
  failWith(err: Error): void {
    this.#onError?.(err);
  }

  /** Schedules a delivery turn. */
  wake(): void {
    if (this.#scheduled || this.disconnected || !this.#onMessage) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    if (this.disconnected || this.stuck || !this.#onMessage) return;
    let budget = this.#paused ? this.#inflight : this.#kafka.batch;
    let more = false;
    for (const pos of this.next.values()) {
      const p = this.#kafka.partition(pos.topic, pos.partition);
      if (!p) continue;
      if (pos.offset < p.low) pos.offset = p.low;
      while (budget > 0 && pos.offset < p.low + p.messages.length) {
        const m = p.messages[pos.offset - p.low] as KafkaMessage;
        pos.offset++;
        budget--;
        if (this.#paused) this.#inflight--;
        this.#arrivals++;
        // node-rdkafka hands over its own object per delivery.
        this.#onMessage({ ...m });
        if (this.disconnected) return;
      }
      if (pos.offset < p.low + p.messages.length) more = true;
    }
    if (more && !this.#paused) this.wake();
  }

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    if (!this.#connected || this.disconnected || !this.#kafka.partition(topic, partition)) return undefined;
    return this.#marks(topic, partition);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#inflight = this.#kafka.inflightAfterPause;
  }

  resume(): void {
    this.#paused = false;
    this.wake();
  }

  deliveries(): number {
    return this.#arrivals;
  }

  resumeFrom(positions: readonly TopicPartitionOffset[]): void {
    for (const p of positions) {
      const pos = this.next.get(`${p.topic}\u0000${p.partition}`);
      if (pos) pos.offset = p.offset;
    }
    this.resume();
  }

  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
}

/** A response that buffers what is written until the test reads it (backpressure past `highWater` bytes). */
export class FakeResponse extends EventEmitter {
  statusCode = 0;
  headers: Record<string, string> = {};
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  /** Everything read so far. */
  body = '';
  #unread = '';
  readonly socket = { setNoDelay() {}, remoteAddress: '127.0.0.1' };
  readonly highWater: number;
  /** While false, nothing is read: writes pile up and write() returns false past highWater. */
  reading: boolean;

  constructor(options: { highWater?: number; reading?: boolean } = {}) {
    super();
    this.highWater = options.highWater ?? 64 * 1024;
    this.reading = options.reading ?? true;
  }

  get writableLength(): number {
    return Buffer.byteLength(this.#unread);
  }

  writeHead(status: number, headers: Record<string, string>): this {
    this.statusCode = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {}

  write(chunk: string | Buffer): boolean {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.#unread += text;
    if (this.reading) queueMicrotask(() => this.read());
    return this.writableLength < this.highWater;
  }

  end(chunk?: string): this {
    if (chunk) this.#unread += chunk;
    this.read();
    this.writableEnded = true;
    this.writableFinished = true;
    queueMicrotask(() => this.emit('close'));
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    queueMicrotask(() => this.emit('close'));
    return this;
  }

  /** Takes what was written (a client reading) and emits 'drain' when the buffer was full. */
  read(): void {
    const wasFull = this.writableLength >= this.highWater;
    this.body += this.#unread;
    this.#unread = '';
    if (wasFull) this.emit('drain');
  }

  /** The client goes away. */
  hangUp(): void {
    this.destroyed = true;
    this.emit('close');
  }

  /** The `data:` payloads of `message` events so far, with their ids. */
  events(): { id: string; data: string }[] {
    const out: { id: string; data: string }[] = [];
    for (const block of this.body.split('\n\n')) {
      if (!block.startsWith('event: message\n')) continue;
      const lines = block.split('\n');
      const id = (lines.find((l) => l.startsWith('id: ')) ?? '').slice(4);
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      out.push({ id, data });
    }
    return out;
  }
}

/** A request with these headers and URL. */
export function fakeRequest(headers: Record<string, string> = {}, url = '/'): IncomingMessage {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { headers: lower, url, method: 'GET', socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
}

/** The fake response as the ServerResponse kafkaSse takes. */
export function asResponse(res: FakeResponse): ServerResponse {
  return res as unknown as ServerResponse;
}
