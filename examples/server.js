#!/usr/bin/env node
// @ts-check
// The example server from the command line: configuration from the
// environment, a clean shutdown on SIGINT/SIGTERM.
//
//   npm run build && node examples/server.js
//   curl -N http://127.0.0.1:6927/v2/stream/my-topic
//
// Environment:
//   KAFKA_BROKERS       bootstrap servers (default 127.0.0.1:9092)
//   PORT, HOST          where to listen (default 6927 on 127.0.0.1; HOST=0.0.0.0 in a container)
//   ALLOWED_TOPICS      comma-separated topics clients may read (default: every non-internal topic)
//   CORS_ORIGINS        comma-separated origins allowed to read cross-origin, or * (default: none)
//   MAX_STREAMS_PER_IP  concurrent streams per client address (default 10)
//   TRUST_PROXY         1: take the client address from X-Forwarded-For (one proxy in front)
//   IPV6_PREFIX_LENGTH  an IPv6 client is counted by this many leading bits of its address (default 64)
//   ADMIN_TOKEN         bearer token of /admin/* and of the details of /health (default: none)
//   RETRY_MS            reconnection delay suggested to EventSource clients (default 2000)
//   HEARTBEAT_MS        idle-stream heartbeat (default 15000)
//   MAX_DURATION_MS     end each stream after this long, so clients reconnect (and spread over
//                       the servers behind a load balancer); 0: never (default 0)
//   LOG_LEVEL           pino level (default info)
//   KAFKA_CFG_<NAME>    any librdkafka setting, NAME in upper case with "." as "_", e.g.
//                       KAFKA_CFG_SECURITY_PROTOCOL=sasl_ssl KAFKA_CFG_SASL_MECHANISMS=SCRAM-SHA-512
//                       KAFKA_CFG_SASL_USERNAME=… KAFKA_CFG_SASL_PASSWORD=… KAFKA_CFG_SSL_CA_LOCATION=/path/ca.pem
import pino from 'pino';
import { createServer } from './server-app.js';

/**
 * @param {string | undefined} value
 * @returns {string[] | undefined}
 */
function list(value) {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * @param {string} name
 * @param {number} fallback
 */
function integer(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${raw}`);
    process.exit(2);
  }
  return n;
}

/**
 * librdkafka settings from KAFKA_CFG_* variables (KAFKA_CFG_SASL_USERNAME → sasl.username).
 * @returns {Record<string, string>}
 */
function kafkaConfigFromEnv() {
  /** @type {Record<string, string>} */
  const config = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('KAFKA_CFG_') && value !== undefined) {
      config[name.slice('KAFKA_CFG_'.length).toLowerCase().replaceAll('_', '.')] = value;
    }
  }
  return config;
}

const logger = pino({ name: 'example-server', level: process.env.LOG_LEVEL ?? 'info' });
const app = createServer({
  brokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  kafkaConfig: kafkaConfigFromEnv(),
  allowedTopics: list(process.env.ALLOWED_TOPICS) ?? null,
  corsOrigins: list(process.env.CORS_ORIGINS) ?? [],
  maxStreamsPerIp: integer('MAX_STREAMS_PER_IP', 10),
  trustProxy: process.env.TRUST_PROXY === '1' || process.env.TRUST_PROXY === 'true',
  ipv6PrefixLength: Math.min(128, integer('IPV6_PREFIX_LENGTH', 64)),
  retryMs: integer('RETRY_MS', 2000),
  heartbeatMs: integer('HEARTBEAT_MS', 15_000) || null,
  maxDurationMs: integer('MAX_DURATION_MS', 0) || null,
  logger: /** @type {import('kafka-sse-bridge').Logger} */ (logger),
});

const url = await app.listen(integer('PORT', 6927), process.env.HOST ?? '127.0.0.1');
logger.info({ url }, `listening: open ${url}/ or curl -N ${url}/v2/stream/<topic>`);

let stopping = false;
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, openStreams: app.openStreams() }, 'shutting down: ending every stream');
    app.close().then(
      () => {
        logger.info('every stream ended and every consumer released; bye');
        // Nothing should be left running; if something is, do not hang the deploy.
        setTimeout(() => process.exit(0), 2000).unref();
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
