// Subscription filters compiled once into a predicate that runs on every
// message. Pure: no I/O, no clock. The spec and its bounds are in
// filter-spec.ts, the query syntax in filter-query.ts, value matching (globs,
// ranges, client regexes on RE2, whose time is linear in the value) in
// value-matcher.ts; every message has a budget of pattern work per filter
// (maxMatchWorkPerMessage), so neither long values nor arrays of them can make
// one filter cost more than a fixed amount per message.
import { hasBrand, setBrand } from './brand.ts';
import { compileClientRegex } from './client-regex.ts';
import { InvalidFilterError } from './errors.ts';
import {
  FILTER_LIMITS,
  type FieldFilter,
  type FilterLimits,
  type FilterMatcher,
  type FilterRange,
  type FilterSpec,
  fail,
  HEADER_PREFIX,
  META_FIELDS,
} from './filter-spec.ts';
import type { DeserializedMessage } from './types.ts';
import { globParts, type MatchBudget, ValueMatcher } from './value-matcher.ts';

/** Where a field's value comes from. */
type Source =
  | { kind: 'path'; segments: string[]; indexes: number[] }
  | { kind: 'key' | 'topic' | 'partition' | 'offset' | 'timestamp' }
  | { kind: 'header'; name: string };

function parseField(field: string, lim: FilterLimits): Source {
  if (typeof field !== 'string' || field === '') fail(String(field), 'the field name is empty');
  if (field.length > lim.maxPathLength) fail(field, `the field path is longer than ${lim.maxPathLength} characters`);
  if (field.startsWith(HEADER_PREFIX)) {
    const name = field.slice(HEADER_PREFIX.length);
    if (name === '') fail(field, 'names no header; write $header.<name>');
    return { kind: 'header', name };
  }
  if (field[0] === '$') {
    if (!META_FIELDS.has(field)) {
      fail(
        field,
        'unknown $ field; use $key, $header.<name>, $topic, $partition, $offset or $timestamp (\\$ for a JSON field starting with $)',
      );
    }
    return { kind: field.slice(1) as 'key' | 'topic' | 'partition' | 'offset' | 'timestamp' };
  }
  const segments: string[] = [];
  let cur = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c === '\\') {
      if (i + 1 >= field.length) fail(field, 'the field path ends with a lone backslash');
      cur += field[++i];
    } else if (c === '.') {
      if (cur === '') fail(field, 'the field path has an empty segment');
      segments.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur === '') fail(field, 'the field path has an empty segment');
  segments.push(cur);
  if (segments.length > lim.maxPathDepth) fail(field, `the field path is deeper than ${lim.maxPathDepth} segments`);
  const indexes = segments.map((s) => (/^(?:0|[1-9]\d{0,8})$/.test(s) ? Number(s) : -1));
  return { kind: 'path', segments, indexes };
}

const hasOwn = Object.prototype.hasOwnProperty;

/** A compiled path: segments, their array indexes (-1: not an index), and which need an own-property check. */
interface CompiledPath {
  segments: string[];
  indexes: number[];
  /** Names Object.prototype has (`constructor`, `__proto__`, `toString`…): read only as own properties. */
  inherited: boolean[];
}

/**
 * Walks the path from `cur`; arrays met on the way fan out (any element may
 * match), and a final array matches when any element does. Plain property
 * reads, except for names Object.prototype carries, so a payload can never
 * make a filter see `constructor` or `__proto__` it does not own.
 */
function matchPath(cur: unknown, p: CompiledPath, i: number, m: ValueMatcher): boolean {
  const { segments, indexes, inherited } = p;
  for (; i < segments.length; i++) {
    if (cur === null || typeof cur !== 'object') return false;
    if (Array.isArray(cur)) {
      const idx = indexes[i] as number;
      if (idx >= 0) {
        if (idx >= cur.length) return false;
        cur = cur[idx];
        continue;
      }
      for (const el of cur) if (matchPath(el, p, i, m)) return true;
      return false;
    }
    const seg = segments[i] as string;
    if (inherited[i] && !hasOwn.call(cur, seg)) return false;
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (Array.isArray(cur)) {
    for (const el of cur) if (m.matches(el)) return true;
    return false;
  }
  return m.matches(cur);
}

/**
 * A key or header value as text. Short ASCII values (the usual keys and
 * headers) are decoded in JS: about half the cost of Buffer#toString, which
 * crosses into C++ for every call.
 */
function bufferText(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (!Buffer.isBuffer(v)) return v;
  const n = v.length;
  if (n > 32) return v.toString('utf8');
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = v[i] as number;
    if (c > 0x7f) return v.toString('utf8');
    s += String.fromCharCode(c);
  }
  return s;
}

/** One compiled field condition: true when the message passes it. */
type FieldTest = (msg: DeserializedMessage) => boolean;

/** Specialised per source, so the per-message path has no dispatch on the kind. */
function compileField(source: Source, m: ValueMatcher, not: boolean): FieldTest {
  switch (source.kind) {
    case 'path': {
      const p: CompiledPath = {
        segments: source.segments,
        indexes: source.indexes,
        inherited: source.segments.map((s) => s in Object.prototype),
      };
      return (msg) => matchPath(msg.message, p, 0, m) !== not;
    }
    case 'key':
      return (msg) => m.matches(bufferText(msg.key)) !== not;
    case 'topic':
      return (msg) => m.matches(msg.topic) !== not;
    case 'partition':
      return (msg) => m.matches(msg.partition) !== not;
    case 'offset':
      return (msg) => m.matches(msg.offset) !== not;
    case 'timestamp':
      return (msg) => (msg.timestamp !== undefined && m.matches(msg.timestamp)) !== not;
    case 'header': {
      const name = source.name;
      return (msg) => {
        const headers = msg.headers;
        let found = false;
        if (headers) {
          for (const h of headers) {
            if (hasOwn.call(h, name) && m.matches(bufferText(h[name]))) {
              found = true;
              break;
            }
          }
        }
        return found !== not;
      };
    }
  }
}

/**
 * A filter ready to run: build it with {@link compileFilter}. `test` is bound,
 * so it can be passed around alone, and composes with a `filterer`:
 * `filterer: (m) => filter.test(m) && myCheck(m)`.
 */
export class CompiledFilter {
  /** The field conditions this filter was compiled from (normalized). */
  readonly fields: readonly FieldFilter[];
  /** How many `{regex}` matchers (client-supplied sources, run on RE2) it holds: what `admitRegexes()` counts. */
  readonly regexCount: number;
  /** The `maxRegexesPerKey` it was compiled with. */
  readonly maxRegexesPerKey: number;
  readonly #compiled: FieldTest[];
  readonly #budget: MatchBudget;
  readonly #work: number;

  /** @internal use {@link compileFilter} */
  constructor(
    fields: readonly FieldFilter[],
    compiled: FieldTest[],
    budget: MatchBudget,
    lim: FilterLimits,
    regexCount: number,
  ) {
    this.fields = Object.freeze([...fields]);
    this.#compiled = compiled;
    this.#budget = budget;
    this.#work = lim.maxMatchWorkPerMessage;
    this.regexCount = regexCount;
    this.maxRegexesPerKey = lim.maxRegexesPerKey;
  }

  /** Whether the (deserialized) message passes every field condition. An empty filter keeps everything. */
  readonly test = (message: DeserializedMessage): boolean => {
    const fields = this.#compiled;
    this.#budget.left = this.#work;
    for (let i = 0; i < fields.length; i++) if (!(fields[i] as FieldTest)(message)) return false;
    return true;
  };

  /** Number of field conditions. */
  get size(): number {
    return this.#compiled.length;
  }
}
setBrand(CompiledFilter, 'CompiledFilter');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegExp);
}

function toFieldFilters(spec: FilterSpec): FieldFilter[] {
  if (Array.isArray(spec)) return spec as FieldFilter[];
  if (!isPlainObject(spec)) {
    throw new InvalidFilterError('a filter must be a list of {field, anyOf, not?} or an object of field → values');
  }
  return Object.entries(spec).map(([key, values]) => {
    const not = key.startsWith('!');
    const anyOf = (Array.isArray(values) ? values : [values]) as FilterMatcher[];
    return not ? { field: key.slice(1), anyOf, not } : { field: key, anyOf };
  });
}

const RANGE_KEYS = new Set(['gt', 'gte', 'lt', 'lte']);

/**
 * Validates a filter (a spec from {@link parseFilterQuery}, a hand-written
 * spec, or an already compiled filter, returned as is) and compiles it.
 * Every client-supplied part is bounded by `limits` (default {@link FILTER_LIMITS}).
 *
 * @throws InvalidFilterError (400) naming the field and what was wrong
 */
export function compileFilter(spec: FilterSpec | CompiledFilter, limits: Partial<FilterLimits> = {}): CompiledFilter {
  // A brand, not instanceof: a filter compiled by another installed copy of this package is one too.
  if (hasBrand(spec, 'CompiledFilter')) return spec as CompiledFilter;
  const lim = { ...FILTER_LIMITS, ...limits };
  const fields = toFieldFilters(spec as FilterSpec);
  if (fields.length > lim.maxFields) throw new InvalidFilterError(`at most ${lim.maxFields} filter fields are allowed`);
  let totalValues = 0;
  let regexes = 0;
  const budget: MatchBudget = { left: lim.maxMatchWorkPerMessage };
  const compiled: FieldTest[] = [];
  const normalized: FieldFilter[] = [];
  for (const f of fields) {
    if (!isPlainObject(f) || typeof f.field !== 'string' || !Array.isArray(f.anyOf)) {
      throw new InvalidFilterError('each filter field must be {field: string, anyOf: [...], not?: boolean}');
    }
    const field = f.field;
    const source = parseField(field, lim);
    if (f.anyOf.length === 0) fail(field, 'lists no values');
    if (f.anyOf.length > lim.maxValuesPerField) fail(field, `lists more than ${lim.maxValuesPerField} values`);
    totalValues += f.anyOf.length;
    if (totalValues > lim.maxTotalValues) {
      throw new InvalidFilterError(`filters list more than ${lim.maxTotalValues} values in total`);
    }
    const matcher = new ValueMatcher(lim, budget);
    for (const v of f.anyOf) {
      if (v === null) matcher.addNull();
      else if (typeof v === 'string') {
        if (v.length > lim.maxValueLength) fail(field, `a value is longer than ${lim.maxValueLength} characters`);
        matcher.addText(v);
      } else if (typeof v === 'number') {
        if (!Number.isFinite(v)) fail(field, `${v} is not a finite number`);
        matcher.addText(String(v));
      } else if (typeof v === 'boolean') matcher.addText(String(v));
      else if (v instanceof RegExp) {
        // The server's own expression: trusted, but `g`/`y` would make test() stateful.
        matcher.addRegex(/[gy]/.test(v.flags) ? new RegExp(v.source, v.flags.replace(/[gy]/g, '')) : v, false);
      } else if (isPlainObject(v) && typeof v.glob === 'string' && Object.keys(v).length === 1) {
        if (v.glob.length > lim.maxValueLength) fail(field, `a glob is longer than ${lim.maxValueLength} characters`);
        const parts = globParts(field, v.glob);
        if (parts.length === 1) matcher.addText(parts[0] as string);
        else matcher.addGlob(parts);
      } else if (isPlainObject(v) && typeof v.regex === 'string') {
        const flags = v.flags ?? '';
        if (typeof flags !== 'string' || Object.keys(v).some((k) => k !== 'regex' && k !== 'flags')) {
          fail(field, 'a regex matcher must be {regex: string, flags?: string}');
        }
        if (++regexes > lim.maxRegexes) {
          throw new InvalidFilterError(`at most ${lim.maxRegexes} regular expressions are allowed in a filter`);
        }
        const re = compileClientRegex(v.regex, flags, lim);
        if (typeof re === 'string') fail(field, `the regular expression /${v.regex.slice(0, 60)}/${flags} ${re}`);
        matcher.addRegex(re, true);
      } else if (isPlainObject(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => RANGE_KEYS.has(k))) {
        const range = v as FilterRange;
        for (const bound of Object.values(range)) {
          if (typeof bound !== 'number' || !Number.isFinite(bound)) fail(field, 'range bounds must be finite numbers');
        }
        matcher.addRange({ ...range });
      } else {
        fail(
          field,
          'a value must be a string, number, boolean, null, RegExp, {glob}, {regex, flags?} or {gt?, gte?, lt?, lte?}',
        );
      }
    }
    const not = f.not === true;
    compiled.push(compileField(source, matcher, not));
    normalized.push(not ? { field, anyOf: [...f.anyOf], not } : { field, anyOf: [...f.anyOf] });
  }
  return new CompiledFilter(normalized, compiled, budget, lim, regexes);
}
