#!/usr/bin/env node
// Local single-node Apache Kafka (KRaft) for development, tests and benchmarks,
// run from Maven Central's jars with the machine's Java: no Docker, no tarball.
//
//   node scripts/kafka.mjs start|stop|status|restart|kill
//
// Environment:
//   KAFKA_BROKERS   use an existing cluster: start/stop do nothing
//   KAFKA_PORT      client listener port (default 9092); the controller uses KAFKA_PORT + 1
//   KAFKA_HOME_DIR  where data, logs and the pid live (default <repo>/.kafka, git-ignored)
//   KAFKA_VERSION   broker version (default: the one pinned in docker/pom.xml)
//   KAFKA_HEAP      JVM heap (default 1g)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeMetadata } from './kafka-wire.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';

/** Settings resolved from the environment. */
export function brokerSettings(env = process.env) {
  const port = Number(env.KAFKA_PORT ?? 9092);
  if (!Number.isInteger(port) || port < 1 || port > 65534)
    throw new Error(`KAFKA_PORT must be a port number, got ${env.KAFKA_PORT}`);
  const home = path.resolve(env.KAFKA_HOME_DIR ?? path.join(ROOT, '.kafka'));
  return {
    host: HOST,
    port,
    controllerPort: port + 1,
    home,
    dataDir: path.join(home, 'data'),
    logDir: path.join(home, 'logs'),
    pidFile: path.join(home, 'broker.pid'),
    brokers: `${HOST}:${port}`,
    version: env.KAFKA_VERSION,
    heap: env.KAFKA_HEAP ?? '1g',
  };
}

function fail(message) {
  const err = new Error(message);
  err.userFacing = true;
  throw err;
}

/** Whether `cmd` is on the PATH. */
export function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** The pid recorded in `s.pidFile`, or undefined. */
export function readPid(s) {
  try {
    const pid = Number(fs.readFileSync(s.pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists. */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function answers(s, timeoutMs = 1000) {
  try {
    return (await probeMetadata(s.host, s.port, timeoutMs)) > 0;
  } catch {
    return false;
  }
}

/** The broker's classpath from Maven's local repository (fetched from Maven Central on first use). */
export function classpath(s) {
  const out = path.join(s.home, `classpath-${s.version ?? 'pinned'}.txt`);
  const pom = path.join(ROOT, 'docker', 'pom.xml');
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(pom).mtimeMs) {
    const cp = fs.readFileSync(out, 'utf8').trim();
    if (cp.split(':').every((jar) => fs.existsSync(jar))) return cp;
  }
  const args = ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${out}`];
  if (s.version) args.push(`-Dkafka.version=${s.version}`);
  const res = spawnSync('mvn', args, { encoding: 'utf8' });
  if (res.status !== 0) {
    fail(
      `Maven could not fetch the Kafka broker's jars:\n${(res.stdout + res.stderr).trim().split('\n').slice(-20).join('\n')}`,
    );
  }
  return fs.readFileSync(out, 'utf8').trim();
}

function writeConfig(s) {
  fs.mkdirSync(s.logDir, { recursive: true });
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${s.host}:${s.controllerPort}`,
    `listeners=PLAINTEXT://${s.host}:${s.port},CONTROLLER://${s.host}:${s.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${s.host}:${s.port},CONTROLLER://${s.host}:${s.controllerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${s.dataDir}`,
    'num.partitions=1',
    // Tests rely on unknown topics staying unknown (a 404), never auto-created by a metadata request.
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'delete.topic.enable=true',
    'log.flush.interval.messages=9223372036854775807',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(s.home, 'server.properties'), props);
  const log4j = [
    'Configuration:',
    '  Appenders:',
    '    File:',
    '      name: server',
    `      fileName: "${path.join(s.logDir, 'server.log')}"`,
    '      PatternLayout:',
    '        pattern: "[%d] %p %m (%c)%n"',
    '  Loggers:',
    '    Root:',
    '      level: INFO',
    '      AppenderRef:',
    '        - ref: server',
    '    Logger:',
    '      - name: kafka.request.logger',
    '        level: WARN',
    '      - name: org.apache.kafka.controller',
    '        level: WARN',
    '      - name: kafka.log.LogCleaner',
    '        level: WARN',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(s.home, 'log4j2.yaml'), log4j);
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The JVM command line of a Kafka main class run with the settings' heap, log4j file and classpath. */
export function javaArgs(s, cp, mainClass, args) {
  return [
    `-Xmx${s.heap}`,
    '-Xms256m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(s.home, 'log4j2.yaml')}`,
    `-Dkafka.logs.dir=${s.logDir}`,
    '-cp',
    cp,
    mainClass,
    ...args,
  ];
}

/**
 * A new cluster id: 16 random bytes in unpadded base64url, as the storage
 * tool's random-uuid prints, and like it never starting with `-` (1 id in 64
 * would): `format -t -…` reads such an id as an option and fails.
 */
export function newClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function formatOnce(s, cp) {
  if (fs.existsSync(path.join(s.dataDir, 'meta.properties'))) return;
  fs.mkdirSync(s.dataDir, { recursive: true });
  const clusterId = newClusterId();
  const res = spawnSync(
    'java',
    javaArgs(s, cp, 'kafka.tools.StorageTool', [
      'format',
      '-t',
      clusterId,
      '-c',
      path.join(s.home, 'server.properties'),
      '--standalone',
    ]),
    { encoding: 'utf8' },
  );
  if (res.status !== 0) fail(`formatting ${s.dataDir} failed:\n${(res.stdout + res.stderr).trim()}`);
}

/** Resolves true when the broker we started (or any broker on the port) is up. */
export async function status(s = brokerSettings()) {
  const pid = readPid(s);
  const running = pid !== undefined && alive(pid);
  const up = await answers(s);
  return { pid: running ? pid : undefined, up, brokers: s.brokers };
}

/**
 * Starts the broker unless one already answers. Resolves with
 * `{started: boolean, brokers}`: `started` is true only when this call started it.
 */
export async function start(s = brokerSettings(), { quiet = false, timeoutMs = 90_000 } = {}) {
  const say = quiet ? () => {} : (m) => console.log(m);
  const pid = readPid(s);
  if (pid !== undefined && alive(pid)) {
    if (await waitUntilUp(s, pid, timeoutMs)) {
      say(`Kafka is already running on ${s.brokers} (pid ${pid}).`);
      return { started: false, brokers: s.brokers };
    }
    fail(
      `the broker (pid ${pid}) is running but does not answer on ${s.brokers}; log tail:\n${tail(path.join(s.logDir, 'server.log'))}`,
    );
  }
  if (await answers(s)) {
    say(`A Kafka broker not started by this script already answers on ${s.brokers}; using it.`);
    return { started: false, brokers: s.brokers };
  }
  if (!which('java'))
    fail('Java is missing: install a JDK 17 or newer (e.g. apt-get install openjdk-17-jdk-headless).');
  if (!which('mvn')) fail('Maven is missing: install Maven 3 (e.g. apt-get install maven).');
  fs.mkdirSync(s.home, { recursive: true });
  writeConfig(s);
  const cp = classpath(s);
  formatOnce(s, cp);
  const out = fs.openSync(path.join(s.logDir, 'stdout.log'), 'a');
  const child = spawn('java', javaArgs(s, cp, 'kafka.Kafka', [path.join(s.home, 'server.properties')]), {
    detached: true,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  child.unref();
  fs.writeFileSync(s.pidFile, `${child.pid}\n`);
  if (await waitUntilUp(s, child.pid, timeoutMs)) {
    say(`Kafka started on ${s.brokers} (pid ${child.pid}); data and logs in ${s.home}.`);
    return { started: true, brokers: s.brokers };
  }
  const logTail = `${tail(path.join(s.logDir, 'stdout.log'), 15)}\n${tail(path.join(s.logDir, 'server.log'))}`;
  if (alive(child.pid)) process.kill(child.pid, 'SIGKILL');
  fs.rmSync(s.pidFile, { force: true });
  fail(`Kafka did not start on ${s.brokers} within ${timeoutMs / 1000} s. Log tail:\n${logTail}`);
}

async function waitUntilUp(s, pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return false;
    if (await answers(s)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Stops the broker this script started (by its recorded pid). `signal` SIGKILL simulates a crash. */
export async function stop(s = brokerSettings(), { quiet = false, signal = 'SIGTERM', timeoutMs = 30_000 } = {}) {
  const say = quiet ? () => {} : (m) => console.log(m);
  const pid = readPid(s);
  if (pid === undefined || !alive(pid)) {
    fs.rmSync(s.pidFile, { force: true });
    say('No broker started by this script is running.');
    return false;
  }
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
  fs.rmSync(s.pidFile, { force: true });
  say(`Kafka (pid ${pid}) stopped.`);
  return true;
}

async function main(cmd) {
  if (process.env.KAFKA_BROKERS && ['start', 'stop', 'restart', 'kill'].includes(cmd)) {
    console.log(`KAFKA_BROKERS is set (${process.env.KAFKA_BROKERS}): using that cluster, no local broker.`);
    return 0;
  }
  const s = brokerSettings();
  switch (cmd) {
    case 'start':
      await start(s);
      return 0;
    case 'stop':
      await stop(s);
      return 0;
    case 'kill':
      await stop(s, { signal: 'SIGKILL' });
      return 0;
    case 'restart':
      await stop(s);
      await start(s);
      return 0;
    case 'status': {
      const brokers = process.env.KAFKA_BROKERS ?? s.brokers;
      if (process.env.KAFKA_BROKERS) {
        const [host, port] = brokers.split(',')[0].split(':');
        const up = await answers({ host, port: Number(port) });
        console.log(
          up ? `Kafka is up at ${brokers} (KAFKA_BROKERS).` : `Kafka at ${brokers} (KAFKA_BROKERS) does not answer.`,
        );
        return up ? 0 : 3;
      }
      const st = await status(s);
      if (st.up)
        console.log(
          `Kafka is up on ${s.brokers}${st.pid ? ` (pid ${st.pid}, started by this script)` : ' (not started by this script)'}.`,
        );
      else console.log(`Kafka is not running on ${s.brokers}.`);
      return st.up ? 0 : 3;
    }
    default:
      console.error('usage: node scripts/kafka.mjs start|stop|status|restart|kill');
      return 2;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv[2]).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err.userFacing ? `kafka: ${err.message}` : err);
      process.exit(1);
    },
  );
}
