// Matching one value against a field's alternatives: exact strings, numbers,
// booleans and null, numeric ranges, globs and client regexes (on RE2), within
// the message's budget of pattern work.
import type RE2 from 're2';
import {
  type FilterLimits,
  type FilterRange,
  fail,
  NUMERIC,
  REGEX_CALL_WORK,
  REGEX_CHAR_WORK,
  show,
} from './filter-spec.ts';

/** The pattern work a filter has left for the message it is testing (see maxMatchWorkPerMessage). */
export interface MatchBudget {
  left: number;
}

/** Matches one value (a scalar; arrays are handled by the caller). */
export class ValueMatcher {
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
export function globMatch(s: string, parts: string[]): boolean {
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
export function globParts(field: string, glob: string): string[] {
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
