// A gate in front of libuv's thread pool for node-rdkafka's blocking calls.

/**
 * libuv's thread pool: node-rdkafka's connect, metadata, watermark,
 * offsets-for-times and disconnect calls each hold one of its threads until
 * librdkafka answers, which during a broker outage is the whole timeout.
 */
const POOL_SIZE = Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4);

/**
 * At most this many such calls run at once, so that fs, dns, crypto and zlib
 * always keep a thread: with all four taken, an unrelated file read waited
 * 18 s during an outage. The rest wait their turn, within their own timeout.
 */
export const MAX_POOL_CALLS = Math.max(1, POOL_SIZE - 1);

/** Admits at most MAX_POOL_CALLS calls at once, in arrival order. */
class PoolGate {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /**
   * Runs `call` with the time left of `timeoutMs` once a slot is free; rejects
   * without calling it when no slot frees in time. `timeoutMs` null: wait as long as it takes.
   */
  async run<T>(timeoutMs: number | null, call: (remainingMs: number) => Promise<T>): Promise<T> {
    const started = Date.now();
    if (this.#running >= MAX_POOL_CALLS) await this.#wait(timeoutMs);
    this.#running++;
    try {
      return await call(timeoutMs === null ? 0 : Math.max(1, timeoutMs - (Date.now() - started)));
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  #wait(timeoutMs: number | null): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const admit = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.#waiting.push(admit);
      if (timeoutMs !== null) {
        timer = setTimeout(() => {
          const i = this.#waiting.indexOf(admit);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(
            new Error(`no Kafka request slot freed within ${timeoutMs} ms (libuv pool busy: brokers unreachable?)`),
          );
        }, timeoutMs);
        timer.unref();
      }
    });
  }

  /** Calls running and waiting now (for tests and stats). */
  get load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }
}

/** The one gate of this process (libuv's pool is per process). */
export const poolGate = new PoolGate();

/** Kafka requests on libuv's pool now: running (at most MAX_POOL_CALLS) and waiting for a slot. */
export function poolLoad(): { running: number; waiting: number } {
  return poolGate.load;
}
