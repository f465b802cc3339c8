// parseSince(): what a `?since=` in a URL may say, and what a client is told when it is wrong.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidTimestampError, parseSince } from '../../index.ts';

function rejected(value: string): InvalidTimestampError {
  try {
    parseSince(value);
  } catch (err) {
    assert.ok(err instanceof InvalidTimestampError, `expected InvalidTimestampError for ${value}, got ${String(err)}`);
    return err;
  }
  assert.fail(`parseSince(${JSON.stringify(value)}) should have thrown`);
}

describe('parseSince (?since=)', () => {
  it('reads milliseconds since the epoch', () => {
    assert.equal(parseSince('0'), 0);
    assert.equal(parseSince('2026'), 2026, 'four digits are milliseconds, not a year');
    assert.equal(parseSince('1767265200000'), 1767265200000);
    assert.equal(parseSince(' 1767265200000 '), 1767265200000);
    assert.equal(parseSince('253402300799999'), 253402300799999);
  });

  it('reads ISO-8601 date-times with a zone, to the millisecond', () => {
    const eleven = Date.UTC(2026, 0, 1, 11);
    assert.equal(parseSince('2026-01-01T11:00:00Z'), eleven);
    assert.equal(parseSince('2026-01-01T11:00Z'), eleven);
    assert.equal(parseSince('2026-01-01t11:00:00z'), eleven);
    assert.equal(parseSince('2026-01-01 11:00:00Z'), eleven);
    assert.equal(parseSince('2026-01-01T12:00:00+01:00'), eleven);
    assert.equal(parseSince('2026-01-01T12:00:00+0100'), eleven);
    assert.equal(parseSince('2026-01-01T06:30:00-04:30'), eleven);
    assert.equal(parseSince('2026-01-01T11:00:00.250Z'), eleven + 250);
    assert.equal(parseSince('2026-01-01T11:00:00.5Z'), eleven + 500);
    assert.equal(parseSince('2026-01-01T11:00:00.123456789Z'), eleven + 123);
    assert.equal(parseSince('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  });

  it('reads an ISO-8601 date as midnight UTC', () => {
    assert.equal(parseSince('2026-01-01'), Date.UTC(2026, 0, 1));
    assert.equal(parseSince('1970-01-01'), 0);
  });

  it('agrees with Date.parse on every date-time it accepts', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
        (d) => {
          assert.equal(parseSince(d.toISOString()), d.getTime());
        },
      ),
    );
  });

  it('refuses anything else with INVALID_TIMESTAMP (400), saying what was expected and what was given', () => {
    const err = rejected('yesterday');
    assert.equal(err.code, 'INVALID_TIMESTAMP');
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /^\?since must be milliseconds since the epoch or an ISO-8601 date/);
    assert.match(err.message, /2026-01-01T11:00:00Z/);
    assert.match(err.message, /got "yesterday"$/);
    assert.match(rejected('x'.repeat(500)).message, /got "x{60}…"$/);
  });

  for (const value of [
    '',
    ' ',
    '-5',
    '1e12',
    '12.5',
    '0x10',
    '12:00',
    'May 5',
    '2026-01',
    '2024-13-45',
    '2026-02-29',
    '2026-02-30',
    '2026-04-31',
    '2026-00-10',
    '2026-01-00',
    '2026-01-01T11:00:00',
    '2026-01-01T11:00',
    '2026-01-01T24:00:00Z',
    '2026-01-01T11:60:00Z',
    '2026-01-01T11:00:60Z',
    '2026-01-01T11:00:00+24:00',
    '2026-01-01T11:00:00+01:60',
    '2026-01-01T11:00:00.Z',
    '2026-01-01T11:00:00.1234567890Z',
    '1969-12-31T23:59:59Z',
    '1970-01-01T00:30:00+01:00',
    '99999999999999999',
    '253402300800000',
    '+002026-01-01T11:00:00Z',
    '2026-01-01T11:00:00Z junk',
  ]) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      assert.equal(rejected(value).code, 'INVALID_TIMESTAMP');
    });
  }
});
