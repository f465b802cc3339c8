// A source that reads the shared tail's log from a cursor, at the client's
// pace. The log keeps what a blocked client has not taken, so pausing costs
// nothing; a client slower than the log is handed to a consumer of its own.
import type { Watermarks } from './consumer.ts';
import { KafkaConsumeError, KafkaSseError } from './errors.ts';
import type { LiveTail, TailReader } from './live-tail.ts';
import type { PositionTracker } from './position-tracker.ts';
import type { ResolvedPosition } from './positions.ts';
import type { SharedTail } from './shared-tail.ts';
import type { SourceSink, StreamSource } from './source.ts';

/** One stream's reader of a live tail. */
export class TailSource implements StreamSource, TailReader {
  readonly #owner: SharedTail;
  readonly #tail: LiveTail;
  /** Seq of the next log entry to read. */
  #cursor: number;
  /** True while the stream's positions equal the tail's, so the log's ready-made frames carry the right id. */
  #inStep: boolean;
  readonly #offsetIds: boolean;
  #sink: SourceSink | undefined;
  #positions: PositionTracker | undefined;
  #blocked = false;
  #closed = false;

  /**
   * `cursor`: the first entry to read (the head for a live stream, the first
   * entry a resume needs: LiveTail.resumeSeq). `inStep`:
   * the stream starts at the tail's own positions. `offsetIds`: the stream's
   * ids are offsets (timestamp ids never match the tail's).
   */
  constructor(owner: SharedTail, tail: LiveTail, cursor: number, inStep: boolean, offsetIds: boolean) {
    this.#owner = owner;
    this.#tail = tail;
    this.#cursor = cursor;
    this.#inStep = inStep && offsetIds;
    this.#offsetIds = offsetIds;
  }

  start(sink: SourceSink, positions: PositionTracker): void {
    this.#sink = sink;
    this.#positions = positions;
    // Partitions the tail added between the stream's positions being taken and now.
    const parts = this.#tail.partitions;
    const have = positions.nextOffsets().length;
    for (let i = have; i < parts.length; i++) {
      const p = parts[i] as { topic: string; partition: number };
      positions.addPartition({ ...p, offset: this.#tail.partitionStart(i), reason: 'beginning' });
      this.#inStep = false;
    }
    this.#tail.attach(this);
    // Positions equal to the log's just before the cursor (a client that was
    // in step when it left) are in step from there on: the log's ready-made
    // frames carry the right ids.
    const before = this.#cursor - 1;
    if (!this.#inStep && this.#offsetIds && before >= this.#tail.oldestSeq) {
      this.#inStep = positions.id() === this.#tail.entryAt(before).id;
    }
    // A resume reads its backlog from the log now; a live stream waits for the next message.
    if (this.#cursor < this.#tail.headSeq) this.pump();
  }

  /** Reads the log from the cursor until the client's buffer is full or the head is reached, then writes the batch. */
  pump(): void {
    const sink = this.#sink;
    const positions = this.#positions;
    if (!sink || !positions || this.#closed || this.#blocked) return;
    const tail = this.#tail;
    if (this.#cursor < tail.oldestSeq) {
      // The log dropped messages this stream still needs: a slow client.
      sink.handOff('the client fell behind the shared tail');
      return;
    }
    const head = tail.headSeq;
    while (this.#cursor < head && !this.#blocked && !this.#closed) {
      const entry = tail.entryAt(this.#cursor++);
      sink.deliver(entry.message, entry.partitionIndex, entry, this.#inStep);
    }
    if (this.#closed) return;
    if (!this.#inStep && this.#cursor === head && this.#offsetIds) this.#inStep = positions.id() === tail.headId();
    sink.flush();
  }

  partitionsAdded(added: readonly ResolvedPosition[]): void {
    for (const p of added) this.#positions?.addPartition(p);
    // Entries before the addition carry ids without these partitions: in step again at the head.
    this.#inStep = false;
  }

  fail(err: Error): void {
    this.#sink?.fail(
      err instanceof KafkaSseError ? err : new KafkaConsumeError('Reading from Kafka failed', { cause: err }),
    );
  }

  pause(): void {
    this.#blocked = true;
  }

  resume(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    // The log kept everything the client did not take: read on from the cursor.
    this.pump();
  }

  cachedWatermarks(topic: string, partition: number): Watermarks | undefined {
    return this.#tail.cachedWatermarks(topic, partition);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return this.#owner.release(this.#tail, this);
  }
}
