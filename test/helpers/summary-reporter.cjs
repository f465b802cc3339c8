'use strict';
// Mocha's Spec reporter plus one machine-readable last line:
//
//   tests: N passed, N failed, N skipped
//
// CI parses that line from the end of `npm test`, so it is printed after Spec's
// epilogue (Spec registers its 'end' listener first, in its constructor) and
// scripts/test.mjs prints nothing after mocha exits.
//
// When TEST_SUMMARY_FILE is set, the same line is also written there, so
// scripts/test.mjs can tell a run that ended from one that crashed while loading.
//
// When TEST_PROGRESS_FILE is set, the test or hook now running is written there
// (its title, when it began, its timeout as it stands now, the counts so far)
// at every start and end and once a second, for scripts/test.mjs's watchdog: a
// synchronous loop never yields to mocha's timeout timer, so only a process
// outside can stop it.
const fs = require('node:fs');
const Mocha = require('mocha');

const { EVENT_RUN_END, EVENT_TEST_BEGIN, EVENT_TEST_END, EVENT_HOOK_BEGIN, EVENT_HOOK_END } = Mocha.Runner.constants;

/** Spec reporter whose final output line is `tests: N passed, N failed, N skipped`. */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const progressFile = process.env.TEST_PROGRESS_FILE;
    if (progressFile) this.#reportProgress(runner, progressFile);
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      const line = `tests: ${passes} passed, ${failures} failed, ${pending} skipped`;
      if (process.env.TEST_SUMMARY_FILE) fs.writeFileSync(process.env.TEST_SUMMARY_FILE, `${line}\n`);
      Mocha.reporters.Base.consoleLog(line);
    });
  }

  #reportProgress(runner, file) {
    let running;
    let startedAt = 0;
    const write = () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      const state = {
        title: running ? running.fullTitle() : null,
        startedAt,
        timeoutMs: running ? running.timeout() : 0,
        passes,
        failures,
        pending,
      };
      try {
        fs.writeFileSync(`${file}.tmp`, JSON.stringify(state));
        fs.renameSync(`${file}.tmp`, file);
      } catch {
        // The watchdog reads the last complete state; a missed beat is harmless.
      }
    };
    const begin = (runnable) => {
      running = runnable;
      startedAt = Date.now();
      write();
    };
    const end = () => {
      running = undefined;
      write();
    };
    runner.on(EVENT_TEST_BEGIN, begin);
    runner.on(EVENT_HOOK_BEGIN, begin);
    runner.on(EVENT_TEST_END, end);
    runner.on(EVENT_HOOK_END, end);
    const beat = setInterval(write, 1000);
    beat.unref();
    runner.once(EVENT_RUN_END, () => {
      clearInterval(beat);
      end();
    });
  }
}

module.exports = SummaryReporter;
