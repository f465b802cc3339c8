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
const fs = require('node:fs');
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

/** Spec reporter whose final output line is `tests: N passed, N failed, N skipped`. */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      const line = `tests: ${passes} passed, ${failures} failed, ${pending} skipped`;
      if (process.env.TEST_SUMMARY_FILE) fs.writeFileSync(process.env.TEST_SUMMARY_FILE, `${line}\n`);
      Mocha.reporters.Base.consoleLog(line);
    });
  }
}

module.exports = SummaryReporter;
