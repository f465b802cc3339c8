import { type BeforeApplicationShutdown, Controller, Get, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { KafkaSseError, type KafkaSseOptions, kafkaSse, parseSince } from 'kafka-sse-bridge';

/** Injection token of the kafkaSse() options (see StreamModule.forRoot). */
export const KAFKA_SSE_OPTIONS = Symbol('KAFKA_SSE_OPTIONS');

/**
 * `GET /v2/stream/:topics?since=<ms or ISO-8601>`: Kafka topics as Server-Sent Events.
 * With @Res() Nest leaves the response to the handler, which hands Express's
 * req and res (Node's own objects) to kafkaSse().
 */
@Controller('v2/stream')
export class StreamController implements BeforeApplicationShutdown {
  readonly #shutdown = new AbortController();
  readonly #streams = new Set<Promise<void>>();
  // Built once: kafkaSse() checks an options object once for all the requests it serves.
  readonly #options: KafkaSseOptions;

  // @Inject with an explicit token: works whether or not the compiler emits
  // decorator metadata (tsx and esbuild do not).
  constructor(@Inject(KAFKA_SSE_OPTIONS) options: KafkaSseOptions) {
    this.#options = { ...options, signal: this.#shutdown.signal };
  }

  @Get(':topics')
  stream(
    @Param('topics') topics: string,
    @Query('since') since: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    let atTimestamp: number | undefined;
    try {
      // ?since=1767265200000 or ?since=2026-01-01T11:00:00Z, parsed as every example does.
      atTimestamp = typeof since === 'string' && since !== '' ? parseSince(since) : undefined;
    } catch (err) {
      if (!(err instanceof KafkaSseError)) throw err;
      res.status(err.statusCode).json(err.toJSON());
      return Promise.resolve();
    }
    const stream = kafkaSse(req, res, topics.split(','), this.#options, atTimestamp);
    this.#streams.add(stream);
    // The promise never rejects: it settles once the client is gone and the consumer released.
    void stream.finally(() => this.#streams.delete(stream));
    return stream;
  }

  /** app.close() (or a signal, with enableShutdownHooks) ends every stream before the server closes. */
  async beforeApplicationShutdown(): Promise<void> {
    this.#shutdown.abort();
    await Promise.all(this.#streams);
  }
}
