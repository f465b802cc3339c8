// kafkaSse(): validate → resolve positions → choose source → stream → tear down.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrokerUnavailableError, type KafkaSseError, toKafkaSseError } from './errors.ts';
import { parseFilterQuery } from './filter-query.ts';
import { type CompiledFilter, compileFilter } from './filters.ts';
import { writeJsonError } from './http-response.ts';
import { LazyChildLogger, logsAt } from './logger.ts';
import { type KafkaSseOptions, type NormalizedOptions, normalizeOptionsOnce } from './options.ts';
import { StreamPipeline } from './pipeline.ts';
import { PositionTracker } from './position-tracker.ts';
import { type Assignments, parseAssignments, parseAtTimestamp, parseLastEventId, type Requested } from './positions.ts';
import { lastEventIdOf, ndjsonContentType, requestIdOf, streamModeOf } from './request.ts';
import { StreamSession } from './session.ts';
import { checkAllowed, planStream, type SetupContext } from './setup.ts';
import { type ConsumerFactory, defaultSharedTail, rdKafkaConsumer } from './shared-tail.ts';
import type { Logger } from './types.ts';
import { StreamWriter } from './writer.ts';

/** Thrown inside setup when the client left or the server aborted: not an error, just stop. */
class SetupStopped extends Error {
  readonly setupSignal = true;
  constructor(readonly why: 'client-closed' | 'aborted') {
    super(why);
  }
}

/**
 * Streams Kafka messages to one HTTP client as Server-Sent Events (or NDJSON
 * when the client prefers JSON), starting from the client's Last-Event-ID, the
 * given assignments, or `atTimestamp`. Streams from the live end share one
 * consumer per process and topic set (see `sharedTail`); the others own one.
 * Consumers use assign() and never commit.
 *
 * The promise resolves when the connection is over and the consumer is
 * released. It never rejects: errors are answered to the client (a status and
 * JSON body before the stream starts, an error event after) and logged.
 *
 * @param req the request (Node's IncomingMessage, or a framework's raw request)
 * @param res the response (Node's ServerResponse, or a framework's raw response)
 * @param assignments topic names (array or comma-separated string) and/or `{topic, partition, offset|timestamp}` objects
 * @param options see {@link KafkaSseOptions}
 * @param atTimestamp start plain topics at the first message at or after this time (ms, numeric string or Date)
 */
export function kafkaSse(
  req: IncomingMessage,
  res: ServerResponse,
  assignments: Assignments,
  options?: KafkaSseOptions,
  atTimestamp?: number | string | Date | null,
): Promise<void> {
  return runStream(req, res, assignments, options, atTimestamp, {});
}

/** @internal Seams for tests: the consumer factory (default: node-rdkafka). */
export interface StreamDeps {
  createConsumer?: ConsumerFactory;
}

/** @internal kafkaSse() with its seams. */
export async function runStream(
  req: IncomingMessage,
  res: ServerResponse,
  assignments: Assignments,
  options: KafkaSseOptions | undefined,
  atTimestamp: unknown,
  deps: StreamDeps,
): Promise<void> {
  const requestId = requestIdOf(req);
  const opts = normalizeOrAnswer(options, res, requestId);
  if (opts === undefined) return;
  const baseLog = opts.logger;
  const log = new LazyChildLogger(baseLog, { requestId });
  const startedAt = Date.now();
  let session: StreamSession | undefined;
  let stopped: SetupStopped['why'] | undefined;
  const onClose = () => {
    if (res.writableFinished && session === undefined) return;
    stopped ??= 'client-closed';
    session?.clientGone();
  };
  const onAbort = () => {
    // While setting up, setup stops at its next step; once streaming, end now.
    stopped ??= 'aborted';
    void session?.finish('aborted');
  };
  // on(), not once(): removed in the finally below; once() would hold a wrapper per stream besides.
  res.on('close', onClose);
  const signal = opts.signal;
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) stopped = 'aborted';
  const ctx: SetupContext = {
    req,
    opts,
    log,
    baseLog,
    createConsumer: deps.createConsumer ?? rdKafkaConsumer,
    sharedTail: opts.sharedTail === undefined ? defaultSharedTail() : opts.sharedTail,
    checkpoint: () => {
      if (stopped !== undefined) throw new SetupStopped(stopped);
    },
    releasing: [],
  };
  try {
    session = await setUp(ctx, res, assignments, atTimestamp, requestId, startedAt);
    if (stopped === 'client-closed') session.clientGone();
    else if (stopped === 'aborted') void session.finish('aborted');
    await session.done;
  } catch (err) {
    await setUpFailed(ctx, res, err, stopped, startedAt);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    res.off('close', onClose);
  }
}

/** The options normalized, or undefined once the request was answered that they are invalid. */
function normalizeOrAnswer(
  options: KafkaSseOptions | undefined,
  res: ServerResponse,
  requestId: string,
): NormalizedOptions | undefined {
  try {
    return normalizeOptionsOnce(options);
  } catch (err) {
    const e = toKafkaSseError(err);
    const base = (options?.logger as Logger | undefined) ?? undefined;
    base?.error?.({ err: e, requestId }, 'kafkaSse called with invalid options');
    if (!base) process.emitWarning(`kafka-sse-bridge: ${e.message}`);
    // The message names the option and its value: for the server's log, not for clients.
    writeJsonError(res, { ...e.toJSON(), message: 'The server is misconfigured' }, {});
    return undefined;
  }
}

/**
 * After a setup that threw: answers the client (unless it left), waits for
 * what setup opened to be released, logs the end. Apart from runStream(),
 * whose frame is held while its stream lasts: the smaller, the less an idle
 * stream holds (bench/idle-heap.mjs).
 */
async function setUpFailed(
  ctx: SetupContext,
  res: ServerResponse,
  err: unknown,
  stopped: SetupStopped['why'] | undefined,
  startedAt: number,
): Promise<void> {
  const log = ctx.log;
  if (err instanceof SetupStopped && err.why === 'client-closed') {
    // Nobody to answer.
  } else {
    const answer =
      err instanceof SetupStopped
        ? new BrokerUnavailableError('The server is shutting down; try again shortly', {
            retryAfterSeconds: Math.max(1, Math.ceil(ctx.opts.unavailableRetryMs / 1000)),
          })
        : toKafkaSseError(err);
    if (stopped !== 'client-closed' || err instanceof SetupStopped) {
      try {
        answerSetupError(ctx, res, answer);
      } catch (answerErr) {
        // A framework's response that refuses our answer: cut it, and still release everything.
        log.error({ err: answerErr }, 'could not answer the request');
        res.destroy();
      }
    }
  }
  await Promise.all(ctx.releasing);
  if (logsAt(log, 'info'))
    log.info(
      { reason: err instanceof SetupStopped ? err.why : 'setup-failed', durationMs: Date.now() - startedAt },
      'stream ended',
    );
}

/** Validate → resolve positions → choose source; returns the started session. */
async function setUp(
  ctx: SetupContext,
  res: ServerResponse,
  assignments: Assignments,
  atTimestampInput: unknown,
  requestId: string,
  startedAt: number,
): Promise<StreamSession> {
  const { req, opts, log } = ctx;
  const mode = streamModeOf(req, opts.disableSSEFormatting);
  // Filters are compiled (and client regexes vetted) before anything touches Kafka.
  const filters: CompiledFilter[] = [];
  if (opts.filter !== null) filters.push(compileFilter(opts.filter, opts.filterLimits));
  if (opts.queryFilters) {
    const fields = parseFilterQuery(req.url ?? '', opts.filterLimits);
    if (fields.length > 0) filters.push(compileFilter(fields, opts.filterLimits));
  }
  const maxEntries = Math.min(opts.maxPartitions, 100_000);
  const lastEventId = lastEventIdOf(req);
  const atTimestamp = parseAtTimestamp(atTimestampInput);
  let requested: Requested[];
  let assigned: Set<string> | undefined;
  if (lastEventId === undefined) {
    requested = parseAssignments(assignments, maxEntries);
  } else {
    requested = parseLastEventId(lastEventId, maxEntries);
    // Without allowedTopics, the server's assignments are the scope a resume may name.
    if (opts.allowedTopics === undefined && opts.lastEventIdTopics === 'assigned') {
      assigned = new Set(parseAssignments(assignments, maxEntries).map((r) => r.topic));
    }
  }
  const topics = [...new Set(requested.map((r) => r.topic))];
  ctx.checkpoint();
  await checkAllowed(ctx, topics, assigned);
  ctx.checkpoint();
  const plan = await planStream(ctx, { requested, topics, fromLastEventId: lastEventId !== undefined, atTimestamp });
  try {
    ctx.checkpoint();
  } catch (err) {
    await plan.source.close();
    throw err;
  }
  const pipeline = new StreamPipeline({
    mode,
    deserializer: opts.deserializer,
    filterer: opts.filterer,
    filters,
    log,
    onFailure: (err) => session.fail(err),
  });
  const session: StreamSession = new StreamSession({
    req,
    res,
    log,
    pipeline,
    positions: new PositionTracker(plan.positions, opts.useTimestampForId),
    source: plan.source,
    topics,
    requestId,
    startedAt,
    registry: opts.registry,
    consumer: {
      create: ctx.createConsumer,
      config: opts.kafkaConfig,
      handlers: opts.kafkaEventHandlers,
      connectTimeoutMs: opts.connectTimeoutMs,
    },
    stream: {
      headers: opts.headers,
      retryMs: opts.retryMs,
      heartbeatMs: opts.heartbeatMs,
      maxDurationMs: opts.maxDurationMs,
      stalledWriteTimeoutMs: opts.stalledWriteTimeoutMs,
      contentType: ndjsonContentType(req),
    },
  });
  if (logsAt(log, 'info'))
    log.info(
      {
        positions: plan.positions.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          offset: p.offset,
          reason: p.reason,
        })),
        mode,
        source: plan.source.constructor.name,
      },
      'stream started',
    );
  try {
    session.start(plan.lost);
  } catch (err) {
    // The head could not be written: the source still gets released.
    await session.finish('setup-failed');
    throw err;
  }
  return session;
}

/** Answers a request refused before its stream began: a status and a JSON body (SSE clients told to retry when Kafka is away). */
function answerSetupError(ctx: SetupContext, res: ServerResponse, e: KafkaSseError): void {
  const { opts, log } = ctx;
  opts.registry?.reportError(e.code, e.statusCode);
  if (e.statusCode >= 500 && e.code !== 'BROKER_UNAVAILABLE') log.error({ err: e }, 'stream setup failed');
  else log.info({ code: e.code, message: e.message }, 'stream refused');
  if (e.code === 'BROKER_UNAVAILABLE' && streamModeOf(ctx.req, opts.disableSSEFormatting) === 'sse') {
    // EventSource never reconnects after a non-200 answer, so an SSE client is
    // told to retry inside a 200 stream that ends at once.
    const writer = new StreamWriter(res, 'sse', { heartbeatMs: null, onFull: () => {}, onDrain: () => {} });
    writer.open(opts.headers, opts.unavailableRetryMs);
    writer.error(e.toJSON());
    writer.end();
    return;
  }
  // A configuration error's message names options and values: for the log only.
  const body = e.code === 'CONFIGURATION' ? { ...e.toJSON(), message: 'The server is misconfigured' } : e.toJSON();
  writeJsonError(res, body, opts.headers, e.retryAfterSeconds);
}
