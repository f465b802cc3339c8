// What a stream host (main thread, stream-host.ts) and an HTTP thread
// (stream-thread.ts) say to each other over their MessagePort.
//
// The thread sends, one message each: `open` (a request to stream), `gone`
// (its client left), `finished` (its response finished after the host ended
// it), and once per turn `acks` (bytes its sockets took). The host sends, once
// per turn of its event loop, one `batch`: the heads, then the writes, ends
// and destroys in the order they were made, the bytes of every write in one
// transferred buffer (a frame written to many streams in that turn is in it
// once), and the streams whose kafkaSse() settled.
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
}

export interface GoneMessage {
  t: 'gone';
  id: number;
}

export interface FinishedMessage {
  t: 'finished';
  id: number;
}

/** `ids[i]`'s socket took `bytes[i]` more bytes (handed to it without filling it, or drained since). */
export interface AcksMessage {
  t: 'acks';
  ids: number[];
  bytes: number[];
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
