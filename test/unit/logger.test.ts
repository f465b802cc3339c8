// Each stream's logger is a child of the caller's made on first use: lines
// carry the stream's bindings exactly as a pino child's would.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { LazyChildLogger, logsAt } from '../../lib/logger.ts';
import type { Logger } from '../../lib/types.ts';

function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level: 'trace' }, dest) as unknown as Logger, lines };
}

describe('LazyChildLogger', () => {
  it('makes no child until a line is written at a level the parent writes, then one for all lines', () => {
    const lines: Record<string, unknown>[] = [];
    const parent = pino(
      { level: 'warn' },
      new Writable({
        write(c, _e, done) {
          lines.push(JSON.parse(String(c)));
          done();
        },
      }),
    );
    const makeChild = parent.child.bind(parent);
    let children = 0;
    parent.child = ((b: Record<string, unknown>) => {
      children++;
      return makeChild(b);
    }) as typeof parent.child;
    const lazy = new LazyChildLogger(parent as unknown as Logger, { requestId: 'r1' });
    lazy.info({ a: 1 }, 'below the level');
    lazy.debug('below the level');
    assert.equal(children, 0);
    assert.equal(logsAt(lazy, 'info'), false);
    assert.equal(logsAt(lazy, 'warn'), true);
    lazy.warn({ a: 1 }, 'one');
    lazy.error('two');
    lazy.info('still below');
    assert.equal(children, 1);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.requestId]),
      [
        ['one', 'r1'],
        ['two', 'r1'],
      ],
    );
  });

  it('takes a logger without isLevelEnabled as writing every level', () => {
    const seen: string[] = [];
    const plain: Logger = {
      child: () => plain,
      trace: (o) => seen.push(`trace ${String(o)}`),
      debug: (o) => seen.push(`debug ${String(o)}`),
      info: (o) => seen.push(`info ${String(o)}`),
      warn: (o) => seen.push(`warn ${String(o)}`),
      error: (o) => seen.push(`error ${String(o)}`),
    };
    assert.equal(logsAt(plain, 'trace'), true);
    const lazy = new LazyChildLogger(plain, { requestId: 'r3' });
    lazy.trace('a');
    lazy.info('b');
    assert.deepEqual(seen, ['trace a', 'info b']);
  });

  it('writes the lines a pino child with the same bindings writes', () => {
    const { log, lines } = capture();
    const lazy = new LazyChildLogger(log, { requestId: 'r2' });
    lazy.trace({ n: 1 }, 'at trace');
    lazy.debug('at debug');
    lazy.info({ n: 3 }, 'at info');
    lazy.warn({ err: new Error('boom') }, 'at warn');
    lazy.error('at error');
    lazy.child({ partition: 4 }).info('from a child');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.requestId]),
      [
        [10, 'at trace', 'r2'],
        [20, 'at debug', 'r2'],
        [30, 'at info', 'r2'],
        [40, 'at warn', 'r2'],
        [50, 'at error', 'r2'],
        [30, 'from a child', 'r2'],
      ],
    );
    assert.equal(lines[0]?.n, 1);
    assert.equal((lines[3] as { err: { message: string } }).err.message, 'boom');
    assert.equal(lines[5]?.partition, 4);
  });
});
