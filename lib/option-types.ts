// The types of kafkaSse()'s options: what a caller passes (KafkaSseOptions,
// every field documented) and what validation makes of it (NormalizedOptions).
// The checks and defaults are in options.ts.
import type { KafkaConfig } from './consumer.ts';
import type { FilterLimits, FilterSpec } from './filter-spec.ts';
import type { CompiledFilter } from './filters.ts';
import type { StreamRegistry } from './registry.ts';
import type { SharedTail } from './shared-tail.ts';
import type { AllowedTopics, Deserializer, Filterer, Logger } from './types.ts';

/** Options of {@link kafkaSse}. Every field is optional. */
export interface KafkaSseOptions {
  /**
   * librdkafka settings, passed through untouched except
   * `enable.auto.commit=false` and `enable.auto.offset.store=false`, which are forced (offsets are
   * never committed). `metadata.broker.list` (or `bootstrap.servers`) is required.
   * Default: `{}` plus tuned defaults for per-request consumers ({@link KAFKA_DEFAULTS}).
   */
  kafkaConfig?: KafkaConfig;
  /**
   * Topics clients may read. A function receives the request (it may be async),
   * so access can depend on the caller. Topics whose name starts with `__`
   * (Kafka's internal ones) are never readable unless listed explicitly. A list
   * naming no topic that exists is a misconfiguration, answered 500
   * `ALLOWED_TOPICS_MISCONFIGURED`. Default: `undefined`, every non-internal topic.
   */
  allowedTopics?: AllowedTopics;
  /**
   * Which topics a client's `Last-Event-ID` (or `lastEventId` query parameter)
   * may name when `allowedTopics` is unset: `'assigned'`, only the topics of
   * the request's `assignments`; `'any'`, any non-internal topic (KafkaSSE's
   * behaviour). With `allowedTopics` set, that list decides. Default: `'assigned'`.
   */
  lastEventIdTopics?: 'assigned' | 'any';
  /** A pino logger (or anything with pino's methods); each request logs through a child carrying its request id. Default: pino at level `warn`. */
  logger?: Logger;
  /** Turns a node-rdkafka message into the message to send (KafkaSSE's signature). Default: JSON-parse the value and add `_kafka`. */
  deserializer?: Deserializer;
  /**
   * Keeps a message when it returns truthy (KafkaSSE's signature). It may edit
   * the message; the client receives the edit, and no other stream sees it.
   * Default: `null`, keep everything.
   */
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
   * `atTimestamp` take precedence. `null` or `0`: off (start at the end). Default: `null`.
   */
  historyMessages?: number | null;
  /** End the stream after this long, so clients reconnect and load spreads across servers. `null`: never. Default: `null`. */
  maxDurationMs?: number | null;
  /**
   * End a stream whose client accepted nothing for this long while its buffer
   * was full (a reader that stopped reading): its consumer and buffers are
   * released, and the client resumes by id when it comes back. `null`: never.
   * Default: `30000`.
   */
  stalledWriteTimeoutMs?: number | null;
  /** Counts this stream in a {@link StreamRegistry} (live stats, metrics, admin disconnects). Default: none. */
  registry?: StreamRegistry;
  /**
   * Where streams of whole topics from their live end (and resumes its log
   * still covers) share one consumer per set of topics instead of owning one
   * each: a {@link SharedTail}. `null`: every stream owns a consumer (as in
   * KafkaSSE). Streams with `kafkaEventHandlers` or function-valued
   * `kafkaConfig` settings always own one. A `deserializer` runs once per
   * message for the streams without a `filterer`; a stream with a `filterer`
   * deserializes its own copy, so its edits stay its own.
   * Default: a process-wide SharedTail (see `defaultSharedTail()`).
   */
  sharedTail?: SharedTail | null;
}

/** Options after validation and defaults. `sharedTail` undefined means the process-wide default (resolved at use). */
export interface NormalizedOptions {
  kafkaConfig: KafkaConfig;
  allowedTopics: AllowedTopics | undefined;
  lastEventIdTopics: 'assigned' | 'any';
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
  historyMessages: number | null;
  maxDurationMs: number | null;
  stalledWriteTimeoutMs: number | null;
  registry: StreamRegistry | undefined;
  /** Undefined: the process-wide default. */
  sharedTail: SharedTail | null | undefined;
}
