// The types users' hooks and options are written against. A leaf module: it
// imports nothing at run time, so every other module can depend on it.
import type { IncomingMessage } from 'node:http';
import type { KafkaMessage } from './consumer.ts';

export type { KafkaMessage };

/** The subset of a pino logger kafkaSse uses; any pino logger fits. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  trace(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

/** A message after deserialization: the node-rdkafka message with `.message` set. */
export type DeserializedMessage = KafkaMessage & { message?: unknown };

/** Receives the node-rdkafka message and returns it with `.message` set. Throwing skips the message. */
export type Deserializer = (kafkaMessage: KafkaMessage) => DeserializedMessage;

/**
 * Receives the deserialized message; a truthy return keeps it. It may edit
 * `.message` (KafkaSSE's way to redact a field): the edit is what the client
 * receives. Throwing ends the stream with an error event.
 */
export type Filterer = (kafkaMessage: DeserializedMessage) => unknown;

/** Topics a request may read: a list, or a function of the request returning one (possibly async). */
export type AllowedTopics =
  | readonly string[]
  | ((req: IncomingMessage) => readonly string[] | Promise<readonly string[]>);

/** Wire format of a stream. */
export type StreamMode = 'sse' | 'ndjson';
