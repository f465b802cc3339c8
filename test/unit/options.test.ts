// Options: documented defaults, the librdkafka settings a bridge forces, and a
// validation message naming the option for every mistake a server author can make.
import assert from 'node:assert/strict';
import type { KafkaMessage } from '../../lib/consumer.ts';
import { ConfigurationError, KafkaSseError } from '../../lib/errors.ts';
import { streamOptionsOf } from '../../lib/fetch.ts';
import { KAFKA_DEFAULTS, KAFKA_FORCED } from '../../lib/kafka-defaults.ts';
import {
  DEFAULTS,
  defaultDeserializer,
  type KafkaSseOptions,
  normalizeOptions,
  normalizeOptionsOnce,
} from '../../lib/options.ts';
import { StreamRegistry } from '../../lib/registry.ts';

const BROKERS = { 'metadata.broker.list': '127.0.0.1:9092' };

/** Options with the one required setting plus `extra`, loosely typed so bad values can be tried. */
const withBrokers = (extra: Record<string, unknown>): KafkaSseOptions =>
  ({ kafkaConfig: { ...BROKERS }, ...extra }) as KafkaSseOptions;

/** Asserts normalizeOptions throws a ConfigurationError whose message matches. */
function assertConfigError(input: unknown, message: RegExp | string): ConfigurationError {
  let caught: unknown;
  try {
    normalizeOptions(input as KafkaSseOptions);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigurationError, `expected a ConfigurationError, got ${String(caught)}`);
  assert.ok(caught instanceof KafkaSseError);
  assert.equal(caught.code, 'CONFIGURATION');
  assert.equal(caught.statusCode, 500);
  if (typeof message === 'string') assert.ok(caught.message.includes(message), caught.message);
  else assert.match(caught.message, message);
  return caught;
}

function kafkaMessage(fields: Partial<KafkaMessage>): KafkaMessage {
  return { value: null, size: 0, topic: 't', partition: 0, offset: 0, ...fields } as KafkaMessage;
}

describe('options', () => {
  describe('DEFAULTS', () => {
    it('documents the default of every optional setting', () => {
      assert.deepEqual(
        { ...DEFAULTS },
        {
          heartbeatMs: 15_000,
          retryMs: null,
          maxPartitions: 1000,
          connectTimeoutMs: 10_000,
          unavailableRetryMs: 5_000,
          useTimestampForId: false,
          disableSSEFormatting: false,
          historyMessages: null,
          maxDurationMs: null,
          stalledWriteTimeoutMs: 30_000,
          lastEventIdTopics: 'assigned',
        },
      );
    });

    it('cannot be changed by a caller', () => {
      assert.ok(Object.isFrozen(DEFAULTS));
      assert.ok(Object.isFrozen(KAFKA_DEFAULTS));
      assert.ok(Object.isFrozen(KAFKA_FORCED));
    });
  });

  describe('normalizeOptions', () => {
    it('fills in the defaults', () => {
      const o = normalizeOptions({ kafkaConfig: BROKERS });
      assert.equal(o.heartbeatMs, DEFAULTS.heartbeatMs);
      assert.equal(o.retryMs, null);
      assert.equal(o.maxPartitions, 1000);
      assert.equal(o.connectTimeoutMs, 10_000);
      assert.equal(o.unavailableRetryMs, 5_000);
      assert.equal(o.useTimestampForId, false);
      assert.equal(o.disableSSEFormatting, false);
      assert.equal(o.historyMessages, null);
      assert.equal(o.maxDurationMs, null);
      assert.equal(o.filterer, null);
      assert.equal(o.connectErrorHandler, null);
      assert.equal(o.deserializer, defaultDeserializer);
      assert.deepEqual(o.headers, {});
      assert.equal(o.allowedTopics, undefined);
      assert.equal(o.kafkaEventHandlers, undefined);
      assert.equal(o.signal, undefined);
      assert.equal(o.registry, undefined);
      assert.equal(typeof o.logger.child, 'function');
      assert.equal(typeof o.logger.warn, 'function');
    });

    it('applies the tuned librdkafka defaults and the forced settings', () => {
      const o = normalizeOptions({ kafkaConfig: BROKERS });
      assert.deepEqual({ ...o.kafkaConfig }, { ...KAFKA_DEFAULTS, ...BROKERS, ...KAFKA_FORCED });
      assert.equal(o.kafkaConfig['enable.auto.commit'], false);
      assert.equal(o.kafkaConfig['enable.auto.offset.store'], false);
    });

    it('forces enable.auto.commit=false even when the caller sets it to true', () => {
      const userConfig = { ...BROKERS, 'enable.auto.commit': true, 'enable.auto.offset.store': true };
      const o = normalizeOptions({ kafkaConfig: userConfig });
      assert.equal(o.kafkaConfig['enable.auto.commit'], false);
      assert.equal(o.kafkaConfig['enable.auto.offset.store'], false);
      // The caller's object is left alone.
      assert.equal(userConfig['enable.auto.commit'], true);
    });

    it('lets the caller override every tuned default and pass any other setting through', () => {
      const overrides: Record<string, string | number | boolean> = {};
      for (const [key, value] of Object.entries(KAFKA_DEFAULTS)) {
        overrides[key] = typeof value === 'number' ? value + 1 : typeof value === 'boolean' ? !value : `${value}-x`;
      }
      const o = normalizeOptions({ kafkaConfig: { ...BROKERS, ...overrides, 'security.protocol': 'ssl' } });
      for (const [key, value] of Object.entries(overrides)) assert.equal(o.kafkaConfig[key], value, key);
      assert.equal(o.kafkaConfig['security.protocol'], 'ssl');
      assert.equal(o.kafkaConfig['metadata.broker.list'], '127.0.0.1:9092');
    });

    it('accepts bootstrap.servers instead of metadata.broker.list', () => {
      const o = normalizeOptions({ kafkaConfig: { 'bootstrap.servers': 'k:9092' } });
      assert.equal(o.kafkaConfig['bootstrap.servers'], 'k:9092');
    });

    it('requires a broker list', () => {
      const message = "options.kafkaConfig must set 'metadata.broker.list' (or 'bootstrap.servers')";
      assertConfigError(undefined, message);
      assertConfigError({}, message);
      assertConfigError({ kafkaConfig: {} }, message);
      assertConfigError({ kafkaConfig: { 'metadata.broker.list': '' } }, message);
      assertConfigError({ kafkaConfig: { 'group.id': 'x' } }, message);
    });

    it('rejects options that are not an object', () => {
      for (const input of [null, 'x', 5, [], true]) assertConfigError(input, 'options must be an object');
    });

    it('rejects an unknown key, naming it', () => {
      assertConfigError(withBrokers({ heartbeat: 5 }), 'options.heartbeat is not a known option');
      assertConfigError(withBrokers({ idleDelayMs: 100 }), 'options.idleDelayMs is not a known option');
      assertConfigError({ kafkaconfig: BROKERS }, 'options.kafkaconfig is not a known option');
    });

    it('keeps what the caller passed', () => {
      const registry = new StreamRegistry();
      const controller = new AbortController();
      const logger = {
        child: () => logger,
        trace() {},
        debug() {},
        info() {},
        warn() {},
        error() {},
      };
      const deserializer = (m: KafkaMessage) => m;
      const filterer = () => true;
      const connectErrorHandler = () => {};
      const handlers = { 'event.log': () => {} };
      const allowed = ['a', 'b'];
      const o = normalizeOptions({
        kafkaConfig: BROKERS,
        allowedTopics: allowed,
        logger,
        deserializer,
        filterer,
        connectErrorHandler,
        kafkaEventHandlers: handlers,
        headers: { 'Access-Control-Allow-Origin': '*' },
        heartbeatMs: 50,
        retryMs: 3000,
        signal: controller.signal,
        maxPartitions: 5,
        connectTimeoutMs: 1,
        unavailableRetryMs: 0,
        useTimestampForId: true,
        disableSSEFormatting: true,
        historyMessages: 10,
        maxDurationMs: 60_000,
        registry,
      });
      assert.equal(o.allowedTopics, allowed);
      assert.equal(o.logger, logger);
      assert.equal(o.deserializer, deserializer);
      assert.equal(o.filterer, filterer);
      assert.equal(o.connectErrorHandler, connectErrorHandler);
      assert.equal(o.kafkaEventHandlers, handlers);
      assert.deepEqual(o.headers, { 'Access-Control-Allow-Origin': '*' });
      assert.equal(o.heartbeatMs, 50);
      assert.equal(o.retryMs, 3000);
      assert.equal(o.signal, controller.signal);
      assert.equal(o.maxPartitions, 5);
      assert.equal(o.connectTimeoutMs, 1);
      assert.equal(o.unavailableRetryMs, 0);
      assert.equal(o.useTimestampForId, true);
      assert.equal(o.disableSSEFormatting, true);
      assert.equal(o.historyMessages, 10);
      assert.equal(o.maxDurationMs, 60_000);
      assert.equal(o.registry, registry);
    });

    it('accepts allowedTopics as a function of the request', () => {
      const allowed = () => ['a'];
      assert.equal(normalizeOptions(withBrokers({ allowedTopics: allowed })).allowedTopics, allowed);
    });

    it('treats null as "off"', () => {
      const o = normalizeOptions(
        withBrokers({
          heartbeatMs: null,
          retryMs: null,
          maxPartitions: null,
          filterer: null,
          connectErrorHandler: null,
          historyMessages: null,
          maxDurationMs: null,
        }),
      );
      assert.equal(o.heartbeatMs, null);
      assert.equal(o.retryMs, null);
      assert.equal(o.filterer, null);
      assert.equal(o.connectErrorHandler, null);
      assert.equal(o.historyMessages, null);
      assert.equal(o.maxDurationMs, null);
      // No limit: any realistic number of partitions fits.
      assert.ok(o.maxPartitions >= Number.MAX_SAFE_INTEGER);
    });

    it('treats historyMessages: 0 as off', () => {
      assert.equal(normalizeOptions(withBrokers({ historyMessages: 0 })).historyMessages, null);
    });

    it('accepts retryMs: 0', () => {
      assert.equal(normalizeOptions(withBrokers({ retryMs: 0 })).retryMs, 0);
    });

    describe('names the option in every validation message', () => {
      const integerCases: [string, unknown[], RegExp][] = [
        [
          'heartbeatMs',
          [-1, 1.5, '100', Number.NaN, Infinity, true, {}],
          /^options\.heartbeatMs must be a non-negative integer or null, got /,
        ],
        [
          'retryMs',
          [-1, 0.5, '3000', Number.NaN, Infinity],
          /^options\.retryMs must be a non-negative integer or null, got /,
        ],
        [
          'maxPartitions',
          [-1, 2.5, '10', Number.NaN, Infinity],
          /^options\.maxPartitions must be a non-negative integer or null, got /,
        ],
        ['historyMessages', [-1, 1.5, '10'], /^options\.historyMessages must be a non-negative integer or null, got /],
        ['maxDurationMs', [-1, 1.5, '10'], /^options\.maxDurationMs must be a non-negative integer or null, got /],
        [
          'connectTimeoutMs',
          [-1, 1.5, '10', null, Number.NaN],
          /^options\.connectTimeoutMs must be a non-negative integer, got /,
        ],
        [
          'unavailableRetryMs',
          [-1, 1.5, '10', null],
          /^options\.unavailableRetryMs must be a non-negative integer, got /,
        ],
      ];
      for (const [key, values, message] of integerCases) {
        it(`options.${key}`, () => {
          for (const value of values) assertConfigError(withBrokers({ [key]: value }), message);
        });
      }

      it('options.heartbeatMs and options.connectTimeoutMs must be at least 1', () => {
        assertConfigError(
          withBrokers({ heartbeatMs: 0 }),
          'options.heartbeatMs must be at least 1, or null for no heartbeat',
        );
        assertConfigError(withBrokers({ connectTimeoutMs: 0 }), 'options.connectTimeoutMs must be at least 1');
      });

      const otherCases: [string, unknown[], RegExp | string][] = [
        ['kafkaConfig', ['x', [], null, 5], 'options.kafkaConfig must be an object of librdkafka settings'],
        [
          'allowedTopics',
          ['a', [1], ['a', null], {}, null],
          'options.allowedTopics must be an array of topic names or a function',
        ],
        ['logger', [{}, 'x', null, { child: 'no' }], 'options.logger must be a pino logger'],
        ['deserializer', ['x', null, {}], /^options\.deserializer must be a function$/],
        ['filterer', ['x', 5, {}], /^options\.filterer must be a function or null$/],
        ['connectErrorHandler', ['x', true], /^options\.connectErrorHandler must be a function or null$/],
        [
          'kafkaEventHandlers',
          [null, [], 'x', { 'event.log': 'no' }],
          'options.kafkaEventHandlers must be an object of event name → function',
        ],
        ['headers', [null, [], 'x', { 'X-A': 1 }], 'options.headers must be an object of header name → string value'],
        ['registry', [{}, null, 'x'], 'options.registry must be a StreamRegistry'],
        ['sharedTail', [{}, 'x', true, 0], 'options.sharedTail must be a SharedTail or null'],
        ['signal', [{}, null, { aborted: false }], 'options.signal must be an AbortSignal'],
        ['useTimestampForId', ['true', 1, null], /^options\.useTimestampForId must be a boolean, got /],
        ['disableSSEFormatting', ['false', 0, null], /^options\.disableSSEFormatting must be a boolean, got /],
      ];
      for (const [key, values, message] of otherCases) {
        it(`options.${key}`, () => {
          for (const value of values) {
            const input = key === 'kafkaConfig' ? { kafkaConfig: value } : withBrokers({ [key]: value });
            assertConfigError(input, message);
          }
        });
      }
    });

    it('refuses headers that Node would refuse when writing the head', () => {
      for (const headers of [{ 'X-Bad': 'a\r\nb' }, { 'Bad Name': 'x' }, { '': 'x' }]) {
        assertConfigError(withBrokers({ headers }), /^options\.headers has an invalid header: /);
      }
      assert.deepEqual(normalizeOptions(withBrokers({ headers: { 'X-Ok': 'fine' } })).headers, { 'X-Ok': 'fine' });
    });

    it('treats undefined like an absent key', () => {
      const o = normalizeOptions(withBrokers({ heartbeatMs: undefined, filterer: undefined, logger: undefined }));
      assert.equal(o.heartbeatMs, DEFAULTS.heartbeatMs);
      assert.equal(o.filterer, null);
    });

    // BUG (lib/options.ts, heartbeatMs / maxDurationMs validation): any safe integer is accepted,
    // but both end up in setTimeout (lib/kafka-sse.ts #maxDurationTimer, lib/writer.ts
    // heartbeat timer), which Node clamps to 1 ms above 2^31 - 1 (about 24.8 days) with a
    // TimeoutOverflowWarning. So `maxDurationMs: 30 * 24 * 3600 * 1000` ends every stream
    // after ~1 ms, and `heartbeatMs: 3e9` re-arms a 1 ms timer (one warning each) for days:
    // 162 warnings in 200 ms measured. Rejecting such values (naming the option) or capping
    // them would both be correct.
    it('never accepts a timer option setTimeout cannot honour (> 2^31 - 1 ms)', () => {
      const thirtyDays = 30 * 24 * 3600 * 1000;
      const accepted: string[] = [];
      for (const [key, value] of [
        ['maxDurationMs', thirtyDays],
        ['heartbeatMs', 3e9],
      ] as const) {
        let result: number | null;
        try {
          result = normalizeOptions(withBrokers({ [key]: value }))[key];
        } catch (err) {
          assert.ok(err instanceof ConfigurationError);
          assert.match(err.message, new RegExp(`^options\\.${key} `));
          continue;
        }
        if (result !== null && result > 2 ** 31 - 1) accepted.push(`options.${key}: ${value} → ${result}`);
      }
      assert.deepEqual(accepted, [], 'accepted as is, so setTimeout would fire after 1 ms');
    });
  });

  describe('defaultDeserializer', () => {
    it('parses a JSON object and attaches _kafka {topic, partition, offset, timestamp, key}', () => {
      const m = kafkaMessage({
        topic: 'eqiad.mediawiki.recentchange',
        partition: 2,
        offset: 41,
        timestamp: 1575906290000,
        key: Buffer.from('Q42'),
        value: Buffer.from('{"title":"Main Page","meta":{"dt":"2019"}}'),
      });
      const out = defaultDeserializer(m);
      assert.deepEqual(out.message, {
        title: 'Main Page',
        meta: { dt: '2019' },
        _kafka: {
          topic: 'eqiad.mediawiki.recentchange',
          partition: 2,
          offset: 41,
          timestamp: 1575906290000,
          key: 'Q42',
        },
      });
    });

    it('returns the Kafka message with .message set (KafkaSSE signature)', () => {
      const m = kafkaMessage({ value: Buffer.from('{}') });
      const out = defaultDeserializer(m);
      assert.equal(out, m);
      assert.equal(out.topic, 't');
      assert.ok(Buffer.isBuffer(out.value));
    });

    it('turns keys into strings and absent keys into null', () => {
      const keyOf = (key: KafkaMessage['key']) =>
        (defaultDeserializer(kafkaMessage({ key, value: Buffer.from('{}') })).message as { _kafka: { key: unknown } })
          ._kafka.key;
      assert.equal(keyOf(Buffer.from('héllo')), 'héllo');
      assert.equal(keyOf('already a string'), 'already a string');
      assert.equal(keyOf(null), null);
      assert.equal(keyOf(undefined), null);
      assert.equal(keyOf(Buffer.alloc(0)), '');
    });

    it('decodes the value as UTF-8', () => {
      const out = defaultDeserializer(kafkaMessage({ value: Buffer.from('{"t":"Zürich 😀 中文"}') }));
      assert.equal((out.message as { t: string }).t, 'Zürich 😀 中文');
    });

    const wrapped: [string, string | null, unknown][] = [
      ['a number', '5', 5],
      ['a string', '"text"', 'text'],
      ['true', 'true', true],
      ['JSON null', 'null', null],
      ['an array', '[1,{"a":2}]', [1, { a: 2 }]],
      ['a tombstone (null value)', null, null],
    ];
    for (const [name, raw, value] of wrapped) {
      it(`wraps ${name} as {value, _kafka}`, () => {
        const out = defaultDeserializer(
          kafkaMessage({
            topic: 'x',
            partition: 1,
            offset: 9,
            timestamp: 7,
            value: raw === null ? null : Buffer.from(raw),
          }),
        );
        assert.deepEqual(out.message, {
          value,
          _kafka: { topic: 'x', partition: 1, offset: 9, timestamp: 7, key: null },
        });
      });
    }

    it('throws on invalid JSON (the message is then skipped)', () => {
      for (const raw of ['not json', '{"a":', '', "{'a':1}", '\uFFFD']) {
        assert.throws(() => defaultDeserializer(kafkaMessage({ value: Buffer.from(raw) })), SyntaxError, raw);
      }
    });

    it('replaces a _kafka field the producer set, so metadata cannot be spoofed', () => {
      const out = defaultDeserializer(
        kafkaMessage({ offset: 3, value: Buffer.from('{"_kafka":{"offset":999},"a":1}') }),
      );
      assert.equal((out.message as { _kafka: { offset: number } })._kafka.offset, 3);
    });
  });
});

describe('normalizeOptionsOnce: one normalized copy per options object', () => {
  it('gives every request with the same object the same copy', () => {
    const options = withBrokers({ heartbeatMs: 1000, headers: { 'X-A': '1' }, allowedTopics: ['a', 'b'] });
    const first = normalizeOptionsOnce(options);
    assert.equal(normalizeOptionsOnce(options), first);
    assert.deepEqual(first, normalizeOptions(options));
    // Another object with the same content is normalized on its own.
    assert.notEqual(normalizeOptionsOnce({ ...options }), first);
  });

  it('normalizes again when the object, or a plain object or array in it, changed', () => {
    const options = withBrokers({ heartbeatMs: 1000, headers: { 'X-A': '1' }, allowedTopics: ['a'] }) as Record<
      string,
      unknown
    >;
    const first = normalizeOptionsOnce(options as KafkaSseOptions);
    options.heartbeatMs = 2000;
    const second = normalizeOptionsOnce(options as KafkaSseOptions);
    assert.notEqual(second, first);
    assert.equal(second.heartbeatMs, 2000);
    (options.kafkaConfig as Record<string, unknown>)['fetch.wait.max.ms'] = 50;
    const third = normalizeOptionsOnce(options as KafkaSseOptions);
    assert.equal(third.kafkaConfig['fetch.wait.max.ms'], 50);
    (options.headers as Record<string, string>)['X-B'] = '2';
    assert.equal(normalizeOptionsOnce(options as KafkaSseOptions).headers['X-B'], '2');
    (options.allowedTopics as string[]).push('c');
    assert.deepEqual(normalizeOptionsOnce(options as KafkaSseOptions).allowedTopics, ['a', 'c']);
    options.extra = 1;
    assert.throws(() => normalizeOptionsOnce(options as KafkaSseOptions), /options\.extra is not a known option/);
    delete options.extra;
    options.heartbeatMs = -5;
    assert.throws(() => normalizeOptionsOnce(options as KafkaSseOptions), ConfigurationError);
  });

  it('normalizes undefined and non-objects as normalizeOptions does', () => {
    assert.throws(() => normalizeOptionsOnce(undefined), /kafkaConfig/);
    assert.throws(() => normalizeOptionsOnce(5 as unknown as KafkaSseOptions), /options must be an object/);
  });
});

describe("streamOptionsOf: kafkaSseResponse's per-request options checked once", () => {
  it('gives requests that spread the same options into a new object the same stream options', () => {
    const shared = withBrokers({ heartbeatMs: 1000, headers: { 'X-A': '1' }, signal: new AbortController().signal });
    const a = streamOptionsOf({ ...shared, remoteAddress: '10.0.0.1', onSettled: () => {} });
    const b = streamOptionsOf({ ...shared, remoteAddress: '10.0.0.2', onSettled: () => {} });
    assert.equal(b, a);
    assert.deepEqual(Object.keys(a).sort(), ['headers', 'heartbeatMs', 'kafkaConfig', 'signal']);
    // So kafkaSse() checks them once: one normalized copy for both requests.
    assert.equal(normalizeOptionsOnce(b), normalizeOptionsOnce(a));
  });

  it('gives new stream options when a value is replaced, added or removed', () => {
    const shared = withBrokers({ heartbeatMs: 1000 });
    const first = streamOptionsOf({ ...shared });
    const replaced = streamOptionsOf({ ...shared, heartbeatMs: 2000 });
    assert.notEqual(replaced, first);
    assert.equal(replaced.heartbeatMs, 2000);
    const added = streamOptionsOf({ ...shared, maxDurationMs: 5000 });
    assert.notEqual(added, first);
    assert.equal(added.maxDurationMs, 5000);
    const { heartbeatMs: _removed, ...fewer } = shared;
    const removed = streamOptionsOf(fewer);
    assert.equal(Object.hasOwn(removed, 'heartbeatMs'), false);
    // The first ones are still known.
    assert.equal(streamOptionsOf({ ...shared, remoteAddress: 'x' }), first);
    // A change inside a shared value is kafkaSse()'s to see (normalizeOptionsOnce).
    (shared.kafkaConfig as Record<string, unknown>)['fetch.wait.max.ms'] = 50;
    assert.equal(normalizeOptionsOnce(streamOptionsOf({ ...shared })).kafkaConfig['fetch.wait.max.ms'], 50);
  });
});
