// The resume id of one stream: the next position of every partition it reads,
// rendered incrementally so that an id costs one string join per event.
import { writeInt } from './byte-batch.ts';
import type { PartitionAssignment, ResolvedPosition } from './positions.ts';

const TIMESTAMP_FIELD = '"timestamp":';
const OFFSET_FIELD = '"offset":';
const TIMESTAMP_FIELD_BYTES = Buffer.from(TIMESTAMP_FIELD);
const OFFSET_FIELD_BYTES = Buffer.from(OFFSET_FIELD);

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** A partition's id entry up to its position field: `{"topic":…,"partition":N,`. */
function prefixOf(p: ResolvedPosition): string {
  return `{"topic":${JSON.stringify(p.topic)},"partition":${p.partition},`;
}

/**
 * Tracks the next position of every assigned partition and renders the
 * resume id. Rendering is incremental: each partition's JSON prefix is built
 * once, so an id costs one string join per event.
 */
export class PositionTracker {
  readonly #prefixes: string[];
  readonly #values: number[];
  readonly #fields: string[];
  readonly #offsets: number[];
  readonly #keys: { topic: string; partition: number }[];
  // Partition → index, for advance(); made on its first call (a shared tail's readers never make one).
  #index: Map<string, number> | undefined;
  readonly #useTimestamps: boolean;
  #dirty = true;
  #cached = '';
  /** The prefixes as UTF-8, for writeId(); made on its first call (a shared tail's readers never make them). */
  #prefixBytes: Buffer[] | undefined;

  constructor(positions: readonly ResolvedPosition[], useTimestamps: boolean) {
    this.#useTimestamps = useTimestamps;
    // Arrays of the exact length: pushing onto an empty array reserves 17
    // slots, and five such arrays were ~640 bytes of an idle stream's ~5 KB.
    this.#keys = positions.map((p) => ({ topic: p.topic, partition: p.partition }));
    this.#offsets = positions.map((p) => p.offset);
    this.#prefixes = positions.map(prefixOf);
    this.#fields = positions.map((p) => (this.#byTime(p) ? TIMESTAMP_FIELD : OFFSET_FIELD));
    this.#values = positions.map((p) => (this.#byTime(p) ? (p.timestamp as number) : p.offset));
  }

  /**
   * With timestamp ids, a partition that started from a time keeps that time
   * until it delivers; one that started from an offset keeps its exact offset
   * (a start time could skip its backlog). KafkaSSE accepts both.
   */
  #byTime(p: ResolvedPosition): boolean {
    return this.#useTimestamps && p.timestamp !== undefined;
  }

  /**
   * Tracks one more partition, after the others (its index is the count so
   * far): a partition added to a topic while it is read.
   */
  addPartition(p: ResolvedPosition): void {
    this.#index?.set(keyOf(p.topic, p.partition), this.#keys.length);
    this.#keys.push({ topic: p.topic, partition: p.partition });
    this.#offsets.push(p.offset);
    this.#prefixes.push(prefixOf(p));
    this.#fields.push(this.#byTime(p) ? TIMESTAMP_FIELD : OFFSET_FIELD);
    this.#values.push(this.#byTime(p) ? (p.timestamp as number) : p.offset);
    this.#prefixBytes?.push(Buffer.from(prefixOf(p)));
    this.#dirty = true;
  }

  /**
   * Records that the message at `offset` (with its `timestamp`) was consumed,
   * delivered or not. Returns false, recording nothing, for a partition that
   * is not assigned or a message before the current position (a duplicate).
   */
  advance(topic: string, partition: number, offset: number, timestamp: number | undefined): boolean {
    this.#index ??= new Map(this.#keys.map((k, i) => [keyOf(k.topic, k.partition), i]));
    const i = this.#index.get(keyOf(topic, partition));
    return i !== undefined && this.advanceAt(i, offset, timestamp);
  }

  /**
   * `advance()` for the partition at index `i` of the positions given to the
   * constructor, without looking it up (a shared tail's readers share its
   * partition order, so they skip building a key per message each).
   */
  advanceAt(i: number, offset: number, timestamp: number | undefined): boolean {
    // Offsets only move forward: a message before the position was already
    // processed (a rewind can fetch it again) and must not be sent twice.
    if (offset < (this.#offsets[i] as number)) return false;
    this.#offsets[i] = offset + 1;
    const isTime = this.#fields[i] === TIMESTAMP_FIELD;
    if (this.#useTimestamps && timestamp !== undefined && timestamp >= 0) {
      // +1 ms: resuming at this message's time would deliver it again.
      this.#fields[i] = TIMESTAMP_FIELD;
      this.#values[i] = isTime ? Math.max(this.#values[i] as number, timestamp + 1) : timestamp + 1;
    } else if (!isTime) {
      // Offsets, or a timestamp id whose partition has not yet delivered a timed message.
      this.#values[i] = offset + 1;
    }
    this.#dirty = true;
    return true;
  }

  /** The id to send: a JSON array of the next position of every assigned partition. */
  id(): string {
    if (this.#dirty) {
      let s = '[';
      for (let i = 0; i < this.#prefixes.length; i++) {
        if (i > 0) s += ',';
        s += this.#prefixes[i];
        s += this.#fields[i];
        s += this.#values[i];
        s += '}';
      }
      this.#cached = `${s}]`;
      this.#dirty = false;
    }
    return this.#cached;
  }

  /** At most how many bytes writeId() writes. */
  idBytesBound(): number {
    // Per partition: the prefix (3 bytes per UTF-16 unit at most), the field, a number, `}` and `,`.
    let n = 2;
    for (const prefix of this.#prefixes) n += 3 * prefix.length + 12 + 24 + 2;
    return n;
  }

  /**
   * Writes the id (the bytes of id() as UTF-8) into `buf` at `at`, which has
   * room for idBytesBound() bytes; returns the index after it. No string is
   * made: the prefixes are kept as bytes and the numbers written as digits.
   */
  writeId(buf: Buffer, at: number): number {
    let prefixes = this.#prefixBytes;
    if (prefixes === undefined) {
      prefixes = this.#prefixes.map((prefix) => Buffer.from(prefix));
      this.#prefixBytes = prefixes;
    }
    buf[at++] = 91; // [
    for (let i = 0; i < prefixes.length; i++) {
      if (i > 0) buf[at++] = 44; // ,
      const prefix = prefixes[i] as Buffer;
      buf.set(prefix, at);
      at += prefix.length;
      const field = this.#fields[i] === TIMESTAMP_FIELD ? TIMESTAMP_FIELD_BYTES : OFFSET_FIELD_BYTES;
      buf.set(field, at);
      at = writeInt(buf, at + field.length, this.#values[i] as number);
      buf[at++] = 125; // }
    }
    buf[at++] = 93; // ]
    return at;
  }

  /** The next offset of every assigned partition (whatever the id encodes). */
  nextOffsets(): { topic: string; partition: number; nextOffset: number }[] {
    return this.#keys.map((k, i) => ({ ...k, nextOffset: this.#offsets[i] as number }));
  }

  /** The positions as objects (what the id encodes). */
  snapshot(): PartitionAssignment[] {
    return JSON.parse(this.id()) as PartitionAssignment[];
  }
}
