// What a stream reads from: a consumer of its own, or the shared tail's log.
// The session holds one source, and swaps it when the shared tail can no
// longer serve the stream; it never asks which kind it has.
import type { Watermarks } from './consumer.ts';
import type { KafkaSseError } from './errors.ts';
import type { SharedMessage } from './pipeline.ts';
import type { PositionTracker } from './position-tracker.ts';
import type { LostRange } from './positions.ts';
import type { KafkaMessage } from './types.ts';

/** What a source delivers to: the stream's session. */
export interface SourceSink {
  /**
   * One message. `index` is its partition's index in the stream's positions;
   * `shared` and `inStep` as in StreamPipeline#frame.
   */
  deliver(message: KafkaMessage, index: number, shared?: SharedMessage, inStep?: boolean): void;
  /** The source handed over a batch: write it now. */
  flush(): void;
  /** Retention removed messages the source was about to deliver. */
  lost(range: LostRange): void;
  /** The source stopped for good: end the stream with this error (the client resumes with its id). */
  fail(err: KafkaSseError): void;
  /** The source cannot serve this stream any more, but a consumer of its own from the stream's positions can. */
  handOff(reason: string): void;
}

/** A stream's supply of messages. */
export interface StreamSource {
  /** Starts delivering to `sink`; `positions` is the stream's tracker (where it stands). */
  start(sink: SourceSink, positions: PositionTracker): void;
  /** The client's buffer is full: deliver nothing until resume(), losing nothing. */
  pause(): void;
  /** The client drained: deliver again from where the stream stands. */
  resume(): void;
  /** The last partition ends the source learned of, without a request. */
  cachedWatermarks(topic: string, partition: number): Watermarks | undefined;
  /** Releases what the source holds (consumer, hold on the tail). Idempotent; resolves when released. */
  close(): Promise<void>;
}
