// The stall watchdog: notices a consumer whose flowing loop stopped without a
// word while its partitions' ends moved on, and confirms it with the cluster.
import type { BridgeConsumer } from './consumer.ts';
import { poolLoad } from './pool-gate.ts';

/**
 * How often a stall check looks. node-rdkafka's flowing loop stops for good on
 * some errors (e.g. all brokers down during a broker restart) without telling
 * anyone until disconnect; librdkafka keeps fetching meanwhile, so "the
 * partition's end moved past us and nothing arrived for two checks" means the
 * consumer is stuck.
 */
export const STALL_CHECK_MS = 5000;

/** How long a stall's confirmation lookup may take (it holds a libuv pool thread meanwhile). */
const CONFIRM_TIMEOUT_MS = 1000;

/** True while some stream's stall is being confirmed (one at a time per process). */
let confirmationInFlight = false;

/**
 * Calls `onStall` (once) when `consumer` made no callback for two checks in a
 * row while some partition's cached end is past `positions()` and `paused()`
 * is false, looking every `everyMs`, and the cluster confirms it: the
 * partitions' ends, asked afresh, are still past the positions and still
 * nothing arrived. A lookup that fails means the cluster is busy moving
 * leaders or unreachable (a frozen leader held a consumer ~15 s with nothing
 * delivered in the cluster suite), not that the consumer is stuck: the count
 * starts over. Returns the timer (unref'd), for clearInterval.
 */
export function watchForStall(
  consumer: BridgeConsumer,
  positions: () => readonly { topic: string; partition: number; nextOffset: number }[],
  paused: () => boolean,
  onStall: () => void,
  everyMs: number = STALL_CHECK_MS,
): NodeJS.Timeout {
  let seen = consumer.deliveries();
  let suspect = 0;
  let confirming = false;
  const behindOf = () =>
    positions().filter((p) => {
      const marks = consumer.cachedWatermarks(p.topic, p.partition);
      return marks !== undefined && marks.high > p.nextOffset;
    });
  const timer = setInterval(() => {
    if (confirming) return;
    const now = consumer.deliveries();
    const behind = behindOf();
    suspect = now === seen && behind.length > 0 && !paused() ? suspect + 1 : 0;
    seen = now;
    // One confirmation at a time in the process, short, and only while no
    // stream setup waits for the thread pool: during an outage every stream
    // is suspect, and their lookups must not keep new requests from their answer.
    if (suspect < 2 || confirmationInFlight || poolLoad().waiting > 0) return;
    confirming = true;
    confirmationInFlight = true;
    const timeoutMs = Math.min(everyMs, CONFIRM_TIMEOUT_MS);
    Promise.all(behind.map((p) => consumer.watermarks(p.topic, p.partition, timeoutMs))).then(
      (marks) => {
        confirming = false;
        confirmationInFlight = false;
        const still = marks.some((m, i) => m.high > (behind[i] as { nextOffset: number }).nextOffset);
        if (still && consumer.deliveries() === seen && !paused()) {
          clearInterval(timer);
          onStall();
        } else {
          suspect = 0;
        }
      },
      () => {
        confirming = false;
        confirmationInFlight = false;
        suspect = 0;
      },
    );
  }, everyMs);
  timer.unref();
  return timer;
}
