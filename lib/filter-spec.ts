// Subscription filters' vocabulary: the spec a server writes (or a client's
// query is parsed into), the bounds on it, and the error every check raises.
import { InvalidFilterError } from './errors.ts';

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
export const REGEX_CALL_WORK = 16;

/** JSON's number grammar: what counts as a number in a query value or a numeric string. */
export const NUMERIC = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
export const META_FIELDS = new Set(['$key', '$topic', '$partition', '$offset', '$timestamp']);
export const HEADER_PREFIX = '$header.';

/** A value as it appears in a message, cut to 60 characters. */
export function show(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
}

/** Throws InvalidFilterError naming the field. */
export function fail(field: string, message: string): never {
  throw new InvalidFilterError(`filter[${field.length > 60 ? `${field.slice(0, 60)}…` : field}]: ${message}`);
}
