#!/usr/bin/env node
// @ts-check
// The example server's routes (/v2/stream/:topics, /v2/topics, /health, the
// live page, /metrics) over HTTP/2, where a browser's EventSources share one
// connection instead of six per origin. TLS by default, since browsers speak
// HTTP/2 only over TLS; HTTP/1.1 clients are still served on the same port.
//
//   npm run build && node examples/http2.js         # https://127.0.0.1:6927/
//   curl -kN https://127.0.0.1:6927/v2/stream/my-topic
//   H2C=1 node examples/http2.js                    # cleartext HTTP/2 (h2c), for a proxy in front
//   curl -N --http2-prior-knowledge http://127.0.0.1:6927/v2/stream/my-topic
//
// Environment: as examples/server.js (KAFKA_BROKERS, PORT, HOST, ALLOWED_TOPICS,
// CORS_ORIGINS, MAX_STREAMS_PER_IP, TRUST_PROXY, RETRY_MS, HEARTBEAT_MS,
// LOG_LEVEL), and:
//   TLS_CERT, TLS_KEY   PEM files of the certificate and its key. Without them a
//                       self-signed certificate for localhost is made at start
//                       (browsers warn; fine for trying it out, not for production).
//   H2C                 1: cleartext HTTP/2 without TLS (no HTTP/1.1 on that port).
import fs from 'node:fs';
import http2 from 'node:http2';
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
 * The certificate from TLS_CERT/TLS_KEY, or a self-signed one made now.
 * @returns {Promise<{ cert: string | Buffer, key: string | Buffer, selfSigned: boolean }>}
 */
async function certificate() {
  const certFile = process.env.TLS_CERT;
  const keyFile = process.env.TLS_KEY;
  if (certFile || keyFile) {
    if (!certFile || !keyFile) {
      console.error('TLS_CERT and TLS_KEY go together: set both, or neither for a self-signed certificate');
      process.exit(2);
    }
    return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), selfSigned: false };
  }
  // selfsigned is a development dependency: only this fallback needs it.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 30 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private, selfSigned: true };
}

const logger = pino({ name: 'example-http2', level: process.env.LOG_LEVEL ?? 'info' });
const app = createServer({
  brokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  allowedTopics: list(process.env.ALLOWED_TOPICS) ?? null,
  corsOrigins: list(process.env.CORS_ORIGINS) ?? [],
  maxStreamsPerIp: integer('MAX_STREAMS_PER_IP', 10),
  trustProxy: process.env.TRUST_PROXY === '1' || process.env.TRUST_PROXY === 'true',
  retryMs: integer('RETRY_MS', 2000),
  heartbeatMs: integer('HEARTBEAT_MS', 15_000) || null,
  logger: /** @type {import('kafka-sse-bridge').Logger} */ (logger),
});

const h2c = process.env.H2C === '1' || process.env.H2C === 'true';
// The handler is written for node:http; the compatibility API's request and
// response have every member it (and kafkaSse) uses.
const handler = /** @type {(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void} */ (
  /** @type {unknown} */ (app.handler)
);
/** @type {http2.Http2Server | http2.Http2SecureServer} */
let server;
if (h2c) {
  server = http2.createServer(handler);
} else {
  const { cert, key, selfSigned } = await certificate();
  if (selfSigned) logger.warn('TLS_CERT/TLS_KEY not set: serving a self-signed certificate made at start');
  // allowHTTP1: clients without HTTP/2 (curl --http1.1, old proxies) are served too.
  server = http2.createSecureServer({ cert, key, allowHTTP1: true }, handler);
}

/** Open HTTP/2 connections, closed gracefully (GOAWAY) at shutdown. */
/** @type {Set<http2.ServerHttp2Session>} */
const sessions = new Set();
server.on('session', (session) => {
  sessions.add(session);
  session.once('close', () => sessions.delete(session));
});

const port = integer('PORT', 6927);
const host = process.env.HOST ?? '127.0.0.1';
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, () => resolve(undefined));
});
const address = /** @type {import('node:net').AddressInfo} */ (server.address());
const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
const url = `${h2c ? 'http' : 'https'}://${shown}:${address.port}`;
logger.info(
  { url, protocol: h2c ? 'h2c' : 'h2 (TLS) and HTTP/1.1' },
  h2c
    ? `listening: curl -N --http2-prior-knowledge ${url}/v2/stream/<topic>`
    : `listening: open ${url}/ or curl -kN ${url}/v2/stream/<topic>`,
);

let stopping = false;
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, openStreams: app.openStreams() }, 'shutting down: ending every stream');
    server.close();
    app.close().then(
      () => {
        for (const session of sessions) session.close();
        logger.info('every stream ended and every consumer released; bye');
        setTimeout(() => process.exit(0), 2000).unref();
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
