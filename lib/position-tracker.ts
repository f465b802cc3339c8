// The resume id of one stream: the next position of every partition it reads,
// rendered incrementally so that an id costs one string join per event.
import { digitCount, writeInt } from './byte-batch.ts';
import type { PartitionAssignment, ResolvedPosition } from './positions.ts';

const TIMESTAMP_FIELD = '"timestamp":';
const OFFSET_FIELD = '"offset":';
const TIMESTAMP_FIELD_BYTES = Buffer.from(TIMESTAMP_FIELD);
const OFFSET_FIELD_BYTES = Buffer.from(OFFSET_FIELD);

type Latin1Slice = (this: Buffer, start: number, end: number) => string;

/** Buffer's own latin1Slice where it has one (toString's argument handling costs more than a short id's decoding). */
const latin1Slice: Latin1Slice =
  (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice ??
  function (this: Buffer, start: number, end: number): string {
    return this.toString('latin1', start, end);
  };

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** A partition's id entry up to its position field: `{"topic":…,"partition":N,`. */
function prefixOf(p: ResolvedPosition): string {
  return `{"topic":${JSON.stringify(p.topic)},"partition":${p.partition},`;
}

/** One partition's position and the parts of its id entry. */
interface Slot {
  readonly topic: string;
  readonly partition: number;
  /** `{"topic":…,"partition":N,` */
  readonly prefix: string;
  /** The prefix as UTF-8, for writeId(); made on its first call (a shared tail's readers never make them). */
  prefixBytes: Buffer | undefined;
  /** TIMESTAMP_FIELD or OFFSET_FIELD. */
  field: string;
  /** The number the id gives: the next offset, or the next timestamp. */
  value: number;
  /** The next offset, whatever the id gives. */
  offset: number;
  /** Where the number starts and ends in #idBytes as writeId() last wrote it. */
  numberAt: number;
  numberEnd: number;
}

/**
 * Tracks the next position of every assigned partition and renders the
 * resume id. Rendering is incremental: each partition's JSON prefix is built
 * once, so an id costs one string join per event.
 */
export class PositionTracker {
  /**
   * One record per partition, in one array of the exact length: an idle
   * stream reads one partition, and seven arrays of one element each were
   * ~0.4 KB of its heap (bench/idle-heap.mjs).
   */
  readonly #slots: Slot[];
  // Partition → index, for advance(); made on its first call (a shared tail's readers never make one).
  #index: Map<string, number> | undefined;
  readonly #useTimestamps: boolean;
  #dirty = true;
  #cached = '';
  /** Every prefix is ASCII, so the id's bytes decode as latin1 (faster than UTF-8). */
  #ascii: boolean;
  /** The id as UTF-8, as writeId() last wrote it. */
  #idBytes: Buffer | undefined;
  /** The one partition whose number changed since #idBytes was written; -1: none; -2: several, or a field changed. */
  #changed = -2;

  constructor(positions: readonly ResolvedPosition[], useTimestamps: boolean) {
    this.#useTimestamps = useTimestamps;
    this.#slots = positions.map((p) => this.#slotOf(p));
    this.#ascii = this.#slots.every((slot) => isAscii(slot.prefix));
  }

  #slotOf(p: ResolvedPosition): Slot {
    const byTime = this.#byTime(p);
    return {
      topic: p.topic,
      partition: p.partition,
      prefix: prefixOf(p),
      prefixBytes: undefined,
      field: byTime ? TIMESTAMP_FIELD : OFFSET_FIELD,
      value: byTime ? (p.timestamp as number) : p.offset,
      offset: p.offset,
      numberAt: 0,
      numberEnd: 0,
    };
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
    this.#index?.set(keyOf(p.topic, p.partition), this.#slots.length);
    const slot = this.#slotOf(p);
    this.#slots.push(slot);
    this.#ascii &&= isAscii(slot.prefix);
    this.#dirty = true;
    this.#changed = -2;
  }

  /**
   * Records that the message at `offset` (with its `timestamp`) was consumed,
   * delivered or not. Returns false, recording nothing, for a partition that
   * is not assigned or a message before the current position (a duplicate).
   */
  advance(topic: string, partition: number, offset: number, timestamp: number | undefined): boolean {
    this.#index ??= new Map(this.#slots.map((slot, i) => [keyOf(slot.topic, slot.partition), i]));
    const i = this.#index.get(keyOf(topic, partition));
    return i !== undefined && this.advanceAt(i, offset, timestamp);
  }

  /**
   * `advance()` for the partition at index `i` of the positions given to the
   * constructor, without looking it up (a shared tail's readers share its
   * partition order, so they skip building a key per message each).
   */
  advanceAt(i: number, offset: number, timestamp: number | undefined): boolean {
    const slot = this.#slots[i] as Slot;
    // Offsets only move forward: a message before the position was already
    // processed (a rewind can fetch it again) and must not be sent twice.
    if (offset < slot.offset) return false;
    slot.offset = offset + 1;
    const isTime = slot.field === TIMESTAMP_FIELD;
    if (this.#useTimestamps && timestamp !== undefined && timestamp >= 0) {
      // +1 ms: resuming at this message's time would deliver it again.
      slot.field = TIMESTAMP_FIELD;
      slot.value = isTime ? Math.max(slot.value, timestamp + 1) : timestamp + 1;
      if (!isTime) this.#changed = -2;
    } else if (!isTime) {
      // Offsets, or a timestamp id whose partition has not yet delivered a timed message.
      slot.value = offset + 1;
    }
    this.#dirty = true;
    if (this.#changed === -1) this.#changed = i;
    else if (this.#changed !== i) this.#changed = -2;
    return true;
  }

  /**
   * The id to send: a JSON array of the next position of every assigned
   * partition. One flat string, decoded from the id's bytes (see writeId): a
   * concatenation would be a tree of six or more strings, and a shared tail
   * keeps an id per message of its log.
   */
  id(): string {
    if (this.#dirty) {
      const bytes = this.#currentIdBytes();
      this.#cached = this.#ascii ? latin1Slice.call(bytes, 0, bytes.length) : bytes.toString('utf8');
      this.#dirty = false;
    }
    return this.#cached;
  }

  /** At most how many bytes writeId() writes. */
  idBytesBound(): number {
    // Per partition: the prefix (3 bytes per UTF-16 unit at most), the field, a number, `}` and `,`.
    let n = 2;
    for (const slot of this.#slots) n += 3 * slot.prefix.length + 12 + 24 + 2;
    return n;
  }

  /**
   * Writes the id (the bytes of id() as UTF-8) into `buf` at `at`, which has
   * room for idBytesBound() bytes; returns the index after it. No string is
   * made: the id's bytes are kept from the last call, and a message moves one
   * partition's number, so usually only that number's digits are written
   * again (in place, when it keeps its width) before one copy.
   */
  writeId(buf: Buffer, at: number): number {
    const id = this.#currentIdBytes();
    buf.set(id, at);
    return at + id.length;
  }

  /** #idBytes, brought up to date. */
  #currentIdBytes(): Buffer {
    let id = this.#idBytes;
    const changed = this.#changed;
    if (id === undefined || changed === -2) id = this.#writeIdBytes();
    else if (changed >= 0) {
      const slot = this.#slots[changed] as Slot;
      const v = slot.value;
      if (v >= 0 && Number.isSafeInteger(v) && digitCount(v) === slot.numberEnd - slot.numberAt) {
        writeInt(id, slot.numberAt, v);
      } else id = this.#writeIdBytes();
    }
    this.#changed = -1;
    return id;
  }

  /** Writes #idBytes anew (its exact size), with where each number starts and ends. */
  #writeIdBytes(): Buffer {
    const slots = this.#slots;
    const scratch = Buffer.allocUnsafe(this.idBytesBound());
    let at = 0;
    scratch[at++] = 91; // [
    for (let i = 0; i < slots.length; i++) {
      if (i > 0) scratch[at++] = 44; // ,
      const slot = slots[i] as Slot;
      slot.prefixBytes ??= Buffer.from(slot.prefix);
      scratch.set(slot.prefixBytes, at);
      at += slot.prefixBytes.length;
      const field = slot.field === TIMESTAMP_FIELD ? TIMESTAMP_FIELD_BYTES : OFFSET_FIELD_BYTES;
      scratch.set(field, at);
      slot.numberAt = at + field.length;
      at = writeInt(scratch, at + field.length, slot.value);
      slot.numberEnd = at;
      scratch[at++] = 125; // }
    }
    scratch[at++] = 93; // ]
    const id = Buffer.from(scratch.subarray(0, at));
    this.#idBytes = id;
    return id;
  }

  /** The next offset of every assigned partition (whatever the id encodes). */
  nextOffsets(): { topic: string; partition: number; nextOffset: number }[] {
    return this.#slots.map((slot) => ({ topic: slot.topic, partition: slot.partition, nextOffset: slot.offset }));
  }

  /** The positions as objects (what the id encodes). */
  snapshot(): PartitionAssignment[] {
    return JSON.parse(this.id()) as PartitionAssignment[];
  }
}
