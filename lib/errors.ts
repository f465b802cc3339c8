/**
 * The closed list of error codes. Match on `code`, never on `message`:
 * messages may be reworded, codes are part of the API.
 */
export const ERROR_CODES = [
  'CONFIGURATION',
  'INVALID_ASSIGNMENT',
  'INVALID_LAST_EVENT_ID',
  'INVALID_TIMESTAMP',
  'INVALID_FILTER',
  'TOPIC_NOT_AVAILABLE',
  'TOO_MANY_PARTITIONS',
  'TOO_MANY_STREAMS',
  'RATE_LIMITED',
  'BROKER_UNAVAILABLE',
  'CONSUME_FAILED',
  'FILTER_FAILED',
  'ALLOWED_TOPICS_MISCONFIGURED',
  'STREAM_ABORTED',
  'INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * What a client is shown of an error: never a stack, a cause or a raw
 * message. `statusCode` repeats `status` under KafkaSSE's name, so clients
 * written against it keep working.
 */
export interface PublicError {
  name: string;
  code: ErrorCode;
  message: string;
  status: number;
  statusCode: number;
}

/**
 * Base class of every error this library produces. `statusCode` is the HTTP
 * status used when the error happens before the response headers are sent.
 */
export class KafkaSseError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Seconds a client should wait before retrying, when the error is transient. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    message: string,
    code: ErrorCode = 'INTERNAL',
    statusCode = 500,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** The fields safe to send to a client. */
  toJSON(): PublicError {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      status: this.statusCode,
      statusCode: this.statusCode,
    };
  }
}

/** An option passed by the server's code is invalid: a programmer error, answered 500. */
export class ConfigurationError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'CONFIGURATION', 500, options);
  }
}

/** The assignments (from the server or the query) are malformed: 400. */
export class InvalidAssignmentError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INVALID_ASSIGNMENT', 400, options);
  }
}

/** The `Last-Event-ID` header (or `lastEventId` query parameter) is malformed: 400. */
export class InvalidLastEventIdError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INVALID_LAST_EVENT_ID', 400, options);
  }
}

/** `atTimestamp` (or a timestamp in the assignments) is not a usable time: 400. */
export class InvalidTimestampError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INVALID_TIMESTAMP', 400, options);
  }
}

/**
 * A subscription filter (`filter[…]` query parameters, or `options.filter`) is
 * malformed, too large, or uses a regular expression that could be slow: 400.
 * The message names the filter field and what was wrong.
 */
export class InvalidFilterError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INVALID_FILTER', 400, options);
  }
}

/**
 * A requested topic does not exist or is not allowed: 404. The message never
 * says which of the two, nor lists the topics that are available.
 */
export class TopicNotAvailableError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'TOPIC_NOT_AVAILABLE', 404, options);
  }
}

/** More partitions were requested than `maxPartitions` allows: 400. */
export class TooManyPartitionsError extends KafkaSseError {
  constructor(message: string) {
    super(message, 'TOO_MANY_PARTITIONS', 400);
  }
}

/**
 * The client (or the whole server) holds as many concurrent streams as a
 * `StreamLimiter` allows: 429 with `Retry-After`.
 */
export class TooManyStreamsError extends KafkaSseError {
  constructor(message: string, options: { retryAfterSeconds: number }) {
    super(message, 'TOO_MANY_STREAMS', 429, options);
  }
}

/** The client opened streams faster than a `StreamLimiter`'s request rate allows: 429 with `Retry-After`. */
export class RateLimitedError extends KafkaSseError {
  constructor(message: string, options: { retryAfterSeconds: number }) {
    super(message, 'RATE_LIMITED', 429, options);
  }
}

/** Kafka could not be reached within `connectTimeoutMs`: 503, retryable. */
export class BrokerUnavailableError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, 'BROKER_UNAVAILABLE', 503, options);
  }
}

/** Consuming failed after the stream started. */
export class KafkaConsumeError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'CONSUME_FAILED', 500, options);
  }
}

/** The `filterer` hook threw: the stream ends with this error. */
export class FilterError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'FILTER_FAILED', 500, options);
  }
}

/**
 * `allowedTopics` names no topic that exists on the cluster: the server's
 * misconfiguration (answered 500 and logged as an error), where unknown and
 * forbidden topics get 404.
 */
export class AllowedTopicsMisconfiguredError extends KafkaSseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ALLOWED_TOPICS_MISCONFIGURED', 500, options);
  }
}

/** Wraps anything thrown that is not one of ours, so clients only ever see a generic message. */
export function toKafkaSseError(err: unknown): KafkaSseError {
  if (err instanceof KafkaSseError) return err;
  return new KafkaSseError('Internal error', 'INTERNAL', 500, { cause: err });
}
