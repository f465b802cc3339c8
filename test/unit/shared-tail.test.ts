import assert from 'node:assert/strict';
import { ConfigurationError, defaultSharedTail, SHARED_TAIL_DEFAULTS, SharedTail } from '../../index.ts';
import { isAllBrokersDown } from '../../lib/consumer.ts';
import { normalizeOptions } from '../../lib/options.ts';
import { configKey } from '../../lib/shared-tail.ts';
import { sseEvent, sseMessage } from '../../lib/sse-format.ts';

describe('shared-tail', () => {
  describe('SharedTail options', () => {
    it('has documented defaults', () => {
      assert.deepEqual(new SharedTail().options, SHARED_TAIL_DEFAULTS);
      assert.deepEqual(SHARED_TAIL_DEFAULTS, { ringMessages: 5000, ringBytes: 16 * 1024 * 1024, lingerMs: 0 });
    });

    it('refuses bad values, naming the option', () => {
      for (const [key, bad] of [
        ['ringMessages', 0],
        ['ringMessages', 1.5],
        ['ringBytes', -1],
        ['lingerMs', -1],
        ['lingerMs', '10'],
      ] as const) {
        assert.throws(
          () => new SharedTail({ [key]: bad }),
          (err: unknown) =>
            err instanceof ConfigurationError && err.message.startsWith(`SharedTail options.${key} must be an integer`),
        );
      }
      assert.equal(new SharedTail({ lingerMs: 0 }).options.lingerMs, 0);
    });
  });

  describe('kafkaSse options', () => {
    const brokers = { 'metadata.broker.list': '127.0.0.1:9092' };
    it('uses the process-wide SharedTail by default, a given one, or none with null', () => {
      // Validation creates nothing: undefined means the process-wide instance, resolved when a stream starts.
      assert.equal(normalizeOptions({ kafkaConfig: brokers }).sharedTail, undefined);
      assert.equal(defaultSharedTail(), defaultSharedTail());
      const mine = new SharedTail();
      assert.equal(normalizeOptions({ kafkaConfig: brokers, sharedTail: mine }).sharedTail, mine);
      assert.equal(normalizeOptions({ kafkaConfig: brokers, sharedTail: null }).sharedTail, null);
    });
  });

  describe('configKey', () => {
    it('is the same for the same settings in any order, and differs otherwise', () => {
      assert.equal(configKey({ a: 1, b: 'x' }), configKey({ b: 'x', a: 1 }));
      assert.notEqual(configKey({ a: 1 }), configKey({ a: '1' }));
      assert.notEqual(configKey({ a: 1 }), configKey({ a: 1, b: true }));
    });

    it('is undefined for settings with functions (they belong to one caller)', () => {
      const withCallback = { a: 1, oauthbearer_token_refresh_cb: () => {} };
      assert.equal(configKey(withCallback), undefined);
      assert.equal(configKey(withCallback), undefined, 'asked again (the answer is kept per config object)');
    });

    it('gives a config object asked again the same key', () => {
      const config = { 'metadata.broker.list': 'b:9092', 'fetch.wait.max.ms': 50 };
      const first = configKey(config);
      assert.equal(configKey(config), first);
      assert.equal(configKey({ ...config }), first);
    });
  });

  describe('isAllBrokersDown', () => {
    it('recognises librdkafka\'s "all brokers down" by code or by message (node-rdkafka events carry code -1)', () => {
      assert.equal(isAllBrokersDown({ code: -187, message: 'x' }), true);
      assert.equal(
        isAllBrokersDown({ code: -1, message: '1/1 brokers are down: all broker connections are down' }),
        true,
      );
      assert.equal(isAllBrokersDown({ code: -1, message: 'broker transport failure' }), false);
      assert.equal(isAllBrokersDown(null), false);
    });
  });

  describe('sseMessage', () => {
    it('frames like sseEvent for tracker ids', () => {
      const id = '[{"topic":"t","partition":0,"offset":1}]';
      for (const data of ['{"a":1}', 'a\nb', 'a\r\nb\rc', '']) {
        assert.equal(sseMessage(data, id), sseEvent('message', data, id));
      }
    });
  });
});
