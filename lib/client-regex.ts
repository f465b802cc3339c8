// Regular expressions from untrusted sources (a client's query, a filter spec
// read from configuration): read by a strict parser of a subset of
// JavaScript's syntax, then compiled with RE2, which matches in time linear in
// the value. Pure: no I/O.
//
// Why both: RE2 bounds the time per character, but its syntax differs from
// JavaScript's (`\z`, `\Q…\E`, `[[:alpha:]]`, `x{,3}` mean one thing there and
// another, or nothing, in JS), and its cost per character grows with the size
// of the compiled program: `.{500}x` took 0.8 s on a 100,000-character value
// here while `.{200}x` took 0.4 ms (RE2's DFA runs out of its cache and falls
// back to simulating every state). So the parser accepts only what it reads
// completely and what both engines read the same way, and bounds the
// program's size; RE2 then guarantees the rest.
import RE2 from 're2';

/** What the parser found: the weighted size of the expression once counted repetitions are expanded. */
export interface ClientRegexShape {
  size: number;
}

/** Limits a client regular expression is checked against. */
export interface ClientRegexLimits {
  /** Longest source, in characters. */
  maxRegexLength: number;
  /** Largest weighted size (see {@link regexShape}). */
  maxRegexSize: number;
}

/**
 * Weight of one atom in the size. An ASCII-only atom compiles to one RE2
 * instruction; an atom that can match non-ASCII text (`.`, `\S`, `[^…]`, `é`)
 * to several (one per UTF-8 length); a Unicode property (`\p{L}`) to hundreds
 * of byte ranges: `\p{L}{20}x` took 220 ms on 100,000 characters where
 * `.{250}x` took 0.4 ms.
 */
const WEIGHT_ASCII = 1;
const WEIGHT_WIDE = 2;
const WEIGHT_PROPERTY = 25;

/** RE2's own bound on a counted repetition. */
const MAX_COUNT = 1000;

const FLAGS = /^[imsu]*$/;
const SYNTAX = '^$\\.*+?()[]{}|/-';
const HEX = /^[0-9a-fA-F]$/;

class Refusal {
  constructor(readonly reason: string) {}
}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

/** A strict recursive-descent reader of the accepted subset. */
class Reader {
  readonly #src: string;
  readonly #unicode: boolean;
  #i = 0;
  #depth = 0;

  constructor(src: string, unicode: boolean) {
    this.#src = src;
    this.#unicode = unicode;
  }

  read(): number {
    const size = this.#disjunction();
    if (this.#i < this.#src.length) {
      // Only an unbalanced `)` stops a disjunction before the end.
      refuse('has a ) without a matching (');
    }
    return size;
  }

  #peek(k = 0): string {
    return this.#src[this.#i + k] ?? '';
  }

  #disjunction(): number {
    let size = this.#alternative();
    while (this.#peek() === '|') {
      this.#i++;
      size += this.#alternative();
    }
    return size;
  }

  #alternative(): number {
    let size = 0;
    for (;;) {
      const c = this.#peek();
      if (c === '' || c === '|' || c === ')') return size;
      size += this.#term();
    }
  }

  #term(): number {
    const c = this.#peek();
    if (c === '^' || c === '$') {
      this.#i++;
      this.#noQuantifier(c);
      return 0;
    }
    if (c === '\\' && (this.#peek(1) === 'b' || this.#peek(1) === 'B')) {
      this.#i += 2;
      this.#noQuantifier(`\\${this.#src[this.#i - 1]}`);
      return 0;
    }
    const atom = this.#atom();
    const times = this.#quantifier();
    return times === undefined ? atom : atom * times;
  }

  #noQuantifier(what: string): void {
    if (this.#startsQuantifier()) refuse(`repeats the assertion ${what}, which is not allowed`);
  }

  #startsQuantifier(): boolean {
    const c = this.#peek();
    return c === '*' || c === '+' || c === '?' || c === '{';
  }

  /** The multiplier a quantifier here gives the size (copies RE2 compiles), or undefined when there is none. */
  #quantifier(): number | undefined {
    const c = this.#peek();
    let times: number;
    if (c === '*' || c === '+' || c === '?') {
      this.#i++;
      times = 1;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.#src.slice(this.#i));
      if (!m) refuse('has a { that does not start a repetition {n}, {n,} or {n,m}; write a literal { as \\{');
      const min = this.#count(m[1] as string);
      const max = m[2] === undefined ? min : m[3] === '' ? undefined : this.#count(m[3] as string);
      if (max !== undefined && max < min) refuse(`has the repetition ${m[0]}, whose minimum is above its maximum`);
      this.#i += m[0].length;
      times = Math.max(1, max ?? min);
    } else {
      return undefined;
    }
    if (this.#peek() === '?') this.#i++; // lazy: the same program
    if (this.#startsQuantifier()) refuse('repeats a repetition (such as a** or a{2}{3}); use a group');
    return times;
  }

  #count(digits: string): number {
    if (digits.length > 1 && digits[0] === '0') {
      refuse(`writes the repetition count ${digits.slice(0, 12)} with leading zeros`);
    }
    if (digits.length > 4 || Number(digits) > MAX_COUNT) refuse(`repeats something more than ${MAX_COUNT} times`);
    return Number(digits);
  }

  #atom(): number {
    const c = this.#peek();
    switch (c) {
      case '(':
        return this.#group();
      case '[':
        return this.#class();
      case '.':
        this.#i++;
        return WEIGHT_WIDE;
      case '\\':
        return this.#escape(false).weight;
      case '*':
      case '+':
      case '?':
        return refuse(`has ${c} with nothing before it to repeat`);
      case '{':
        return refuse('has a { that does not start a repetition {n}, {n,} or {n,m}; write a literal { as \\{');
      case '}':
      case ']':
        return refuse(`has an unescaped ${c}; write it as \\${c}`);
      default:
        return this.#literal();
    }
  }

  #literal(): number {
    const cp = this.#src.codePointAt(this.#i) as number;
    if (cp > 0xffff && !this.#unicode) refuse('has a character outside the Basic Multilingual Plane; add the u flag');
    this.#i += cp > 0xffff ? 2 : 1;
    return cp < 0x80 ? WEIGHT_ASCII : WEIGHT_WIDE;
  }

  #group(): number {
    this.#i++;
    if (this.#peek() === '?') {
      const next = this.#peek(1);
      if (next === ':') {
        this.#i += 2;
      } else if (next === '=' || next === '!' || (next === '<' && (this.#peek(2) === '=' || this.#peek(2) === '!'))) {
        refuse('uses lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which the linear-time matcher cannot run');
      } else if (next === '<') {
        const m = /^\?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(this.#src.slice(this.#i));
        if (!m) refuse('has a group name that is not letters, digits and _ after (?<');
        this.#i += m[0].length;
      } else {
        refuse('has a (? group other than (?: and (?<name>');
      }
    }
    if (++this.#depth > 32) refuse('nests groups more than 32 deep');
    const size = this.#disjunction();
    this.#depth--;
    if (this.#peek() !== ')') refuse('has a ( without a matching )');
    this.#i++;
    return size;
  }

  /**
   * One escape, outside (inClass false) or inside a class. Returns its weight
   * and, for a single character, its code point (ranges need it).
   */
  #escape(inClass: boolean): { weight: number; cp?: number } {
    const d = this.#peek(1);
    this.#i += 2;
    switch (d) {
      case 'd':
      case 'w':
        return { weight: WEIGHT_ASCII };
      case 's':
      case 'D':
      case 'W':
      case 'S':
        return { weight: WEIGHT_WIDE };
      case 't':
        return { weight: WEIGHT_ASCII, cp: 9 };
      case 'n':
        return { weight: WEIGHT_ASCII, cp: 10 };
      case 'v':
        return { weight: WEIGHT_ASCII, cp: 11 };
      case 'f':
        return { weight: WEIGHT_ASCII, cp: 12 };
      case 'r':
        return { weight: WEIGHT_ASCII, cp: 13 };
      case '0':
        if (/[0-9]/.test(this.#peek())) refuse('has \\0 followed by a digit (an octal escape); use \\xHH');
        return { weight: WEIGHT_ASCII, cp: 0 };
      case 'x': {
        const h = this.#src.slice(this.#i, this.#i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) refuse('has \\x not followed by two hex digits');
        this.#i += 2;
        const cp = Number.parseInt(h, 16);
        return { weight: cp < 0x80 ? WEIGHT_ASCII : WEIGHT_WIDE, cp };
      }
      case 'u':
        return this.#unicodeEscape();
      case 'c': {
        const l = this.#peek();
        if (!/^[A-Za-z]$/.test(l)) refuse('has \\c not followed by a letter');
        this.#i++;
        return { weight: WEIGHT_ASCII, cp: l.charCodeAt(0) % 32 };
      }
      case 'p':
      case 'P': {
        if (!this.#unicode) {
          refuse(`has \\${d}, which needs the u flag (without it, \\${d}{…} means the letter ${d} repeated)`);
        }
        const m = /^\{[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_]+)?\}/.exec(this.#src.slice(this.#i));
        if (!m) refuse(`has \\${d} not followed by a property name in braces, such as \\${d}{L}`);
        this.#i += m[0].length;
        return { weight: WEIGHT_PROPERTY };
      }
      case 'b':
      case 'B':
        // Only reached inside a class: JavaScript's backspace, not a boundary; RE2 refuses it.
        return refuse(`has \\${d} inside a character class; write a backspace as \\x08`);
      case 'k':
        return refuse('uses a named backreference (\\k<name>), which the linear-time matcher cannot run');
      case '':
        return refuse('ends with a lone backslash');
      default:
        if (/[1-9]/.test(d)) refuse('uses a backreference (\\1 to \\9), which the linear-time matcher cannot run');
        if (SYNTAX.includes(d)) return { weight: WEIGHT_ASCII, cp: d.charCodeAt(0) };
        return refuse(
          `has the escape \\${d}, which is not supported (${inClass ? 'in a class' : 'outside a class'}: ` +
            'use \\d \\w \\s \\D \\W \\S \\b \\B \\t \\n \\v \\f \\r \\0 \\xHH \\uHHHH \\cX, \\p{…} with u, or \\ before a syntax character)',
        );
    }
  }

  #unicodeEscape(): { weight: number; cp: number } {
    if (this.#peek() === '{') {
      if (!this.#unicode) {
        refuse('has \\u{…}, which needs the u flag (without it, \\u{1,} means the letter u repeated)');
      }
      const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(this.#src.slice(this.#i));
      if (!m || Number.parseInt(m[1] as string, 16) > 0x10ffff) refuse('has \\u{…} that is not a code point in hex');
      this.#i += m[0].length;
      const cp = Number.parseInt(m[1] as string, 16);
      return { weight: cp < 0x80 ? WEIGHT_ASCII : WEIGHT_WIDE, cp };
    }
    const h = this.#src.slice(this.#i, this.#i + 4);
    if (h.length !== 4 || ![...h].every((x) => HEX.test(x))) refuse('has \\u not followed by four hex digits');
    this.#i += 4;
    const cp = Number.parseInt(h, 16);
    if (cp >= 0xd800 && cp <= 0xdfff) refuse('has \\u escaping a surrogate; write the character, or \\u{…} with u');
    return { weight: cp < 0x80 ? WEIGHT_ASCII : WEIGHT_WIDE, cp };
  }

  #class(): number {
    this.#i++;
    let weight = WEIGHT_ASCII;
    if (this.#peek() === '^') {
      this.#i++;
      weight = WEIGHT_WIDE;
    }
    if (this.#peek() === ']') refuse('has an empty class [] or [^]; write [\\s\\S] for any character');
    for (;;) {
      const c = this.#peek();
      if (c === '') refuse('has a [ without a matching ]');
      if (c === ']') {
        this.#i++;
        return weight;
      }
      const lo = this.#classAtom();
      weight = Math.max(weight, lo.weight);
      if (this.#peek() === '-' && this.#peek(1) !== ']' && this.#peek(1) !== '') {
        this.#i++;
        const hi = this.#classAtom();
        if (lo.cp === undefined || hi.cp === undefined) {
          refuse('has a range with a class escape such as \\d at one end; write \\- for a literal -');
        }
        if (hi.cp < lo.cp) refuse('has a range whose start is after its end');
        weight = Math.max(weight, hi.weight);
      }
    }
  }

  #classAtom(): { weight: number; cp?: number } {
    const c = this.#peek();
    if (c === '\\') return this.#escape(true);
    if (c === '[') refuse('has [ inside a class; write it as \\[');
    const cp = this.#src.codePointAt(this.#i) as number;
    if (cp > 0xffff && !this.#unicode) refuse('has a character outside the Basic Multilingual Plane; add the u flag');
    this.#i += cp > 0xffff ? 2 : 1;
    return { weight: cp < 0x80 ? WEIGHT_ASCII : WEIGHT_WIDE, cp };
  }
}

/**
 * Reads a client regular expression completely, or says why not. The size
 * counts each atom by its weight (1 for ASCII, 2 for what can match wider
 * characters, 25 for a Unicode property), times the copies a counted
 * repetition makes (`x{3}`, `x{3,5}` → 3, 5; `x*`, `x+`, `x?` → 1).
 *
 * Refused: anything outside the subset (backreferences, lookaround, `(?` groups
 * other than `(?:` and `(?<name>`, unknown escapes, a `{`, `}` or `]` that is not
 * syntax, repetition counts with leading zeros or above 1000, `\u{…}` and
 * `\p{…}` without the `u` flag, where JavaScript would read them as a repeated
 * letter).
 */
export function regexShape(source: string, flags: string): ClientRegexShape | string {
  try {
    return { size: new Reader(source, flags.includes('u')).read() };
  } catch (err) {
    if (err instanceof Refusal) return err.reason;
    throw err;
  }
}

/**
 * Compiles a regular expression from an untrusted source with RE2, or returns
 * why it is refused (a phrase to follow "the regular expression /…/ ").
 * Only the flags `i`, `m`, `s` and `u` are allowed; RE2 always reads the value
 * as code points (as JavaScript does with `u`).
 */
export function compileClientRegex(source: string, flags: string, limits: ClientRegexLimits): RE2 | string {
  if (source === '') return 'is empty';
  if (source.length > limits.maxRegexLength) return `is longer than ${limits.maxRegexLength} characters`;
  if (!FLAGS.test(flags) || new Set(flags).size !== flags.length) {
    return `has flags ${JSON.stringify(flags.slice(0, 10))}; only i, m, s and u are allowed`;
  }
  try {
    new RegExp(source, flags);
  } catch {
    return 'is not a valid regular expression';
  }
  const shape = regexShape(source, flags);
  if (typeof shape === 'string') return shape;
  if (shape.size > limits.maxRegexSize) {
    return (
      `is too large for the matcher (size ${shape.size}, at most ${limits.maxRegexSize}: counted repetitions ` +
      'such as .{100} multiply, \\p{…} counts 25); use fewer or smaller repetitions'
    );
  }
  try {
    return new RE2(source, flags);
  } catch {
    return 'cannot be compiled by the linear-time matcher (RE2)';
  }
}
