#!/usr/bin/env node
// `npm run bench`: benchmarks kafka-sse-bridge against its predecessor
// (kafka-sse 0.4.2) and the floors (node-rdkafka alone, kcat), and writes
// bench/RESULTS.md, bench/results.json and bench/chart.{svg,png} (the PNG is
// drawn in Node: no renderer to install). Never part of `npm test`.
//
//   npm run bench [-- --quick] [-- --no-h2] [-- --loadgen=node]
//       [-- --scenario=replay,live,live10k,clients,clients-h2,connect,ttfe] [-- --contenders=…]
//
// Before running: builds dist/ (what is measured), installs the predecessor
// into bench/node_modules when missing (bench/package.json; its node-rdkafka
// builds librdkafka, a few minutes the first time), builds the Go load
// generator when Go is installed (bench/loadgen-go), checks for kcat, and
// checks that the broker answers (the local one of
// scripts/kafka.mjs is started if nothing does, and stopped afterwards only
// if this run started it). Other options are passed to bench/run.mjs; see there.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokerSettings, start, stop } from './kafka.mjs';
import { probeMetadata } from './kafka-wire.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, 'bench');
const args = process.argv.slice(2);

function run(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status ?? r.error?.message})`);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

async function brokerUp(brokers) {
  const [host, port] = brokers.split(',')[0].split(':');
  try {
    await probeMetadata(host, Number(port), 3000);
    return true;
  } catch {
    return false;
  }
}

async function main() {
  if (args.includes('--report-only')) {
    const r = spawnSync(process.execPath, [path.join(BENCH, 'run.mjs'), ...args], { cwd: ROOT, stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  let buildNote = '';
  if (!args.includes('--no-build')) {
    console.log('bench: building dist/ (what is measured)');
    try {
      run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
    } catch (err) {
      // Others may be in the middle of an edit: measure what dist/ holds, and say so.
      buildNote = `the build failed (${err.message}); dist/ as it was was measured`;
      console.warn(`bench: WARNING: ${buildNote}`);
    }
  } else {
    buildNote = 'run with --no-build: dist/ as it was was measured';
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.error(
      'bench: dist/index.js is missing, so there is nothing to measure (the build failed or was skipped): run `npm ci`, then `npm run bench`',
    );
    process.exit(1);
  }
  if (!fs.existsSync(path.join(BENCH, 'node_modules', 'kafka-sse', 'package.json'))) {
    console.log('bench: installing the predecessor (kafka-sse 0.4.2) into bench/node_modules; librdkafka builds once');
    run('npm', ['install', '--no-audit', '--no-fund'], { cwd: BENCH });
  }
  // The Go load generator (bench/loadgen-go): built when Go is installed; without it the Node one runs.
  if (has('go') && !args.includes('--loadgen=node')) {
    try {
      run('go', ['build', '-o', path.join(BENCH, '.bin', 'loadgen-go'), '.'], {
        cwd: path.join(BENCH, 'loadgen-go'),
        env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
      });
    } catch (err) {
      console.warn(`bench: WARNING: the Go load generator did not build (${err.message}); the Node one runs`);
    }
  }
  if (!has('kcat')) {
    throw new Error('kcat is missing: the floor needs it (Debian/Ubuntu: apt-get install -y kcat)');
  }

  const settings = brokerSettings();
  const brokers = process.env.KAFKA_BROKERS ?? settings.brokers;
  let started = false;
  if (!(await brokerUp(brokers))) {
    if (process.env.KAFKA_BROKERS) throw new Error(`no broker answers at ${brokers}`);
    console.log('bench: starting the local broker');
    await start(settings);
    started = true;
  }
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(BENCH, 'run.mjs'), ...args.filter((a) => a !== '--no-build')], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, KAFKA_BROKERS: brokers, BENCH_BUILD_NOTE: buildNote },
    });
    const forward = (sig) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0)));
  });
  if (started) await stop(settings);
  process.exit(code);
}

main().catch((err) => {
  console.error(`bench: ${err.message}`);
  process.exit(1);
});
