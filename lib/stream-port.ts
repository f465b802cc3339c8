// What a stream host (main thread, stream-host.ts) and an HTTP thread
// (stream-thread.ts) say to each other over their MessagePort.
//
// The thread sends, one message each: `open` (a request to stream, with the
// stream's shared counter of bytes its socket took), `gone` (its client left),
// `finished` (its response finished after the host ended it), and after a
// batch or a drain `acks` (which counters moved: the host looks at them for
// 'drain'). The host sends, once per turn of its event loop and whenever a
// quarter of a mebibyte is pending, one `batch`: the heads, then the writes,
// ends and destroys in the order they were made, the bytes of every write in
// one transferred buffer (a frame written to many streams in that batch is in
// it once), and the streams whose kafkaSse() settled.
//
// The counters are what make backpressure work across threads: a replay's
// turn on the main thread writes megabytes, and acknowledgements sent as
// messages would reach it only after that turn, so it would count all of them
// as buffered and pause Kafka; a counter in shared memory is read as the
// socket takes the bytes.
import type { IncomingHttpHeaders } from 'node:http';
import type { Assignments } from './positions.ts';

export interface OpenMessage {
  t: 'open';
  id: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
  assignments: Assignments;
  atTimestamp: number | string | Date | null | undefined;
  /**
   * One Int32 on a SharedArrayBuffer: bytes of this stream the thread's socket
   * has taken, modulo 2^32 (Atomics.add wraps), so the host's count of bytes
   * sent minus it is what is still buffered or in flight.
   */
  taken: Int32Array;
}

export interface GoneMessage {
  t: 'gone';
  id: number;
}

export interface FinishedMessage {
  t: 'finished';
  id: number;
}

/** The counters of these streams moved (their sockets took bytes). */
export interface AcksMessage {
  t: 'acks';
  ids: number[];
}

export type ThreadMessage = OpenMessage | GoneMessage | FinishedMessage | AcksMessage;

/** The operations of a batch, four numbers each in `ops`: what, stream id, offset, length. */
export const OP_WRITE = 1;
export const OP_END = 2;
export const OP_DESTROY = 3;

export interface HeadOp {
  id: number;
  status: number;
  headers: Record<string, string | string[] | number>;
}

export interface BatchMessage {
  t: 'batch';
  heads: HeadOp[];
  /** [op, id, offset, length] × n; offset and length into `bytes` (OP_WRITE only). */
  ops: Int32Array;
  bytes: ArrayBuffer;
  /** Streams whose kafkaSse() settled: their consumer is released. */
  settled: number[];
}
