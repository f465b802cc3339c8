// Root hooks for every mocha run (registered by `require` in .mocharc.json).
// Helpers register their own teardown here when first loaded, so a unit-only
// run never loads node-rdkafka just to close it.

type Teardown = () => void | Promise<void>;

const teardowns = new Set<Teardown>();

/** Runs `fn` once after all tests (in the root after-all hook), after later-registered teardowns. */
export function registerTeardown(fn: Teardown): void {
  teardowns.add(fn);
}

/** Mocha root hooks: release shared Kafka clients, servers left open, and so on. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    const errors: unknown[] = [];
    // Last registered first, like a stack of `finally` blocks.
    for (const fn of [...teardowns].reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'several test teardowns failed');
  },
};
