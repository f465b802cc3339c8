#!/usr/bin/env node
// @ts-check
// kafkaSse() in a Fastify app (Fastify 4 or 5). reply.hijack() tells Fastify
// the handler writes the raw response itself; kafkaSse() gets the raw objects.
// Headers set on `reply` (by @fastify/cors, say) are not applied to a hijacked
// response: pass them with the `headers` option instead.
//
//   node examples/fastify.js
//   curl -N http://127.0.0.1:3000/v2/stream/my-topic
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
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
  // preClose (below) ends every stream first; what is left then are idle
  // keep-alive sockets and connections that never sent a request (a browser's
  // preconnect), which Node's server.close() would wait for until headersTimeout.
  const app = Fastify({ forceCloseConnections: true });

  app.get('/v2/stream/:topics', (request, reply) => {
    const { topics } = /** @type {{ topics: string }} */ (request.params);
    const query = /** @type {{ since?: string }} */ (request.query);
    let since;
    try {
      // ?since=1767265200000 or ?since=2026-01-01T11:00:00Z, parsed as every example does.
      since = typeof query.since === 'string' && query.since !== '' ? parseSince(query.since) : undefined;
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      return reply.code(err.statusCode).send(err.toJSON());
    }
    reply.hijack();
    const stream = kafkaSse(request.raw, reply.raw, topics.split(','), streamOptions, since);
    streams.add(stream);
    stream.finally(() => streams.delete(stream));
    return stream;
  });

  // app.close() waits for open connections, and a stream stays open until it
  // ends: end them all first (preClose runs before the server stops listening).
  app.addHook('preClose', async () => {
    shutdown.abort();
    await Promise.all(streams);
  });

  return app;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = createApp({ kafkaConfig: { 'metadata.broker.list': process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' } });
  const port = Number(process.env.PORT ?? 3000);
  await app.listen({ port, host: '127.0.0.1' });
  console.log(`Fastify: curl -N http://127.0.0.1:${port}/v2/stream/<topic>`);
  process.once('SIGINT', () => void app.close());
}
