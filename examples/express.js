#!/usr/bin/env node
// @ts-check
// kafkaSse() in an Express app (Express 4 or 5). Express's req and res are
// Node's own objects, so they are passed as they are.
//
//   node examples/express.js
//   curl -N http://127.0.0.1:3000/v2/stream/my-topic
import { pathToFileURL } from 'node:url';
import express from 'express';
import { KafkaSseError, kafkaSse, parseSince } from 'kafka-sse-bridge';

/**
 * @param {import('kafka-sse-bridge').KafkaSseOptions} options kafkaSse() options; `kafkaConfig` names the brokers
 */
export function createApp(options) {
  const shutdown = new AbortController();
  // One object for every request: kafkaSse() normalizes it once, not per stream.
  const streamOptions = { ...options, signal: shutdown.signal };
  /** @type {Set<Promise<void>>} */
  const streams = new Set();
  const app = express();

  app.get('/v2/stream/:topics', (req, res) => {
    let since;
    try {
      // ?since=1767265200000 or ?since=2026-01-01T11:00:00Z, parsed as every example does.
      since = typeof req.query.since === 'string' && req.query.since !== '' ? parseSince(req.query.since) : undefined;
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      res.status(err.statusCode).json(err.toJSON());
      return;
    }
    const stream = kafkaSse(req, res, req.params.topics.split(','), streamOptions, since);
    streams.add(stream);
    // The promise never rejects: it settles once the client is gone and the consumer released.
    stream.finally(() => streams.delete(stream));
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
  const server = app.listen(port, '127.0.0.1', () =>
    console.log(`Express: curl -N http://127.0.0.1:${port}/v2/stream/<topic>`),
  );
  process.once('SIGINT', async () => {
    server.close();
    await close();
    // Every stream has ended: cut what is left (idle keep-alive sockets, and
    // connections that never sent a request, which close() would wait for).
    server.closeAllConnections();
  });
}
