// The byte scan that decides whether a message's bytes go out as they came
// (lib/byte-scan.ts): the WebAssembly scan must give exactly the JavaScript
// scan's answer (scanJson, indexOf for CR and LF, buffer.isUtf8), whatever the
// bytes and their size; a difference would send invalid UTF-8 or a split data
// line to every client, or parse what needs no parsing.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import {
  byteScanEngine,
  SCAN_BAD_UTF8,
  SCAN_INVALID,
  SCAN_LINE_BREAK,
  SCAN_OTHER,
  SCAN_PLAIN_OBJECT,
  scanBytes,
  scanBytesJs,
  scanBytesWasm,
  WASM_MAX_BYTES,
} from '../../lib/byte-scan.ts';
import { sendableAsIs } from '../../lib/raw-frame.ts';
import { missingToolchain } from '../../scripts/build-wasm.mjs';

const wasm = scanBytesWasm as (b: Uint8Array) => number;

function same(bytes: Uint8Array): void {
  const js = scanBytesJs(bytes);
  const got = wasm(bytes);
  if (got !== js) {
    const shown = bytes.length > 80 ? `${bytes.length} bytes` : JSON.stringify(Buffer.from(bytes).toString('latin1'));
    assert.fail(`WebAssembly scan of ${shown} = ${got}, JavaScript scan = ${js}`);
  }
}

const inString = (bytes: number[] | Uint8Array, tail = '"}'): Buffer =>
  Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from(tail)]);

describe('byte scan: the WebAssembly scan and the JavaScript one', () => {
  it('runs on WebAssembly on this Node, for every message (scanBytes)', () => {
    assert.equal(byteScanEngine, 'wasm');
    assert.equal(scanBytes, scanBytesWasm);
  });

  it('says what the usual payloads are', () => {
    assert.equal(scanBytes(Buffer.from('{"a":"é☃😀","b":[1,2.5e3,true,null]}')), SCAN_PLAIN_OBJECT);
    assert.equal(scanBytes(Buffer.from('{"_kafka":1}')), SCAN_OTHER);
    assert.equal(scanBytes(Buffer.from('{\n  "a": 1\n}')), SCAN_PLAIN_OBJECT | SCAN_LINE_BREAK);
    assert.equal(scanBytes(Buffer.from('{"a":1}\r')), SCAN_PLAIN_OBJECT | SCAN_LINE_BREAK);
    assert.equal(scanBytes(Buffer.from('["\\n"]')), SCAN_OTHER, 'an escaped LF is no line break');
    assert.equal(scanBytes(Buffer.from('{"a":"\n"}')), SCAN_INVALID, 'a raw LF inside a string is no JSON');
    assert.equal(scanBytes(inString([0xff])), SCAN_PLAIN_OBJECT | SCAN_BAD_UTF8);
    assert.equal(scanBytes(Buffer.from([0x7b, 0xff, 0x7d])), SCAN_INVALID, 'bytes outside strings are no JSON');
    assert.equal(
      scanBytes(inString([0xed, 0xa0, 0x80], '",\n"b":1}')),
      SCAN_PLAIN_OBJECT | SCAN_BAD_UTF8 | SCAN_LINE_BREAK,
    );
  });

  it('judges every UTF-8 lead byte with every kind of follower as buffer.isUtf8 does', () => {
    const followers = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff, 0x22];
    let bad = 0;
    for (let lead = 0x80; lead <= 0xff; lead++) {
      for (const second of followers) {
        for (const third of [0x80, 0xbf, 0x41, 0xc0, 0x22]) {
          for (const fourth of [0x80, 0xbf, 0x41, 0x22]) {
            const seq = [lead, second, third, fourth];
            // As the string's last bytes, inside it, cut short by the end of the payload, and as a name.
            for (const bytes of [
              inString(seq),
              inString([...seq, 0x61]),
              inString(seq, ''),
              Buffer.from([0x22, ...seq]),
            ]) {
              same(bytes);
              const kind = wasm(bytes);
              if (kind !== SCAN_INVALID) assert.equal((kind & SCAN_BAD_UTF8) === 0, isUtf8(bytes));
              if (kind & SCAN_BAD_UTF8) bad++;
            }
          }
        }
      }
    }
    assert.ok(bad > 1000, 'the set holds invalid sequences inside valid JSON');
  });

  it('agrees on bytes inside strings, any bytes and any JSON', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => same(inString(b))),
      { numRuns: 20_000 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), same), { numRuns: 10_000 });
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, '\t', '\r\n'), (v, indent) => {
        same(
          Buffer.from(
            typeof indent === 'string' && indent.includes('\r')
              ? JSON.stringify(v, null, 1).replaceAll('\n', '\r\n')
              : JSON.stringify(v, null, indent),
          ),
        );
      }),
      { numRuns: 5000 },
    );
    // Strings longer than one 16-byte step, with the byte that ends the step at every place.
    for (let len = 0; len < 48; len++) {
      for (const stop of [0x22, 0x5c, 0x00, 0x1f, 0x0a, 0x80, 0xc3, 0xe2, 0xf0, 0xff, 0x7f, 0x20]) {
        for (let at = 0; at <= len; at++) {
          const body = Buffer.alloc(len, 0x61);
          same(inString(Buffer.concat([body.subarray(0, at), Buffer.from([stop]), body.subarray(at)])));
        }
      }
    }
  });

  it('answers the same for payloads of any size, up to and past what its memory takes', () => {
    const unit = Buffer.from('{"k":"v\\u00e9 ☃","n":[1,-2.5e-3,{"x":null}],"t":true},');
    for (const size of [1, 100, 1000, 70_000, 300_000, WASM_MAX_BYTES - 10, WASM_MAX_BYTES + 10, 3 * WASM_MAX_BYTES]) {
      const count = Math.max(1, Math.floor((size - 2) / unit.length));
      const body = Buffer.concat([
        Buffer.from('{"list":['),
        ...Array.from({ length: count }, () => unit),
        Buffer.from('1]}'),
      ]);
      same(body);
      assert.equal(scanBytes(body), SCAN_PLAIN_OBJECT, `${body.length} bytes`);
      const broken = Buffer.from(body);
      broken[broken.length - 2] = 0x2c; // `,}`: no JSON
      assert.equal(scanBytes(broken), SCAN_INVALID, `${body.length} bytes, broken at the end`);
    }
    // After a large payload, small ones are still scanned from the start of the memory.
    same(Buffer.from('{"a":"b"}'));
    same(Buffer.from('{"a":"b"'));
  });

  it('is what sendableAsIs() decides by: a plain object, no CR or LF, valid UTF-8', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 30 }).map((b) => inString(b)),
          fc.json().map((j) => Buffer.from(j)),
        ),
        (b) => {
          const expected =
            scanBytesJs(b) === SCAN_PLAIN_OBJECT && b.indexOf(10) === -1 && b.indexOf(13) === -1 && isUtf8(b);
          assert.equal(sendableAsIs(b), expected);
        },
      ),
      { numRuns: 10_000 },
    );
  });

  it('falls back to the JavaScript scan where WebAssembly does not run (node --jitless)', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--jitless',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "import { byteScanEngine, scanBytes } from './lib/byte-scan.ts'; console.log(byteScanEngine, scanBytes(Buffer.from('{\"a\":1}\\n')), scanBytes(Buffer.from('{')));",
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.equal(out.trim(), `js ${SCAN_PLAIN_OBJECT | SCAN_LINE_BREAK} ${SCAN_INVALID}`);
  });

  it('is the build of wasm/json-scan/src/lib.rs (scripts/build-wasm.mjs --check)', function () {
    const missing = missingToolchain();
    if (missing) {
      console.log(`    (not checked: ${missing})`);
      this.skip();
    }
    this.timeout(300_000);
    const check = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
