// The shared tail's log: the last messages its consumer read, which its
// streams consume at their own pace, bounded in messages and bytes.

import { newPrepared, type Prepared, type SharedMessage } from './pipeline.ts';
import type { Deserializer, KafkaMessage } from './types.ts';

/** Whether an array whose live part starts at `first` is worth copying down: more dropped than kept, past a minimum. */
const worthCompacting = (first: number, length: number) => first > 1024 && first * 2 > length;

/** Rough per-message bookkeeping cost counted against the byte bound besides value and key. */
const ENTRY_OVERHEAD_BYTES = 256;

/** A message in the log, with what each deserializer made of it. */
export class LogEntry implements SharedMessage {
  readonly seq: number;
  readonly message: KafkaMessage;
  /** The message's partition as an index into the log's partitions (and its readers' positions, in the same order). */
  readonly partitionIndex: number;
  readonly id: string;
  bytes: number;
  /**
   * What the streams of the first deserializer to ask share, and of any
   * other, by deserializer: a Map per entry would be most of what a busy log
   * holds on the heap besides the message, for the one deserializer most
   * servers use.
   */
  #deserializer: Deserializer | undefined = undefined;
  #prepared: Prepared | undefined = undefined;
  #others: Map<Deserializer, Prepared> | undefined = undefined;
  readonly #log: TailLog;

  constructor(log: TailLog, seq: number, message: KafkaMessage, partitionIndex: number, id: string) {
    this.#log = log;
    this.seq = seq;
    this.message = message;
    this.partitionIndex = partitionIndex;
    this.id = id;
    this.bytes = ENTRY_OVERHEAD_BYTES + (message.value?.length ?? 0) + (message.key?.length ?? 0);
  }

  preparedFor(deserializer: Deserializer): Prepared {
    if (this.#prepared === undefined) {
      this.#deserializer = deserializer;
      this.#prepared = newPrepared();
      return this.#prepared;
    }
    if (this.#deserializer === deserializer) return this.#prepared;
    this.#others ??= new Map();
    let prepared = this.#others.get(deserializer);
    if (prepared === undefined) {
      prepared = newPrepared();
      this.#others.set(deserializer, prepared);
    }
    return prepared;
  }

  grow(chars: number): void {
    this.bytes += chars;
    this.#log.grew(chars);
  }
}

/**
 * A ring of entries numbered by `seq`, with, per partition, the first offset
 * it still holds (or will: a partition that has not delivered yet).
 */
export class TailLog {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  #entries: (LogEntry | undefined)[] = [];
  /** Index in #entries of the oldest retained entry; the array is compacted now and then. */
  #first = 0;
  #nextSeq = 0;
  #bytes = 0;
  /** Per partition index: the first offset the log holds, or could still get. */
  readonly #retainedFrom: number[] = [];
  /**
   * Per partition index: the seqs of its entries, oldest first, from
   * #seqFirst on (compacted now and then), so that a resume finds where its
   * messages begin without reading the log up to there (see firstFrom).
   */
  #seqs: number[][] = [];
  readonly #seqFirst: number[] = [];

  constructor(maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
  }

  /** Starts tracking a partition whose next message is at `offset` (in partition-index order). */
  addPartition(offset: number): void {
    this.#retainedFrom.push(offset);
    this.#seqs.push([]);
    this.#seqFirst.push(0);
  }

  /** The seq of the next message to arrive; a reader whose cursor is here has read everything. */
  get headSeq(): number {
    return this.#nextSeq;
  }

  /** The seq of the oldest message still in the log. */
  get oldestSeq(): number {
    return this.#nextSeq - (this.#entries.length - this.#first);
  }

  /** Messages held now. */
  get size(): number {
    return this.#entries.length - this.#first;
  }

  /** Bytes counted now (values, keys, caches and overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The first offset of partition `index` the log still holds (or could). */
  retainedFrom(index: number): number {
    return this.#retainedFrom[index] as number;
  }

  /** The entry with this seq; it must be between oldestSeq and headSeq. */
  at(seq: number): LogEntry {
    return this.#entries[this.#first + (seq - this.oldestSeq)] as LogEntry;
  }

  /**
   * The seq of partition `index`'s first entry at `offset` or later (the
   * head's seq when it has none): a binary search over that partition's
   * entries, whose offsets rise with their seqs.
   */
  firstFrom(index: number, offset: number): number {
    const seqs = this.#seqs[index];
    if (seqs === undefined) return this.#nextSeq;
    let lo = this.#seqFirst[index] as number;
    let hi = seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(seqs[mid] as number).message.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo < seqs.length ? (seqs[lo] as number) : this.#nextSeq;
  }

  append(message: KafkaMessage, partitionIndex: number, id: string): LogEntry {
    const entry = new LogEntry(this, this.#nextSeq++, message, partitionIndex, id);
    this.#entries.push(entry);
    this.#seqs[partitionIndex]?.push(entry.seq);
    this.#bytes += entry.bytes;
    return entry;
  }

  /** @internal Counts what an entry's caches added. */
  grew(chars: number): void {
    this.#bytes += chars;
  }

  /**
   * Drops the oldest messages beyond the bounds. Called after every reader was
   * offered the new messages, so only messages every reader was offered go; a
   * reader blocked by a slow client that still needed one notices when it
   * drains (its cursor is below oldestSeq) and moves to a consumer of its own.
   */
  trim(): void {
    const entries = this.#entries;
    while (
      entries.length - this.#first > 0 &&
      (entries.length - this.#first > this.#maxMessages || this.#bytes > this.#maxBytes)
    ) {
      const e = entries[this.#first] as LogEntry;
      entries[this.#first] = undefined;
      this.#first++;
      this.#bytes -= e.bytes;
      this.#retainedFrom[e.partitionIndex] = e.message.offset + 1;
      this.#dropSeq(e.partitionIndex);
    }
    if (worthCompacting(this.#first, entries.length)) {
      this.#entries = entries.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Forgets the oldest seq of partition `index` (its entry was trimmed). */
  #dropSeq(index: number): void {
    const seqs = this.#seqs[index];
    if (seqs === undefined) return;
    const first = (this.#seqFirst[index] as number) + 1;
    if (worthCompacting(first, seqs.length)) {
      this.#seqs[index] = seqs.slice(first);
      this.#seqFirst[index] = 0;
    } else this.#seqFirst[index] = first;
  }

  /** Forgets every entry. */
  clear(): void {
    this.#entries = [];
    this.#first = 0;
    this.#bytes = 0;
    this.#seqs = this.#seqs.map(() => []);
    this.#seqFirst.fill(0);
  }
}
