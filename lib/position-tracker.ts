// The resume id of one stream: the next position of every partition it reads,
// rendered incrementally so that an id costs one string join per event.
import type { PartitionAssignment, ResolvedPosition } from './positions.ts';

/**
 * Tracks the next position of every assigned partition and renders the
 * resume id. Rendering is incremental: each partition's JSON prefix is built
 * once, so an id costs one string join per event.
 */
export class PositionTracker {
  readonly #prefixes: string[];
  readonly #values: number[];
  readonly #fields: string[] = [];
  readonly #offsets: number[];
  readonly #keys: { topic: string; partition: number }[];
  readonly #index = new Map<string, number>();
  readonly #useTimestamps: boolean;
  #dirty = true;
  #cached = '';

  constructor(positions: readonly ResolvedPosition[], useTimestamps: boolean) {
    this.#useTimestamps = useTimestamps;
    this.#prefixes = [];
    this.#values = [];
    this.#offsets = [];
    this.#keys = [];
    for (const p of positions) this.addPartition(p);
  }

  /**
   * Tracks one more partition, after the others (its index is the count so
   * far): a partition added to a topic while it is read.
   */
  addPartition(p: ResolvedPosition): void {
    this.#index.set(`${p.topic}\u0000${p.partition}`, this.#keys.length);
    this.#keys.push({ topic: p.topic, partition: p.partition });
    this.#offsets.push(p.offset);
    this.#prefixes.push(`{"topic":${JSON.stringify(p.topic)},"partition":${p.partition},`);
    // With timestamp ids, a partition that started from a time keeps that
    // time until it delivers; one that started from an offset keeps its exact
    // offset (a start time could skip its backlog). KafkaSSE accepts both.
    const byTime = this.#useTimestamps && p.timestamp !== undefined;
    this.#fields.push(byTime ? '"timestamp":' : '"offset":');
    this.#values.push(byTime ? (p.timestamp as number) : p.offset);
    this.#dirty = true;
  }

  /**
   * Records that the message at `offset` (with its `timestamp`) was consumed,
   * delivered or not. Returns false, recording nothing, for a partition that
   * is not assigned or a message before the current position (a duplicate).
   */
  advance(topic: string, partition: number, offset: number, timestamp: number | undefined): boolean {
    const i = this.#index.get(`${topic}\u0000${partition}`);
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
    const isTime = this.#fields[i] === '"timestamp":';
    if (this.#useTimestamps && timestamp !== undefined && timestamp >= 0) {
      // +1 ms: resuming at this message's time would deliver it again.
      this.#fields[i] = '"timestamp":';
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

  /** The next offset of every assigned partition (whatever the id encodes). */
  nextOffsets(): { topic: string; partition: number; nextOffset: number }[] {
    return this.#keys.map((k, i) => ({ ...k, nextOffset: this.#offsets[i] as number }));
  }

  /** The positions as objects (what the id encodes). */
  snapshot(): PartitionAssignment[] {
    return JSON.parse(this.id()) as PartitionAssignment[];
  }
}
