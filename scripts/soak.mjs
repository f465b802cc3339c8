#!/usr/bin/env node
// The long versions of the reliability and hostile-input tests (issue 6), and
// a table of what they measured.
//
//   npm run soak                         defaults: about 12 minutes on 2 cores
//   SOAK_CHURN_CYCLES=10000 npm run soak any size on its own (see below)
//   npm run soak -- --grep churn         mocha arguments pass through
//
// Sizes (env, with their soak defaults; `npm test` runs the same tests small):
//   SOAK_RESTART_CLIENTS=12 SOAK_RESTART_ROUNDS=2 SOAK_RESTART_RATE=200
//   SOAK_CHURN_CYCLES=4000 SOAK_CHURN_CONCURRENCY=16
//   SOAK_SLOW_BULK_MB=120 SOAK_SLOW_SECONDS=60
//   SOAK_PROPERTY_RUNS=150000 (per parser) SOAK_HOSTILE_HTTP_RUNS=8000 (per input) SOAK_ACCESS_RUNS=2000
//   RUN_KNOWN_BUGS=1 also runs the tests of library bugs not fixed yet (they may hang or crash).
//
// The broker: KAFKA_BROKERS if set, else the local one (started here if
// nothing answers, stopped afterwards only then). The broker-restart test
// always uses a private broker of its own.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokerSettings, start, stop } from './kafka.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
const SPECS = [
  'test/unit/*property*.test.ts',
  'test/integration/reliability*.test.ts',
  'test/integration/hostile*.test.ts',
];

function run(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit' });
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => child.kill(signal));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function table(rows) {
  const lines = [];
  for (const row of rows) {
    const { section, at, ...values } = row;
    lines.push(`\n${section}`);
    const width = Math.max(...Object.keys(values).map((k) => k.length));
    for (const [k, v] of Object.entries(values)) lines.push(`  ${k.padEnd(width)}  ${v}`);
  }
  return lines.join('\n');
}

async function main() {
  const env = { ...process.env, SOAK: '1' };
  let started;
  if (!env.KAFKA_BROKERS) {
    const settings = brokerSettings();
    const result = await start(settings, { quiet: true });
    env.KAFKA_BROKERS = result.brokers;
    if (result.started) started = settings;
  }
  const figures = path.join(os.tmpdir(), `kafka-sse-bridge-soak-${process.pid}.jsonl`);
  fs.rmSync(figures, { force: true });
  env.RELIABILITY_FIGURES_FILE = figures;
  const t0 = Date.now();
  const memBefore = process.memoryUsage().rss;
  const code = await run(
    [
      MOCHA,
      '--config',
      '.mocharc.json',
      '--reporter',
      'spec',
      '--timeout',
      '1800000',
      ...SPECS,
      ...process.argv.slice(2),
    ],
    env,
  );
  if (started) await stop(started, { quiet: true }).catch(() => {});
  const rows = fs.existsSync(figures)
    ? fs
        .readFileSync(figures, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  fs.rmSync(figures, { force: true });
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\n=== soak figures (${new Date().toISOString()}) ===`);
  console.log(
    `machine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; node ${process.version}; ${os.type()} ${os.release()}`,
  );
  console.log(
    `duration: ${Math.round((Date.now() - t0) / 1000)} s; mocha exit code ${code}; runner RSS ${Math.round(memBefore / 2 ** 20)} MiB`,
  );
  console.log(table(rows));
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
