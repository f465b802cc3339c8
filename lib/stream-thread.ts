// connectStreamHost(): the HTTP thread's side of a stream host (stream-host.ts).
// A request is described to the host, which runs kafkaSse() on the main
// thread; what it answers arrives once per turn as a batch of heads, writes
// and ends, written here to the real responses, and each socket's progress
// goes back as acknowledgements (backpressure).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MessagePort } from 'node:worker_threads';
import { BrokerUnavailableError, ConfigurationError } from './errors.ts';
import { endUnreadRequest, writeHead, writeJsonError } from './http-response.ts';
import type { Assignments } from './positions.ts';
import {
  type BatchMessage,
  OP_DESTROY,
  OP_END,
  OP_WRITE,
  type OpenMessage,
  type ThreadMessage,
} from './stream-port.ts';

/** kafkaSse() in an HTTP thread: the stream's options are its host's. */
export type ThreadStream = (
  req: IncomingMessage,
  res: ServerResponse,
  assignments: Assignments,
  atTimestamp?: number | string | Date | null,
) => Promise<void>;

interface Open {
  req: IncomingMessage;
  res: ServerResponse;
  settle: () => void;
  /** Bytes the socket took, shared with the host (see OpenMessage.taken). */
  taken: Int32Array;
  /** Bytes written that the socket has not taken yet (they count once it drains). */
  untaken: number;
  /** A write returned false: the socket takes the rest at 'drain'. */
  waiting: boolean;
}

/**
 * The other end of a port made by a stream host's `port()`, in the worker
 * thread that runs the HTTP server. Returns a function used like kafkaSse():
 * `(req, res, assignments, atTimestamp?)`, without options (those of the host
 * apply). It answers exactly as kafkaSse() does — heads, events, errors,
 * heartbeats, resumes — and its promise resolves when the stream is over and
 * its consumer released on the main thread. It never rejects.
 */
export function connectStreamHost(port: MessagePort): ThreadStream {
  const open = new Map<number, Open>();
  let nextId = 1;
  let hostGone = false;
  const send = (m: ThreadMessage) => {
    if (!hostGone) port.postMessage(m);
  };

  port.on('message', (m: BatchMessage) => {
    const moved = new Set<number>();
    const corked = new Set<Open>();
    const headOnly = new Set<Open>();
    for (const h of m.heads) {
      const o = open.get(h.id);
      if (o === undefined || o.res.destroyed) continue;
      writeHead(o.res, h.status, h.headers as Record<string, string>);
      o.res.socket?.setNoDelay(true);
      if (h.status === 200) endUnreadRequest(o.req, o.res);
      headOnly.add(o);
    }
    const ops = m.ops;
    for (let i = 0; i < ops.length; i += 4) {
      const id = ops[i + 1] as number;
      const o = open.get(id);
      if (o === undefined) continue;
      const res = o.res;
      headOnly.delete(o);
      switch (ops[i]) {
        case OP_WRITE: {
          const length = ops[i + 3] as number;
          if (res.destroyed || res.writableEnded) {
            // Nobody will take these: count them taken, so the host's stream never waits for them.
            Atomics.add(o.taken, 0, length);
            break;
          }
          if (!corked.has(o) && typeof res.cork === 'function') {
            res.cork();
            corked.add(o);
          }
          const ok = res.write(new Uint8Array(m.bytes, ops[i + 2] as number, length));
          if (o.waiting) o.untaken += length;
          else if (ok) Atomics.add(o.taken, 0, length);
          else {
            o.waiting = true;
            o.untaken = length;
            res.once('drain', () => {
              o.waiting = false;
              Atomics.add(o.taken, 0, o.untaken);
              o.untaken = 0;
              send({ t: 'acks', ids: [id] });
            });
          }
          moved.add(id);
          break;
        }
        case OP_END:
          if (corked.delete(o)) res.uncork();
          res.end();
          break;
        case OP_DESTROY:
          corked.delete(o);
          res.destroy();
          break;
      }
    }
    for (const o of corked) {
      o.res.uncork();
      // Frameworks' compression middleware buffers until told to flush.
      const flush = (o.res as ServerResponse & { flush?: () => void }).flush;
      if (typeof flush === 'function') flush.call(o.res);
    }
    // A head with nothing after it yet (NDJSON's) leaves now, not with the first message.
    for (const o of headOnly) if (!o.res.destroyed) o.res.flushHeaders();
    if (moved.size > 0) send({ t: 'acks', ids: [...moved] });
    for (const id of m.settled) {
      const o = open.get(id);
      open.delete(id);
      o?.settle();
    }
  });
  port.on('close', () => {
    hostGone = true;
    for (const o of open.values()) {
      // A request the host never answered (it was closing) gets the answer it would have given.
      if (!o.res.headersSent) answerShuttingDown(o.res);
      else o.res.destroy();
      o.settle();
    }
    open.clear();
  });

  return (req, res, assignments, atTimestamp) =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      const message: OpenMessage = {
        t: 'open',
        id,
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        remoteAddress: req.socket?.remoteAddress,
        assignments,
        atTimestamp,
        taken: new Int32Array(new SharedArrayBuffer(4)),
      };
      if (hostGone) {
        answerShuttingDown(res);
        resolve();
        return;
      }
      try {
        port.postMessage(message);
      } catch (err) {
        // Assignments that cannot be sent to the main thread (a function, a class instance): the server's bug.
        const e = new ConfigurationError(
          'assignments must be plain data (strings, arrays, objects) in an HTTP thread',
          {
            cause: err,
          },
        );
        process.emitWarning(`kafka-sse-bridge: ${e.message}`);
        writeJsonError(res, { ...e.toJSON(), message: 'The server is misconfigured' }, {});
        resolve();
        return;
      }
      open.set(id, { req, res, settle: resolve, taken: message.taken, untaken: 0, waiting: false });
      res.once('finish', () => send({ t: 'finished', id }));
      res.once('close', () => {
        if (!res.writableFinished) send({ t: 'gone', id });
      });
    });
}

/** 503 with Retry-After, as kafkaSse() answers while its server shuts down. */
function answerShuttingDown(res: ServerResponse): void {
  const error = new BrokerUnavailableError('The server is shutting down; try again shortly', { retryAfterSeconds: 1 });
  writeJsonError(res, error.toJSON(), {}, 1);
}
