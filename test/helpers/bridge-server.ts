// A node:http server on port 0 whose every request is a kafkaSse() stream,
// with the settled promises and responses kept for assertions.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { type Assignments, type KafkaSseOptions, kafkaSse, openConsumerCount } from '../../index.ts';
import { brokers } from './kafka.ts';
import { waitFor } from './wait.ts';

/** Tests assert on the wire, not on logs: keep the output readable (LOG_LEVEL=info to see them). */
export const quietLogger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

export interface BridgeServer {
  url: string;
  /** Every kafkaSse() promise, in request order. */
  streams: Promise<void>[];
  /** Every response object, in request order. */
  responses: ServerResponse[];
  /** Resolves when every stream started so far has settled. */
  settled(): Promise<void>;
  /** Drops every open connection (a network failure, as the client sees it). */
  dropConnections(): void;
  close(): Promise<void>;
}

type Route = (req: IncomingMessage) => {
  assignments: Assignments;
  options?: KafkaSseOptions;
  atTimestamp?: number | string | Date | null;
};

/** Options every test stream gets unless overridden. */
export function baseOptions(extra: KafkaSseOptions = {}): KafkaSseOptions {
  return {
    logger: quietLogger,
    ...extra,
    kafkaConfig: { 'metadata.broker.list': brokers(), ...(extra.kafkaConfig ?? {}) },
  };
}

export async function startBridge(route: Route): Promise<BridgeServer> {
  const streams: Promise<void>[] = [];
  const responses: ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const r = route(req);
    responses.push(res);
    streams.push(kafkaSse(req, res, r.assignments, r.options, r.atTimestamp));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    streams,
    responses,
    settled: async () => {
      await Promise.all(streams);
    },
    dropConnections: () => server.closeAllConnections(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(streams);
    },
  };
}

/** Closes a test's server, if it started one, and waits until every consumer is released. */
export async function closeBridge(bridge: BridgeServer | undefined): Promise<void> {
  await bridge?.close();
  await waitFor(() => openConsumerCount() === 0, 5000, 'every consumer released');
}
