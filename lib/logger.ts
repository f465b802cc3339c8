// The library's own logger, made on first use, for callers that pass none.
import pino from 'pino';
import type { Logger } from './types.ts';

let libraryLog: Logger | undefined;

/** pino at level `warn`, named kafka-sse-bridge: the default of `options.logger`. */
export function libraryLogger(): Logger {
  libraryLog ??= pino({ name: 'kafka-sse-bridge', level: 'warn' }) as unknown as Logger;
  return libraryLog;
}

type LogArgs = [obj: unknown, msg?: string];
type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/**
 * A child of `parent` with `bindings`, made when a line is first written at a
 * level the parent writes (pino's `isLevelEnabled`; a logger without it writes
 * every level). Every stream has one and most write nothing at the default
 * level (`warn`); a pino child holds a bound function per level, ~1 KB, about
 * a sixteenth of an idle stream.
 */
export class LazyChildLogger implements Logger {
  readonly #parent: Logger;
  readonly #bindings: Record<string, unknown>;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  /** Whether a line at `level` would be written: callers skip building what would be dropped. */
  enabled(level: Level): boolean {
    return logsAt(this.#child ?? this.#parent, level);
  }

  #write(level: Level, args: LogArgs): void {
    if (this.#child === undefined) {
      if (!this.enabled(level)) return;
      this.#child = this.#parent.child(this.#bindings);
    }
    this.#child[level](...args);
  }

  child(bindings: Record<string, unknown>): Logger {
    this.#child ??= this.#parent.child(this.#bindings);
    return this.#child.child(bindings);
  }

  trace(...args: LogArgs): void {
    this.#write('trace', args);
  }

  debug(...args: LogArgs): void {
    this.#write('debug', args);
  }

  info(...args: LogArgs): void {
    this.#write('info', args);
  }

  warn(...args: LogArgs): void {
    this.#write('warn', args);
  }

  error(...args: LogArgs): void {
    this.#write('error', args);
  }
}

/** Whether `log` writes lines at `level` (pino's `isLevelEnabled`; a logger without it writes every level). */
export function logsAt(log: Logger, level: Level): boolean {
  if (log instanceof LazyChildLogger) return log.enabled(level);
  const { isLevelEnabled } = log as { isLevelEnabled?: (level: string) => boolean };
  return typeof isLevelEnabled !== 'function' || isLevelEnabled.call(log, level);
}
