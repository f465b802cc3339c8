// Errors: stable codes, the HTTP status of each, and what a client may see of them.
import assert from 'node:assert/strict';
import {
  AllowedTopicsMisconfiguredError,
  BrokerUnavailableError,
  ConfigurationError,
  ERROR_CODES,
  FilterError,
  InvalidAssignmentError,
  InvalidFilterError,
  InvalidLastEventIdError,
  InvalidTimestampError,
  KafkaConsumeError,
  KafkaSseError,
  RateLimitedError,
  TooManyPartitionsError,
  TooManyStreamsError,
  TopicNotAvailableError,
  toKafkaSseError,
} from '../../lib/errors.ts';

/** Every subclass, built with a message and a secret cause, with its expected code and status. */
const SECRET = new Error('broker kafka-1001.internal:9092 refused: topics [secret.topic]');
const CLASSES: [string, KafkaSseError, string, number][] = [
  ['ConfigurationError', new ConfigurationError('m', { cause: SECRET }), 'CONFIGURATION', 500],
  ['InvalidAssignmentError', new InvalidAssignmentError('m', { cause: SECRET }), 'INVALID_ASSIGNMENT', 400],
  ['InvalidLastEventIdError', new InvalidLastEventIdError('m', { cause: SECRET }), 'INVALID_LAST_EVENT_ID', 400],
  ['InvalidTimestampError', new InvalidTimestampError('m', { cause: SECRET }), 'INVALID_TIMESTAMP', 400],
  ['TopicNotAvailableError', new TopicNotAvailableError('m', { cause: SECRET }), 'TOPIC_NOT_AVAILABLE', 404],
  ['InvalidFilterError', new InvalidFilterError('m', { cause: SECRET }), 'INVALID_FILTER', 400],
  ['TooManyPartitionsError', new TooManyPartitionsError('m'), 'TOO_MANY_PARTITIONS', 400],
  ['TooManyStreamsError', new TooManyStreamsError('m', { retryAfterSeconds: 3 }), 'TOO_MANY_STREAMS', 429],
  ['RateLimitedError', new RateLimitedError('m', { retryAfterSeconds: 1 }), 'RATE_LIMITED', 429],
  [
    'BrokerUnavailableError',
    new BrokerUnavailableError('m', { cause: SECRET, retryAfterSeconds: 5 }),
    'BROKER_UNAVAILABLE',
    503,
  ],
  ['KafkaConsumeError', new KafkaConsumeError('m', { cause: SECRET }), 'CONSUME_FAILED', 500],
  ['FilterError', new FilterError('m', { cause: SECRET }), 'FILTER_FAILED', 500],
  [
    'AllowedTopicsMisconfiguredError',
    new AllowedTopicsMisconfiguredError('m', { cause: SECRET }),
    'ALLOWED_TOPICS_MISCONFIGURED',
    500,
  ],
];

describe('errors', () => {
  it('has a closed list of unique codes', () => {
    assert.deepEqual(
      [...ERROR_CODES],
      [
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
      ],
    );
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
  });

  for (const [name, err, code, status] of CLASSES) {
    describe(name, () => {
      it(`has code ${code} and status ${status}`, () => {
        assert.equal(err.code, code);
        assert.equal(err.statusCode, status);
        assert.ok((ERROR_CODES as readonly string[]).includes(err.code));
      });

      it('is an Error and a KafkaSseError, named after its class', () => {
        assert.ok(err instanceof Error);
        assert.ok(err instanceof KafkaSseError);
        assert.equal(err.name, name);
        assert.equal(err.message, 'm');
        assert.equal(typeof err.stack, 'string');
      });

      it('keeps the cause for logs', () => {
        // These situations never wrap another error.
        if (['TooManyPartitionsError', 'TooManyStreamsError', 'RateLimitedError'].includes(name)) {
          assert.equal(err.cause, undefined);
        } else assert.equal(err.cause, SECRET);
      });

      it('shows a client exactly {name, code, message, status, statusCode}, never the cause or the stack', () => {
        const json = err.toJSON();
        assert.deepEqual(json, { name, code, message: 'm', status, statusCode: status });
        assert.deepEqual(Object.keys(json).sort(), ['code', 'message', 'name', 'status', 'statusCode']);
        const text = JSON.stringify(err);
        assert.deepEqual(JSON.parse(text), { name, code, message: 'm', status, statusCode: status });
        assert.ok(!text.includes('kafka-1001'));
        assert.ok(!text.includes('secret.topic'));
        assert.ok(!text.includes('at '));
      });
    });
  }

  it('gives every code but STREAM_ABORTED and INTERNAL its own class', () => {
    const covered = new Set(CLASSES.map(([, err]) => err.code));
    assert.deepEqual(
      ERROR_CODES.filter((c) => !covered.has(c)),
      ['STREAM_ABORTED', 'INTERNAL'],
    );
  });

  it('carries retryAfterSeconds for transient errors only, and never shows it in toJSON', () => {
    const unavailable = new BrokerUnavailableError('down', { retryAfterSeconds: 5 });
    assert.equal(unavailable.retryAfterSeconds, 5);
    assert.ok(!('retryAfterSeconds' in unavailable.toJSON()));
    assert.equal(new BrokerUnavailableError('down').retryAfterSeconds, undefined);
    assert.equal(new InvalidAssignmentError('bad').retryAfterSeconds, undefined);
  });

  it('has no cause property at all when none was given', () => {
    assert.equal(Object.hasOwn(new InvalidAssignmentError('x'), 'cause'), false);
    assert.equal(Object.hasOwn(new InvalidAssignmentError('x', { cause: SECRET }), 'cause'), true);
  });

  describe('KafkaSseError', () => {
    it('defaults to INTERNAL and 500', () => {
      const err = new KafkaSseError('boom');
      assert.equal(err.code, 'INTERNAL');
      assert.equal(err.statusCode, 500);
      assert.equal(err.name, 'KafkaSseError');
      assert.deepEqual(err.toJSON(), {
        name: 'KafkaSseError',
        code: 'INTERNAL',
        message: 'boom',
        status: 500,
        statusCode: 500,
      });
    });

    it('takes a code, a status and a cause', () => {
      const err = new KafkaSseError('gone', 'STREAM_ABORTED', 503, { cause: SECRET, retryAfterSeconds: 2 });
      assert.equal(err.code, 'STREAM_ABORTED');
      assert.equal(err.statusCode, 503);
      assert.equal(err.cause, SECRET);
      assert.equal(err.retryAfterSeconds, 2);
    });

    it('names a user subclass after itself', () => {
      class MyError extends KafkaSseError {}
      assert.equal(new MyError('x').name, 'MyError');
    });
  });

  describe('toKafkaSseError', () => {
    it('returns our errors as they are', () => {
      for (const [, err] of CLASSES) assert.equal(toKafkaSseError(err), err);
    });

    it('wraps anything else as INTERNAL with a generic message, keeping it as the cause', () => {
      const thrown: unknown[] = [
        SECRET,
        new TypeError("Cannot read properties of undefined (reading 'x')"),
        'a string',
        42,
        null,
        undefined,
        { message: 'object with a message', code: 'INVALID_ASSIGNMENT', statusCode: 400 },
      ];
      for (const value of thrown) {
        const err = toKafkaSseError(value);
        assert.ok(err instanceof KafkaSseError);
        assert.equal(err.code, 'INTERNAL');
        assert.equal(err.statusCode, 500);
        assert.equal(err.message, 'Internal error');
        assert.deepEqual(err.toJSON(), {
          name: 'KafkaSseError',
          code: 'INTERNAL',
          message: 'Internal error',
          status: 500,
          statusCode: 500,
        });
        if (value !== undefined) assert.equal(err.cause, value);
        assert.ok(!JSON.stringify(err).includes('kafka-1001'));
      }
    });
  });
});
