// Everything before a stream's first byte, after its input was parsed: may the
// client read these topics, where does each partition start, and which source
// serves it. Errors here still get a real HTTP status.
import type { IncomingMessage } from 'node:http';
import type { BridgeConsumer, Watermarks } from './consumer.ts';
import { ConsumerSource } from './consumer-source.ts';
import {
  AllowedTopicsMisconfiguredError,
  BrokerUnavailableError,
  ConfigurationError,
  InvalidAssignmentError,
  KafkaSseError,
  TooManyPartitionsError,
  TopicNotAvailableError,
} from './errors.ts';
import { resumeWindow } from './live-tail.ts';
import type { NormalizedOptions } from './options.ts';
import {
  expandPartitions,
  type LostRange,
  type Requested,
  type ResolvedPosition,
  resolvePositions,
} from './positions.ts';
import { type ConsumerFactory, configKey, type SharedTail } from './shared-tail.ts';
import type { StreamSource } from './source.ts';
import { TailSource } from './tail-source.ts';
import type { Logger } from './types.ts';

/** What setup needs from the session. */
export interface SetupContext {
  readonly req: IncomingMessage;
  readonly opts: NormalizedOptions;
  /** The request's logger (carries its request id). */
  readonly log: Logger;
  /** The library's logger, for what outlives the request (a shared tail). */
  readonly baseLog: Logger;
  readonly createConsumer: ConsumerFactory;
  /** The shared tail to use, or null for a consumer of the stream's own. */
  readonly sharedTail: SharedTail | null;
  /** Throws when the client left or the server aborted, so setup stops at its next step. */
  readonly checkpoint: () => void;
  /**
   * Releases of what a failed setup had opened. The answer goes out first
   * (a disconnect can wait for a busy thread pool); the session waits for
   * these before it settles.
   */
  readonly releasing: Promise<unknown>[];
}

/** What a request reads. */
export interface StreamRequest {
  readonly requested: readonly Requested[];
  readonly topics: readonly string[];
  readonly fromLastEventId: boolean;
  readonly atTimestamp: number | undefined;
}

/** Where a stream starts and what it reads from. */
export interface StreamPlan {
  positions: ResolvedPosition[];
  lost: LostRange[];
  source: StreamSource;
}

/**
 * Checks the topics against `allowedTopics` (or, without it, internal topics
 * and the Last-Event-ID scope). Unknown and forbidden topics get the same
 * answer, so a client learns nothing about other topics.
 * `assigned`: the topics of the server's assignments, when a Last-Event-ID
 * replaced them and it may only name those.
 */
export async function checkAllowed(
  ctx: SetupContext,
  topics: readonly string[],
  assigned: ReadonlySet<string> | undefined,
): Promise<readonly string[] | undefined> {
  const allowed = ctx.opts.allowedTopics;
  let list: readonly string[] | undefined;
  if (typeof allowed === 'function') {
    list = await allowed(ctx.req);
    if (!Array.isArray(list)) throw new ConfigurationError('options.allowedTopics(req) did not return an array');
  } else {
    list = allowed;
  }
  const set = list ? new Set(list) : undefined;
  for (const t of topics) {
    const ok = set ? set.has(t) : !t.startsWith('__') && (assigned === undefined || assigned.has(t));
    if (!ok) throw new TopicNotAvailableError(`Topic ${t} is not available`);
  }
  return list;
}

/** Resolves positions and picks the source: the shared tail where it can serve the request, else a consumer of its own. */
export async function planStream(ctx: SetupContext, request: StreamRequest): Promise<StreamPlan> {
  const opts = ctx.opts;
  const shared = sharedTailFor(ctx);
  const resume = shared ? resumeOffsets(request, opts) : undefined;
  const release: (() => Promise<void>)[] = [];
  try {
    if (shared && isLive(request, opts)) {
      const tail = shared.tail.acquire(
        shared.key,
        request.topics,
        opts.kafkaConfig,
        ctx.baseLog,
        opts.connectTimeoutMs,
      );
      release.push(() => shared.tail.release(tail, undefined));
      await tail.ready;
      ctx.checkpoint();
      checkPartitionCount(tail.partitions.length, opts.maxPartitions);
      if (tail.failure) throw tail.failure;
      // Everything from here to the source's start is synchronous, so no message
      // can arrive between taking the head and starting to read from it.
      const source = new TailSource(shared.tail, tail, tail.headSeq, tail.caughtUp, !opts.useTimestampForId);
      return { positions: tail.headPositions(), lost: [], source };
    }
    // A resume the running tail's log covers reads from it. With no tail, the
    // first resume of these topics looks up where their partitions end (one
    // consumer: far behind, it keeps it); the others wait for its decision.
    let decided: ((failure?: unknown) => void) | undefined;
    if (shared && resume) {
      const probe = shared.tail.probe(shared.key, request.topics);
      if (typeof probe === 'function') {
        decided = probe;
      } else {
        // Whatever the first decided, the waiters go on at once (no second wait
        // in line), unless Kafka could not be reached: then neither can they.
        const failure = await probe;
        ctx.checkpoint();
        if (failure !== undefined) throw failure;
      }
      if (shared.tail.find(shared.key, request.topics)) {
        decided?.();
        decided = undefined;
        const plan = await joinAt(ctx, shared.tail, shared.key, request, resume, release, undefined);
        if (plan) return plan;
      }
    }
    try {
      const consumer = made(() => ctx.createConsumer(opts.kafkaConfig, opts.kafkaEventHandlers));
      release.push(() => consumer.disconnect());
      const marks = new Map<string, Watermarks>();
      const { positions, lost } = await resolveWithConsumer(ctx, consumer, request, marks);
      if (shared && resume && nearTheEnd(resume, marks, shared.tail.options.ringMessages)) {
        // The first of a server restart's returning clients: a tail opened a
        // little before its positions serves it and those coming back after it.
        const plan = await joinAt(ctx, shared.tail, shared.key, request, resume, release, resume);
        if (plan) {
          void consumer.disconnect();
          return plan;
        }
      }
      const starts = positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset }));
      return { positions, lost, source: new ConsumerSource(consumer, starts, ctx.log) };
    } catch (err) {
      // Kafka out of reach is everyone's answer; the client's own mistakes are not.
      decided?.(kafkaUnreachable(err) ? err : undefined);
      decided = undefined;
      throw err;
    } finally {
      decided?.();
    }
  } catch (err) {
    ctx.releasing.push(Promise.allSettled(release.map((r) => r())));
    throw unavailable(ctx, err);
  }
}

/** The shared tail and config key for this request, or undefined when it needs a consumer of its own. */
function sharedTailFor(ctx: SetupContext): { tail: SharedTail; key: string } | undefined {
  const { sharedTail } = ctx;
  if (sharedTail === null || ctx.opts.kafkaEventHandlers !== undefined) return undefined;
  // Function-valued settings (callbacks) belong to one caller.
  const key = configKey(ctx.opts.kafkaConfig);
  return key === undefined ? undefined : { tail: sharedTail, key };
}

/** Whole topics from their live end. */
function isLive(request: StreamRequest, opts: NormalizedOptions): boolean {
  return (
    !request.fromLastEventId &&
    request.atTimestamp === undefined &&
    opts.historyMessages === null &&
    request.requested.every((r) => r.kind === 'topic')
  );
}

/** A resume's offsets by `topic\0partition`, when every entry names an offset (a shared tail may serve it). */
function resumeOffsets(request: StreamRequest, opts: NormalizedOptions): Map<string, number> | undefined {
  if (request.atTimestamp !== undefined || opts.historyMessages !== null) return undefined;
  const offsets = new Map<string, number>();
  for (const r of request.requested) {
    if (r.kind !== 'partition' || r.offset === undefined) return undefined;
    offsets.set(`${r.topic}\u0000${r.partition}`, r.offset);
  }
  return offsets;
}

/** Every partition of the topics named, each within a tail's resume window of its end. */
function nearTheEnd(
  offsets: ReadonlyMap<string, number>,
  marks: ReadonlyMap<string, Watermarks>,
  ring: number,
): boolean {
  if (offsets.size !== marks.size) return false;
  const window = resumeWindow(ring, marks.size);
  for (const [key, m] of marks) {
    const o = offsets.get(key);
    if (o === undefined || o < m.low || o > m.high || m.high - o > window) return false;
  }
  return true;
}

/**
 * Joins a tail (the running one, or one opened with `hint`) at a resume's
 * offsets when its log covers them; undefined (hold released) when it does not.
 */
async function joinAt(
  ctx: SetupContext,
  shared: SharedTail,
  key: string,
  request: StreamRequest,
  resume: ReadonlyMap<string, number>,
  release: (() => Promise<void>)[],
  hint: ReadonlyMap<string, number> | undefined,
): Promise<StreamPlan | undefined> {
  const opts = ctx.opts;
  const tail = made(() =>
    shared.acquire(key, request.topics, opts.kafkaConfig, ctx.baseLog, opts.connectTimeoutMs, hint),
  );
  const letGo = () => shared.release(tail, undefined);
  release.push(letGo);
  await tail.ready;
  ctx.checkpoint();
  release.splice(release.indexOf(letGo), 1);
  // Reading starts at the first entry the resume needs (a search, not a read of the log up to there).
  const cursor = tail.resumeSeq(resume);
  if (cursor === undefined) {
    // Without waiting for it to close: the stream goes on with a consumer of its own.
    void letGo();
    return undefined;
  }
  checkPartitionCount(tail.partitions.length, opts.maxPartitions);
  const positions: ResolvedPosition[] = tail.partitions.map((p) => ({
    ...p,
    offset: resume.get(`${p.topic}\u0000${p.partition}`) as number,
    reason: 'offset',
  }));
  return { positions, lost: [], source: new TailSource(shared, tail, cursor, false, !opts.useTimestampForId) };
}

/** Positions from a consumer of the stream's own: partition counts, the expansion of the request, watermarks. */
async function resolveWithConsumer(
  ctx: SetupContext,
  consumer: BridgeConsumer,
  request: StreamRequest,
  marks: Map<string, Watermarks>,
): Promise<{ positions: ResolvedPosition[]; lost: LostRange[] }> {
  const opts = ctx.opts;
  const deadline = Date.now() + opts.connectTimeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  await consumer.connect(remaining());
  ctx.checkpoint();
  const counts = await consumer.partitionCounts(request.topics, remaining());
  ctx.checkpoint();
  for (const t of request.topics) {
    if (!counts.has(t)) {
      await checkAllowedExist(ctx, consumer, remaining());
      throw new TopicNotAvailableError(`Topic ${t} is not available`);
    }
  }
  for (const r of request.requested) {
    if (r.kind === 'partition' && r.partition >= (counts.get(r.topic) as number)) {
      throw new InvalidAssignmentError(`Topic ${r.topic} has no partition ${r.partition}`);
    }
  }
  const expanded = expandPartitions(
    request.requested,
    counts,
    request.atTimestamp,
    request.fromLastEventId,
    opts.historyMessages ?? undefined,
  );
  checkPartitionCount(expanded.length, opts.maxPartitions);
  return resolvePositions(expanded, {
    watermarks: async (t, p) => {
      const m = await consumer.watermarks(t, p, remaining());
      marks.set(`${t}\u0000${p}`, m);
      return m;
    },
    offsetsForTimes: (entries) => consumer.offsetsForTimes(entries, remaining()),
  });
}

/**
 * A consumer that cannot even be made (librdkafka refuses a setting) is the
 * server's bug, not Kafka being away: answered 500 INTERNAL, details logged only.
 */
class ConsumerNotMade extends KafkaSseError {
  constructor(cause: unknown) {
    super('Internal error', 'INTERNAL', 500, { cause });
  }
}

function made<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    // The library's own refusal (a worker thread: see MAIN_THREAD_ONLY) says what to fix: answered as misconfigured.
    if (err instanceof ConfigurationError) throw err;
    throw new ConsumerNotMade(err);
  }
}

function checkPartitionCount(count: number, max: number): void {
  if (count > max) {
    throw new TooManyPartitionsError(`This request would read ${count} partitions; at most ${max} are allowed`);
  }
}

/**
 * An `allowedTopics` list none of whose topics exists is the server's
 * mistake, not the client's: answered 500 and logged as an error (once per
 * list), where a 404 would hide it.
 */
async function checkAllowedExist(ctx: SetupContext, consumer: BridgeConsumer, timeoutMs: number): Promise<void> {
  const list = typeof ctx.opts.allowedTopics === 'function' ? undefined : ctx.opts.allowedTopics;
  if (list === undefined || list.length === 0) return;
  const counts = await consumer.partitionCounts(list.slice(0, 100), timeoutMs);
  if (counts.size > 0) return;
  const key = list.join(',');
  if (!reportedLists.has(key)) {
    reportedLists.add(key);
    ctx.log.error({ allowedTopics: list }, 'allowedTopics names no topic that exists on the cluster');
  }
  throw new AllowedTopicsMisconfiguredError('The server is misconfigured: none of its allowed topics exists');
}
const reportedLists = new Set<string>();

/** Whether a setup failure means Kafka could not be reached (what `unavailable` turns into BROKER_UNAVAILABLE). */
function kafkaUnreachable(err: unknown): boolean {
  if (err instanceof ConsumerNotMade || (err as { setupSignal?: boolean })?.setupSignal) return false;
  const e = err as KafkaSseError;
  if (!(e instanceof Error) || !('statusCode' in e)) return true;
  return e.statusCode >= 500 && e.code !== 'CONFIGURATION' && e.code !== 'ALLOWED_TOPICS_MISCONFIGURED';
}

/**
 * Maps a setup failure: the client's mistakes and configuration errors pass
 * through; anything else means Kafka could not be reached.
 */
function unavailable(ctx: SetupContext, err: unknown): unknown {
  if (err instanceof ConsumerNotMade) return err;
  const e = err as KafkaSseError;
  if (!(e instanceof Error) || !('statusCode' in e)) return toUnavailable(ctx, err);
  if (e.statusCode < 500 || e.code === 'CONFIGURATION' || e.code === 'ALLOWED_TOPICS_MISCONFIGURED') return err;
  if (e.code === 'BROKER_UNAVAILABLE') return err;
  return toUnavailable(ctx, err);
}

function toUnavailable(ctx: SetupContext, err: unknown): unknown {
  // The session's own signals (client gone, aborted) are not Kafka's fault.
  if ((err as { setupSignal?: boolean })?.setupSignal) return err;
  const opts = ctx.opts;
  ctx.log.warn({ err }, 'Kafka unavailable during setup');
  if (opts.connectErrorHandler) {
    try {
      opts.connectErrorHandler(err as Error);
    } catch (handlerErr) {
      ctx.log.error({ err: handlerErr }, 'connectErrorHandler threw');
    }
  }
  return new BrokerUnavailableError('Kafka is unavailable; try again shortly', {
    cause: err,
    retryAfterSeconds: Math.max(1, Math.ceil(opts.unavailableRetryMs / 1000)),
  });
}
