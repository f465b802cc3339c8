#!/usr/bin/env node
// What `npm test` runs: lint, typecheck, build, then one mocha run over the unit
// and integration tests against a Kafka broker.
//
//   node scripts/test.mjs [--only unit|integration] [--no-static] [mocha args…]
//
//   --only unit|integration   run one suite (unit runs need no broker)
//   --no-static               skip lint, typecheck and build (dist/ must already exist)
//   anything else             passed to mocha, e.g. --grep resume
//
// The broker: KAFKA_BROKERS if set, else the local one from scripts/kafka.mjs,
// started here when nothing answers and stopped afterwards only if this run
// started it. Mocha's last line (`tests: N passed, N failed, N skipped`, from
// test/helpers/summary-reporter.cjs) is what CI parses, so nothing is printed
// after mocha exits.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokerSettings, start, stop } from './kafka.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = {
  biome: path.join(ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'),
  tsc: path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
  mocha: path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'),
};
const SUITES = {
  unit: 'test/unit/**/*.test.ts',
  integration: 'test/integration/**/*.test.ts',
};
/** How long mocha may take to exit after printing its summary, in ms. */
const EXIT_GRACE_MS = Number(process.env.TEST_EXIT_GRACE_MS ?? 10_000);
const STATIC_STEPS = [
  {
    name: 'lock-file platforms',
    bin: path.join(ROOT, 'scripts', 'lock-platforms.mjs'),
    args: [],
    hint: '`npm run lock:fix` restores the entries.',
  },
  { name: 'lint', bin: BIN.biome, args: ['check', '.'], hint: '`npm run format` fixes formatting and import order.' },
  { name: 'typecheck', bin: BIN.tsc, args: ['-p', 'tsconfig.json', '--noEmit'] },
  { name: 'build', bin: BIN.tsc, args: ['-p', 'tsconfig.build.json'] },
];

function usage(message) {
  console.error(`test: ${message}\nusage: node scripts/test.mjs [--only unit|integration] [--no-static] [mocha args…]`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { only: undefined, staticChecks: true, mochaArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-static') opts.staticChecks = false;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!(value in SUITES)) usage(`--only expects unit or integration, got ${value ?? 'nothing'}`);
      opts.only = value;
    } else opts.mochaArgs.push(arg);
  }
  return opts;
}

// A Ctrl-C reaches the whole process group; SIGTERM (CI cancelling) reaches only
// us. Either way the current child is told, and we stay alive long enough to
// stop a broker this run started.
let current;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    if (current) signalChild(current, signal);
  });
}

/** Signals a child and, when it leads its own process group, everything it started. */
function signalChild(child, signal) {
  try {
    if (child.group) process.kill(-child.proc.pid, signal);
    else child.proc.kill(signal);
  } catch {
    // Already gone.
  }
}

/**
 * Runs `node <bin> …args` with inherited stdio; resolves with its exit code.
 * With `summaryFile`, the child runs in its own process group and, once the
 * reporter has written the summary, gets EXIT_GRACE_MS to exit before the
 * whole group is killed: a native Kafka handle left open can hang the process
 * inside process.exit(), after every result is already printed.
 */
function run(bin, args, { env = process.env, summaryFile } = {}) {
  return new Promise((resolve) => {
    const group = summaryFile !== undefined && process.platform !== 'win32';
    const proc = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env, stdio: 'inherit', detached: group });
    const child = { proc, group, hung: false };
    current = child;
    let watch;
    let killTimer;
    if (summaryFile !== undefined) {
      watch = setInterval(() => {
        if (killTimer || !fs.existsSync(summaryFile)) return;
        killTimer = setTimeout(() => {
          child.hung = true;
          signalChild(child, 'SIGKILL');
        }, EXIT_GRACE_MS);
      }, 200);
    }
    const done = (code) => {
      clearInterval(watch);
      clearTimeout(killTimer);
      current = undefined;
      resolve({ code, hung: child.hung });
    };
    proc.on('error', (err) => {
      console.error(`test: could not run ${bin}: ${err.message}`);
      done(1);
    });
    proc.on('exit', (code, signal) => done(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

function signalExitCode() {
  return 128 + (os.constants.signals[interrupted] ?? 0);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  if (opts.staticChecks) {
    for (const step of STATIC_STEPS) {
      console.log(`\n> ${step.name}: ${path.basename(step.bin)} ${step.args.join(' ')}`);
      const { code } = await run(step.bin, step.args);
      if (interrupted) return signalExitCode();
      if (code !== 0) {
        console.error(
          `\ntest: ${step.name} failed (exit code ${code}); tests not run.${step.hint ? ` ${step.hint}` : ''}`,
        );
        return code;
      }
    }
  }

  const env = { ...process.env };
  let startedBroker;
  if (opts.only !== 'unit') {
    if (env.KAFKA_BROKERS) {
      console.log(`\n> Kafka: ${env.KAFKA_BROKERS} (KAFKA_BROKERS)`);
    } else {
      try {
        const settings = brokerSettings();
        const result = await start(settings, { quiet: true });
        env.KAFKA_BROKERS = result.brokers;
        if (result.started) startedBroker = settings;
        console.log(`\n> Kafka: ${result.brokers} (${result.started ? 'started for this run' : 'already running'})`);
      } catch (err) {
        console.error(`\ntest: no Kafka broker for the integration tests: ${err.message}`);
        console.error(
          'Start one with `npm run kafka:start`, point KAFKA_BROKERS at a cluster, or run `npm test -- --only unit`.',
        );
        return 1;
      }
    }
    if (interrupted) {
      if (startedBroker) await stop(startedBroker, { quiet: true }).catch(() => {});
      return signalExitCode();
    }
  }

  const summaryFile = path.join(os.tmpdir(), `kafka-sse-bridge-tests-${process.pid}.txt`);
  fs.rmSync(summaryFile, { force: true });
  env.TEST_SUMMARY_FILE = summaryFile;
  const specs = opts.only ? [SUITES[opts.only]] : [SUITES.unit, SUITES.integration];
  // A stray .only must not silently shrink a CI run to one test.
  const ciArgs = process.env.CI && process.env.CI !== 'false' ? ['--forbid-only'] : [];
  console.log('');
  const mocha = await run(BIN.mocha, ['--config', '.mocharc.json', ...ciArgs, ...specs, ...opts.mochaArgs], {
    env,
    summaryFile,
  });
  let code = mocha.code;

  if (startedBroker) await stop(startedBroker, { quiet: true }).catch(() => {});

  const ownReporter = !opts.mochaArgs.some((a) => a === '-R' || a.startsWith('--reporter'));
  if (mocha.hung) {
    // Say why the run is red, then repeat the summary so it stays the last line.
    console.error(
      `\ntest: mocha did not exit within ${EXIT_GRACE_MS} ms of finishing (a client or server left open?): killed.`,
    );
    console.log(fs.readFileSync(summaryFile, 'utf8').trim());
    code = 1;
  } else if (ownReporter && !fs.existsSync(summaryFile)) {
    // Mocha dies before its reporter runs when a test file fails to load; keep
    // the last line parseable (and the run red) all the same.
    console.log(`test: mocha exited with code ${code} before reporting results`);
    console.log('tests: 0 passed, 1 failed, 0 skipped');
    if (code === 0) code = 1;
  }
  fs.rmSync(summaryFile, { force: true });
  if (interrupted && code === 0) return signalExitCode();
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
