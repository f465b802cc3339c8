// Subscription filters: the query syntax, the spec, matching semantics, and the
// bounds that keep a hostile filter from costing the server anything.
import assert from 'node:assert/strict';
import type { KafkaMessage } from '../../lib/consumer.ts';
import { InvalidFilterError } from '../../lib/errors.ts';
import { parseFilterQuery } from '../../lib/filter-query.ts';
import { FILTER_LIMITS, type FieldFilter, type FilterMatcher, type FilterSpec } from '../../lib/filter-spec.ts';
import { CompiledFilter, compileFilter } from '../../lib/filters.ts';
import type { DeserializedMessage } from '../../lib/options.ts';

function msg(
  payload: unknown,
  extra: Partial<Pick<KafkaMessage, 'key' | 'headers' | 'topic' | 'partition' | 'offset' | 'timestamp'>> = {},
): DeserializedMessage {
  return {
    topic: 't',
    partition: 0,
    offset: 5,
    timestamp: 1_700_000_000_000,
    size: 0,
    value: null,
    key: null,
    ...extra,
    message: payload,
  } as DeserializedMessage;
}

/** Whether the query filter keeps a message with this payload. */
function keeps(query: string, payload: unknown, extra: Parameters<typeof msg>[1] = {}): boolean {
  return compileFilter(parseFilterQuery(query)).test(msg(payload, extra));
}

function rejects(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidFilterError, `expected InvalidFilterError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_FILTER');
    assert.equal(err.statusCode, 400);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('filters: parseFilterQuery', () => {
  it('reads filter[field]=values from a path, a query string or URLSearchParams, ignoring other parameters', () => {
    const expected: FieldFilter[] = [
      { field: 'meta.domain', anyOf: ['en.wikipedia.org'] },
      { field: 'type', anyOf: ['edit', 'new'] },
    ];
    const q = 'since=1&filter[meta.domain]=en.wikipedia.org&lastEventId=x&filter[type]=edit,new';
    assert.deepEqual(parseFilterQuery(`/v2/stream/rc?${q}`), expected);
    assert.deepEqual(parseFilterQuery(`?${q}`), expected);
    assert.deepEqual(parseFilterQuery(q), expected);
    assert.deepEqual(parseFilterQuery(new URLSearchParams(q)), expected);
    assert.deepEqual(parseFilterQuery('/v2/stream/rc'), []);
    assert.deepEqual(parseFilterQuery('/v2/stream/rc?filters=1&filterx=2'), []);
  });

  it('accepts URL-encoded brackets and values', () => {
    assert.deepEqual(parseFilterQuery('filter%5Btitle%5D=Main%20Page%2C%20x'), [
      { field: 'title', anyOf: ['Main Page', ' x'] },
    ]);
  });

  it('merges a repeated parameter into one OR list, and negates with filter[!field]', () => {
    assert.deepEqual(parseFilterQuery('filter[type]=edit&filter[type]=new&filter[!bot]=true'), [
      { field: 'type', anyOf: ['edit', 'new'] },
      { field: 'bot', not: true, anyOf: ['true'] },
    ]);
  });

  it('parses globs, ranges and regular expressions', () => {
    const [f] = parseFilterQuery(
      `filter[x]=${encodeURIComponent('blog.*,*.created,>=10,>1,<=2,<3,10..20,5..,..7,-1.5..2e3,/^a{1,3}[/,]b/i,plain')}`,
    );
    assert.deepEqual(f?.anyOf, [
      { glob: 'blog.*' },
      { glob: '*.created' },
      { gte: 10 },
      { gt: 1 },
      { lte: 2 },
      { lt: 3 },
      { gte: 10, lte: 20 },
      { gte: 5 },
      { lte: 7 },
      { gte: -1.5, lte: 2000 },
      { regex: '^a{1,3}[/,]b', flags: 'i' },
      'plain',
    ]);
  });

  it('treats words around .. as a plain value, and escapes with a backslash', () => {
    const [f] = parseFilterQuery(
      `filter[x]=${encodeURIComponent('a..b,1.2.3..4,\\>=10,a\\,b,\\/x/,star\\*,back\\\\slash,..')}`,
    );
    assert.deepEqual(f?.anyOf, ['a..b', '1.2.3..4', '>=10', 'a,b', '/x/', 'star*', 'back\\slash', '..']);
  });

  it('leaves a regex escape (\\/, \\,) inside the expression', () => {
    const [f] = parseFilterQuery(`filter[x]=${encodeURIComponent('/a\\/b/,/c,d/')}`);
    assert.deepEqual(f?.anyOf, [{ regex: 'a\\/b' }, { regex: 'c,d' }]);
  });

  it('decodes + as a space, as every form encoder does (write %2B for a plus)', () => {
    assert.deepEqual(parseFilterQuery('filter[x]=/a+/')[0]?.anyOf, [{ regex: 'a ' }]);
    assert.deepEqual(parseFilterQuery('filter[x]=/a%2B/')[0]?.anyOf, [{ regex: 'a+' }]);
  });

  it('answers malformed filters with INVALID_FILTER naming the problem', () => {
    rejects(() => parseFilterQuery('filter=edit'), /not a filter parameter/);
    rejects(() => parseFilterQuery('filter[]=edit'), /not a filter parameter/);
    rejects(() => parseFilterQuery('filter[type=edit'), /not a filter parameter/);
    rejects(() => parseFilterQuery('filter[type]='), /filter\[type\]: has no value/);
    rejects(() => parseFilterQuery('filter[type]=a,'), /empty value/);
    rejects(() => parseFilterQuery('filter[type]=,a'), /empty value/);
    rejects(() => parseFilterQuery('filter[type]=a,,b'), /empty value/);
    rejects(() => parseFilterQuery(`filter[type]=${encodeURIComponent('a\\')}`), /lone backslash/);
    rejects(() => parseFilterQuery('filter[type]=/abc'), /no closing \//);
    rejects(() => parseFilterQuery('filter[type]=/abc/i,'), /empty value/);
    rejects(() => parseFilterQuery('filter[type]=/abc/x-y'), /expected flags/);
    rejects(() => parseFilterQuery('filter[n]=>=ten'), /expected a number after >=/);
    rejects(() => parseFilterQuery('filter[n]=<'), /expected a number after </);
    rejects(() => parseFilterQuery('filter[n]=20..10'), /range "20..10" is empty/);
  });

  it('bounds the number of fields, values and characters before parsing further', () => {
    const fields = Array.from({ length: FILTER_LIMITS.maxFields + 1 }, (_, i) => `filter[f${i}]=x`).join('&');
    rejects(() => parseFilterQuery(fields), /at most 16 filter fields/);
    const values = Array.from({ length: FILTER_LIMITS.maxValuesPerField + 1 }, (_, i) => `v${i}`).join(',');
    rejects(() => parseFilterQuery(`filter[x]=${values}`), /more than 256 values/);
    rejects(() => parseFilterQuery(`filter[x]=${'a'.repeat(FILTER_LIMITS.maxQueryLength)}`), /exceed 16384 characters/);
    rejects(() => parseFilterQuery('filter[a]=1&filter[b]=2', { maxFields: 1 }), /at most 1 filter fields/);
  });

  it('refuses a huge hostile query quickly', () => {
    const started = performance.now();
    const many = Array.from({ length: 50_000 }, (_, i) => `filter[f${i}]=${i}`).join('&');
    rejects(() => parseFilterQuery(many));
    const huge = `filter[x]=${Array.from({ length: 100_000 }, () => 'a').join(',')}`;
    rejects(() => parseFilterQuery(huge));
    assert.ok(performance.now() - started < 500, 'bounded work');
  });
});

describe('filters: matching', () => {
  it('compares equality on the text form: strings verbatim, numbers numerically, booleans and null by name', () => {
    assert.equal(keeps('filter[type]=edit', { type: 'edit' }), true);
    assert.equal(keeps('filter[type]=edit', { type: 'Edit' }), false);
    assert.equal(keeps('filter[type]=edit', { type: 'edit ' }), false);
    assert.equal(keeps('filter[rev]=10', { rev: 10 }), true);
    assert.equal(keeps('filter[rev]=10', { rev: '10' }), true);
    assert.equal(keeps('filter[rev]=10', { rev: 10.0 }), true);
    assert.equal(keeps('filter[rev]=10.0', { rev: 10 }), true);
    assert.equal(keeps('filter[rev]=10.0', { rev: '10' }), false);
    assert.equal(keeps('filter[rev]=1e1', { rev: 10 }), true);
    assert.equal(keeps('filter[bot]=true', { bot: true }), true);
    assert.equal(keeps('filter[bot]=true', { bot: false }), false);
    assert.equal(keeps('filter[bot]=false', { bot: false }), true);
    assert.equal(keeps('filter[bot]=true', { bot: 'true' }), true);
    assert.equal(keeps('filter[x]=null', { x: null }), true);
    assert.equal(keeps('filter[x]=null', {}), false, 'a missing field is not null');
    assert.equal(keeps('filter[x]=0', { x: false }), false);
    assert.equal(keeps('filter[x]=0', { x: null }), false);
    assert.equal(keeps('filter[x]=a', { x: { a: 1 } }), false, 'objects never match a value');
  });

  it('ORs values within a field and ANDs fields', () => {
    const q = 'filter[meta.domain]=en.wikipedia.org,de.wikipedia.org&filter[type]=edit,new';
    assert.equal(keeps(q, { meta: { domain: 'de.wikipedia.org' }, type: 'new' }), true);
    assert.equal(keeps(q, { meta: { domain: 'de.wikipedia.org' }, type: 'log' }), false);
    assert.equal(keeps(q, { meta: { domain: 'fr.wikipedia.org' }, type: 'edit' }), false);
    assert.equal(keeps(q, { type: 'edit' }), false, 'a missing field fails');
  });

  it('matches globs: prefix, suffix, contains, several stars, a lone star for "present"', () => {
    assert.equal(keeps('filter[t]=blog.*', { t: 'blog.post' }), true);
    assert.equal(keeps('filter[t]=blog.*', { t: 'blog.' }), true);
    assert.equal(keeps('filter[t]=blog.*', { t: 'my.blog.post' }), false);
    assert.equal(keeps('filter[t]=*.created', { t: 'page.created' }), true);
    assert.equal(keeps('filter[t]=*.created', { t: 'page.created.x' }), false);
    assert.equal(keeps('filter[t]=*wiki*', { t: 'en.wikipedia.org' }), true);
    assert.equal(keeps('filter[t]=a*b*c', { t: 'a-c-b-c' }), true);
    assert.equal(keeps('filter[t]=a*b*c', { t: 'acb' }), false);
    assert.equal(keeps('filter[t]=ab*ba', { t: 'aba' }), false, 'parts may not overlap');
    assert.equal(keeps('filter[t]=ab*ba', { t: 'abba' }), true);
    assert.equal(keeps('filter[t]=*', { t: '' }), true);
    assert.equal(keeps('filter[t]=*', { t: 12 }), true);
    assert.equal(keeps('filter[t]=*', { t: false }), true);
    assert.equal(keeps('filter[t]=*', { t: null }), false);
    assert.equal(keeps('filter[t]=*', {}), false);
    assert.equal(keeps('filter[t]=12*', { t: 123 }), true, 'numbers through their text');
    assert.equal(keeps(`filter[t]=${encodeURIComponent('a\\*')}`, { t: 'a*' }), true, 'an escaped star is a star');
    assert.equal(keeps(`filter[t]=${encodeURIComponent('a\\*')}`, { t: 'ab' }), false);
    assert.equal(keeps(`filter[t]=${encodeURIComponent('a\\**')}`, { t: 'a*bc' }), true);
  });

  it('matches numeric ranges on numbers and numeric strings', () => {
    assert.equal(keeps('filter[n]=10..20', { n: 10 }), true);
    assert.equal(keeps('filter[n]=10..20', { n: 20 }), true);
    assert.equal(keeps('filter[n]=10..20', { n: 20.5 }), false);
    assert.equal(keeps('filter[n]=10..20', { n: '15' }), true);
    assert.equal(keeps('filter[n]=10..20', { n: '15x' }), false);
    assert.equal(keeps('filter[n]=10..20', { n: '0x10' }), false, 'only JSON numbers');
    assert.equal(keeps('filter[n]=10..20', { n: true }), false);
    assert.equal(keeps('filter[n]=>10', { n: 10 }), false);
    assert.equal(keeps('filter[n]=>=10', { n: 10 }), true);
    assert.equal(keeps('filter[n]=<10', { n: 10 }), false);
    assert.equal(keeps('filter[n]=<=10', { n: 10 }), true);
    assert.equal(keeps('filter[n]=..0,100..', { n: -5 }), true);
    assert.equal(keeps('filter[n]=..0,100..', { n: 50 }), false);
    assert.equal(keeps('filter[n]=..0,100..', { n: 1e9 }), true);
  });

  it('matches regular expressions with flags; values longer than maxRegexInputLength never match', () => {
    assert.equal(keeps('filter[t]=/^Talk:/', { t: 'Talk:Main' }), true);
    assert.equal(keeps('filter[t]=/^Talk:/', { t: 'talk:Main' }), false);
    assert.equal(keeps('filter[t]=/^Talk:/i', { t: 'talk:Main' }), true);
    assert.equal(keeps('filter[t]=/^a.b$/s', { t: 'a\nb' }), true);
    assert.equal(keeps(`filter[t]=${encodeURIComponent('/^\\p{Lu}/u')}`, { t: 'Émile' }), true);
    assert.equal(keeps('filter[t]=/^1/', { t: 12 }), true, 'numbers through their text');
    const long = `Talk:${'x'.repeat(FILTER_LIMITS.maxRegexInputLength)}`;
    assert.equal(keeps('filter[t]=/^Talk:/', { t: long }), false);
    assert.equal(keeps('filter[t]=Talk:*', { t: long }), true, 'globs have no such limit');
  });

  it('walks nested paths, indexes arrays, fans out over arrays, and matches any element of a final array', () => {
    const payload = {
      meta: { domain: 'en.wikipedia.org', 'a.b': 'dotted' },
      tags: ['mobile', 'visual'],
      revs: [{ id: 1 }, { id: 7, tags: ['x', 'y'] }],
    };
    assert.equal(keeps('filter[meta.domain]=en.wikipedia.org', payload), true);
    assert.equal(keeps('filter[tags]=visual', payload), true);
    assert.equal(keeps('filter[tags]=desktop', payload), false);
    assert.equal(keeps('filter[tags.1]=visual', payload), true);
    assert.equal(keeps('filter[tags.0]=visual', payload), false);
    assert.equal(keeps('filter[tags.5]=visual', payload), false);
    assert.equal(keeps('filter[revs.id]=7', payload), true);
    assert.equal(keeps('filter[revs.id]=>5', payload), true);
    assert.equal(keeps('filter[revs.tags]=y', payload), true);
    assert.equal(keeps('filter[revs.1.id]=7', payload), true);
    assert.equal(keeps('filter[revs.0.id]=7', payload), false);
    assert.equal(keeps(`filter[${encodeURIComponent('meta.a\\.b')}]=dotted`, payload), true);
    assert.equal(keeps('filter[meta.domain.x]=1', payload), false, 'a path through a string');
    assert.equal(keeps('filter[x]=1', 'a string payload'), false);
    assert.equal(keeps('filter[x]=1', undefined), false);
  });

  it('never reads inherited properties (constructor, __proto__, toString)', () => {
    assert.equal(keeps('filter[constructor.name]=Object', {}), false);
    assert.equal(keeps('filter[toString]=*', {}), false);
    assert.equal(keeps('filter[__proto__]=*', {}), false);
    assert.equal(keeps('filter[tags.length]=2', { tags: ['a', 'b'] }), false);
    assert.equal(keeps('filter[__proto__.x]=1', JSON.parse('{"__proto__":{"x":1}}')), true, 'own JSON keys are fine');
  });

  it('reads getters of class instances a custom deserializer returns', () => {
    class Change {
      constructor(readonly raw: { t: string }) {}
      get type(): string {
        return this.raw.t;
      }
    }
    assert.equal(keeps('filter[type]=edit', new Change({ t: 'edit' })), true);
    assert.equal(keeps('filter[constructor.name]=Change', new Change({ t: 'edit' })), false);
  });

  it('reads the Kafka key, headers, topic, partition, offset and timestamp', () => {
    const headers = [{ source: Buffer.from('web') }, { trace: 'abc' }, { source: Buffer.from('api') }];
    const extra = { key: Buffer.from('user-42'), headers, topic: 'rc', partition: 3, offset: 99 };
    assert.equal(keeps('filter[$key]=user-42', {}, extra), true);
    assert.equal(keeps('filter[$key]=user-*', {}, extra), true);
    assert.equal(keeps('filter[$key]=user-1', {}, extra), false);
    assert.equal(keeps('filter[$key]=abc', {}, { key: 'abc' }), true, 'a string key');
    assert.equal(keeps('filter[$key]=null', {}, { key: null }), true, 'no key is null');
    assert.equal(keeps('filter[$header.source]=api', {}, extra), true, 'any of a repeated header');
    assert.equal(keeps('filter[$header.source]=cli', {}, extra), false);
    assert.equal(keeps('filter[$header.trace]=abc', {}, extra), true, 'a string header value');
    assert.equal(keeps('filter[$header.Trace]=abc', {}, extra), false, 'header names are case-sensitive');
    assert.equal(keeps('filter[$header.none]=*', {}, extra), false);
    assert.equal(keeps('filter[$header.source]=*', {}, {}), false, 'no headers at all');
    assert.equal(keeps('filter[$topic]=rc', {}, extra), true);
    assert.equal(keeps('filter[$partition]=0..2', {}, extra), false);
    assert.equal(keeps('filter[$partition]=3', {}, extra), true);
    assert.equal(keeps('filter[$offset]=>=99', {}, extra), true);
    assert.equal(keeps('filter[$timestamp]=>=1700000000000', {}), true);
    assert.equal(
      keeps('filter[$timestamp]=>=1', {}, { timestamp: undefined } as unknown as Parameters<typeof msg>[1]),
      false,
    );
  });

  it('negates: a negated field passes when missing, and when it matches none of the values', () => {
    assert.equal(keeps('filter[!bot]=true', { bot: true }), false);
    assert.equal(keeps('filter[!bot]=true', { bot: false }), true);
    assert.equal(keeps('filter[!bot]=true', {}), true);
    assert.equal(keeps('filter[!type]=log,categorize', { type: 'edit' }), true);
    assert.equal(keeps('filter[!type]=log,categorize', { type: 'log' }), false);
    assert.equal(keeps('filter[type]=edit&filter[!type]=edit', { type: 'edit' }), false);
  });

  it('keeps everything with an empty filter', () => {
    const f = compileFilter([]);
    assert.equal(f.size, 0);
    assert.equal(f.test(msg(undefined)), true);
  });
});

describe('filters: compileFilter (the programmatic form)', () => {
  it('accepts the shorthand object, with ! for negation and RegExp, glob, regex and range values', () => {
    const spec: FilterSpec = {
      'meta.domain': ['en.wikipedia.org', { glob: '*.wikimedia.org' }],
      type: 'edit',
      rev: { gte: 10, lt: 20 },
      title: /^talk:/i,
      user: { regex: '^Bot', flags: 'i' },
      '!bot': true,
      wiki: null,
    };
    const f = compileFilter(spec);
    assert.equal(f.size, 7);
    const base = {
      meta: { domain: 'c.wikimedia.org' },
      type: 'edit',
      rev: 19,
      title: 'Talk:x',
      user: 'botty',
      wiki: null,
    };
    assert.equal(f.test(msg(base)), true);
    assert.equal(f.test(msg({ ...base, rev: 20 })), false);
    assert.equal(f.test(msg({ ...base, bot: true })), false);
    assert.equal(f.test(msg({ ...base, wiki: 'x' })), false);
    assert.deepEqual(f.fields[5], { field: 'bot', anyOf: [true], not: true });
  });

  it('treats programmatic strings as literals (no glob, range or regex syntax)', () => {
    const f = compileFilter({ x: ['a*', '>=1', '/x/'] });
    assert.equal(f.test(msg({ x: 'a*' })), true);
    assert.equal(f.test(msg({ x: 'ab' })), false);
    assert.equal(f.test(msg({ x: 5 })), false);
    assert.equal(f.test(msg({ x: '/x/' })), true);
  });

  it('matches programmatic numbers and booleans through their text form too', () => {
    const f = compileFilter({ n: 10, b: false });
    assert.equal(f.test(msg({ n: '10', b: 'false' })), true);
    assert.equal(f.test(msg({ n: 10, b: false })), true);
  });

  it('uses a trusted RegExp without its stateful flags', () => {
    const f = compileFilter({ t: /a/g });
    for (let i = 0; i < 3; i++) assert.equal(f.test(msg({ t: 'a' })), true, `call ${i}`);
  });

  it('returns a compiled filter as is, with a bound test() usable as a filterer', () => {
    const f = compileFilter({ type: 'edit' });
    assert.ok(f instanceof CompiledFilter);
    assert.equal(compileFilter(f), f);
    const { test } = f;
    assert.equal(test(msg({ type: 'edit' })), true);
    const filterer = (m: DeserializedMessage) => f.test(m) && (m.message as { n: number }).n > 1;
    assert.equal(filterer(msg({ type: 'edit', n: 2 })), true);
    assert.equal(filterer(msg({ type: 'edit', n: 1 })), false);
  });

  it('refuses malformed specs with INVALID_FILTER', () => {
    rejects(() => compileFilter('type=edit' as unknown as FilterSpec), /must be a list/);
    rejects(() => compileFilter([{ field: 'x' }] as unknown as FilterSpec), /must be \{field/);
    rejects(() => compileFilter([{ field: 'x', anyOf: [] }]), /lists no values/);
    rejects(() => compileFilter({ x: [] }), /lists no values/);
    rejects(() => compileFilter({ x: Number.NaN }), /not a finite number/);
    rejects(() => compileFilter({ x: { gte: '1' } as unknown as FilterMatcher }), /finite numbers/);
    rejects(() => compileFilter({ x: { foo: 1 } as unknown as FilterMatcher }), /a value must be/);
    rejects(() => compileFilter({ x: { regex: 'a', extra: 1 } as unknown as FilterMatcher }), /\{regex: string/);
    rejects(() => compileFilter({ x: [[1]] as unknown as FilterMatcher }), /a value must be/);
    rejects(() => compileFilter({ '': 'x' }), /field name is empty/);
    rejects(() => compileFilter({ 'a..b': 'x' }), /empty segment/);
    rejects(() => compileFilter({ 'a.': 'x' }), /empty segment/);
    rejects(() => compileFilter({ 'a\\': 'x' }), /lone backslash/);
    rejects(() => compileFilter({ $value: 'x' }), /unknown \$ field/);
    rejects(() => compileFilter({ '$header.': 'x' }), /names no header/);
    rejects(() => compileFilter({ x: { glob: 'a\\' } }), /lone backslash/);
  });

  it('addresses a JSON field starting with $ through \\$', () => {
    assert.equal(compileFilter({ '\\$schema': '/x' }).test(msg({ $schema: '/x' })), true);
  });

  it('bounds fields, values, path length and depth, value length, and regex count', () => {
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, 'x']));
    rejects(() => compileFilter(tooMany), /at most 16 filter fields/);
    rejects(() => compileFilter({ x: Array.from({ length: 257 }, (_, i) => `v${i}`) }), /more than 256 values/);
    const wide = Object.fromEntries(
      Array.from({ length: 5 }, (_, f) => [`f${f}`, Array.from({ length: 250 }, (_, i) => `v${i}`)]),
    );
    rejects(() => compileFilter(wide), /more than 1024 values in total/);
    rejects(() => compileFilter({ [`a${'.a'.repeat(16)}`]: 'x' }), /deeper than 16 segments/);
    rejects(() => compileFilter({ ['a'.repeat(257)]: 'x' }), /longer than 256 characters/);
    rejects(() => compileFilter({ x: 'v'.repeat(1025) }), /longer than 1024 characters/);
    rejects(() => compileFilter({ x: { glob: '*'.repeat(1025) } }), /longer than 1024 characters/);
    const regexes = Array.from({ length: 9 }, (_, i) => ({ regex: `^a${i}` }));
    rejects(() => compileFilter({ x: regexes }), /at most 8 regular expressions/);
    assert.equal(compileFilter({ x: regexes.slice(0, 8) }).size, 1);
    rejects(() => compileFilter({ x: 'a', y: 'b' }, { maxFields: 1 }), /at most 1 filter fields/);
  });
});

describe('filters: client regular expressions', () => {
  const check = (source: string, flags = '') => compileFilter([{ field: 'x', anyOf: [{ regex: source, flags }] }]);

  // Issue 14, row 1: each of these passed the old analyzer or means something
  // else to V8 than it seems to; the strict reader refuses what it does not read
  // completely, and RE2 cannot run backreferences or lookaround.
  const REFUSED: [string, string, RegExp][] = [
    ['^(a|aa){0000000000000000000001,}$', '', /repetition count 000000000000 with leading zeros/],
    ['(a|aa){01,}$', '', /leading zeros/],
    ['\\u{1,}', '', /\\u\{…\}, which needs the u flag \(without it, \\u\{1,\} means the letter u repeated\)/],
    ['^(\\u{1,}){1,}$', '', /needs the u flag/],
    ['\\p{1,}', '', /\\p, which needs the u flag/],
    ['\\P{L}', '', /\\P, which needs the u flag/],
    ['\\p{1,}', 'u', /not a valid regular expression/],
    ['(a)\\1', '', /backreference \(\\1 to \\9\)/],
    ['(?<n>a)\\k<n>', '', /named backreference/],
    ['x(?=y)', '', /lookahead or lookbehind/],
    ['x(?!y)', '', /lookahead or lookbehind/],
    ['(?<=a)b', '', /lookahead or lookbehind/],
    ['(?<!a)b', '', /lookahead or lookbehind/],
    ['\\z', '', /the escape \\z, which is not supported/],
    ['\\Qa.b\\E', '', /the escape \\Q/],
    ['[[:alpha:]]', '', /\[ inside a class/],
    ['x{,3}', '', /does not start a repetition/],
    ['a{', '', /does not start a repetition/],
    ['a{99999999999999999999}', '', /more than 1000 times/],
    ['a{1001}', '', /more than 1000 times/],
    ['a}', '', /unescaped \}/],
    ['a]', '', /unescaped \]/],
    ['[^]', '', /empty class/],
    ['[\\d-z]', '', /range with a class escape/],
    ['[\\b]', '', /\\b inside a character class/],
    ['\\08', '', /octal escape/],
    ['\\u12', '', /four hex digits/],
    ['\\x4', '', /two hex digits/],
    ['\\cA\\c1', '', /not a valid regular expression|\\c not followed by a letter/],
    ['^*', '', /not a valid regular expression|repeats the assertion/],
    ['\\b+', '', /not a valid regular expression|repeats the assertion/],
    ['.{500}x', '', /too large for the matcher \(size 1001, at most 200/],
    ['\\p{L}{20}x', 'u', /too large for the matcher/],
    ['(?:(?:.{10}){10}){3}', '', /too large/],
    ['a'.repeat(257), '', /longer than 256/],
    ['(', '', /not a valid regular expression/],
    ['', '', /is empty/],
  ];
  for (const [source, flags, reason] of REFUSED) {
    it(`refuses /${source.length > 40 ? `${source.slice(0, 40)}…` : source}/${flags}`, () =>
      rejects(() => check(source, flags), reason));
  }

  it('refuses stateful or unknown flags', () => {
    rejects(() => check('a', 'g'), /only i, m, s and u/);
    rejects(() => check('a', 'y'), /only i, m, s and u/);
    rejects(() => check('a', 'ii'), /only i, m, s and u/);
    rejects(() => check('a', 'v'), /only i, m, s and u/);
    rejects(() => compileFilter(parseFilterQuery('filter[x]=/(a)%5C1/')), /backreference/);
  });

  const ACCEPTED: [string, string, string, string][] = [
    // source, flags, a value it matches, a value it does not
    ['^Talk:', '', 'Talk:Main', 'talk:Main'],
    ['bot$', 'i', 'WikiBOT', 'bots'],
    ['^en\\..*\\.org$', '', 'en.wikipedia.org', 'de.wikipedia.org'],
    ['^https?://[^/]+/wiki/.*$', '', 'https://en.wikipedia.org/wiki/X', 'ftp://x/wiki/'],
    ['(en|de|fr|es|it|ja|ru|pt|zh|pl)\\.wikipedia', '', 'pl.wikipedia.org', 'nl.wikipedia.org'],
    ['^(?:User|User talk):', '', 'User talk:Y', 'Talk:Y'],
    ['\\bedit\\b', '', 'an edit here', 'edits'],
    ['^\\d{4}-\\d{2}-\\d{2}', '', '2024-05-01T00', '24-05-01'],
    ['(?<lang>[a-z]{2})\\.wiki', '', 'en.wiki', 'e.wiki'],
    ['^\\p{Lu}', 'u', 'Émile', 'émile'],
    ['^\\u{1F600}$', 'u', '😀', '😁'],
    ['^\\u00e9\\x41\\cJ$', '', 'éA\n', 'éA'],
    ['^a.b$', 's', 'a\nb', 'a\n\nb'],
    ['^b$', 'm', 'a\nb\nc', 'abc'],
    ['[\\]\\-\\\\]', '', 'x]', 'x'],
    ['^x{2,3}$', '', 'xxx', 'xxxx'],
    ['.{100}', '', 'y'.repeat(100), 'y'.repeat(99)],
    // Exponential or polynomial on a backtracking engine; linear on RE2 (timed below).
    ['^(a|aa)+$', '', 'aaaa', 'aaab'],
    ['(a+)+$', '', 'baa', ''],
    ['(x+x+)+y', '', 'xxy', 'xxx'],
    ['(.*a){20}', '', 'a'.repeat(20), 'a'.repeat(19)],
    ['\\d*\\d*\\d*x', '', '111x', '111'],
  ];
  for (const [source, flags, yes, no] of ACCEPTED) {
    it(`accepts /${source.length > 40 ? `${source.slice(0, 40)}…` : source}/${flags} and matches as V8 does`, () => {
      const f = check(source, flags);
      assert.equal(f.regexCount, 1);
      assert.equal(f.test(msg({ x: yes })), true, `matches ${JSON.stringify(yes)}`);
      assert.equal(f.test(msg({ x: no })), false, `does not match ${JSON.stringify(no)}`);
      const v8 = new RegExp(source, flags);
      assert.equal(v8.test(yes), true);
      assert.equal(v8.test(no), false);
    });
  }

  it('runs accepted patterns in linear time: a 100 KB value under 50 ms, ×10 the length ≤ ×30 the time', () => {
    // Issue 14, row 1: on V8, /^(a|aa){1,}$/ took 0.8 s on 35 characters; a
    // polynomial one 95 s on 1,024. The bound on the value is lifted here so
    // the engine itself is measured.
    const lim = { maxRegexInputLength: 200_000, maxMatchWorkPerMessage: 1e9 };
    const cases: [string, string, (n: number) => string][] = [
      ['^(a|aa)+$', '', (n) => `${'a'.repeat(n - 1)}b`],
      ['^(a|aa){1,}$', '', (n) => `${'a'.repeat(n - 1)}b`],
      ['(a+)+$', '', (n) => `${'a'.repeat(n - 1)}!`],
      ['(x+x+)+y', '', (n) => 'x'.repeat(n)],
      ['(.*a){20}', '', (n) => 'a'.repeat(n / 2) + 'b'.repeat(n / 2)],
      ['\\d*\\d*\\d*\\d*x', '', (n) => '1'.repeat(n)],
      ['^(\\w+\\s?)+$', '', (n) => `${'ab '.repeat(n / 3)}!`],
      ['.{99}x', '', (n) => 'é'.repeat(n)],
      ['[^x]{99}x', '', (n) => '中'.repeat(n)],
      ['\\p{L}{7}z', 'u', (n) => '中'.repeat(n)],
      ['\\P{L}{7}z', 'iu', (n) => '😀'.repeat(n / 2)],
      ['(?:a|b|c|d|e|f|g|h)*z', 'i', (n) => 'abcdefgh'.repeat(n / 8)],
    ];
    const best = (f: CompiledFilter, m: DeserializedMessage) => {
      f.test(m);
      let min = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        f.test(m);
        min = Math.min(min, performance.now() - t0);
      }
      return min;
    };
    for (const [source, flags, value] of cases) {
      const f = compileFilter([{ field: 'x', anyOf: [{ regex: source, flags }] }], lim);
      // A noisy measure (a busy neighbour, a GC pause) is taken again, up to three times.
      let small = 0;
      let large = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3 && !(large < 50 && large <= 30 * Math.max(small, 0.2)); i++) {
        small = Math.max(small, best(f, msg({ x: value(10_000) })));
        large = Math.min(large, best(f, msg({ x: value(100_000) })));
      }
      assert.ok(large < 50, `/${source}/${flags} took ${large.toFixed(2)} ms on 100,000 characters`);
      // Linear: ten times the value, about ten times the time (0.2 ms of timer noise allowed).
      assert.ok(
        large <= 30 * Math.max(small, 0.2),
        `/${source}/${flags}: ${small.toFixed(3)} ms on 10,000, ${large.toFixed(3)} ms on 100,000 characters`,
      );
    }
  });
});

// Issue 14, row 2: no aggregate budget, and globs had no input-length bound.
describe('filters: pattern work per message', () => {
  const timed = (f: CompiledFilter, m: DeserializedMessage) => {
    f.test(m);
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      f.test(m);
      min = Math.min(min, performance.now() - t0);
    }
    return min;
  };
  // The slowest glob found for V8's indexOf: a long part that matches almost everywhere.
  const part = `${'a'.repeat(509)}b${'a'.repeat(509)}`;
  const globs = Array.from({ length: 15 }, (_, i) => ({ glob: `*${part}${i}*` }));

  it('globs never match values longer than maxGlobInputLength (15 globs of 1 KB on 64 KB and 1 MB: under 5 ms)', () => {
    const f = compileFilter({ t: globs });
    for (const n of [65_536, 1_048_576]) {
      const ms = timed(f, msg({ t: 'a'.repeat(n) }));
      assert.ok(ms < 5, `${ms.toFixed(2)} ms on ${n} characters`);
    }
    assert.equal(FILTER_LIMITS.maxGlobInputLength, 4096);
    const at = `x${'y'.repeat(4094)}z`;
    assert.equal(compileFilter({ t: { glob: 'x*z' } }).test(msg({ t: at })), true, 'at the bound');
    assert.equal(compileFilter({ t: { glob: 'x*z' } }).test(msg({ t: `${at}z` })), false, 'past it');
    assert.equal(
      compileFilter({ t: { glob: 'x*z' } }, { maxGlobInputLength: 10_000 }).test(msg({ t: `${at}z` })),
      true,
    );
  });

  it('stops a message’s pattern tests once it used maxMatchWorkPerMessage: arrays of long values cost a bounded time', () => {
    const regexes = Array.from({ length: 8 }, (_, i) => ({ regex: `(x+x+)+y${i}` }));
    const values = Array.from({ length: 10_000 }, () => 'x'.repeat(1000));
    const f = compileFilter({ tags: regexes });
    const ms = timed(f, msg({ tags: values }));
    assert.equal(f.test(msg({ tags: values })), false);
    assert.ok(ms < 10, `${ms.toFixed(2)} ms for 8 regexes over 10,000 values of 1,000 characters`);
    const g = compileFilter({ tags: globs.slice(0, 8) });
    const gms = timed(g, msg({ tags: Array.from({ length: 1000 }, () => 'a'.repeat(4096)) }));
    assert.ok(gms < 10, `${gms.toFixed(2)} ms for 8 globs over 1,000 values of 4,096 characters`);
    // Past the budget a test does not match, so `not` passes; the next message has a fresh budget.
    const none = compileFilter([{ field: 'tags', anyOf: regexes, not: true }]);
    assert.equal(none.test(msg({ tags: values })), true);
    const late = compileFilter({ tags: { regex: '^late$' } });
    assert.equal(late.test(msg({ tags: [...values.slice(0, 100), 'late'] })), false, 'the budget ran out first');
    assert.equal(late.test(msg({ tags: ['late'] })), true);
    const roomy = compileFilter({ tags: { regex: '^late$' } }, { maxMatchWorkPerMessage: 1e9 });
    assert.equal(roomy.test(msg({ tags: [...values.slice(0, 100), 'late'] })), true);
    // The server's own RegExp objects are trusted: not budgeted.
    const trusted = compileFilter({ tags: /^late$/ });
    assert.equal(trusted.test(msg({ tags: [...values.slice(0, 100), 'late'] })), true);
  });

  it('checks and documents the new limits', () => {
    for (const key of ['maxRegexSize', 'maxGlobInputLength', 'maxMatchWorkPerMessage', 'maxRegexesPerKey'] as const) {
      assert.ok(Number.isSafeInteger(FILTER_LIMITS[key]) && FILTER_LIMITS[key] > 0, key);
    }
    rejects(() => compileFilter({ x: { regex: 'a{3}' } }, { maxRegexSize: 2 }), /size 3, at most 2/);
  });
});
