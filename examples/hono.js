#!/usr/bin/env node
// @ts-check
// kafkaSseResponse() in a Hono app on @hono/node-server: a Fetch-style handler,
// (Request) => Response, whose body streams the events. The same call works in
// any Fetch-style handler running on Node (Next.js route handlers, SvelteKit
// and Remix endpoints); not on edge or Bun/Deno runtimes (node-rdkafka is native).
//
//   node examples/hono.js
//   curl -N http://127.0.0.1:3000/v2/stream/my-topic
//
// Environment: KAFKA_BROKERS (default 127.0.0.1:9092), PORT (default 3000).
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { KafkaSseError, kafkaSseResponse, parseSince } from 'kafka-sse-bridge';

/**
 * @param {import('kafka-sse-bridge').KafkaSseOptions} options kafkaSse() options; `kafkaConfig` names the brokers
 */
export function createApp(options) {
  const shutdown = new AbortController();
  /** @type {Set<Promise<void>>} */
  const streams = new Set();
  /** @type {Hono<{ Bindings: import('@hono/node-server').HttpBindings }>} */
  const app = new Hono();

  app.get('/v2/stream/:topics', (c) => {
    // ?since= as the example server reads it: epoch milliseconds or an ISO-8601 date.
    const since = c.req.query('since');
    /** @type {number | undefined} */
    let atTimestamp;
    try {
      atTimestamp = since === undefined || since === '' ? undefined : parseSince(since);
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      return c.json(err.toJSON(), 400);
    }
    /** @type {() => void} */
    let settle = () => {};
    const done = new Promise((resolve) => {
      settle = () => resolve(undefined);
    });
    streams.add(done);
    done.then(() => streams.delete(done));
    return kafkaSseResponse(
      c.req.raw,
      c.req.param('topics').split(','),
      {
        ...options,
        signal: shutdown.signal,
        // A Request does not carry the peer's address; @hono/node-server passes the socket in c.env.
        remoteAddress: c.env?.incoming?.socket?.remoteAddress,
        onSettled: settle,
      },
      atTimestamp,
    );
  });

  return {
    app,
    /** Ends every stream and resolves once every Kafka consumer is released. */
    async close() {
      shutdown.abort();
      await Promise.all(streams);
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { app, close } = createApp({
    kafkaConfig: { 'metadata.broker.list': process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
  });
  const port = Number(process.env.PORT ?? 3000);
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) =>
    console.log(`Hono: curl -N http://127.0.0.1:${info.port}/v2/stream/<topic>`),
  );
  process.once('SIGINT', async () => {
    server.close();
    await close();
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}
