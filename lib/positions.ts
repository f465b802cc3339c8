// Pure position logic: parsing what a client or server asks for, resolving it
// against watermarks and time lookups, and encoding resume ids. No I/O here:
// the Kafka lookups are passed in, so all of it is testable without a broker.
import {
  InvalidAssignmentError,
  InvalidLastEventIdError,
  InvalidTimestampError,
  type KafkaSseError,
} from './errors.ts';

/** An explicit partition request, as KafkaSSE accepts it in assignments and in Last-Event-ID. */
export interface PartitionAssignment {
  topic: string;
  partition: number;
  /** The offset to start at; -1 means the end of the partition. Wins over `timestamp`. */
  offset?: number;
  /** Start at the first message at or after this time (epoch milliseconds). */
  timestamp?: number;
}

/** What `assignments` may be: topic names (array or comma-separated string) and/or partition objects. */
export type Assignments = string | readonly (string | PartitionAssignment)[];

/** One parsed request: a whole topic, or one partition with an optional start. */
export type Requested =
  | { kind: 'topic'; topic: string }
  | { kind: 'partition'; topic: string; partition: number; offset?: number; timestamp?: number };

/** A partition with what decides its start (at most one of offset, timestamp, beginning, history). */
export interface ExpandedPartition {
  topic: string;
  partition: number;
  offset?: number;
  timestamp?: number;
  beginning?: true;
  /** Start this many messages before the end. */
  history?: number;
}

/** Kafka's own rule for topic names. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const MAX_INT32 = 2 ** 31 - 1;
/** Timestamps beyond year 9999 are certainly mistakes (seconds vs. ms confusions, garbage). */
const MAX_TIMESTAMP_MS = 253402300799999;

/** Largest Last-Event-ID accepted, in characters, before any parsing. */
export const MAX_LAST_EVENT_ID_LENGTH = 64 * 1024;

/** Whether `name` is a legal Kafka topic name. */
export function isValidTopicName(name: unknown): name is string {
  return typeof name === 'string' && TOPIC_NAME.test(name) && name !== '.' && name !== '..';
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

type ErrorFactory = (message: string) => KafkaSseError;

function parseEntry(entry: unknown, where: string, makeError: ErrorFactory, allowPlainTopic: boolean): Requested {
  if (typeof entry === 'string' && allowPlainTopic) {
    const topic = entry.trim();
    if (!isValidTopicName(topic)) {
      throw makeError(`${where} is not a valid topic name: ${describe(entry)}`);
    }
    return { kind: 'topic', topic };
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw makeError(
      `${where} must be ${allowPlainTopic ? 'a topic name or ' : ''}an object {topic, partition, offset|timestamp}, got ${describe(entry)}`,
    );
  }
  const e = entry as Record<string, unknown>;
  if (!isValidTopicName(e.topic)) throw makeError(`${where}.topic is not a valid topic name: ${describe(e.topic)}`);
  if (!Number.isInteger(e.partition) || (e.partition as number) < 0 || (e.partition as number) > MAX_INT32) {
    throw makeError(`${where}.partition must be a non-negative integer, got ${describe(e.partition)}`);
  }
  const out: Requested = { kind: 'partition', topic: e.topic, partition: e.partition as number };
  const hasOffset = e.offset !== undefined && e.offset !== null;
  const hasTimestamp = e.timestamp !== undefined && e.timestamp !== null;
  if (hasOffset) {
    if (!Number.isSafeInteger(e.offset) || (e.offset as number) < -1) {
      throw makeError(`${where}.offset must be an integer ≥ 0, or -1 for the end, got ${describe(e.offset)}`);
    }
    out.offset = e.offset as number;
  }
  if (hasTimestamp) {
    if (
      !Number.isSafeInteger(e.timestamp) ||
      (e.timestamp as number) < 0 ||
      (e.timestamp as number) > MAX_TIMESTAMP_MS
    ) {
      throw makeError(
        `${where}.timestamp must be an integer number of milliseconds since the epoch, got ${describe(e.timestamp)}`,
      );
    }
    // Both given: the offset is exact, so it wins; the timestamp is kept only when it is the sole start.
    if (!hasOffset) out.timestamp = e.timestamp as number;
  }
  return out;
}

function checkDuplicates(requested: readonly Requested[], makeError: ErrorFactory): void {
  const seen = new Set<string>();
  for (const r of requested) {
    const key = r.kind === 'topic' ? r.topic : `${r.topic}\u0000${r.partition}`;
    if (seen.has(key)) {
      throw makeError(
        r.kind === 'topic'
          ? `topic ${r.topic} is requested twice`
          : `${r.topic} partition ${r.partition} is requested twice`,
      );
    }
    seen.add(key);
  }
}

/**
 * Parses the `assignments` argument. Throws InvalidAssignmentError naming the
 * offending entry. `maxEntries` bounds the work a hostile list can cause.
 */
export function parseAssignments(assignments: unknown, maxEntries: number): Requested[] {
  const make: ErrorFactory = (m) => new InvalidAssignmentError(m);
  let list: unknown[];
  if (typeof assignments === 'string') {
    list = assignments.split(',');
  } else if (Array.isArray(assignments)) {
    list = assignments;
  } else {
    throw make(
      `assignments must be a topic name, a comma-separated list of topics or an array, got ${describe(assignments)}`,
    );
  }
  if (list.length === 0) throw make('assignments must name at least one topic');
  if (list.length > maxEntries) throw make(`assignments has ${list.length} entries; at most ${maxEntries} are allowed`);
  const requested = list.map((entry, i) => parseEntry(entry, `assignments[${i}]`, make, true));
  checkDuplicates(requested, make);
  return requested;
}

/**
 * Parses a Last-Event-ID value: KafkaSSE's JSON array of
 * `{topic, partition, offset|timestamp}`, accepted byte for byte.
 */
export function parseLastEventId(value: string, maxEntries: number): Requested[] {
  const make: ErrorFactory = (m) => new InvalidLastEventIdError(m);
  if (value.length > MAX_LAST_EVENT_ID_LENGTH) {
    throw make(`Last-Event-ID is ${value.length} characters long; at most ${MAX_LAST_EVENT_ID_LENGTH} are accepted`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw make('Last-Event-ID is not valid JSON; expected an array of {topic, partition, offset|timestamp}');
  }
  if (!Array.isArray(parsed)) throw make('Last-Event-ID must be a JSON array of {topic, partition, offset|timestamp}');
  if (parsed.length === 0) throw make('Last-Event-ID must name at least one partition');
  if (parsed.length > maxEntries)
    throw make(`Last-Event-ID names ${parsed.length} partitions; at most ${maxEntries} are allowed`);
  const requested = parsed.map((entry, i) => {
    const r = parseEntry(entry, `Last-Event-ID[${i}]`, make, false);
    if (r.kind === 'partition' && r.offset === undefined && r.timestamp === undefined) {
      throw make(`Last-Event-ID[${i}] must have an offset or a timestamp`);
    }
    return r;
  });
  checkDuplicates(requested, make);
  return requested;
}

/**
 * Parses `atTimestamp`: epoch milliseconds as a number or a numeric string, or
 * a Date. `undefined`, `null` and `''` mean "not given".
 */
export function parseAtTimestamp(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\d{1,16}$/.test(value.trim())) ms = Number(value.trim());
  else {
    throw new InvalidTimestampError(
      `the start time must be milliseconds since the epoch (a number), got ${describe(value)}`,
    );
  }
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIMESTAMP_MS) {
    throw new InvalidTimestampError(
      `the start time must be a valid time in milliseconds since the epoch, got ${describe(value)}`,
    );
  }
  return ms;
}

/** How a partition's start was decided, for logs and ids. */
export type StartReason = 'offset' | 'timestamp' | 'end' | 'beginning' | 'history' | 'clamped-low' | 'clamped-high';

/** A partition resolved to a concrete start offset. */
export interface ResolvedPosition {
  topic: string;
  partition: number;
  /** The next offset to read: always ≥ 0, never a logical offset. */
  offset: number;
  reason: StartReason;
  /** The time the start was derived from, when it was a time (used for timestamp ids). */
  timestamp?: number;
}

/** Messages that can no longer be read because retention removed them. */
export interface LostRange {
  topic: string;
  partition: number;
  /** The offset the client asked for. */
  requestedOffset: number;
  /** Where reading starts instead (the partition's low watermark). */
  resumedOffset: number;
  /** How many messages were lost: resumedOffset − requestedOffset. */
  lost: number;
}

/** The Kafka lookups resolution needs. */
export interface PositionLookups {
  watermarks(topic: string, partition: number): Promise<{ low: number; high: number }>;
  offsetsForTimes(
    entries: { topic: string; partition: number; timestamp: number }[],
  ): Promise<{ topic: string; partition: number; offset: number }[]>;
}

/**
 * Expands requests to concrete partitions. `partitionCounts` must hold every
 * requested topic. `fromLastEventId` turns on the rule that partitions of a
 * resumed topic the id does not name (added since) start at the beginning.
 * Returns the expanded list in a stable order (request order, then partition).
 */
export function expandPartitions(
  requested: readonly Requested[],
  partitionCounts: ReadonlyMap<string, number>,
  atTimestamp: number | undefined,
  fromLastEventId: boolean,
  history?: number,
): ExpandedPartition[] {
  const explicit = new Map<string, Requested & { kind: 'partition' }>();
  for (const r of requested) if (r.kind === 'partition') explicit.set(`${r.topic}\u0000${r.partition}`, r);
  const out: ExpandedPartition[] = [];
  // Precedence: an explicit start, then atTimestamp, then history, then the end.
  const defaultStart = (topic: string, partition: number): ExpandedPartition => {
    if (atTimestamp !== undefined) return { topic, partition, timestamp: atTimestamp };
    if (history !== undefined && history > 0) return { topic, partition, history };
    return { topic, partition };
  };
  const done = new Set<string>();
  const push = (topic: string, partition: number) => {
    const key = `${topic}\u0000${partition}`;
    if (done.has(key)) return;
    done.add(key);
    const e = explicit.get(key);
    if (e) {
      if (e.offset !== undefined) out.push({ topic, partition, offset: e.offset });
      else if (e.timestamp !== undefined) out.push({ topic, partition, timestamp: e.timestamp });
      else out.push(defaultStart(topic, partition));
    } else if (fromLastEventId) {
      out.push({ topic, partition, beginning: true });
    } else {
      out.push(defaultStart(topic, partition));
    }
  };
  for (const r of requested) {
    const count = partitionCounts.get(r.topic) ?? 0;
    if (r.kind === 'topic') {
      for (let p = 0; p < count; p++) push(r.topic, p);
    } else {
      push(r.topic, r.partition);
      if (fromLastEventId && r.partition === 0) {
        // A resumed topic whose id names partitions 0..k-1 had k partitions when
        // the id was written; any partition past those was added since.
        const named = requested
          .filter((x) => x.kind === 'partition' && x.topic === r.topic)
          .map((x) => (x as { partition: number }).partition);
        const contiguous = named.every((p) => p < named.length);
        if (contiguous) for (let p = named.length; p < count; p++) push(r.topic, p);
      }
    }
  }
  return out;
}

/** Clamps a requested offset into the retained range [low, high]. Pure. */
export function clampOffset(
  requested: number,
  low: number,
  high: number,
): { offset: number; reason: 'offset' | 'end' | 'clamped-low' | 'clamped-high' } {
  if (requested === -1) return { offset: high, reason: 'end' };
  if (requested < low) return { offset: low, reason: 'clamped-low' };
  if (requested > high) return { offset: high, reason: 'clamped-high' };
  return { offset: requested, reason: 'offset' };
}

/**
 * Resolves expanded partitions to concrete offsets using the lookups, so the
 * consumer never starts at a logical offset and ids never carry -1.
 */
export async function resolvePositions(
  expanded: readonly ExpandedPartition[],
  lookups: PositionLookups,
): Promise<{ positions: ResolvedPosition[]; lost: LostRange[] }> {
  const marks = await Promise.all(expanded.map((e) => lookups.watermarks(e.topic, e.partition)));
  const byTime = expanded.filter((e) => e.offset === undefined && e.timestamp !== undefined);
  const timeAnswers = await lookups.offsetsForTimes(
    byTime.map((e) => ({ topic: e.topic, partition: e.partition, timestamp: e.timestamp as number })),
  );
  const timeOffsets = new Map(timeAnswers.map((a) => [`${a.topic}\u0000${a.partition}`, a.offset]));
  const positions: ResolvedPosition[] = [];
  const lost: LostRange[] = [];
  expanded.forEach((e, i) => {
    const { low, high } = marks[i] as { low: number; high: number };
    const base = { topic: e.topic, partition: e.partition };
    if (e.offset !== undefined) {
      const c = clampOffset(e.offset, low, high);
      positions.push({ ...base, offset: c.offset, reason: c.reason });
      if (c.reason === 'clamped-low') {
        lost.push({ ...base, requestedOffset: e.offset, resumedOffset: low, lost: low - e.offset });
      }
    } else if (e.timestamp !== undefined) {
      const found = timeOffsets.get(`${e.topic}\u0000${e.partition}`) ?? -1;
      // -1: no message at or after that time yet, so the start is the end.
      const offset = found < 0 ? high : Math.min(Math.max(found, low), high);
      positions.push({ ...base, offset, reason: found < 0 ? 'end' : 'timestamp', timestamp: e.timestamp });
    } else if (e.beginning) {
      positions.push({ ...base, offset: low, reason: 'beginning' });
    } else if (e.history !== undefined) {
      positions.push({ ...base, offset: Math.max(low, high - e.history), reason: 'history' });
    } else {
      positions.push({ ...base, offset: high, reason: 'end' });
    }
  });
  return { positions, lost };
}
