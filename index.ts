// The public surface: re-exports only.
import { kafkaSse } from './lib/kafka-sse.ts';

export { remoteAddressKey } from './lib/client-key.ts';
export type { BridgeConsumer, KafkaConfig, KafkaMessage, TopicPartitionOffset, Watermarks } from './lib/consumer.ts';
export { openConsumerCount } from './lib/consumer.ts';
export { defaultDeserializer } from './lib/deserializer.ts';
export {
  AllowedTopicsMisconfiguredError,
  BrokerUnavailableError,
  ConfigurationError,
  ERROR_CODES,
  type ErrorCode,
  FilterError,
  InvalidAssignmentError,
  InvalidFilterError,
  InvalidLastEventIdError,
  InvalidTimestampError,
  KafkaConsumeError,
  KafkaSseError,
  type PublicError,
  RateLimitedError,
  TooManyPartitionsError,
  TooManyStreamsError,
  TopicNotAvailableError,
} from './lib/errors.ts';
export { type KafkaSseResponseOptions, kafkaSseResponse } from './lib/fetch.ts';
export { parseFilterQuery } from './lib/filter-query.ts';
export {
  FILTER_LIMITS,
  type FieldFilter,
  type FilterLimits,
  type FilterMatcher,
  type FilterRange,
  type FilterSpec,
} from './lib/filter-spec.ts';
export { CompiledFilter, compileFilter } from './lib/filters.ts';
export { KAFKA_DEFAULTS, KAFKA_FORCED } from './lib/kafka-defaults.ts';
export { kafkaSse } from './lib/kafka-sse.ts';
export { type Admission, StreamLimiter, type StreamLimiterOptions } from './lib/limits.ts';
export { type BridgeMetrics, type MetricsOptions, OTHER_TOPIC, registerMetrics } from './lib/metrics.ts';
export { DEFAULTS, type KafkaSseOptions, OPTION_KEYS } from './lib/options.ts';
export type { Assignments, LostRange, PartitionAssignment } from './lib/positions.ts';
export {
  type EndReason,
  type PartitionProgress,
  StreamRegistry,
  type StreamRegistryEvents,
  type StreamSnapshot,
} from './lib/registry.ts';
export {
  defaultSharedTail,
  SHARED_TAIL_DEFAULTS,
  SharedTail,
  type SharedTailOptions,
} from './lib/shared-tail.ts';
export { parseSince } from './lib/since.ts';
export type {
  AllowedTopics,
  DeserializedMessage,
  Deserializer,
  Filterer,
  Logger,
  StreamMode,
} from './lib/types.ts';

/** KafkaSSE's users import the function as the module's default export. */
export default kafkaSse;
