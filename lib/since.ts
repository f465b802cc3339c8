// `?since=`: the start time a client gives in a URL, parsed the same way by
// every server built on the library (the examples all use this).
import { InvalidTimestampError } from './errors.ts';

/** 9999-12-31T23:59:59.999Z: the last instant ISO-8601's four-digit years can write. */
const MAX_MS = 253402300799999;

/** Digits only: milliseconds since the epoch. */
const EPOCH_MS = /^\d{1,16}$/;

/**
 * `YYYY-MM-DD`, or a date-time with a zone: `YYYY-MM-DDTHH:MM[:SS[.fraction]]`
 * then `Z` or `±HH:MM` / `±HHMM`. A date-time without a zone is refused: it
 * would mean the server's local time, which the client cannot know.
 */
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-](\d{2}):?(\d{2})))?$/;

function fail(value: string): never {
  const shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  throw new InvalidTimestampError(
    `?since must be milliseconds since the epoch or an ISO-8601 date (2026-01-01) or date-time with a zone (2026-01-01T11:00:00Z), got ${shown}`,
  );
}

/**
 * Parses a `?since=` value into milliseconds since the epoch, for `kafkaSse()`'s
 * `atTimestamp`. Accepts milliseconds since the epoch (`1767265200000`), an
 * ISO-8601 date (`2026-01-01`, midnight UTC) or an ISO-8601 date-time with a
 * zone (`2026-01-01T11:00:00Z`, `2026-01-01T12:00:00+01:00`). Surrounding
 * spaces are ignored. Throws {@link InvalidTimestampError} (code
 * `INVALID_TIMESTAMP`, status 400) for anything else, including impossible
 * dates (`2026-02-30`), a date-time without a zone, and times before 1970.
 */
export function parseSince(value: string): number {
  if (typeof value !== 'string') fail(String(value));
  const v = value.trim();
  if (EPOCH_MS.test(v)) {
    const ms = Number(v);
    if (ms > MAX_MS) fail(value);
    return ms;
  }
  const m = ISO_8601.exec(v);
  if (!m) fail(value);
  const [year, month, day, hour, minute, second, zoneHour, zoneMinute] = [1, 2, 3, 4, 5, 6, 9, 10].map((i) =>
    Number(m[i] ?? 0),
  ) as [number, number, number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) fail(value);
  if (hour > 23 || minute > 59 || second > 59 || zoneHour > 23 || zoneMinute > 59) fail(value);
  // Milliseconds: the fraction's first three digits (finer digits are dropped, not rounded).
  const millis = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const zoneSign = m[8]?.startsWith('-') ? -1 : 1;
  const zoneMs = zoneSign * (zoneHour * 60 + zoneMinute) * 60_000;
  const ms = utc(year, month, day, hour, minute, second, millis) - zoneMs;
  if (ms < 0 || ms > MAX_MS) fail(value);
  return ms;
}

/** Date.UTC, without its two-digit-year quirk (years 0–99 would mean 1900–1999). */
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number) {
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  d.setUTCFullYear(year);
  return d.getTime();
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
