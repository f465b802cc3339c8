#!/usr/bin/env node
// @ts-check
// Token-authorised streams: each tenant holds a JWT whose `topics` claim lists
// what it may read, so tenants never see each other's topics. The token comes
// in `Authorization: Bearer <jwt>`, or as `?token=<jwt>` for browsers (an
// EventSource cannot set headers; keep such tokens short-lived, since URLs end
// up in logs). A stream ends when its token expires: the client must come back
// with a fresh token.
//
//   JWT_SECRET=change-me node examples/tenant-server.js
//   JWT_SECRET=change-me node examples/tenant-server.js --mint tenant-a orders-a,invoices-a 3600
//   curl -N -H "Authorization: Bearer <token>" http://127.0.0.1:6928/v2/stream/orders-a
//
// Environment: KAFKA_BROKERS (default 127.0.0.1:9092), PORT (default 6928), HOST,
// JWT_SECRET (HS256 key; use createRemoteJWKSet() in createTenantServer for an
// identity provider's keys), JWT_ISSUER, JWT_AUDIENCE, LOG_LEVEL.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { jwtVerify, SignJWT } from 'jose';
import { kafkaSse, StreamLimiter } from 'kafka-sse-bridge';
import pino from 'pino';

/**
 * @typedef {object} TenantServerConfig
 * @property {Uint8Array | CryptoKey | import('jose').JWTVerifyGetKey} key The verification key: an HS256 secret's bytes, a public key, or `createRemoteJWKSet(url)`.
 * @property {string[]} [algorithms] Accepted JWS algorithms. Default: `['HS256']` for a secret, `['RS256', 'ES256', 'EdDSA']` otherwise.
 * @property {string} [issuer] Required `iss`. Default: not checked.
 * @property {string} [audience] Required `aud`. Default: not checked.
 * @property {string} [brokers] Kafka bootstrap servers. Default: `'127.0.0.1:9092'`.
 * @property {number} [maxStreamsPerTenant] Concurrent streams per token subject. Default: `5`.
 * @property {number} [maxStreamMs] Longest a stream lasts even when its token is valid for longer; the client reconnects with its Last-Event-ID (and a token still valid) and loses nothing. Default: `3600000` (one hour).
 * @property {import('kafka-sse-bridge').KafkaConfig} [kafkaConfig] Extra librdkafka settings. Default: `{}`.
 * @property {import('kafka-sse-bridge').Logger} [logger] Default: pino at level `info`.
 */

/**
 * @typedef {object} Tenant
 * @property {string} subject The token's `sub`.
 * @property {string[]} topics The token's `topics` claim.
 * @property {number} expiresAt The token's `exp`, in milliseconds.
 */

/**
 * Builds the tenant server (not yet listening).
 * @param {TenantServerConfig} config
 */
export function createTenantServer(config) {
  const logger = config.logger ?? /** @type {import('kafka-sse-bridge').Logger} */ (pino({ name: 'tenant-server' }));
  const brokers = config.brokers ?? '127.0.0.1:9092';
  const algorithms = config.algorithms ?? (config.key instanceof Uint8Array ? ['HS256'] : ['RS256', 'ES256', 'EdDSA']);
  /** Verified tenants of requests in progress: allowedTopics() and the limiter read them. */
  /** @type {WeakMap<http.IncomingMessage, Tenant>} */
  const tenants = new WeakMap();
  const limiter = new StreamLimiter({
    maxStreamsPerKey: config.maxStreamsPerTenant ?? 5,
    // One tenant, one budget, whatever addresses its clients connect from.
    key: (req) => tenants.get(req)?.subject,
  });
  const shutdown = new AbortController();
  /** @type {Set<Promise<void>>} */
  const streams = new Set();
  // A token's lifetime is the client's to choose (an `exp` years away is valid): clamp it
  // so it can never reach an option's bounds (a timer holds at most 2^31 - 1 ms, 24.8 days).
  const maxStreamMs = Math.min(config.maxStreamMs ?? 3_600_000, MAX_TIMER_MS);
  if (!(maxStreamMs >= 1)) throw new TypeError(`maxStreamMs must be a positive number, got ${config.maxStreamMs}`);

  /** @type {import('kafka-sse-bridge').KafkaSseOptions} */
  const baseOptions = {
    kafkaConfig: { ...config.kafkaConfig, 'metadata.broker.list': brokers },
    logger,
    signal: shutdown.signal,
    // The token decides: a topic outside its claim is answered 404, exactly like a missing topic.
    allowedTopics: (req) => tenants.get(req)?.topics ?? [],
    queryFilters: true,
  };

  /**
   * The verified tenant of a request, or an error message for the 401.
   * @param {http.IncomingMessage} req
   * @param {URL} url
   * @returns {Promise<Tenant | string>}
   */
  async function authenticate(req, url) {
    const header = req.headers.authorization;
    const token = header !== undefined ? /^Bearer[ ]+(\S+)[ ]*$/i.exec(header)?.[1] : url.searchParams.get('token');
    if (!token) return 'Send a token: Authorization: Bearer <jwt>, or ?token=<jwt>';
    try {
      /** @type {import('jose').JWTVerifyOptions} */
      const options = { algorithms, requiredClaims: ['exp', 'sub'] };
      if (config.issuer) options.issuer = config.issuer;
      if (config.audience) options.audience = config.audience;
      const { payload } =
        typeof config.key === 'function'
          ? await jwtVerify(token, config.key, options)
          : await jwtVerify(token, config.key, options);
      const topics = payload.topics;
      if (!Array.isArray(topics) || !topics.every((t) => typeof t === 'string')) {
        return 'The token has no topics claim (an array of topic names)';
      }
      return { subject: String(payload.sub), topics, expiresAt: Number(payload.exp) * 1000 };
    } catch (err) {
      const code = /** @type {{code?: string}} */ (err).code;
      logger.info({ code }, 'token refused');
      // Say what kind of problem it was, never why in detail (no oracle for forgers).
      return code === 'ERR_JWT_EXPIRED' ? 'The token has expired' : 'The token is not valid';
    }
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = /^\/v2\/stream\/([^/]+)$/.exec(url.pathname);
    if (!match?.[1] || req.method !== 'GET') {
      return sendError(res, 404, 'NOT_FOUND', `Nothing at ${req.method} ${url.pathname}`);
    }
    const tenant = await authenticate(req, url);
    if (typeof tenant === 'string') {
      return sendError(res, 401, 'UNAUTHORIZED', tenant, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
    tenants.set(req, tenant);
    const release = limiter.acquire(req, res);
    if (!release) return;
    let topics;
    try {
      topics = decodeURIComponent(match[1]);
    } catch {
      release();
      return sendError(res, 400, 'INVALID_ASSIGNMENT', 'The topic list is not valid percent-encoding');
    }
    // The stream ends when the token does (or after maxStreamMs); EventSource then
    // reconnects with the same URL: refused 401 once the token expired, and the page
    // fetches a new one. `exp` is a number jose checked, but it may be far away.
    const remaining = Math.floor(tenant.expiresAt - Date.now());
    const maxDurationMs = Math.max(
      1,
      Math.floor(Math.min(maxStreamMs, Number.isFinite(remaining) ? remaining : maxStreamMs)),
    );
    const done = kafkaSse(req, res, topics, { ...baseOptions, maxDurationMs }).finally(() => {
      release();
      streams.delete(done);
    });
    streams.add(done);
    await done;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err }, 'request failed');
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'Internal error');
      else res.destroy();
    });
  });

  return {
    server,
    /** @param {number} [port] @param {string} [host] @returns {Promise<string>} the base URL */
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address());
          resolve(`http://${host}:${actual}`);
        });
      });
    },
    /** Ends every stream, waits for every consumer to be released, stops listening. */
    async close() {
      const closed = new Promise((resolve) => server.close(() => resolve(undefined)));
      shutdown.abort();
      await Promise.allSettled([...streams]);
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The longest delay setTimeout honours: longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Mints a tenant token (for demos and tests; a real deployment gets them from its identity provider).
 * @param {Uint8Array} secret HS256 key
 * @param {{ subject: string; topics: string[]; expiresInSeconds?: number; issuer?: string; audience?: string }} claims
 */
export function mintTenantToken(secret, claims) {
  let jwt = new SignJWT({ topics: claims.topics })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.expiresInSeconds ?? 3600));
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(secret);
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {string} code
 * @param {string} message
 * @param {Record<string, string>} [headers]
 */
function sendError(res, status, code, message, headers = {}) {
  const body = JSON.stringify({ name: 'TenantServerError', code, message, status });
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.JWT_SECRET;
  if (!secret) {
    console.error('Set JWT_SECRET (the HS256 key tokens are signed with).');
    process.exit(2);
  }
  const key = new TextEncoder().encode(secret);
  if (process.argv[2] === '--mint') {
    const [subject, topics, seconds] = process.argv.slice(3);
    if (!subject || !topics) {
      console.error('usage: tenant-server.js --mint <subject> <topic,topic…> [seconds]');
      process.exit(2);
    }
    console.log(
      await mintTenantToken(key, {
        subject,
        topics: topics.split(','),
        expiresInSeconds: Number(seconds ?? 3600),
        ...(process.env.JWT_ISSUER ? { issuer: process.env.JWT_ISSUER } : {}),
        ...(process.env.JWT_AUDIENCE ? { audience: process.env.JWT_AUDIENCE } : {}),
      }),
    );
  } else {
    const logger = pino({ name: 'tenant-server', level: process.env.LOG_LEVEL ?? 'info' });
    const app = createTenantServer({
      key,
      brokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
      ...(process.env.JWT_ISSUER ? { issuer: process.env.JWT_ISSUER } : {}),
      ...(process.env.JWT_AUDIENCE ? { audience: process.env.JWT_AUDIENCE } : {}),
      logger: /** @type {import('kafka-sse-bridge').Logger} */ (logger),
    });
    const url = await app.listen(Number(process.env.PORT ?? 6928), process.env.HOST ?? '127.0.0.1');
    logger.info({ url }, 'listening');
    for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
      process.once(signal, () => {
        logger.info({ signal }, 'shutting down');
        void app.close().then(() => process.exit(0));
      });
    }
  }
}
