// `kafka-sse-bridge/thread`: what an HTTP server in a worker thread imports to
// stream through a stream host on the main thread (createStreamHost). It does
// not load node-rdkafka.
export { BrokerUnavailableError, ConfigurationError, KafkaSseError } from './lib/errors.ts';
export { connectStreamHost, type ThreadStream } from './lib/stream-thread.ts';
