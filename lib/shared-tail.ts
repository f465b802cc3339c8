// The shared live tail: one consumer per process for all the streams that read
// the same topics from where they are now, so a thousand clients cost one
// librdkafka instance, one fetch per message, and one deserialization and
// framing per message instead of a thousand. This file finds or opens the
// tail for a request; live-tail.ts is one tail, tail-source.ts one reader.
import { setBrand } from './brand.ts';
import { type BridgeConsumer, type KafkaConfig, RdKafkaBridgeConsumer } from './consumer.ts';
import { ConfigurationError } from './errors.ts';
import { LiveTail } from './live-tail.ts';
import type { Logger } from './types.ts';

/** Options of a {@link SharedTail}. */
export interface SharedTailOptions {
  /**
   * Most messages each tail keeps after every stream has read them: the slack
   * a slow client has before it moves to a consumer of its own, and how far
   * back a reconnecting client can resume without one. Default: `5000`.
   */
  ringMessages?: number;
  /** Most bytes (message values and keys, plus the frames made of them) each tail keeps. Default: `16777216` (16 MiB). */
  ringBytes?: number;
  /** Keep a tail's consumer this long after its last stream ended, for clients that come back. `0`: release at once. Default: `0`. */
  lingerMs?: number;
}

/** Documented defaults of {@link SharedTailOptions}. */
export const SHARED_TAIL_DEFAULTS = Object.freeze({
  ringMessages: 5000,
  ringBytes: 16 * 1024 * 1024,
  lingerMs: 0,
});

/** Makes a consumer: the seam through which tests pass a fake. */
export type ConsumerFactory = (
  config: KafkaConfig,
  eventHandlers: Record<string, (...args: unknown[]) => void> | undefined,
) => BridgeConsumer;

/** The consumer factory of the real thing: node-rdkafka. */
export const rdKafkaConsumer: ConsumerFactory = (config, handlers) => new RdKafkaBridgeConsumer(config, handlers);

// configKey's answers by config object: a checked config is never changed
// (a change to the caller's options makes a new one, see normalizeOptionsOnce).
const configKeys = new WeakMap<KafkaConfig, string>();
const NO_KEY = '\u0000none';

/**
 * The key of a kafkaConfig, or undefined when it cannot be shared (function
 * values such as callbacks belong to one caller).
 */
export function configKey(config: KafkaConfig): string | undefined {
  // Options are checked once per options object, so many requests bring the same config object.
  const cached = configKeys.get(config);
  if (cached !== undefined) return cached === NO_KEY ? undefined : cached;
  const keys = Object.keys(config).sort();
  let key = '';
  for (const k of keys) {
    const v = config[k];
    if (typeof v === 'function') {
      configKeys.set(config, NO_KEY);
      return undefined;
    }
    key += `${JSON.stringify(k)}=${JSON.stringify(v)};`;
  }
  configKeys.set(config, key);
  return key;
}

/**
 * Shares one consumer among all the streams of this process that read the same
 * topics from their live end (and those resuming at a position its log still
 * holds). kafkaSse uses a process-wide instance unless `options.sharedTail`
 * names another one, or `null` to give every stream a consumer of its own.
 */
export class SharedTail {
  readonly options: Readonly<Required<SharedTailOptions>>;
  readonly #tails = new Map<string, LiveTail>();
  readonly #probes = new Map<string, { decided: Promise<unknown> }>();
  readonly #createConsumer: ConsumerFactory;
  readonly #partitionCheckMs: number | undefined;

  /**
   * @param options see {@link SharedTailOptions}
   * @param internal for tests: the consumer factory (default: node-rdkafka) and the partition check's pace
   */
  constructor(
    options: SharedTailOptions = {},
    internal: { createConsumer?: ConsumerFactory; partitionCheckMs?: number } = {},
  ) {
    const o = { ...SHARED_TAIL_DEFAULTS, ...options };
    for (const key of ['ringMessages', 'ringBytes', 'lingerMs'] as const) {
      const v = o[key];
      const min = key === 'lingerMs' ? 0 : 1;
      if (!Number.isSafeInteger(v) || v < min) {
        throw new ConfigurationError(`SharedTail options.${key} must be an integer ≥ ${min}, got ${String(v)}`);
      }
    }
    this.options = Object.freeze(o);
    this.#createConsumer = internal.createConsumer ?? rdKafkaConsumer;
    this.#partitionCheckMs = internal.partitionCheckMs;
  }

  /** Number of tails (consumers) open now. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * Resumes of topics no tail reads yet look up where the partitions end with
   * a consumer of their own; one close to the end then opens a tail for the
   * others. So that a restart's thousand returning clients do not each make
   * that lookup, the first one makes it and the others wait for its decision:
   * this returns either a promise to wait for, or, to the first, the function
   * it calls once it has decided (a tail opened, or not), with the error that
   * stopped it if Kafka could not be reached: the waiters then answer at once
   * instead of each waiting out the same timeout again.
   */
  probe(config: string, topics: readonly string[]): Promise<unknown> | ((failure?: unknown) => void) {
    const key = `${config}\u0001${topics.join(',')}`;
    const pending = this.#probes.get(key);
    if (pending) return pending.decided;
    let decide!: (failure: unknown) => void;
    const decided = new Promise<unknown>((resolve) => {
      decide = resolve;
    });
    this.#probes.set(key, { decided });
    return (failure?: unknown) => {
      if (this.#probes.get(key)?.decided === decided) this.#probes.delete(key);
      decide(failure);
    };
  }

  /** The running tail for these settings and topics, if any (not held). */
  find(config: string, topics: readonly string[]): LiveTail | undefined {
    return this.#tails.get(`${config}\u0001${topics.join(',')}`);
  }

  /**
   * The tail for these topics and settings, opened if needed, and held for the
   * caller. `resumeHint`: the positions of a resuming stream, used only when
   * a tail is opened (it may then start a little before them).
   */
  acquire(
    config: string,
    topics: readonly string[],
    kafkaConfig: KafkaConfig,
    log: Logger,
    timeoutMs: number,
    resumeHint?: ReadonlyMap<string, number>,
  ): LiveTail {
    const key = `${config}\u0001${topics.join(',')}`;
    let tail = this.#tails.get(key);
    if (!tail) {
      const created = new LiveTail({
        key,
        topics,
        kafkaConfig,
        log,
        timeoutMs,
        ringMessages: this.options.ringMessages,
        ringBytes: this.options.ringBytes,
        resumeHint,
        createConsumer: this.#createConsumer,
        ...(this.#partitionCheckMs === undefined ? {} : { partitionCheckMs: this.#partitionCheckMs }),
        onGone: (t) => this.#forget(t),
      });
      this.#tails.set(key, created);
      // A tail that could not start is not reused: the next request tries again.
      created.ready.catch(() => this.#forget(created));
      tail = created;
    }
    tail.hold();
    return tail;
  }

  /** Drops a stream's hold on `tail` (see LiveTail#release), with this instance's `lingerMs`. */
  release(tail: LiveTail, reader: Parameters<LiveTail['release']>[0]): Promise<void> {
    return tail.release(reader, this.options.lingerMs);
  }

  #forget(tail: LiveTail): void {
    if (this.#tails.get(tail.key) === tail) this.#tails.delete(tail.key);
  }

  /** Ends every stream reading a tail of this instance (they get an error event and reconnect) and releases the consumers. */
  async close(): Promise<void> {
    await Promise.all([...this.#tails.values()].map((t) => t.close()));
  }
}
setBrand(SharedTail, 'SharedTail');

let processTail: SharedTail | undefined;

/** The process-wide SharedTail kafkaSse uses by default. */
export function defaultSharedTail(): SharedTail {
  processTail ??= new SharedTail();
  return processTail;
}
