// The filter options of kafkaSse: filter, queryFilters, filterLimits.
import assert from 'node:assert/strict';
import { ConfigurationError } from '../../lib/errors.ts';
import { FILTER_LIMITS } from '../../lib/filter-spec.ts';
import { compileFilter } from '../../lib/filters.ts';
import { type KafkaSseOptions, normalizeOptions } from '../../lib/options.ts';

const BROKERS = { 'metadata.broker.list': '127.0.0.1:9092' };
const withBrokers = (extra: Record<string, unknown>): KafkaSseOptions =>
  ({ kafkaConfig: { ...BROKERS }, ...extra }) as KafkaSseOptions;

describe('options: filters', () => {
  it('defaults: no filter, no query filters, FILTER_LIMITS', () => {
    const o = normalizeOptions(withBrokers({}));
    assert.equal(o.filter, null);
    assert.equal(o.queryFilters, false);
    assert.deepEqual(o.filterLimits, FILTER_LIMITS);
  });

  it('accepts a spec list, a shorthand object, a compiled filter, or null', () => {
    const compiled = compileFilter({ type: 'edit' });
    assert.equal(normalizeOptions(withBrokers({ filter: compiled })).filter, compiled);
    assert.deepEqual(normalizeOptions(withBrokers({ filter: { type: 'edit' } })).filter, { type: 'edit' });
    const list = [{ field: 'type', anyOf: ['edit'] }];
    assert.equal(normalizeOptions(withBrokers({ filter: list })).filter, list);
    assert.equal(normalizeOptions(withBrokers({ filter: null })).filter, null);
  });

  it('refuses a filter of the wrong type, naming the option (the content is checked per request: 400)', () => {
    for (const bad of ['type=edit', 42, () => true, true]) {
      assert.throws(
        () => normalizeOptions(withBrokers({ filter: bad })),
        (err: unknown) => {
          assert.ok(err instanceof ConfigurationError);
          assert.match(err.message, /options\.filter must be/);
          return true;
        },
      );
    }
    // A spec with bad content passes here: kafkaSse answers it 400 INVALID_FILTER.
    assert.doesNotThrow(() => normalizeOptions(withBrokers({ filter: { x: { regex: '(a+)+' } } })));
  });

  it('validates queryFilters and filterLimits', () => {
    assert.equal(normalizeOptions(withBrokers({ queryFilters: true })).queryFilters, true);
    assert.throws(
      () => normalizeOptions(withBrokers({ queryFilters: 'yes' })),
      /options\.queryFilters must be a boolean/,
    );
    const o = normalizeOptions(withBrokers({ filterLimits: { maxFields: 2 } }));
    assert.equal(o.filterLimits.maxFields, 2);
    assert.equal(o.filterLimits.maxRegexes, FILTER_LIMITS.maxRegexes);
    assert.throws(() => normalizeOptions(withBrokers({ filterLimits: [] })), /filterLimits must be an object/);
    assert.throws(() => normalizeOptions(withBrokers({ filterLimits: { maxFeilds: 2 } })), /maxFeilds is not a known/);
    assert.throws(
      () => normalizeOptions(withBrokers({ filterLimits: { maxFields: 0 } })),
      /filterLimits\.maxFields must be a positive integer/,
    );
  });
});
