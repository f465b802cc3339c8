// The options of kafkaSse(): one table holds every option's check, default and
// doc; the known keys, the validation and DEFAULTS derive from it. Validation
// opens nothing: the process-wide shared tail is resolved where it is used, and
// the library's logger is made once, the first time a caller passes none.
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { hasBrand } from './brand.ts';
import type { KafkaConfig } from './consumer.ts';
import { defaultDeserializer } from './deserializer.ts';
import { ConfigurationError } from './errors.ts';
import { FILTER_LIMITS, type FilterLimits, type FilterSpec } from './filter-spec.ts';
import type { CompiledFilter } from './filters.ts';
import { KAFKA_DEFAULTS, KAFKA_FORCED } from './kafka-defaults.ts';
import { libraryLogger } from './logger.ts';
import type { KafkaSseOptions, NormalizedOptions } from './option-types.ts';
import type { StreamRegistry } from './registry.ts';
import type { SharedTail } from './shared-tail.ts';
import type { AllowedTopics, Deserializer, Filterer, Logger } from './types.ts';

export type { KafkaSseOptions, NormalizedOptions } from './option-types.ts';
export type { AllowedTopics, DeserializedMessage, Deserializer, Filterer, Logger } from './types.ts';
export { defaultDeserializer };

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One option: its documented default, and the check that turns what was passed into the normalized value. */
interface OptionSpec<T> {
  /** The documented default (what an absent or undefined key means), for DEFAULTS and the docs. */
  readonly default: T;
  /** Validates a present value (never undefined) and returns it normalized; throws ConfigurationError naming `options.<key>`. */
  readonly check: (value: unknown, key: string) => T;
  /** Listed in DEFAULTS (plain values only; objects and functions are documented in the README). */
  readonly listed?: boolean;
  /** The check also runs when the key is absent (a required setting). */
  readonly required?: boolean;
  /** Makes the default at first use, when it is an object shared by every stream (the library's logger). */
  readonly lazyDefault?: () => T;
}

const fail = (message: string): never => {
  throw new ConfigurationError(message);
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A non-negative safe integer; with `nullable`, null means off. `min` and timer bounds as given. */
function integer(options: {
  nullable: boolean;
  min?: number;
  minMessage?: string;
  timer?: boolean;
}): (v: unknown, key: string) => number | null {
  return (v, key) => {
    if (v === null && options.nullable) return null;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      fail(`options.${key} must be a non-negative integer${options.nullable ? ' or null' : ''}, got ${String(v)}`);
    }
    const n = v as number;
    // Node fires longer timers after 1 ms instead.
    if (options.timer && n > MAX_TIMER_MS) {
      fail(`options.${key} must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${n}`);
    }
    if (options.min !== undefined && n < options.min)
      fail(options.minMessage ?? `options.${key} must be at least ${options.min}`);
    return n;
  };
}

function fn(nullable: boolean) {
  return (v: unknown, key: string) => {
    if (v === null && nullable) return null;
    if (typeof v !== 'function') fail(`options.${key} must be a function${nullable ? ' or null' : ''}`);
    return v;
  };
}

function bool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') fail(`options.${key} must be a boolean, got ${String(v)}`);
  return v as boolean;
}

function objectOf(valueCheck: (v: unknown) => boolean, message: string) {
  return (v: unknown) => {
    if (!isPlainObject(v) || !Object.values(v).every(valueCheck)) fail(message);
    return v;
  };
}

function kafkaConfig(v: unknown): KafkaConfig {
  if (v !== undefined && !isPlainObject(v)) fail('options.kafkaConfig must be an object of librdkafka settings');
  const user = (v ?? {}) as KafkaConfig;
  if (!user['metadata.broker.list'] && !user['bootstrap.servers']) {
    fail("options.kafkaConfig must set 'metadata.broker.list' (or 'bootstrap.servers')");
  }
  return { ...KAFKA_DEFAULTS, ...user, ...KAFKA_FORCED };
}

function filterLimits(v: unknown): FilterLimits {
  if (!isPlainObject(v)) fail('options.filterLimits must be an object');
  for (const [key, limit] of Object.entries(v as Record<string, unknown>)) {
    if (!Object.hasOwn(FILTER_LIMITS, key)) fail(`options.filterLimits.${key} is not a known limit`);
    if (!Number.isSafeInteger(limit) || (limit as number) < 1) {
      fail(`options.filterLimits.${key} must be a positive integer, got ${String(limit)}`);
    }
  }
  return { ...FILTER_LIMITS, ...(v as Partial<FilterLimits>) };
}

/** Every option, once. The keys of this table are the known option names. */
const OPTIONS: { readonly [K in keyof NormalizedOptions]-?: OptionSpec<NormalizedOptions[K]> } = {
  kafkaConfig: { default: {}, required: true, check: kafkaConfig },
  allowedTopics: {
    default: undefined,
    check: (v) => {
      if (typeof v === 'function') return v as AllowedTopics;
      if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) {
        fail('options.allowedTopics must be an array of topic names or a function of the request');
      }
      return v as AllowedTopics;
    },
  },
  lastEventIdTopics: {
    default: 'assigned',
    listed: true,
    check: (v) =>
      v === 'assigned' || v === 'any'
        ? v
        : fail(`options.lastEventIdTopics must be 'assigned' or 'any', got ${String(v)}`),
  },
  logger: {
    default: undefined as unknown as Logger,
    lazyDefault: libraryLogger,
    check: (v) => {
      const l = v as Logger | null;
      if (typeof l !== 'object' || l === null || typeof l.child !== 'function') {
        fail('options.logger must be a pino logger (an object with child(), info(), warn()…)');
      }
      return l as Logger;
    },
  },
  deserializer: { default: defaultDeserializer, check: fn(false) as (v: unknown, k: string) => Deserializer },
  filterer: { default: null, check: fn(true) as (v: unknown, k: string) => Filterer | null },
  filter: {
    default: null,
    check: (v) => {
      if (v === null || hasBrand(v, 'CompiledFilter') || Array.isArray(v) || isPlainObject(v)) {
        return v as FilterSpec | CompiledFilter | null;
      }
      return fail('options.filter must be a filter spec (array or object), a compiled filter, or null');
    },
  },
  queryFilters: { default: false, check: bool },
  filterLimits: { default: FILTER_LIMITS, check: filterLimits },
  useTimestampForId: { default: false, listed: true, check: bool },
  kafkaEventHandlers: {
    default: undefined,
    check: objectOf(
      (h) => typeof h === 'function',
      'options.kafkaEventHandlers must be an object of event name → function',
    ) as (v: unknown) => Record<string, (...args: unknown[]) => void>,
  },
  connectErrorHandler: { default: null, check: fn(true) as (v: unknown, k: string) => ((err: Error) => void) | null },
  headers: {
    default: {},
    check: (v) => {
      const headers = objectOf(
        (h) => typeof h === 'string',
        'options.headers must be an object of header name → string value',
      )(v) as Record<string, string>;
      // Checked here, not when the head is written: a bad header would fail every stream there.
      for (const [name, value] of Object.entries(headers)) {
        try {
          validateHeaderName(name);
          validateHeaderValue(name, value);
        } catch {
          fail(`options.headers has an invalid header: ${JSON.stringify(name)}`);
        }
      }
      return headers;
    },
  },
  heartbeatMs: {
    default: 15_000,
    listed: true,
    check: integer({
      nullable: true,
      timer: true,
      min: 1,
      minMessage: 'options.heartbeatMs must be at least 1, or null for no heartbeat',
    }),
  },
  retryMs: { default: null, listed: true, check: integer({ nullable: true, timer: true }) },
  signal: {
    default: undefined,
    check: (v) => (v instanceof AbortSignal ? v : fail('options.signal must be an AbortSignal')),
  },
  maxPartitions: {
    default: 1000,
    listed: true,
    check: (v, key) => integer({ nullable: true })(v, key) ?? Number.MAX_SAFE_INTEGER,
  },
  connectTimeoutMs: {
    default: 10_000,
    listed: true,
    check: integer({ nullable: false, timer: true, min: 1 }) as (v: unknown, k: string) => number,
  },
  unavailableRetryMs: {
    default: 5_000,
    listed: true,
    check: integer({ nullable: false, timer: true }) as (v: unknown, k: string) => number,
  },
  disableSSEFormatting: { default: false, listed: true, check: bool },
  historyMessages: {
    default: null,
    listed: true,
    // 0 asks for no history: the same as off.
    check: (v, key) => integer({ nullable: true })(v, key) || null,
  },
  maxDurationMs: { default: null, listed: true, check: integer({ nullable: true, timer: true }) },
  stalledWriteTimeoutMs: {
    default: 30_000,
    listed: true,
    check: integer({ nullable: true, timer: true, min: 1 }),
  },
  registry: {
    default: undefined,
    check: (v) =>
      hasBrand(v, 'StreamRegistry') ? (v as StreamRegistry) : fail('options.registry must be a StreamRegistry'),
  },
  sharedTail: {
    default: undefined,
    check: (v) =>
      v === null || hasBrand(v, 'SharedTail')
        ? (v as SharedTail | null)
        : fail('options.sharedTail must be a SharedTail or null'),
  },
};

/** The names of every option kafkaSse() accepts. */
export const OPTION_KEYS: readonly string[] = Object.freeze(Object.keys(OPTIONS));

/** Documented defaults of {@link KafkaSseOptions} (those that are plain values). */
export const DEFAULTS = Object.freeze(
  Object.fromEntries(
    Object.entries(OPTIONS)
      .filter(([, spec]) => (spec as OptionSpec<unknown>).listed)
      .map(([key, spec]) => [key, (spec as OptionSpec<unknown>).default]),
  ) as {
    readonly heartbeatMs: number;
    readonly retryMs: null;
    readonly maxPartitions: number;
    readonly connectTimeoutMs: number;
    readonly unavailableRetryMs: number;
    readonly useTimestampForId: boolean;
    readonly disableSSEFormatting: boolean;
    readonly historyMessages: null;
    readonly maxDurationMs: null;
    readonly stalledWriteTimeoutMs: number;
    readonly lastEventIdTopics: 'assigned';
  },
);

/** Validates options once, at entry, and fills in defaults. Throws ConfigurationError naming the option. */
export function normalizeOptions(input: KafkaSseOptions | undefined): NormalizedOptions {
  if (input !== undefined && !isPlainObject(input)) fail('options must be an object');
  const given = (input ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(OPTIONS, key)) fail(`options.${key} is not a known option`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [string, OptionSpec<unknown>][]) {
    const value = given[key];
    if (value !== undefined || spec.required) out[key] = spec.check(value, key);
    else out[key] = spec.lazyDefault ? spec.lazyDefault() : spec.default;
  }
  return out as unknown as NormalizedOptions;
}

/** Options normalized for the object they came from, and what that object held then. */
const normalizedByInput = new WeakMap<object, { held: unknown[]; normalized: NormalizedOptions }>();

/**
 * What an options object holds, one level down: its keys and values, and the
 * entries of each plain object or array among them (kafkaConfig, headers,
 * allowedTopics…), compared by reference. Two equal lists mean nothing a
 * request could see has changed.
 */
function heldBy(input: Record<string, unknown>): unknown[] {
  const out: unknown[] = [];
  for (const key of Object.keys(input)) {
    const v = input[key];
    out.push(key, v);
    if (Array.isArray(v)) out.push(v.length, ...v);
    else if (isPlainObject(v)) {
      const inner = v as Record<string, unknown>;
      const keys = Object.keys(inner);
      out.push(keys.length);
      for (const k of keys) out.push(k, inner[k]);
    }
  }
  return out;
}

function sameHeld(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * normalizeOptions(), once per options object: a server passes the same
 * object to every request, and each stream kept its own normalized copy
 * (1.8 KB, a tenth of an idle stream's memory). The copy is made again when
 * anything in the object, or in a plain object or array it holds, was
 * replaced since.
 */
export function normalizeOptionsOnce(input: KafkaSseOptions | undefined): NormalizedOptions {
  if (input === undefined || !isPlainObject(input)) return normalizeOptions(input);
  const held = heldBy(input as Record<string, unknown>);
  const cached = normalizedByInput.get(input);
  if (cached !== undefined && sameHeld(cached.held, held)) return cached.normalized;
  const normalized = normalizeOptions(input);
  normalizedByInput.set(input, { held, normalized });
  return normalized;
}
