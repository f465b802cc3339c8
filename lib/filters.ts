// Subscription filters: what a client may ask the server to keep, parsed from
// the query string or given as a spec, compiled once into a predicate that
// runs on every message. Pure: no I/O, no clock.
//
// Everything a client sends is bounded before any work is done on it; client
// regular expressions run on RE2, whose time is linear in the value (see
// client-regex.ts), and every message has a budget of pattern work per
// filter (maxMatchWorkPerMessage), so neither long values nor arrays of them
// can make one filter cost more than a fixed amount per message.
import type RE2 from 're2';
import { hasBrand, setBrand } from './brand.ts';
import { compileClientRegex } from './client-regex.ts';
import { InvalidFilterError } from './errors.ts';
import type { DeserializedMessage } from './types.ts';

/** A numeric range; every bound given must hold. Matches numbers and numeric strings. */
export interface FilterRange {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

/**
 * One acceptable value of a field:
 * - a string, number, boolean or `null`: equality on the value's text form
 *   (strings verbatim, numbers numerically, `true`/`false`, `null`);
 * - `{glob}`: `*` stands for any run of characters (`\*` for a star, `\\` for a backslash);
 * - `{regex, flags?}`: a regular expression from an untrusted source: read strictly,
 *   bounded in size and run on RE2 in linear time (see client-regex.ts and {@link FILTER_LIMITS});
 * - a `RegExp`: trusted (the server's own code), run on V8 as is (`g` and `y` are dropped);
 * - a {@link FilterRange}: `{gte: 10, lt: 20}`.
 */
export type FilterMatcher =
  | string
  | number
  | boolean
  | null
  | RegExp
  | { glob: string }
  | { regex: string; flags?: string }
  | FilterRange;

/** One field condition: the field must match at least one of `anyOf` (or, with `not`, none). */
export interface FieldFilter {
  /**
   * What to look at: a dotted path into the deserialized message (`type`,
   * `meta.domain`; `\.` for a dot inside a name, numeric segments index
   * arrays), or one of `$key`, `$header.<name>`, `$topic`, `$partition`,
   * `$offset`, `$timestamp`.
   */
  field: string;
  /** Acceptable values, OR-ed. */
  anyOf: readonly FilterMatcher[];
  /** The field must match none of `anyOf`; a missing field then passes. Default: `false`. */
  not?: boolean;
}

/**
 * A filter: field conditions, AND-ed. Either a list of {@link FieldFilter}s or
 * the shorthand `{ 'meta.domain': 'en.wikipedia.org', type: ['edit', 'new'], '!bot': true }`
 * (a `!` before the field negates it).
 */
export type FilterSpec = readonly FieldFilter[] | Readonly<Record<string, FilterMatcher | readonly FilterMatcher[]>>;

/** Bounds on a filter; anything beyond them is answered 400 (`INVALID_FILTER`). */
export interface FilterLimits {
  /** Most field conditions in one filter. */
  maxFields: number;
  /** Most values one field may list. */
  maxValuesPerField: number;
  /** Most values across all fields. */
  maxTotalValues: number;
  /** Longest value, glob or regular expression source, in characters. */
  maxValueLength: number;
  /** Longest field path, in characters. */
  maxPathLength: number;
  /** Most segments in a field path (`a.b.c` has 3). */
  maxPathDepth: number;
  /** Most characters of all `filter[…]` parameter names and values together (after URL decoding). */
  maxQueryLength: number;
  /** Longest client regular expression source, in characters. */
  maxRegexLength: number;
  /** Most client regular expressions in one filter. */
  maxRegexes: number;
  /** A client regular expression never matches a value longer than this (its cost grows with the value's length). */
  maxRegexInputLength: number;
  /**
   * Largest size of a client regular expression once counted repetitions are
   * expanded: each atom counts 1 (ASCII), 2 (`.`, `\S`, `[^…]`, non-ASCII
   * characters) or 25 (`\p{…}`), times the copies of `{n}`/`{n,m}` around it.
   * RE2's time per character grows with this size; at the default the worst
   * expression found costs about as much per character as the simplest.
   */
  maxRegexSize: number;
  /** A glob never matches a value longer than this (its cost grows with the value's length). */
  maxGlobInputLength: number;
  /**
   * Pattern work one filter may do on one message, in characters: a regex test
   * on a value counts (its length + 16) × {@link REGEX_CHAR_WORK}, a glob test its
   * length × the glob's longest literal part (its worst case). Arrays fan out,
   * so this is what bounds a message with many long values. Once a message has
   * used it, its remaining regex and glob tests do not match.
   */
  maxMatchWorkPerMessage: number;
  /**
   * Most client regular expressions one client key may have across its open
   * streams. Enforced by a {@link StreamLimiter} through `admitRegexes()`: the
   * filter alone cannot see the client's other streams.
   */
  maxRegexesPerKey: number;
}

/** Default {@link FilterLimits}. */
export const FILTER_LIMITS: Readonly<FilterLimits> = Object.freeze({
  maxFields: 16,
  maxValuesPerField: 256,
  maxTotalValues: 1024,
  maxValueLength: 1024,
  maxPathLength: 256,
  maxPathDepth: 16,
  maxQueryLength: 16 * 1024,
  maxRegexLength: 256,
  maxRegexes: 8,
  maxRegexInputLength: 1024,
  maxRegexSize: 200,
  maxGlobInputLength: 4096,
  maxMatchWorkPerMessage: 1024 * 1024,
  maxRegexesPerKey: 32,
});

/**
 * How many character comparisons one character of a regex test counts as in
 * `maxMatchWorkPerMessage`: RE2 costs 4–20 ns a character here (the program
 * walk and the UTF-8 copy of the value), a glob's search about 0.2–1 ns a
 * comparison.
 */
export const REGEX_CHAR_WORK = 16;

/** What one regex call costs beyond its characters (the native call and the UTF-8 copy), in characters. */
const REGEX_CALL_WORK = 16;

/** JSON's number grammar: what counts as a number in a query value or a numeric string. */
const NUMERIC = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const META_FIELDS = new Set(['$key', '$topic', '$partition', '$offset', '$timestamp']);
const HEADER_PREFIX = '$header.';

function show(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
}

function fail(field: string, message: string): never {
  throw new InvalidFilterError(`filter[${field.length > 60 ? `${field.slice(0, 60)}…` : field}]: ${message}`);
}

// ---------------------------------------------------------------- query syntax

/**
 * Reads `filter[<field>]=<values>` parameters from a URL, a path with a query,
 * a query string or URLSearchParams; other parameters are ignored.
 *
 * Values are comma-separated alternatives (OR): `edit,new`; a glob `blog.*`;
 * a range `>=10`, `>10`, `<=10`, `<10`, `10..20` (inclusive), `10..`, `..20`;
 * a regular expression `/^en\./i`. `\` escapes the next character (`\,`, `\*`,
 * `\/`, `\>`). `filter[!field]` negates. Repeating a parameter adds
 * alternatives. Fields combine with AND.
 *
 * @throws InvalidFilterError (400) for a malformed or oversized filter
 */
export function parseFilterQuery(query: string | URLSearchParams, limits: Partial<FilterLimits> = {}): FieldFilter[] {
  const lim = { ...FILTER_LIMITS, ...limits };
  let params: URLSearchParams;
  if (typeof query === 'string') {
    const q = query.indexOf('?');
    params = new URLSearchParams(q >= 0 ? query.slice(q + 1) : query);
  } else {
    params = query;
  }
  const byKey = new Map<string, FieldFilter & { anyOf: FilterMatcher[] }>();
  let total = 0;
  for (const [name, value] of params) {
    if (name !== 'filter' && !name.startsWith('filter[')) continue;
    total += name.length + value.length;
    if (total > lim.maxQueryLength) {
      throw new InvalidFilterError(`filter parameters exceed ${lim.maxQueryLength} characters in total`);
    }
    if (name.length < 9 || !name.endsWith(']')) {
      throw new InvalidFilterError(
        `${show(name)} is not a filter parameter; write filter[<field>]=<values>, e.g. filter[type]=edit`,
      );
    }
    let field = name.slice(7, -1);
    let not = false;
    if (field.startsWith('!')) {
      not = true;
      field = field.slice(1);
    }
    if (value === '') fail(field, 'has no value');
    const key = `${not ? '!' : ''}${field}`;
    let entry = byKey.get(key);
    if (!entry) {
      if (byKey.size >= lim.maxFields)
        throw new InvalidFilterError(`at most ${lim.maxFields} filter fields are allowed`);
      entry = not ? { field, not, anyOf: [] } : { field, anyOf: [] };
      byKey.set(key, entry);
    }
    parseValues(field, value, entry.anyOf, lim);
  }
  return [...byKey.values()];
}

/** Splits one parameter value into matchers, appending to `out`. */
function parseValues(field: string, text: string, out: FilterMatcher[], lim: FilterLimits): void {
  const n = text.length;
  let i = 0;
  for (;;) {
    if (out.length >= lim.maxValuesPerField) fail(field, `lists more than ${lim.maxValuesPerField} values`);
    if (text[i] === '/') {
      // A regular expression runs to the next unescaped `/` outside a character class.
      let j = i + 1;
      let inClass = false;
      for (; j < n; j++) {
        const c = text[j];
        if (c === '\\') j++;
        else if (inClass) inClass = c !== ']';
        else if (c === '[') inClass = true;
        else if (c === '/') break;
      }
      if (j >= n) fail(field, `the regular expression ${show(text.slice(i))} has no closing /`);
      let k = j + 1;
      while (k < n && text[k] !== ',') k++;
      const flags = text.slice(j + 1, k);
      if (!/^[a-z]*$/.test(flags)) {
        fail(field, `expected flags, a comma or the end after the regular expression, got ${show(flags)}`);
      }
      out.push(flags === '' ? { regex: text.slice(i + 1, j) } : { regex: text.slice(i + 1, j), flags });
      if (k >= n) return;
      i = k + 1;
      if (i >= n) fail(field, 'ends with a comma (empty value)');
      continue;
    }
    let literal = '';
    let escaped = false;
    let star = false;
    let j = i;
    for (; j < n; j++) {
      const c = text[j] as string;
      if (c === '\\') {
        if (j + 1 >= n) fail(field, 'ends with a lone backslash');
        escaped = true;
        literal += text[++j];
      } else if (c === ',') {
        break;
      } else {
        if (c === '*') star = true;
        literal += c;
      }
    }
    const raw = text.slice(i, j);
    if (raw === '') fail(field, 'has an empty value (two commas in a row, or a leading comma)');
    if (star) out.push({ glob: raw });
    else if (!escaped && (raw[0] === '>' || raw[0] === '<' || raw.includes('..'))) out.push(parseRange(field, raw));
    else out.push(literal);
    if (j >= n) return;
    i = j + 1;
    if (i >= n) fail(field, 'ends with a comma (empty value)');
  }
}

function parseRange(field: string, raw: string): FilterMatcher {
  const op =
    raw.startsWith('>=') || raw.startsWith('<=') ? raw.slice(0, 2) : raw[0] === '>' || raw[0] === '<' ? raw[0] : '';
  if (op !== '') {
    const num = raw.slice(op.length);
    if (!NUMERIC.test(num))
      fail(field, `${show(raw)}: expected a number after ${op} (escape a literal ${op[0]} as \\${op[0]})`);
    const v = Number(num);
    if (op === '>=') return { gte: v };
    if (op === '>') return { gt: v };
    if (op === '<=') return { lte: v };
    return { lt: v };
  }
  const at = raw.indexOf('..');
  const lo = raw.slice(0, at);
  const hi = raw.slice(at + 2);
  // `a..b` with words on either side is an ordinary value (a domain, a version).
  if ((lo !== '' && !NUMERIC.test(lo)) || (hi !== '' && !NUMERIC.test(hi)) || (lo === '' && hi === '')) return raw;
  const range: FilterRange = {};
  if (lo !== '') range.gte = Number(lo);
  if (hi !== '') range.lte = Number(hi);
  if (range.gte !== undefined && range.lte !== undefined && range.gte > range.lte) {
    fail(field, `the range ${show(raw)} is empty (its start is after its end)`);
  }
  return range;
}

// ---------------------------------------------------------------- compilation

/** The pattern work a filter has left for the message it is testing (see maxMatchWorkPerMessage). */
interface MatchBudget {
  left: number;
}

/** Matches one value (a scalar; arrays are handled by the caller). */
class ValueMatcher {
  readonly #strings = new Set<string>();
  readonly #numbers = new Set<number>();
  #true = false;
  #false = false;
  #null = false;
  readonly #globs: string[][] = [];
  readonly #globMinLength: number[] = [];
  /** Per glob: its longest part, what one test can cost per character of the value. */
  readonly #globWork: number[] = [];
  /** Client expressions (RE2, budgeted) and the server's own RegExps (trusted, not budgeted). */
  readonly #regexes: (RE2 | RegExp)[] = [];
  readonly #budgeted: boolean[] = [];
  readonly #ranges: FilterRange[] = [];
  #hasTextMatchers = false;
  readonly #maxRegexInput: number;
  readonly #maxGlobInput: number;
  readonly #budget: MatchBudget;

  constructor(lim: FilterLimits, budget: MatchBudget) {
    this.#maxRegexInput = lim.maxRegexInputLength;
    this.#maxGlobInput = lim.maxGlobInputLength;
    this.#budget = budget;
  }

  addText(text: string): void {
    this.#strings.add(text);
    if (NUMERIC.test(text)) this.#numbers.add(Number(text));
    else if (text === 'true') this.#true = true;
    else if (text === 'false') this.#false = true;
    else if (text === 'null') this.#null = true;
  }

  addNull(): void {
    this.#null = true;
  }

  addGlob(parts: string[]): void {
    this.#globs.push(parts);
    this.#globMinLength.push(parts.reduce((sum, p) => sum + p.length, 0));
    this.#globWork.push(Math.max(1, ...parts.map((p) => p.length)));
    this.#hasTextMatchers = true;
  }

  addRegex(re: RE2 | RegExp, budgeted: boolean): void {
    this.#regexes.push(re);
    this.#budgeted.push(budgeted);
    this.#hasTextMatchers = true;
  }

  addRange(range: FilterRange): void {
    this.#ranges.push(range);
  }

  matches(v: unknown): boolean {
    switch (typeof v) {
      case 'string':
        if (this.#strings.has(v)) return true;
        if (this.#ranges.length > 0 && NUMERIC.test(v) && this.#inRange(Number(v))) return true;
        return this.#hasTextMatchers && this.#matchText(v);
      case 'number':
        if (this.#numbers.has(v)) return true;
        if (this.#ranges.length > 0 && this.#inRange(v)) return true;
        return this.#hasTextMatchers && this.#matchText(String(v));
      case 'boolean':
        if (v ? this.#true : this.#false) return true;
        return this.#hasTextMatchers && this.#matchText(v ? 'true' : 'false');
      case 'object':
        return v === null && this.#null;
      default:
        return false;
    }
  }

  #inRange(v: number): boolean {
    for (const r of this.#ranges) {
      if (
        (r.gt === undefined || v > r.gt) &&
        (r.gte === undefined || v >= r.gte) &&
        (r.lt === undefined || v < r.lt) &&
        (r.lte === undefined || v <= r.lte)
      ) {
        return true;
      }
    }
    return false;
  }

  #matchText(s: string): boolean {
    const budget = this.#budget;
    const n = s.length;
    const globs = this.#globs;
    if (globs.length > 0 && n <= this.#maxGlobInput) {
      for (let g = 0; g < globs.length; g++) {
        if (n < (this.#globMinLength[g] as number)) continue;
        budget.left -= n * (this.#globWork[g] as number);
        if (budget.left < 0) return false;
        if (globMatch(s, globs[g] as string[])) return true;
      }
    }
    const regexes = this.#regexes;
    if (regexes.length > 0 && n <= this.#maxRegexInput) {
      /**
       * RE2 is handed the UTF-8 bytes, made once for all its regexes: given a
       * string, node-re2 took about 3 µs a call on short values (its own
       * conversion), given a Buffer 0.17 µs, Buffer.from included.
       */
      let bytes: Buffer | undefined;
      for (let r = 0; r < regexes.length; r++) {
        if (this.#budgeted[r]) {
          budget.left -= (n + REGEX_CALL_WORK) * REGEX_CHAR_WORK;
          if (budget.left < 0) return false;
          bytes ??= Buffer.from(s, 'utf8');
          if ((regexes[r] as RE2).test(bytes)) return true;
        } else if ((regexes[r] as RegExp).test(s)) {
          return true;
        }
      }
    }
    return false;
  }
}

/**
 * Whether `s` matches a glob split at its stars (at least two parts; the caller
 * checked the length). Leftmost matching of each middle part is exact for
 * star-only globs, and linear in `s` per part: no backtracking.
 */
function globMatch(s: string, parts: string[]): boolean {
  const first = parts[0] as string;
  const lastPart = parts[parts.length - 1] as string;
  if (!s.startsWith(first) || !s.endsWith(lastPart)) return false;
  let pos = first.length;
  const end = s.length - lastPart.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    if (p === '') continue;
    const at = s.indexOf(p, pos);
    if (at < 0 || at + p.length > end) return false;
    pos = at + p.length;
  }
  return true;
}

/** Splits a glob at its unescaped stars, unescaping the rest. */
function globParts(field: string, glob: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i + 1 >= glob.length) fail(field, `the glob ${show(glob)} ends with a lone backslash`);
      cur += glob[++i];
    } else if (c === '*') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

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
