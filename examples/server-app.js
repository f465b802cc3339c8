// @ts-check
// A small EventStreams: Kafka topics as resumable Server-Sent Events (or NDJSON),
// with topic listing, health, CORS for EventSource, a per-IP stream limit, a
// live page, and a shutdown that ends every stream and releases every consumer.
//
// This module builds the server; examples/server.js reads the environment and
// runs it. Everything here uses node:http only, so it reads as a template for
// any framework (see examples/express.js, fastify.js, koa.js, nestjs/).
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compileFilter,
  KafkaSseError,
  kafkaSse,
  parseFilterQuery,
  parseSince,
  registerMetrics,
  remoteAddressKey,
  StreamLimiter,
  StreamRegistry,
} from 'kafka-sse-bridge';
import Kafka from 'node-rdkafka';
import pino from 'pino';
import { Registry } from 'prom-client';

const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');

/** The page's files: a fixed map, so no request path ever reaches the file system. */
const STATIC_FILES = new Map([
  ['/', { file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/index.html', { file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/app.js', { file: 'app.js', type: 'text/javascript; charset=utf-8' }],
  ['/style.css', { file: 'style.css', type: 'text/css; charset=utf-8' }],
]);

/** Request headers a cross-origin EventSource or fetch() may send: Last-Event-ID on every reconnect. */
const CORS_ALLOWED_HEADERS = 'Last-Event-ID, Accept, Cache-Control, X-Request-ID';

/**
 * @typedef {object} ServerConfig
 * @property {string} [brokers] Kafka bootstrap servers, comma-separated. Default: `'127.0.0.1:9092'`.
 * @property {readonly string[] | null} [allowedTopics] Topics clients may read. `null`: every topic whose name does not start with `__`. Default: `null`.
 * @property {readonly string[]} [corsOrigins] Origins allowed to read cross-origin, or `['*']` for any origin (then without credentials). Default: `[]`, same origin only.
 * @property {number} [maxStreamsPerIp] Concurrent streams one client address may hold; past it, 429. Default: `10`.
 * @property {boolean} [trustProxy] Take the client address from the last `X-Forwarded-For` entry (set it when exactly one reverse proxy is in front). Default: `false`.
 * @property {number} [ipv6PrefixLength] An IPv6 client is counted by this many leading bits of its address (one subscriber holds a whole /64), IPv4 by its address. Default: `64`.
 * @property {Partial<import('kafka-sse-bridge').FilterLimits>} [filterLimits] Bounds on clients' `filter[…]` parameters, over `FILTER_LIMITS`; `maxRegexesPerKey` bounds the regexes one client's open streams hold together. Default: `{}`.
 * @property {number | null} [retryMs] `retry:` hint sent to EventSource clients. Default: `2000`.
 * @property {number | null} [heartbeatMs] Comment written on idle streams. Default: `15000`.
 * @property {import('kafka-sse-bridge').KafkaConfig} [kafkaConfig] Extra librdkafka settings for every consumer and for the metadata client of /health and /v2/topics (security settings go here: `security.protocol`, `sasl.*`, `ssl.*`). Default: `{}`.
 * @property {number} [shutdownTimeoutMs] How long close() waits for connections before cutting them. Default: `10000`.
 * @property {import('kafka-sse-bridge').Logger} [logger] A pino logger. Default: pino at level `info`.
 * @property {string | null} [adminToken] Bearer token of `GET /admin/streams`, `DELETE /admin/streams/:id` and the details of `/health`. `null`: no admin endpoints. Default: the `ADMIN_TOKEN` environment variable, else `null`.
 * @property {number | null} [ratePerSecond] New streams per second one client address may open on average (token bucket). `null`: no rate limit. Default: `null`.
 * @property {number} [rateBurst] New streams a client may open at once before `ratePerSecond` applies. Default: `10`.
 * @property {number | null} [maxDurationMs] End streams after this long so clients reconnect (and spread over servers). Default: `null`.
 */

/**
 * @typedef {object} ExampleServer
 * @property {http.Server} server The node:http server (not listening until listen()).
 * @property {http.RequestListener} handler Its request listener, for another server to serve the same routes (examples/http2.js serves them over HTTP/2).
 * @property {(port?: number, host?: string) => Promise<string>} listen Starts listening; resolves with the base URL.
 * @property {() => number} openStreams Number of kafkaSse() calls in progress.
 * @property {() => Promise<void>} close Stops accepting, ends every stream, waits for every consumer to be released.
 */

/**
 * Builds the example server.
 * @param {ServerConfig} [config]
 * @returns {ExampleServer}
 */
export function createServer(config = {}) {
  const brokers = config.brokers ?? '127.0.0.1:9092';
  const allowedTopics = config.allowedTopics ?? null;
  const corsOrigins = new Set(config.corsOrigins ?? []);
  const anyOrigin = corsOrigins.has('*');
  const maxStreamsPerIp = config.maxStreamsPerIp ?? 10;
  const logger = config.logger ?? /** @type {import('kafka-sse-bridge').Logger} */ (pino({ name: 'example-server' }));
  const shutdownTimeoutMs = config.shutdownTimeoutMs ?? 10_000;

  const shutdown = new AbortController();
  /** @type {Set<Promise<void>>} */
  const streams = new Set();
  /** @type {Map<string, number>} */
  const streamsPerIp = new Map();
  const metadata = new MetadataClient(brokers, config.kafkaConfig ?? {});
  // Live stats: /metrics for Prometheus, /admin/streams for operators.
  const registry = new StreamRegistry();
  const metrics = registerMetrics(registry, { promRegistry: new Registry() });
  const adminToken = config.adminToken === undefined ? (process.env.ADMIN_TOKEN ?? null) : config.adminToken;
  const rateLimiter = config.ratePerSecond
    ? new StreamLimiter({ ratePerSecond: config.ratePerSecond, burst: config.rateBurst ?? 10, key: clientAddress })
    : null;
  const filterLimits = config.filterLimits ?? {};
  // Counts the client regexes each address's open streams hold (every regex runs on every message).
  const regexLimiter = new StreamLimiter({ key: clientAddress });
  /** @type {import('kafka-sse-bridge').KafkaSseOptions} */
  const streamOptions = {
    kafkaConfig: { ...config.kafkaConfig, 'metadata.broker.list': brokers },
    logger,
    signal: shutdown.signal,
    retryMs: config.retryMs === undefined ? 2000 : config.retryMs,
    heartbeatMs: config.heartbeatMs === undefined ? 15_000 : config.heartbeatMs,
    ...(allowedTopics ? { allowedTopics } : {}),
    // Clients narrow what they receive (?filter[meta.domain]=en.wikipedia.org&filter[type]=edit,new):
    // stream() compiles their filter itself, to count its regexes, and passes it as `filter`.
    filterLimits,
    registry,
    maxDurationMs: config.maxDurationMs ?? null,
  };

  /**
   * CORS response headers for this request's Origin. The origin is echoed (never
   * `*`) when it is listed, so EventSource's `withCredentials` works; `*` is
   * used only when any origin is allowed, and then credentials are not.
   * @param {http.IncomingMessage} req
   * @returns {Record<string, string>}
   */
  function corsHeaders(req) {
    const origin = req.headers.origin;
    if (origin === undefined || corsOrigins.size === 0) return {};
    if (anyOrigin) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Retry-After' };
    if (!corsOrigins.has(origin)) return { Vary: 'Origin' };
    return {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Credentials': 'true',
      'Access-Control-Expose-Headers': 'Retry-After',
      Vary: 'Origin',
    };
  }

  /**
   * The client a request counts under: its address, an IPv6 one by its prefix
   * (`ipv6PrefixLength`), so one subscriber's many addresses share one budget.
   * @param {http.IncomingMessage} req
   */
  function clientAddress(req) {
    const prefix = config.ipv6PrefixLength ?? 64;
    if (config.trustProxy) {
      const forwarded = req.headers['x-forwarded-for'];
      const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').at(-1)?.trim();
      if (last) return remoteAddressKey(last, prefix);
    }
    return remoteAddressKey(req, prefix);
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   */
  async function handle(req, res) {
    const cors = corsHeaders(req);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'OPTIONS') return preflight(req, res, cors);
    if (url.pathname === '/metrics' || url.pathname.startsWith('/admin/')) return operations(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported here`, {
        ...cors,
        Allow: 'GET, HEAD, OPTIONS',
      });
    }
    const match = /^\/v2\/stream\/([^/]+)$/.exec(url.pathname);
    if (match?.[1] !== undefined) {
      if (req.method !== 'GET') {
        return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'Streams are read with GET', {
          ...cors,
          Allow: 'GET, OPTIONS',
        });
      }
      return stream(req, res, match[1], url, cors);
    }
    if (url.pathname === '/v2/topics') return topics(res, cors);
    if (url.pathname === '/health') return health(req, res, cors);
    const page = STATIC_FILES.get(url.pathname);
    if (page) return serveFile(req, res, page.file, page.type);
    return sendError(res, 404, 'NOT_FOUND', `Nothing at ${url.pathname}`, cors);
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {Record<string, string>} cors
   */
  function preflight(req, res, cors) {
    if (req.headers.origin === undefined || req.headers['access-control-request-method'] === undefined) {
      res.writeHead(204, { Allow: 'GET, HEAD, OPTIONS' }).end();
      return;
    }
    if (!cors['Access-Control-Allow-Origin']) {
      return sendError(res, 403, 'ORIGIN_NOT_ALLOWED', 'This origin may not read these streams', cors);
    }
    res
      .writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': CORS_ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
        Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      })
      .end();
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {string} rawTopics
   * @param {URL} url
   * @param {Record<string, string>} cors
   */
  function stream(req, res, rawTopics, url, cors) {
    let topicList;
    try {
      topicList = decodeURIComponent(rawTopics);
    } catch {
      return sendError(res, 400, 'INVALID_ASSIGNMENT', 'The topic list is not valid percent-encoding', cors);
    }
    const since = url.searchParams.get('since');
    let atTimestamp;
    try {
      // The library's parser: epoch ms or ISO-8601, the same in every example.
      atTimestamp = since === null || since === '' ? undefined : parseSince(since);
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      return sendJson(res, err.statusCode, err.toJSON(), { ...cors, 'Cache-Control': 'no-store' });
    }
    if (shutdown.signal.aborted) {
      return sendError(res, 503, 'SHUTTING_DOWN', 'The server is shutting down; try again shortly', {
        ...cors,
        'Retry-After': '5',
      });
    }
    if (rateLimiter) {
      // Only the rate is limited here (concurrency is counted per address below): release at once.
      const admission = rateLimiter.tryAcquire(req);
      if (!admission.ok) {
        const e = admission.error;
        return sendJson(res, e.statusCode, e.toJSON(), {
          ...cors,
          'Cache-Control': 'no-store',
          'Retry-After': String(e.retryAfterSeconds),
        });
      }
      admission.release();
    }
    const ip = clientAddress(req);
    const open = streamsPerIp.get(ip) ?? 0;
    if (open >= maxStreamsPerIp) {
      return sendError(
        res,
        429,
        'TOO_MANY_STREAMS',
        `At most ${maxStreamsPerIp} concurrent streams per client; close one first`,
        { ...cors, 'Retry-After': '10' },
      );
    }
    /** @type {import('kafka-sse-bridge').CompiledFilter | null} */
    let filter = null;
    try {
      const fields = parseFilterQuery(url.searchParams, filterLimits);
      if (fields.length > 0) filter = compileFilter(fields, filterLimits);
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      return sendJson(res, err.statusCode, err.toJSON(), { ...cors, 'Cache-Control': 'no-store' });
    }
    const regexes = regexLimiter.admitRegexes(ip, filter);
    if (!regexes.ok) {
      const e = regexes.error;
      return sendJson(res, e.statusCode, e.toJSON(), {
        ...cors,
        'Cache-Control': 'no-store',
        'Retry-After': String(e.retryAfterSeconds),
      });
    }
    streamsPerIp.set(ip, open + 1);
    const options = { ...streamOptions, headers: cors, filter };
    const done = kafkaSse(req, res, topicList, options, atTimestamp).finally(() => {
      regexes.release();
      const left = (streamsPerIp.get(ip) ?? 1) - 1;
      if (left > 0) streamsPerIp.set(ip, left);
      else streamsPerIp.delete(ip);
      streams.delete(done);
    });
    streams.add(done);
  }

  /**
   * `GET /metrics` (Prometheus text), and with `Authorization: Bearer <adminToken>`:
   * `GET /admin/streams` (every open stream with its lag) and
   * `DELETE /admin/streams/:id` (ends one; an EventSource client reconnects).
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {URL} url
   */
  async function operations(req, res, url) {
    if (url.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const text = await metrics.promRegistry.metrics();
      res.writeHead(200, { 'Content-Type': metrics.promRegistry.contentType, 'Cache-Control': 'no-store' });
      return res.end(req.method === 'HEAD' ? undefined : text);
    }
    if (adminToken === null || adminToken === '')
      return sendError(res, 404, 'NOT_FOUND', `Nothing at ${url.pathname}`, {});
    if (!bearerMatches(req.headers.authorization, adminToken)) {
      return sendError(res, 401, 'UNAUTHORIZED', 'This endpoint needs Authorization: Bearer <admin token>', {
        'WWW-Authenticate': 'Bearer realm="admin"',
      });
    }
    if (url.pathname === '/admin/streams' && req.method === 'GET') {
      return sendJson(res, 200, { streams: registry.list() }, { 'Cache-Control': 'no-store' });
    }
    const match = /^\/admin\/streams\/([^/]+)$/.exec(url.pathname);
    if (match?.[1] !== undefined && req.method === 'DELETE') {
      let id;
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        return sendError(res, 400, 'INVALID_ID', 'The stream id is not valid percent-encoding', {});
      }
      if (!registry.disconnect(id)) return sendError(res, 404, 'STREAM_NOT_FOUND', 'No open stream has this id', {});
      res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
      return;
    }
    return sendError(res, 404, 'NOT_FOUND', `Nothing at ${req.method} ${url.pathname}`, {});
  }

  /**
   * @param {http.ServerResponse} res
   * @param {Record<string, string>} cors
   */
  async function topics(res, cors) {
    try {
      const meta = await metadata.get(5000);
      const allowed = allowedTopics ? new Set(allowedTopics) : null;
      const list = meta.topics
        .filter((t) => t.partitions.length > 0 && (allowed ? allowed.has(t.name) : !t.name.startsWith('__')))
        .map((t) => ({ name: t.name, partitions: t.partitions.length }))
        .sort((a, b) => a.name.localeCompare(b.name));
      sendJson(res, 200, { topics: list }, { ...cors, 'Cache-Control': 'no-cache' });
    } catch (err) {
      logger.warn({ err }, 'listing topics failed');
      sendError(res, 503, 'BROKER_UNAVAILABLE', 'Kafka is unavailable; try again shortly', {
        ...cors,
        'Retry-After': '5',
      });
    }
  }

  /**
   * Anyone sees whether Kafka answers and how fast; the broker list, the
   * client library's error text and the stream counts only the admin (they
   * map the network and help an attacker time an outage).
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {Record<string, string>} cors
   */
  async function health(req, res, cors) {
    const started = Date.now();
    /** @type {{reachable: boolean, latencyMs: number}} */
    let kafka;
    /** @type {Record<string, unknown>} */
    let details;
    try {
      const meta = await metadata.get(2000);
      kafka = { reachable: true, latencyMs: Date.now() - started };
      details = { brokers, brokerCount: meta.brokers.length };
    } catch (err) {
      kafka = { reachable: false, latencyMs: Date.now() - started };
      details = { brokers, error: err instanceof Error ? err.message : String(err) };
    }
    const admin = adminToken !== null && adminToken !== '' && bearerMatches(req.headers.authorization, adminToken);
    const body = {
      status: kafka.reachable ? 'ok' : 'unavailable',
      kafka: admin ? { ...kafka, ...details } : kafka,
      ...(admin
        ? { streams: { open: streams.size, maxPerIp: maxStreamsPerIp }, uptimeSeconds: Math.round(process.uptime()) }
        : {}),
    };
    sendJson(res, kafka.reachable ? 200 : 503, body, {
      ...cors,
      'Cache-Control': 'no-store',
      Vary: cors.Vary ? `${cors.Vary}, Authorization` : 'Authorization',
    });
  }

  /** @type {http.RequestListener} */
  const handler = (req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err }, 'request failed');
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'Internal error', {});
      else res.destroy();
    });
  };
  const server = http.createServer(handler);

  /** @type {Promise<void> | undefined} */
  let closing;

  return {
    server,
    handler,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = /** @type {import('node:net').AddressInfo} */ (server.address());
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve(`http://${shown}:${address.port}`);
        });
      });
    },
    openStreams: () => streams.size,
    close() {
      closing ??= (async () => {
        const closed = new Promise((resolve) => server.close(() => resolve(undefined)));
        const cut = setTimeout(() => server.closeAllConnections(), shutdownTimeoutMs);
        // Every stream ends (SSE clients reconnect later, to this server or another);
        // each kafkaSse() promise settles only once its consumer is released.
        shutdown.abort();
        await Promise.allSettled([...streams]);
        // Connections whose stream ended are idle keep-alive sockets now.
        server.closeIdleConnections();
        if (server.listening) await closed;
        clearTimeout(cut);
        metrics.close();
        await metadata.close();
      })();
      return closing;
    },
  };
}

/**
 * Whether an Authorization header carries `Bearer <token>`. Both sides are
 * hashed first so the comparison takes the same time whatever the input's
 * length, and timingSafeEqual does not reveal how much of the token matched.
 * @param {string | undefined} header
 * @param {string} token
 */
function bearerMatches(header, token) {
  const given = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '')?.[1] ?? '';
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && given !== '';
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} headers
 */
function sendJson(res, status, body, headers) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/**
 * Errors of the server itself, in the library's shape (`{name, code, message, status}`).
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {string} code
 * @param {string} message
 * @param {Record<string, string>} headers
 */
function sendError(res, status, code, message, headers) {
  sendJson(
    res,
    status,
    { name: 'ExampleServerError', code, message, status },
    { 'Cache-Control': 'no-store', ...headers },
  );
}

/**
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {string} file
 * @param {string} type
 */
async function serveFile(req, res, file, type) {
  const body = await fs.readFile(path.join(PUBLIC_DIR, file));
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': String(body.length),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    // The page loads only its own script and style, and talks only to this server.
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data:",
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * One long-lived Kafka client for metadata (topic list, health), connected on
 * first use and again after a failure. Streams never use it: each kafkaSse()
 * call owns its consumer.
 */
class MetadataClient {
  /** @type {string} */
  #brokers;
  /** @type {import('kafka-sse-bridge').KafkaConfig} */
  #kafkaConfig;
  /** @type {Promise<Kafka.Producer> | undefined} */
  #client;

  /**
   * @param {string} brokers
   * @param {import('kafka-sse-bridge').KafkaConfig} kafkaConfig the streams' librdkafka settings (security included)
   */
  constructor(brokers, kafkaConfig) {
    this.#brokers = brokers;
    this.#kafkaConfig = kafkaConfig;
  }

  /**
   * The cluster's metadata (all topics).
   * @param {number} timeoutMs
   * @returns {Promise<Kafka.Metadata>}
   */
  async get(timeoutMs) {
    const client = await this.#connect(timeoutMs);
    return new Promise((resolve, reject) => {
      client.getMetadata({ allTopics: true, timeout: timeoutMs }, (err, data) => (err ? reject(err) : resolve(data)));
    });
  }

  /** @param {number} timeoutMs */
  #connect(timeoutMs) {
    this.#client ??= new Promise((resolve, reject) => {
      // A producer that never produces: the lightest node-rdkafka client that answers metadata requests.
      const client = new Kafka.Producer({
        .../** @type {Kafka.ProducerGlobalConfig} */ (this.#kafkaConfig),
        'metadata.broker.list': this.#brokers,
        'client.id': 'kafka-sse-bridge-example-metadata',
        'log.connection.close': false,
      });
      client.on('event.error', () => {});
      client.connect({ timeout: timeoutMs }, (err) => {
        if (!err) return resolve(client);
        // node-rdkafka releases a client whose connect failed by itself.
        this.#client = undefined;
        reject(new Error(`cannot reach Kafka at ${this.#brokers}: ${err.message}`));
      });
    });
    return this.#client;
  }

  async close() {
    const pending = this.#client;
    this.#client = undefined;
    const client = await pending?.catch(() => undefined);
    if (client) await new Promise((resolve) => client.disconnect(5000, () => resolve(undefined)));
  }
}
