#!/usr/bin/env node
// @ts-check
// kafkaSse() in a Koa app (Koa 2 or 3, @koa/router). `ctx.respond = false`
// tells Koa the handler writes the raw response itself.
//
//   node examples/koa.js
//   curl -N http://127.0.0.1:3000/v2/stream/my-topic
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import Router from '@koa/router';
import { KafkaSseError, kafkaSse, parseSince } from 'kafka-sse-bridge';
import Koa from 'koa';

/**
 * @param {import('kafka-sse-bridge').KafkaSseOptions} options kafkaSse() options; `kafkaConfig` names the brokers
 */
export function createApp(options) {
  const shutdown = new AbortController();
  // One object for every request: kafkaSse() normalizes it once, not per stream.
  const streamOptions = { ...options, signal: shutdown.signal };
  /** @type {Set<Promise<void>>} */
  const streams = new Set();
  const app = new Koa();
  const router = new Router();

  router.get('/v2/stream/:topics', async (ctx) => {
    let since;
    try {
      // ?since=1767265200000 or ?since=2026-01-01T11:00:00Z, parsed as every example does.
      since = typeof ctx.query.since === 'string' && ctx.query.since !== '' ? parseSince(ctx.query.since) : undefined;
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      ctx.status = err.statusCode;
      ctx.body = err.toJSON();
      return;
    }
    ctx.respond = false;
    const topics = String(ctx.params.topics).split(',');
    const stream = kafkaSse(ctx.req, ctx.res, topics, streamOptions, since);
    streams.add(stream);
    try {
      await stream;
    } finally {
      streams.delete(stream);
    }
  });
  app.use(router.routes());

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
  const server = http.createServer(app.callback()).listen(port, '127.0.0.1');
  console.log(`Koa: curl -N http://127.0.0.1:${port}/v2/stream/<topic>`);
  process.once('SIGINT', async () => {
    server.close();
    await close();
    // Every stream has ended: cut what is left (idle keep-alive sockets, and
    // connections that never sent a request, which close() would wait for).
    server.closeAllConnections();
  });
}
