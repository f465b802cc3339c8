// The strict reader of client regular expressions: what it reads, the size it
// gives (what bounds RE2's time per character), and what it refuses.
import assert from 'node:assert/strict';
import { compileClientRegex, regexShape } from '../../lib/client-regex.ts';

const LIMITS = { maxRegexLength: 256, maxRegexSize: 200 };

describe('client-regex', () => {
  it('weighs ASCII atoms 1, wide ones 2, Unicode properties 25, times the copies of a counted repetition', () => {
    const sizes: [string, string, number][] = [
      ['abc', '', 3],
      ['a*b+c?', '', 3],
      ['.', '', 2],
      ['[^a]', '', 2],
      ['[a-z]', '', 1],
      ['[a-zé]', '', 2],
      ['é', '', 2],
      ['\\S\\d', '', 3],
      ['\\p{L}', 'u', 25],
      ['a{3}', '', 3],
      ['a{2,5}', '', 5],
      ['a{4,}', '', 4],
      ['(?:ab|c){3}', '', 9],
      ['(?<w>a.){10}', '', 30],
      ['^a$', '', 1],
      ['\\bA\\B', '', 1],
    ];
    for (const [source, flags, size] of sizes)
      assert.deepEqual(regexShape(source, flags), { size }, `/${source}/${flags}`);
  });

  it('refuses what it does not read completely', () => {
    for (const [source, flags] of [
      ['a{01}', ''],
      ['\\u{61}', ''],
      ['\\p{L}', ''],
      ['(?i)a', ''],
      ['(?P<n>a)', ''],
      ['\\Z', ''],
      ['a{,2}', ''],
      ['[[]', ''],
      ['\\1', ''],
      ['(?=a)', ''],
      ['\\k<n>', ''],
      ['😀', ''],
      ['((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))', ''],
    ]) {
      assert.equal(typeof regexShape(source as string, flags as string), 'string', `/${source}/${flags}`);
    }
    assert.deepEqual(regexShape('😀+', 'u'), { size: 2 });
  });

  it('compiles with RE2 what it accepts, and says why it refuses', () => {
    const re = compileClientRegex('^(a|aa)+$', '', LIMITS);
    assert.ok(typeof re !== 'string');
    assert.equal(re.test(Buffer.from('aaaa')), true);
    assert.equal(re.test(Buffer.from(`${'a'.repeat(50_000)}b`)), false);
    assert.equal(compileClientRegex('', '', LIMITS), 'is empty');
    assert.match(compileClientRegex('a', 'g', LIMITS) as string, /only i, m, s and u/);
    assert.match(compileClientRegex('(', '', LIMITS) as string, /not a valid regular expression/);
    assert.match(compileClientRegex('.{101}', '', LIMITS) as string, /size 202, at most 200/);
    assert.match(compileClientRegex('a'.repeat(257), '', LIMITS) as string, /longer than 256/);
  });
});
