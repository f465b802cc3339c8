import type { IncomingMessage } from 'node:http';
import pino from 'pino';
import type { KafkaConfig, KafkaMessage } from './consumer.ts';
import { ConfigurationError } from './errors.ts';
import { CompiledFilter, FILTER_LIMITS, type FilterLimits, type FilterSpec } from './filters.ts';
import { defaultSharedTail, SharedTail } from './shared-tail.ts';
import { RAW_JSON } from './sse-format.ts';
import { StreamRegistry } from './stats.ts';

/** The subset of a pino logger kafkaSse uses; any pino logger fits. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  trace(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

/** A message after deserialization: the node-rdkafka message with `.message` set. */
export type DeserializedMessage = KafkaMessage & { message?: unknown };

/** Receives the node-rdkafka message and returns it with `.message` set. Throwing skips the message. */
export type Deserializer = (kafkaMessage: KafkaMessage) => DeserializedMessage;

/** Receives the deserialized message; a truthy return keeps it. Throwing ends the stream with an error event. */
export type Filterer = (kafkaMessage: DeserializedMessage) => unknown;

/** Topics a request may read: a list, or a function of the request returning one (possibly async). */
export type AllowedTopics =
  | readonly string[]
  | ((req: IncomingMessage) => readonly string[] | Promise<readonly string[]>);

/** Options of {@link kafkaSse}. Every field is optional. */
export interface KafkaSseOptions {
  /**
   * librdkafka settings, passed through untouched except
   * `enable.auto.commit=false` and `enable.auto.offset.store=false`, which are forced (offsets are
   * never committed). `metadata.broker.list` (or `bootstrap.servers`) is required.
   * Default: `{}` plus tuned defaults for per-request consumers (see README).
   */
  kafkaConfig?: KafkaConfig;
  /**
   * Topics clients may read. A function receives the request (it may be async),
   * so access can depend on the caller. Topics whose name starts with `__`
   * (Kafka's internal ones) are never readable unless listed explicitly.
   * Default: `undefined`, every non-internal topic.
   */
  allowedTopics?: AllowedTopics;
  /** A pino logger (or anything with pino's methods); each request logs through a child carrying its request id. Default: pino at level `warn`. */
  logger?: Logger;
  /** Turns a node-rdkafka message into the message to send (KafkaSSE's signature). Default: JSON-parse the value and add `_kafka`. */
  deserializer?: Deserializer;
  /** Keeps a message when it returns truthy (KafkaSSE's signature). Default: `null`, keep everything. */
  filterer?: Filterer | null;
  /**
   * A subscription filter applied on the server, AND-ed with `filterer` and with
   * the client's query filters: a spec (see {@link FilterSpec}) or a filter from
   * `compileFilter()`. Compiled before any consumer is created; an invalid one is
   * answered 400 `INVALID_FILTER`. Filtered-out messages still advance the resume id.
   * `null`: none. Default: `null`.
   */
  filter?: FilterSpec | CompiledFilter | null;
  /**
   * Read `filter[<field>]=<values>` parameters from the request URL (see
   * `parseFilterQuery()`), so clients choose what they receive. They can only
   * narrow what `filter` and `filterer` let through. Default: `false`.
   */
  queryFilters?: boolean;
  /** Bounds on filters (client and server ones), merged over `FILTER_LIMITS`. Default: `FILTER_LIMITS`. */
  filterLimits?: Partial<FilterLimits>;
  /** Write timestamps (+1 ms) instead of offsets in event ids, so ids work across clusters. Default: `false`. */
  useTimestampForId?: boolean;
  /** librdkafka event handlers (`event.log`, `event.error`, `event.stats`…); `event_cb` is on only when some are given. Default: `{}`. */
  kafkaEventHandlers?: Record<string, (...args: unknown[]) => void>;
  /** Called with the error when the consumer cannot connect to Kafka. Default: `null`. */
  connectErrorHandler?: ((err: Error) => void) | null;
  /** Extra response headers for the stream (and for error answers). Default: `{}`. */
  headers?: Record<string, string>;
  /** Write an SSE comment (NDJSON: an empty line) when nothing was written for this long. `null`: off. Default: `15000`. */
  heartbeatMs?: number | null;
  /** The `retry:` reconnection hint sent to EventSource clients first. `null`: none. Default: `null`. */
  retryMs?: number | null;
  /** Ends the stream cleanly when aborted (server shutdown); the client is told to come back. Default: none. */
  signal?: AbortSignal;
  /** Most partitions one request may read. `null`: no limit. Default: `1000`. */
  maxPartitions?: number | null;
  /** How long connecting and resolving positions may take before the request is answered as unavailable. Default: `10000`. */
  connectTimeoutMs?: number;
  /** `retry:` hint (ms) sent when the broker cannot be reached, so EventSource clients come back. Default: `5000`. */
  unavailableRetryMs?: number;
  /** Write NDJSON whatever the client accepts (KafkaSSE's option). Default: `false`. */
  disableSSEFormatting?: boolean;
  /**
   * Start plain topics this many messages before the end of each partition
   * (recent history on connect). `Last-Event-ID`, explicit offsets and
   * `atTimestamp` take precedence. `null`: off (start at the end). Default: `null`.
   */
  tail?: number | null;
  /** End the stream after this long, so clients reconnect and load spreads across servers. `null`: never. Default: `null`. */
  maxDurationMs?: number | null;
  /** Counts this stream in a {@link StreamRegistry} (live stats, metrics, admin disconnects). Default: none. */
  registry?: StreamRegistry;
  /**
   * Where streams of whole topics from their live end (and resumes its log
   * still covers) share one consumer per set of topics instead of owning one
   * each: a {@link SharedTail}. `null`: every stream owns a consumer (as in
   * KafkaSSE). Streams with `kafkaEventHandlers` or function-valued
   * `kafkaConfig` settings always own one. With a shared tail, `deserializer`
   * runs once per message for all streams using that same function, and
   * `filterer` receives that shared result: it must not modify it.
   * Default: a process-wide SharedTail (see `defaultSharedTail()`).
   */
  sharedTail?: SharedTail | null;
}

/** Options after validation and defaults. */
export interface NormalizedOptions {
  kafkaConfig: KafkaConfig;
  allowedTopics: AllowedTopics | undefined;
  logger: Logger;
  deserializer: Deserializer;
  filterer: Filterer | null;
  filter: FilterSpec | CompiledFilter | null;
  queryFilters: boolean;
  filterLimits: FilterLimits;
  useTimestampForId: boolean;
  kafkaEventHandlers: Record<string, (...args: unknown[]) => void> | undefined;
  connectErrorHandler: ((err: Error) => void) | null;
  headers: Record<string, string>;
  heartbeatMs: number | null;
  retryMs: number | null;
  signal: AbortSignal | undefined;
  maxPartitions: number;
  connectTimeoutMs: number;
  unavailableRetryMs: number;
  disableSSEFormatting: boolean;
  tail: number | null;
  maxDurationMs: number | null;
  registry: StreamRegistry | undefined;
  sharedTail: SharedTail | null;
}

/**
 * librdkafka settings applied unless the caller sets them. Each request owns a
 * consumer, so the defaults (64 MiB prefetch, 50 MB fetches) would let a few
 * hundred streams hold gigabytes; these keep one consumer to a few MiB while
 * still fetching enough per round trip for fast replays.
 */
export const KAFKA_DEFAULTS: Readonly<Record<string, string | number | boolean>> = Object.freeze({
  'client.id': 'kafka-sse-bridge',
  'group.id': 'kafka-sse-bridge',
  'queued.max.messages.kbytes': 4096,
  'fetch.max.bytes': 4 * 1024 * 1024,
  'fetch.wait.max.ms': 500,
  // librdkafka waits this long before fetching again once its queue holds
  // queued.max.messages.kbytes; at its default (1000 ms) a replay stalls for a
  // second at a time. Measured in bench/: replay and live latency both need it short.
  'fetch.queue.backoff.ms': 10,
  // Half of this is waited before connecting to the broker named by the
  // bootstrap metadata: at the default (100 ms) it is most of a stream's setup time.
  'reconnect.backoff.ms': 10,
  'socket.keepalive.enable': true,
  'auto.offset.reset': 'earliest',
  'enable.partition.eof': false,
  'log.connection.close': false,
  'topic.metadata.refresh.interval.ms': 60000,
});

/** Settings forced on every consumer whatever kafkaConfig says: a bridge never commits. */
export const KAFKA_FORCED: Readonly<Record<string, string | number | boolean>> = Object.freeze({
  'enable.auto.commit': false,
  'enable.auto.offset.store': false,
});

/** Documented defaults of {@link KafkaSseOptions}. */
export const DEFAULTS = Object.freeze({
  heartbeatMs: 15_000,
  retryMs: null,
  maxPartitions: 1000,
  connectTimeoutMs: 10_000,
  unavailableRetryMs: 5_000,
  useTimestampForId: false,
  disableSSEFormatting: false,
  tail: null,
  maxDurationMs: null,
});

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const KNOWN_KEYS = new Set<string>([
  'kafkaConfig',
  'allowedTopics',
  'logger',
  'deserializer',
  'filterer',
  'filter',
  'queryFilters',
  'filterLimits',
  'useTimestampForId',
  'kafkaEventHandlers',
  'connectErrorHandler',
  'headers',
  'heartbeatMs',
  'retryMs',
  'signal',
  'maxPartitions',
  'connectTimeoutMs',
  'unavailableRetryMs',
  'disableSSEFormatting',
  'tail',
  'maxDurationMs',
  'registry',
  'sharedTail',
]);

/**
 * The default deserializer (KafkaSSE's behaviour): JSON-parse the value and
 * attach `_kafka: {topic, partition, offset, timestamp, key}`. Throws on
 * invalid JSON (the message is then skipped).
 */
export function defaultDeserializer(kafkaMessage: KafkaMessage): DeserializedMessage {
  const out = kafkaMessage as DeserializedMessage;
  const value = kafkaMessage.value;
  const text = value === null || value === undefined ? undefined : value.toString('utf8');
  const parsed: unknown = text === undefined ? null : JSON.parse(text);
  const meta = {
    topic: kafkaMessage.topic,
    partition: kafkaMessage.partition,
    offset: kafkaMessage.offset,
    timestamp: kafkaMessage.timestamp,
    key: kafkaMessage.key === undefined || kafkaMessage.key === null ? null : kafkaMessage.key.toString(),
  };
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    // Kept, hidden from enumeration and comparisons, so the text can be sent as
    // it came (see splicedJson); not when the payload has a _kafka of its own,
    // which ours replaces.
    if (!Object.hasOwn(parsed, '_kafka')) {
      Object.defineProperty(parsed, RAW_JSON, { value: text, writable: true, configurable: true });
    }
    (parsed as Record<string, unknown>)._kafka = meta;
    out.message = parsed;
  } else {
    // A scalar, array or tombstone has no field to carry metadata: wrap it so
    // the client still learns where it came from.
    out.message = { value: parsed, _kafka: meta };
  }
  return out;
}

let defaultLogger: Logger | undefined;
function getDefaultLogger(): Logger {
  defaultLogger ??= pino({ name: 'kafka-sse-bridge', level: 'warn' }) as unknown as Logger;
  return defaultLogger;
}

function nonNegativeInt(
  options: Record<string, unknown>,
  key: string,
  fallback: number,
  allowNull: true,
): number | null;
function nonNegativeInt(options: Record<string, unknown>, key: string, fallback: number, allowNull: false): number;
function nonNegativeInt(
  options: Record<string, unknown>,
  key: string,
  fallback: number | null,
  allowNull: boolean,
): number | null {
  const v = options[key];
  if (v === undefined) return fallback;
  if (v === null && allowNull) return null;
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new ConfigurationError(
      `options.${key} must be a non-negative integer${allowNull ? ' or null' : ''}, got ${String(v)}`,
    );
  }
  return v as number;
}

function checkFunction(options: Record<string, unknown>, key: string, allowNull: boolean): void {
  const v = options[key];
  if (v === undefined || (v === null && allowNull)) return;
  if (typeof v !== 'function')
    throw new ConfigurationError(`options.${key} must be a function${allowNull ? ' or null' : ''}`);
}

function checkBoolean(options: Record<string, unknown>, key: string): boolean | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ConfigurationError(`options.${key} must be a boolean, got ${String(v)}`);
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates options once, at entry, and fills in defaults. Throws ConfigurationError naming the option. */
export function normalizeOptions(input: KafkaSseOptions | undefined): NormalizedOptions {
  if (input !== undefined && !isPlainObject(input)) throw new ConfigurationError('options must be an object');
  const o = (input ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN_KEYS.has(key)) throw new ConfigurationError(`options.${key} is not a known option`);
  }

  if (o.kafkaConfig !== undefined && !isPlainObject(o.kafkaConfig)) {
    throw new ConfigurationError('options.kafkaConfig must be an object of librdkafka settings');
  }
  const userConfig = (o.kafkaConfig ?? {}) as KafkaConfig;
  if (!userConfig['metadata.broker.list'] && !userConfig['bootstrap.servers']) {
    throw new ConfigurationError("options.kafkaConfig must set 'metadata.broker.list' (or 'bootstrap.servers')");
  }
  const kafkaConfig: KafkaConfig = { ...KAFKA_DEFAULTS, ...userConfig, ...KAFKA_FORCED };

  const allowed = o.allowedTopics;
  if (allowed !== undefined && typeof allowed !== 'function') {
    if (!Array.isArray(allowed) || !allowed.every((t) => typeof t === 'string')) {
      throw new ConfigurationError(
        'options.allowedTopics must be an array of topic names or a function of the request',
      );
    }
  }

  const logger = o.logger as Logger | undefined;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function')) {
    throw new ConfigurationError('options.logger must be a pino logger (an object with child(), info(), warn()…)');
  }
  checkFunction(o, 'deserializer', false);
  checkFunction(o, 'filterer', true);
  checkFunction(o, 'connectErrorHandler', true);

  const handlers = o.kafkaEventHandlers;
  if (handlers !== undefined) {
    if (!isPlainObject(handlers) || !Object.values(handlers).every((h) => typeof h === 'function')) {
      throw new ConfigurationError('options.kafkaEventHandlers must be an object of event name → function');
    }
  }
  const headers = o.headers;
  if (headers !== undefined) {
    if (!isPlainObject(headers) || !Object.values(headers).every((h) => typeof h === 'string')) {
      throw new ConfigurationError('options.headers must be an object of header name → string value');
    }
  }
  const filter = o.filter;
  if (filter !== undefined && filter !== null && !(filter instanceof CompiledFilter)) {
    if (!Array.isArray(filter) && !isPlainObject(filter)) {
      throw new ConfigurationError(
        'options.filter must be a filter spec (array or object), a compiled filter, or null',
      );
    }
  }
  const filterLimits = o.filterLimits;
  if (filterLimits !== undefined) {
    if (!isPlainObject(filterLimits)) throw new ConfigurationError('options.filterLimits must be an object');
    for (const [key, v] of Object.entries(filterLimits)) {
      if (!Object.hasOwn(FILTER_LIMITS, key)) {
        throw new ConfigurationError(`options.filterLimits.${key} is not a known limit`);
      }
      if (!Number.isSafeInteger(v) || (v as number) < 1) {
        throw new ConfigurationError(`options.filterLimits.${key} must be a positive integer, got ${String(v)}`);
      }
    }
  }
  if (o.registry !== undefined && !(o.registry instanceof StreamRegistry)) {
    throw new ConfigurationError('options.registry must be a StreamRegistry');
  }
  if (o.sharedTail !== undefined && o.sharedTail !== null && !(o.sharedTail instanceof SharedTail)) {
    throw new ConfigurationError('options.sharedTail must be a SharedTail or null');
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ConfigurationError('options.signal must be an AbortSignal');
  }

  const maxPartitions = nonNegativeInt(o, 'maxPartitions', DEFAULTS.maxPartitions, true);
  const connectTimeoutMs = nonNegativeInt(o, 'connectTimeoutMs', DEFAULTS.connectTimeoutMs, false);
  if (connectTimeoutMs < 1) throw new ConfigurationError('options.connectTimeoutMs must be at least 1');
  const heartbeatMs = nonNegativeInt(o, 'heartbeatMs', DEFAULTS.heartbeatMs, true);
  for (const key of ['heartbeatMs', 'maxDurationMs', 'connectTimeoutMs', 'retryMs', 'unavailableRetryMs']) {
    const v = o[key];
    // Node fires longer timers after 1 ms instead.
    if (Number.isSafeInteger(v) && (v as number) > MAX_TIMER_MS) {
      throw new ConfigurationError(`options.${key} must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${v}`);
    }
  }
  if (heartbeatMs !== null && heartbeatMs < 1)
    throw new ConfigurationError('options.heartbeatMs must be at least 1, or null for no heartbeat');

  return {
    kafkaConfig,
    allowedTopics: allowed as AllowedTopics | undefined,
    logger: logger ?? getDefaultLogger(),
    deserializer: (o.deserializer as Deserializer | undefined) ?? defaultDeserializer,
    filterer: (o.filterer as Filterer | null | undefined) ?? null,
    filter: (filter as FilterSpec | CompiledFilter | null | undefined) ?? null,
    queryFilters: checkBoolean(o, 'queryFilters') ?? false,
    filterLimits: { ...FILTER_LIMITS, ...(filterLimits as Partial<FilterLimits> | undefined) },
    useTimestampForId: checkBoolean(o, 'useTimestampForId') ?? DEFAULTS.useTimestampForId,
    kafkaEventHandlers: handlers as Record<string, (...args: unknown[]) => void> | undefined,
    connectErrorHandler: (o.connectErrorHandler as ((err: Error) => void) | null | undefined) ?? null,
    headers: (headers as Record<string, string> | undefined) ?? {},
    heartbeatMs,
    retryMs: o.retryMs === undefined ? DEFAULTS.retryMs : nonNegativeInt(o, 'retryMs', 0, true),
    signal: signal as AbortSignal | undefined,
    maxPartitions: maxPartitions ?? Number.MAX_SAFE_INTEGER,
    connectTimeoutMs,
    unavailableRetryMs: nonNegativeInt(o, 'unavailableRetryMs', DEFAULTS.unavailableRetryMs, false),
    disableSSEFormatting: checkBoolean(o, 'disableSSEFormatting') ?? DEFAULTS.disableSSEFormatting,
    tail: nonNegativeInt(o, 'tail', 0, true) || null,
    maxDurationMs: o.maxDurationMs === undefined ? DEFAULTS.maxDurationMs : nonNegativeInt(o, 'maxDurationMs', 0, true),
    registry: o.registry as StreamRegistry | undefined,
    sharedTail: o.sharedTail === undefined ? defaultSharedTail() : (o.sharedTail as SharedTail | null),
  };
}
