// The library's own logger, made on first use, for callers that pass none.
import pino from 'pino';
import type { Logger } from './types.ts';

let libraryLog: Logger | undefined;

/** pino at level `warn`, named kafka-sse-bridge: the default of `options.logger`. */
export function libraryLogger(): Logger {
  libraryLog ??= pino({ name: 'kafka-sse-bridge', level: 'warn' }) as unknown as Logger;
  return libraryLog;
}
