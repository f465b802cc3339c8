// The bytes a stream's pending events are written into: pieces taken out are
// never written again (a socket may still hold them), slabs follow the batch
// size, and integers are written as String() writes them.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteBatch, writeInt } from '../../lib/byte-batch.ts';

describe('ByteBatch', () => {
  it('gives back exactly what was written since the last take, and never writes over a piece taken', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 3000 }), fc.boolean()), { maxLength: 60 }),
        (steps) => {
          const batch = new ByteBatch();
          const pieces: { piece: Buffer; want: string }[] = [];
          let want = '';
          for (const [text, take] of steps) {
            batch.text(text);
            want += text;
            assert.equal(batch.length, Buffer.byteLength(want));
            if (take) {
              pieces.push({ piece: batch.take(), want });
              want = '';
              assert.equal(batch.length, 0);
            }
          }
          pieces.push({ piece: batch.take(), want });
          for (const { piece, want: w } of pieces) assert.equal(piece.toString(), w);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a live stream in small slabs and lets a replay-sized slab go once batches are small again', () => {
    const batch = new ByteBatch();
    batch.text('x'.repeat(800));
    batch.take();
    assert.ok(batch.buf.length <= 4096, `a small batch's slab: ${batch.buf.length} bytes`);
    for (let i = 0; i < 150; i++) batch.text('y'.repeat(700));
    batch.take();
    assert.ok(batch.buf.length === 0 || batch.buf.length >= 100_000, 'a replay-sized batch');
    batch.text('z'.repeat(700));
    assert.ok(batch.buf.length >= 100_000, 'the next batch is sized like the last');
    batch.take();
    batch.text('z'.repeat(700));
    batch.take();
    assert.ok(batch.buf.length <= 4096, `after small batches the large slab is gone: ${batch.buf.length} bytes`);
  });

  it('drop() forgets what is pending', () => {
    const batch = new ByteBatch();
    batch.text('abc');
    batch.drop();
    assert.equal(batch.length, 0);
    assert.equal(batch.take().length, 0);
  });
});

describe('writeInt', () => {
  it('writes any number String() writes as an integer, and returns the index after it', () => {
    const buf = Buffer.alloc(40, 0x2e);
    const check = (v: number) => {
      const end = writeInt(buf, 3, v);
      assert.equal(buf.toString('latin1', 3, end), String(v));
      assert.equal(buf[2], 0x2e, 'nothing before');
    };
    for (const v of [
      0,
      -0,
      1,
      9,
      10,
      99,
      100,
      -1,
      -10,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53,
      2 ** 60,
      1e21,
      1764633600000,
    ])
      check(v);
    fc.assert(fc.property(fc.maxSafeInteger(), check), { numRuns: 5000 });
  });
});
