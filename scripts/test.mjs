#!/usr/bin/env node
// What `npm test` runs: lint, typecheck, build, then mocha over the unit and
// integration tests against a Kafka broker, then mocha over the cluster suite
// against a three-node cluster.
//
//   node scripts/test.mjs [--only unit|integration|cluster] [--no-cluster] [--no-static] [mocha args…]
//
//   --only unit|integration|cluster   run one suite (unit runs need no broker)
//   --no-cluster                      skip the cluster suite (test/cluster)
//   --no-static                       skip lint, typecheck and build (dist/ must already exist)
//   anything else                     passed to mocha, e.g. --grep resume
//
// The broker: KAFKA_BROKERS if set, else the local one from scripts/kafka.mjs,
// started here when nothing answers and stopped afterwards only if this run
// started it. The cluster (scripts/kafka-cluster.mjs) likewise, in a second
// mocha run once the first is over and its broker stopped, so the three JVMs
// never share the machine with the integration tests. Each run's reporter
// prints `tests: N passed, N failed, N skipped` (test/helpers/summary-reporter.cjs);
// with two runs, one more line counting both is printed last. The last line is
// what CI parses, so nothing is printed after it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokerSettings, start, stop } from './kafka.mjs';
import { clusterPortsUsable, clusterSettings, startCluster, stopCluster } from './kafka-cluster.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = {
  biome: path.join(ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'),
  tsc: path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
  mocha: path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'),
};
const SUITES = {
  unit: 'test/unit/**/*.test.ts',
  integration: 'test/integration/**/*.test.ts',
  cluster: 'test/cluster/**/*.test.ts',
};
/** How long mocha may take to exit after printing its summary, in ms. */
const EXIT_GRACE_MS = Number(process.env.TEST_EXIT_GRACE_MS ?? 10_000);
/**
 * How long past its own timeout a test or hook may run before the watchdog
 * kills mocha, in ms. Mocha stops an asynchronous test at its timeout; one that
 * is still running this much later is in a synchronous loop (mocha's timer
 * never fires), and left alone it would run until CI gives up on the job.
 */
const STUCK_GRACE_MS = Number(process.env.TEST_STUCK_GRACE_MS ?? 120_000);
/** The limit for a test whose timeout is disabled (`this.timeout(0)`), in ms. */
const NO_TIMEOUT_LIMIT_MS = 20 * 60_000;
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
  const opts = { only: undefined, staticChecks: true, cluster: true, mochaArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-static') opts.staticChecks = false;
    else if (arg === '--no-cluster') opts.cluster = false;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!(value in SUITES)) usage(`--only expects unit, integration or cluster, got ${value ?? 'nothing'}`);
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
 * With `progressFile` too, the whole group is killed when the test or hook the
 * reporter says is running has run STUCK_GRACE_MS past its timeout; `stuck`
 * then holds what it was and the counts so far.
 */
function run(bin, args, { env = process.env, summaryFile, progressFile } = {}) {
  return new Promise((resolve) => {
    const group = summaryFile !== undefined && process.platform !== 'win32';
    const proc = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env, stdio: 'inherit', detached: group });
    const child = { proc, group, hung: false, stuck: undefined };
    current = child;
    let watch;
    let killTimer;
    if (summaryFile !== undefined) {
      watch = setInterval(() => {
        if (killTimer || child.stuck) return;
        if (fs.existsSync(summaryFile)) {
          killTimer = setTimeout(() => {
            child.hung = true;
            signalChild(child, 'SIGKILL');
          }, EXIT_GRACE_MS);
          return;
        }
        const stuck = progressFile && stuckRunnable(progressFile);
        if (stuck) {
          child.stuck = stuck;
          signalChild(child, 'SIGKILL');
        }
      }, 200);
    }
    const done = (code) => {
      clearInterval(watch);
      clearTimeout(killTimer);
      current = undefined;
      resolve({ code, hung: child.hung, stuck: child.stuck });
    };
    proc.on('error', (err) => {
      console.error(`test: could not run ${bin}: ${err.message}`);
      done(1);
    });
    proc.on('exit', (code, signal) => done(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

/** The reporter's progress when the test or hook it names has overrun its timeout by STUCK_GRACE_MS, else undefined. */
function stuckRunnable(progressFile) {
  let state;
  try {
    state = JSON.parse(fs.readFileSync(progressFile, 'utf8'));
  } catch {
    return undefined; // Not written yet, or mocha is between tests.
  }
  if (!state.title) return undefined;
  const ranMs = Date.now() - state.startedAt;
  const limitMs = (state.timeoutMs > 0 ? state.timeoutMs : NO_TIMEOUT_LIMIT_MS) + STUCK_GRACE_MS;
  return ranMs > limitMs ? { ...state, ranMs } : undefined;
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
  const suites = opts.only ? [opts.only] : Object.keys(SUITES).filter((k) => k !== 'cluster' || opts.cluster);
  const ciArgs = process.env.CI && process.env.CI !== 'false' ? ['--forbid-only'] : [];
  const ownReporter = !opts.mochaArgs.some((a) => a === '-R' || a.startsWith('--reporter'));
  const results = [];

  // First run: unit and integration tests, against the single broker.
  const mainSpecs = suites.filter((k) => k !== 'cluster').map((k) => SUITES[k]);
  if (mainSpecs.length > 0) {
    let startedBroker;
    if (suites.includes('integration')) {
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
    results.push(await runMocha(mainSpecs, env, { ciArgs, mochaArgs: opts.mochaArgs, ownReporter }));
    // Stopped before the cluster starts: the cluster run gets the machine to itself.
    if (startedBroker) await stop(startedBroker, { quiet: true }).catch(() => {});
    if (interrupted) return signalExitCode();
  }

  // Second run: the cluster suite, against the three-node cluster, started
  // only now so that its JVMs do not share the machine with the run above.
  if (suites.includes('cluster')) {
    results.push(await runClusterSuite(env, { ciArgs, mochaArgs: opts.mochaArgs, ownReporter }));
  }

  let code = results.find((r) => r.code !== 0)?.code ?? 0;
  if (results.length > 1 && ownReporter) {
    // One line for CI counts every suite together, and stays the last line.
    const total = results.reduce(
      (t, r) => ({ passed: t.passed + r.passed, failed: t.failed + r.failed, skipped: t.skipped + r.skipped }),
      { passed: 0, failed: 0, skipped: 0 },
    );
    console.log(`\ntests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
    if (total.failed > 0 && code === 0) code = 1;
  }
  if (interrupted && code === 0) return signalExitCode();
  return code;
}

/** The counts of a summary line (`tests: N passed, N failed, N skipped`). */
function parseSummary(line) {
  const m = /tests: (\d+) passed, (\d+) failed, (\d+) skipped/.exec(line ?? '');
  return m ? { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3]) } : undefined;
}

/**
 * One mocha run over `specs`. Resolves with its exit code and its counts; a
 * run that died before reporting counts as one failure, a run that hung after
 * reporting is red, and either way the summary stays the last line printed.
 */
async function runMocha(specs, env, { ciArgs, mochaArgs, ownReporter }) {
  const summaryFile = path.join(os.tmpdir(), `kafka-sse-bridge-tests-${process.pid}.txt`);
  const progressFile = path.join(os.tmpdir(), `kafka-sse-bridge-progress-${process.pid}.json`);
  fs.rmSync(summaryFile, { force: true });
  fs.rmSync(progressFile, { force: true });
  console.log('');
  const mocha = await run(BIN.mocha, ['--config', '.mocharc.json', ...ciArgs, ...specs, ...mochaArgs], {
    env: { ...env, TEST_SUMMARY_FILE: summaryFile, TEST_PROGRESS_FILE: progressFile },
    summaryFile,
    progressFile,
  });
  let code = mocha.code;
  const line = fs.existsSync(summaryFile) ? fs.readFileSync(summaryFile, 'utf8').trim() : undefined;
  fs.rmSync(summaryFile, { force: true });
  fs.rmSync(progressFile, { force: true });
  fs.rmSync(`${progressFile}.tmp`, { force: true });
  let counts = parseSummary(line) ?? { passed: 0, failed: 0, skipped: 0 };
  if (mocha.stuck) {
    // The counts so far, the stuck one failed; the summary stays the last line.
    const { title, ranMs, timeoutMs, passes, failures, pending } = mocha.stuck;
    const limit = timeoutMs > 0 ? `its timeout of ${timeoutMs / 1000} s` : 'no timeout';
    console.error(
      `\ntest: "${title}" was still running after ${Math.round(ranMs / 1000)} s (${limit}): ` +
        'a synchronous loop that mocha cannot interrupt; killed the run.',
    );
    counts = { passed: passes, failed: failures + 1, skipped: pending };
    console.log(`tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
    code = 1;
  } else if (mocha.hung) {
    // Say why the run is red, then repeat the summary so it stays the last line.
    console.error(
      `\ntest: mocha did not exit within ${EXIT_GRACE_MS} ms of finishing (a client or server left open?): killed.`,
    );
    console.log(line);
    code = 1;
  } else if (ownReporter && line === undefined) {
    // Mocha dies before its reporter runs when a test file fails to load; keep
    // the last line parseable (and the run red) all the same.
    console.log(`test: mocha exited with code ${code} before reporting results`);
    console.log('tests: 0 passed, 1 failed, 0 skipped');
    counts = { passed: 0, failed: 1, skipped: 0 };
    if (code === 0) code = 1;
  }
  return { code, ...counts };
}

/** Starts the cluster unless it runs, runs the cluster suite, stops the cluster if this run started it. */
async function runClusterSuite(env, mochaOpts) {
  let settings;
  let started = false;
  try {
    settings = await clusterSettingsForRun();
    const result = await startCluster(settings, { quiet: true, timeoutMs: 180_000 });
    started = result.started;
    console.log(`\n> Kafka cluster: ${settings.brokers} (${started ? 'started for this run' : 'already running'})`);
  } catch (err) {
    console.error(`\ntest: no Kafka cluster for the cluster tests: ${err.message}`);
    console.error('Start one with `npm run kafka:cluster:start`, or skip the suite with `npm test -- --no-cluster`.');
    console.log('tests: 0 passed, 1 failed, 0 skipped');
    return { code: 1, passed: 0, failed: 1, skipped: 0 };
  }
  const clusterEnv = {
    ...env,
    KAFKA_CLUSTER_BROKERS: settings.brokers,
    KAFKA_CLUSTER_PORT: String(settings.nodes[0].port),
    KAFKA_CLUSTER_HOME_DIR: settings.home,
  };
  try {
    if (interrupted) return { code: signalExitCode(), passed: 0, failed: 0, skipped: 0 };
    return await runMocha([SUITES.cluster], clusterEnv, mochaOpts);
  } finally {
    if (started) await stopCluster(settings, { quiet: true }).catch(() => {});
  }
}

/**
 * The cluster's settings for this run: the default ports, unless they are
 * taken by something else (a cluster left by an earlier, deleted clone, say);
 * then the first free block of ports from 19500 up, with its own data directory.
 */
async function clusterSettingsForRun() {
  const settings = clusterSettings();
  if (process.env.KAFKA_CLUSTER_PORT || (await clusterPortsUsable(settings))) return settings;
  for (let base = 19500; base < 29000; base += 10) {
    const candidate = clusterSettings({
      ...process.env,
      KAFKA_CLUSTER_PORT: String(base),
      KAFKA_CLUSTER_HOME_DIR: path.join(ROOT, '.kafka', `cluster-port-${base}`),
    });
    if (await clusterPortsUsable(candidate)) {
      console.log(
        `\n> Kafka cluster: ports from ${settings.nodes[0].port} are taken; this run's cluster uses ${base}.`,
      );
      return candidate;
    }
  }
  throw new Error('no free block of ports for the cluster between 19500 and 29000');
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
