// The byte scan must accept exactly what JSON.parse accepts: a message it
// calls a plain object is sent as it came, unparsed, so a scanner that
// accepted one invalid text would forward invalid JSON to every client. Every
// test here runs on both scanners: scanJson (JavaScript, the fallback) and the
// WebAssembly one (lib/byte-scan.ts, wasm/json-scan), whose kind must be the same.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SCAN_KIND, scanBytesWasm } from '../../lib/byte-scan.ts';
import { SCAN_INVALID, SCAN_OTHER, SCAN_PLAIN_OBJECT, scanJson } from '../../lib/json-scan.ts';

/** What scanJson must say of `bytes`, decided by JSON.parse on their UTF-8 text. */
function expected(bytes: Uint8Array): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return SCAN_INVALID;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return SCAN_OTHER;
  return Object.hasOwn(parsed, '_kafka') || Object.hasOwn(parsed, '$kafkaSse') ? SCAN_OTHER : SCAN_PLAIN_OBJECT;
}

/**
 * Checks one input. An object whose top-level names have escapes may be
 * SCAN_OTHER (undecided: JSON.parse decides) although it is a plain object;
 * nothing else may differ.
 */
function check(input: string | Uint8Array): void {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const got = scan(bytes);
  const want = expected(bytes);
  if (got === want) return;
  if (got === SCAN_OTHER && want === SCAN_PLAIN_OBJECT && bytes.includes(92)) return;
  assert.fail(`${name}(${JSON.stringify(Buffer.from(bytes).toString('utf8'))}) = ${got}, JSON.parse says ${want}`);
}

const SAMPLES = [
  // Whole values and their near misses.
  ['{}', '[]', '""', '0', '-0', '1', '-1.5e+10', '1E-5', '0.0e0', 'true', 'false', 'null'],
  ['', ' ', '\n', '{', '}', '[', ']', '{]', '[}', '{"a":1,}', '[1,]', '[,1]', '{,}', '{"a"}', '{"a":}', '{:1}'],
  ['{"a":1 "b":2}', '{"a" 1}', '{"a"::1}', '{1:2}', "{'a':1}", '{"a":1}}', '[[[[]]]', '[[[[]]]]', '1 2', '{} {}'],
  // Numbers.
  ['01', '-01', '00', '1.', '.5', '-.5', '+1', '1e', '1e+', '1e-', '1ee1', '1.2.3', '--1', '-', '0x10', '1_000'],
  ['Infinity', 'NaN', '-Infinity', '1e400', '-0.0', '123456789012345678901234567890', '[1e1,2E+2,3e-3]'],
  // Words.
  ['tru', 'truee', 'True', 'nul', 'nulll', 'fals', 'undefined', '[true,false,null]', '{"a":nullx}'],
  // Strings and escapes.
  ['"\\"', '"\\\\"', '"\\/"', '"\\b\\f\\n\\r\\t"', '"\\x41"', '"\\u12"', '"\\u12G4"', '"\\u1234"', '"\\uD800"'],
  ['"\\U1234"', '"\\a"', '"\\\'"', '"\t"', '"\n"', '"\u0000"', '"\u001f"', '"\u007f"', '"\u2028\u2029"'],
  ['"unterminated', '"a"b"', '"é☃😀"', '{"é":"☃"}'],
  // Whitespace: only space, tab, LF and CR are JSON's.
  [' {"a" : [ 1 , 2 ] } ', '\t{\r\n"a"\n:\t1\r}\n', '\ufeff{}', '\u00a0{}', '{}\u000b', '\f{}', '{}\u2028'],
  // The watched top-level names, and the same names deeper down or escaped.
  ['{"_kafka":1}', '{"$kafkaSse":1}', '{"a":1,"_kafka":null}', '{"a":{"_kafka":1}}', '[{"_kafka":1}]'],
  ['{"_kafk":1}', '{"_kafkaa":1}', '{"$kafkaSs":1}', '{"\\u005fkafka":1}', '{"\\u0024kafkaSse":1}', '{"a\\n":1}'],
  ['{"_kafka":1,"_kafka":2}', '{"__proto__":1}', '{"a":"_kafka"}', '{"x":"$kafkaSse"}'],
].flat();

const wasm = scanBytesWasm;
assert.ok(wasm, 'the WebAssembly scan loads on every Node this package supports');
const SCANNERS: [string, (b: Uint8Array) => number][] = [
  ['scanJson', scanJson],
  ['the WebAssembly scan', (b) => wasm(b) & SCAN_KIND],
];
// The scanner the tests below are running on (check() and the asserts use it).
let name = '';
let scan: (b: Uint8Array) => number = scanJson;

for (const [scannerName, scanner] of SCANNERS)
  describe(`${scannerName}: a validating scan of JSON bytes`, () => {
    beforeEach(() => {
      name = scannerName;
      scan = scanner;
    });

    it('agrees with JSON.parse on hand-picked values and near misses', () => {
      for (const s of SAMPLES) check(s);
    });

    it('tells plain objects from the rest', () => {
      assert.equal(scan(Buffer.from('{"a":[1,{"_kafka":2}],"b":"$kafkaSse"}')), SCAN_PLAIN_OBJECT);
      assert.equal(scan(Buffer.from(' {} ')), SCAN_PLAIN_OBJECT);
      for (const s of ['{"_kafka":1}', '{"b":1,"$kafkaSse":1}', '[{}]', '"{}"', '{"\\u0061":1}'])
        assert.equal(scan(Buffer.from(s)), SCAN_OTHER, s);
      for (const s of ['{"a":1,}', '{"a":1}x', '', '\ufeff{}']) assert.equal(scan(Buffer.from(s)), SCAN_INVALID, s);
    });

    it('takes any depth, as JSON.parse does', () => {
      for (const depth of [63, 64, 65, 1000, 100_000]) {
        check(`${'['.repeat(depth)}${']'.repeat(depth)}`);
        check(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
        check(`${'['.repeat(depth)}${']'.repeat(depth - 1)}`);
      }
    });

    it('judges invalid UTF-8 as JSON.parse judges its decoded text', () => {
      const bad = [0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xe2, 0x82, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0xf5, 0xff];
      for (const b of bad) {
        for (const [before, after] of [
          ['{"a":"', '"}'],
          ['{"', '":1}'],
          ['{"a":', '}'],
          ['{"a":"x', ''],
          ['', '{}'],
          ['{}', ''],
          ['{"a":"', '\\"}'],
        ] as const) {
          check(Buffer.concat([Buffer.from(before), Buffer.from([b]), Buffer.from(after)]));
          check(Buffer.concat([Buffer.from(before), Buffer.from([b, 0x22]), Buffer.from(after)]));
        }
      }
    });

    it('agrees with JSON.parse on any JSON, compact or pretty-printed', () => {
      fc.assert(
        fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, 2, '\t'), (v, indent) => {
          check(JSON.stringify(v, null, indent));
        }),
        { numRuns: 5000 },
      );
      fc.assert(
        fc.property(fc.dictionary(fc.constantFrom('_kafka', '$kafkaSse', 'a', '_kafk', 'kafka'), fc.jsonValue()), (o) =>
          check(JSON.stringify(o)),
        ),
        { numRuns: 2000 },
      );
    });

    it('agrees with JSON.parse on JSON with one edit (an insert, a deletion, a replaced character)', () => {
      const piece = fc.constantFrom(
        ...'{}[]",:\\ \t\n\r0-1.eE+tfnu/\u0000\u001f\u00e9a'.split(''),
        '\\u',
        'true',
        'nul',
        '',
      );
      fc.assert(
        fc.property(fc.json(), fc.nat(), fc.nat(2), piece, (json, at, drop, insert) => {
          const p = at % (json.length + 1);
          check(json.slice(0, p) + insert + json.slice(p + drop));
        }),
        { numRuns: 20_000 },
      );
    });

    it('agrees with JSON.parse on arbitrary text and bytes', () => {
      fc.assert(
        fc.property(
          fc.string({ unit: fc.constantFrom(...'{}[]",:\\ 0-1.eEtrunlfas'.split('')), maxLength: 24 }),
          check,
        ),
        { numRuns: 20_000 },
      );
      fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), check), { numRuns: 5000 });
      fc.assert(fc.property(fc.string({ unit: 'binary' }), check), { numRuns: 5000 });
    });
  });
