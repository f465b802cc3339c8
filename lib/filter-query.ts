// The `filter[<field>]=<values>` query syntax, parsed into a filter spec.
// Every part is bounded before any work is done on it.
import { InvalidFilterError } from './errors.ts';
import {
  FILTER_LIMITS,
  type FieldFilter,
  type FilterLimits,
  type FilterMatcher,
  type FilterRange,
  fail,
  NUMERIC,
  show,
} from './filter-spec.ts';

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
