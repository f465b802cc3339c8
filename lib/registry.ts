// A registry of open streams: readable in-process, emitting events that
// metrics exporters (see metrics.ts) and admin endpoints build on.
import { EventEmitter } from 'node:events';
import { setBrand } from './brand.ts';
import type { ErrorCode } from './errors.ts';
import type { StreamMode } from './types.ts';

/** Where a stream stands on one partition. */
export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Next offset the stream will read. */
  nextOffset: number;
  /** Messages between the stream's position and the partition's end, or null while unknown. */
  lag: number | null;
}

/** A point-in-time view of one open stream. */
export interface StreamSnapshot {
  /** Unique id of the stream within this registry (the request id, or a generated one). */
  id: string;
  /** The client's address as the socket sees it (no proxy headers are trusted here). */
  client: string;
  topics: string[];
  mode: StreamMode;
  startedAt: number;
  /** Milliseconds from the request to the stream's first byte. */
  setupMs: number;
  messagesSent: number;
  bytesSent: number;
  /** Messages read but not sent (filtered out or undeserializable). */
  messagesSkipped: number;
  partitions: PartitionProgress[];
}

/** Why a stream ended. */
export type EndReason =
  | 'client-closed'
  | 'aborted'
  | 'error'
  | 'setup-failed'
  | 'max-duration'
  | 'disconnected'
  /** The client accepted nothing for `stalledWriteTimeoutMs`. */
  | 'stalled';

/** What a session hands the registry: live getters and a way to end it. */
export interface StreamHandle {
  readonly id: string;
  snapshot(): StreamSnapshot;
  /** Ends the stream (the client is free to reconnect). */
  disconnect(): void;
}

export interface StreamRegistryEvents {
  open: [snapshot: StreamSnapshot];
  close: [snapshot: StreamSnapshot, reason: EndReason];
  /** A request answered with an error, before or after its stream started. */
  failure: [code: ErrorCode, status: number];
  /**
   * Messages and bytes written to one stream since the last such event (emitted
   * once per write batch). For a stream of several topics, `messagesByTopic`
   * splits `messages` by topic (it is only valid during the event); for one
   * topic it is undefined and every message is of `topics[0]`.
   */
  sent: [
    snapshot: { id: string; topics: string[] },
    messages: number,
    bytes: number,
    messagesByTopic: ReadonlyMap<string, number> | undefined,
  ];
}

/**
 * Open streams of this process. Pass one instance as `options.registry` to
 * every kafkaSse() call that should be counted.
 */
export class StreamRegistry extends EventEmitter<StreamRegistryEvents> {
  readonly #streams = new Map<string, StreamHandle>();

  /** Number of open streams. */
  get size(): number {
    return this.#streams.size;
  }

  /** Snapshots of every open stream, oldest first. */
  list(): StreamSnapshot[] {
    return [...this.#streams.values()].map((h) => h.snapshot());
  }

  /** A snapshot of one stream, or undefined. */
  get(id: string): StreamSnapshot | undefined {
    return this.#streams.get(id)?.snapshot();
  }

  /** Ends one stream. Returns false when no such stream is open. */
  disconnect(id: string): boolean {
    const h = this.#streams.get(id);
    if (!h) return false;
    h.disconnect();
    return true;
  }

  /** Ends every open stream. */
  disconnectAll(): void {
    for (const h of [...this.#streams.values()]) h.disconnect();
  }

  /** @internal `id` if no open stream has it, else `id` with a suffix that makes it unique. */
  uniqueId(id: string): string {
    if (!this.#streams.has(id)) return id;
    for (let n = 2; ; n++) if (!this.#streams.has(`${id}~${n}`)) return `${id}~${n}`;
  }

  /** @internal called by kafkaSse when a stream starts. */
  register(handle: StreamHandle): void {
    this.#streams.set(handle.id, handle);
    this.emit('open', handle.snapshot());
  }

  /** @internal called by kafkaSse when a stream ends. */
  unregister(handle: StreamHandle, reason: EndReason): void {
    if (this.#streams.get(handle.id) !== handle) return;
    this.#streams.delete(handle.id);
    this.emit('close', handle.snapshot(), reason);
  }

  /** @internal */
  reportError(code: ErrorCode, status: number): void {
    this.emit('failure', code, status);
  }
}
setBrand(StreamRegistry, 'StreamRegistry');
