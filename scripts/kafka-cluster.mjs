#!/usr/bin/env node
// A local three-node Apache Kafka cluster (KRaft) for the cluster tests: every
// node is a combined broker and controller, the three form the controller
// quorum, and topics default to replication factor 3 with min.insync.replicas
// 2, so one node can be killed or restarted at a time without losing a write
// acknowledged by acks=all. Run from the same Maven Central jars as the single
// broker (scripts/kafka.mjs, docker/pom.xml).
//
//   node scripts/kafka-cluster.mjs start|stop|status|kill <node>|restart <node>
//
// Each node listens on 127.0.0.1 with three listeners:
//   PLAINTEXT   base + id - 1      (19450-19452 by default): clients and replication
//   CONTROLLER  base + 3 + id - 1  (19453-19455): the KRaft quorum
//   SASL_SSL    base + 6 + id - 1  (19456-19458): SCRAM-SHA-512 over TLS, for the secured tests
// The TLS certificates (a CA and one broker certificate for IP 127.0.0.1) are
// made with openssl on first start; clients trust tls/ca.pem. SCRAM users are
// added with addScramUser() (the broker's ConfigCommand over PLAINTEXT).
//
// Environment:
//   KAFKA_CLUSTER_PORT      base port (default 19450); the cluster uses base … base + 8
//   KAFKA_CLUSTER_HOME_DIR  data, logs, pids and certificates (default <repo>/.kafka/cluster, git-ignored)
//   KAFKA_CLUSTER_HEAP      JVM heap per node (default 512m)
//   KAFKA_CLUSTER_SESSION_TIMEOUT_MS  broker.session.timeout.ms (default 9000, Kafka's own)
//   KAFKA_VERSION           broker version (default: the one pinned in docker/pom.xml)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, classpath, javaArgs, newClusterId, readPid, tail, which } from './kafka.mjs';
import { probeMetadata } from './kafka-wire.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
/** Node ids of the cluster; each is a broker and a controller voter. */
export const NODE_IDS = Object.freeze([1, 2, 3]);
/** The SASL mechanism of the secured listener. */
export const SCRAM_MECHANISM = 'SCRAM-SHA-512';

function fail(message) {
  const err = new Error(message);
  err.userFacing = true;
  throw err;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settings of the cluster and of each node, resolved from the environment. */
export function clusterSettings(env = process.env) {
  const base = Number(env.KAFKA_CLUSTER_PORT ?? 19450);
  if (!Number.isInteger(base) || base < 1 || base > 65527)
    throw new Error(`KAFKA_CLUSTER_PORT must be a port number, got ${env.KAFKA_CLUSTER_PORT}`);
  const home = path.resolve(env.KAFKA_CLUSTER_HOME_DIR ?? path.join(ROOT, '.kafka', 'cluster'));
  const heap = env.KAFKA_CLUSTER_HEAP ?? '512m';
  const sessionTimeoutMs = Number(env.KAFKA_CLUSTER_SESSION_TIMEOUT_MS ?? 9000);
  if (!Number.isInteger(sessionTimeoutMs) || sessionTimeoutMs < 2000)
    throw new Error(
      `KAFKA_CLUSTER_SESSION_TIMEOUT_MS must be an integer ≥ 2000, got ${env.KAFKA_CLUSTER_SESSION_TIMEOUT_MS}`,
    );
  const tlsDir = path.join(home, 'tls');
  const nodes = NODE_IDS.map((id) => {
    const nodeHome = path.join(home, `node-${id}`);
    return {
      id,
      host: HOST,
      port: base + id - 1,
      controllerPort: base + 3 + id - 1,
      saslSslPort: base + 6 + id - 1,
      home: nodeHome,
      dataDir: path.join(nodeHome, 'data'),
      logDir: path.join(nodeHome, 'logs'),
      pidFile: path.join(nodeHome, 'broker.pid'),
      heap,
    };
  });
  return {
    home,
    version: env.KAFKA_VERSION,
    sessionTimeoutMs,
    nodes,
    /** Bootstrap servers of the PLAINTEXT listeners. */
    brokers: nodes.map((n) => `${HOST}:${n.port}`).join(','),
    /** Bootstrap servers of the SASL_SSL listeners. */
    saslSslBrokers: nodes.map((n) => `${HOST}:${n.saslSslPort}`).join(','),
    tlsDir,
    /** The CA certificate clients trust (librdkafka's ssl.ca.location). */
    caFile: path.join(tlsDir, 'ca.pem'),
    keystoreFile: path.join(tlsDir, 'broker.p12'),
    keystorePasswordFile: path.join(tlsDir, 'keystore-password'),
    clusterIdFile: path.join(home, 'cluster-id'),
  };
}

function node(s, id) {
  const n = s.nodes.find((x) => x.id === Number(id));
  if (!n) fail(`no node ${id}: the cluster's nodes are ${NODE_IDS.join(', ')}`);
  return n;
}

function run(cmd, args, what) {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) fail(`${what} failed:\n${`${res.stdout ?? ''}${res.stderr ?? ''}`.trim()}`);
  return res.stdout;
}

/**
 * A CA and one broker certificate (subjectAltName IP 127.0.0.1 and localhost,
 * so librdkafka's default hostname check passes), packed into a PKCS#12
 * keystore for the brokers. Made once; kept with the cluster's data.
 */
function ensureTls(s) {
  if (fs.existsSync(s.keystoreFile) && fs.existsSync(s.caFile) && fs.existsSync(s.keystorePasswordFile)) return;
  if (!which('openssl')) fail('openssl is missing: install it (apt-get install openssl) to make the TLS certificates.');
  fs.mkdirSync(s.tlsDir, { recursive: true });
  const f = (name) => path.join(s.tlsDir, name);
  const password = randomBytes(18).toString('base64url');
  run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=kafka-sse-bridge test CA'].concat([
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
    ]),
    'making the test CA',
  );
  run(
    'openssl',
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      f('broker.key'),
      '-out',
      f('broker.csr'),
    ],
    'making the broker key',
  );
  fs.writeFileSync(f('broker.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'openssl',
    ['x509', '-req', '-days', '3650', '-in', f('broker.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key')].concat([
      '-CAcreateserial',
      '-extfile',
      f('broker.ext'),
      '-out',
      f('broker.pem'),
    ]),
    'signing the broker certificate',
  );
  run(
    'openssl',
    ['pkcs12', '-export', '-in', f('broker.pem'), '-inkey', f('broker.key'), '-certfile', f('ca.pem')].concat([
      '-name',
      'broker',
      '-out',
      s.keystoreFile,
      '-passout',
      `pass:${password}`,
    ]),
    'packing the broker keystore',
  );
  fs.writeFileSync(s.keystorePasswordFile, `${password}\n`, { mode: 0o600 });
}

/** The server.properties of node `n` (pure: the keystore password is passed in). */
export function nodeProperties(s, n, keystorePassword) {
  const voters = s.nodes.map((x) => `${x.id}@${HOST}:${x.controllerPort}`).join(',');
  const listeners = `PLAINTEXT://${HOST}:${n.port},CONTROLLER://${HOST}:${n.controllerPort},SASL_SSL://${HOST}:${n.saslSslPort}`;
  return [
    'process.roles=broker,controller',
    `node.id=${n.id}`,
    // A static quorum of the three nodes: formatting needs no --standalone or --initial-controllers.
    `controller.quorum.voters=${voters}`,
    `listeners=${listeners}`,
    `advertised.listeners=${listeners}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL',
    `listener.name.sasl_ssl.sasl.enabled.mechanisms=${SCRAM_MECHANISM}`,
    `listener.name.sasl_ssl.${SCRAM_MECHANISM.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${s.keystoreFile}`,
    `ssl.keystore.password=${keystorePassword}`,
    `ssl.key.password=${keystorePassword}`,
    'ssl.client.auth=none',
    `log.dirs=${n.dataDir}`,
    'num.partitions=1',
    'default.replication.factor=3',
    'min.insync.replicas=2',
    // Tests rely on unknown topics staying unknown (a 404), never auto-created by a metadata request.
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=3',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    'share.coordinator.state.topic.replication.factor=3',
    'share.coordinator.state.topic.min.isr=2',
    'group.initial.rebalance.delay.ms=0',
    'delete.topic.enable=true',
    // A SIGKILLed node is fenced (its partitions get new leaders, it leaves the
    // ISRs) when it misses heartbeats for broker.session.timeout.ms: Kafka's
    // own 9 s by default, so leader moves take as long as in production.
    'broker.heartbeat.interval.ms=1000',
    `broker.session.timeout.ms=${s.sessionTimeoutMs}`,
    // Leaders stay where a fault moved them (no preferred-leader rebalance
    // during a test): every move a test sees is one it caused.
    'auto.leader.rebalance.enable=false',
    'log.flush.interval.messages=9223372036854775807',
    '',
  ].join('\n');
}

function writeNodeConfig(s, n) {
  fs.mkdirSync(n.logDir, { recursive: true });
  const keystorePassword = fs.readFileSync(s.keystorePasswordFile, 'utf8').trim();
  const props = nodeProperties(s, n, keystorePassword);
  fs.writeFileSync(path.join(n.home, 'server.properties'), props, { mode: 0o600 });
  const log4j = [
    'Configuration:',
    '  Appenders:',
    '    File:',
    '      name: server',
    `      fileName: "${path.join(n.logDir, 'server.log')}"`,
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
  fs.writeFileSync(path.join(n.home, 'log4j2.yaml'), log4j);
}

function clusterId(s) {
  try {
    return fs.readFileSync(s.clusterIdFile, 'utf8').trim();
  } catch {
    const id = newClusterId();
    fs.mkdirSync(s.home, { recursive: true });
    fs.writeFileSync(s.clusterIdFile, `${id}\n`);
    return id;
  }
}

function formatOnce(s, n, cp) {
  if (fs.existsSync(path.join(n.dataDir, 'meta.properties'))) return;
  fs.mkdirSync(n.dataDir, { recursive: true });
  const res = spawnSync(
    'java',
    javaArgs({ ...n, heap: '256m' }, cp, 'kafka.tools.StorageTool', [
      'format',
      '-t',
      clusterId(s),
      '-c',
      path.join(n.home, 'server.properties'),
    ]),
    { encoding: 'utf8' },
  );
  if (res.status !== 0) fail(`formatting ${n.dataDir} failed:\n${(res.stdout + res.stderr).trim()}`);
}

async function brokersSeenBy(n, timeoutMs = 1000) {
  try {
    return await probeMetadata(n.host, n.port, timeoutMs);
  } catch {
    return 0;
  }
}

function nodePid(n) {
  const pid = readPid(n);
  return pid !== undefined && alive(pid) ? pid : undefined;
}

/** Per node: its pid (when started by this script and alive) and whether it answers metadata. */
export async function clusterStatus(s = clusterSettings()) {
  const nodes = await Promise.all(
    s.nodes.map(async (n) => ({ id: n.id, pid: nodePid(n), brokersSeen: await brokersSeenBy(n) })),
  );
  // Up: every node answers and sees all three brokers (a fenced broker is left out of metadata).
  const up = nodes.every((n) => n.brokersSeen === s.nodes.length);
  return { up, nodes, brokers: s.brokers };
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** Whether every port of the cluster is free or held by one of its own nodes (started by this script). */
export async function clusterPortsUsable(s = clusterSettings()) {
  for (const n of s.nodes) {
    if (nodePid(n) !== undefined) continue;
    for (const port of [n.port, n.controllerPort, n.saslSslPort]) if (!(await portFree(port))) return false;
  }
  return true;
}

function prepare(s) {
  if (!which('java'))
    fail('Java is missing: install a JDK 17 or newer (e.g. apt-get install openjdk-17-jdk-headless).');
  if (!which('mvn')) fail('Maven is missing: install Maven 3 (e.g. apt-get install maven).');
  fs.mkdirSync(s.home, { recursive: true });
  ensureTls(s);
  const cp = classpath({ home: s.home, version: s.version });
  for (const n of s.nodes) {
    writeNodeConfig(s, n);
    formatOnce(s, n, cp);
  }
  return cp;
}

function spawnNode(n, cp) {
  const out = fs.openSync(path.join(n.logDir, 'stdout.log'), 'a');
  const child = spawn('java', javaArgs(n, cp, 'kafka.Kafka', [path.join(n.home, 'server.properties')]), {
    detached: true,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  child.unref();
  fs.writeFileSync(n.pidFile, `${child.pid}\n`);
  return child.pid;
}

function logTail(n) {
  return `node ${n.id}:\n${tail(path.join(n.logDir, 'stdout.log'), 10)}\n${tail(path.join(n.logDir, 'server.log'), 25)}`;
}

/** Waits until `n` answers metadata listing `brokers` brokers; false if its process died or time ran out. */
async function waitForNode(n, pid, brokers, deadline) {
  while (Date.now() < deadline) {
    if (pid !== undefined && !alive(pid)) return false;
    if ((await brokersSeenBy(n)) >= brokers) return true;
    await sleep(250);
  }
  return false;
}

/**
 * Starts every node that is not running and waits until all three answer and
 * see each other. Resolves with `{started, brokers}`: `started` is true when
 * this call started at least one node.
 */
export async function startCluster(s = clusterSettings(), { quiet = false, timeoutMs = 120_000 } = {}) {
  const say = quiet ? () => {} : (m) => console.log(m);
  const before = await clusterStatus(s);
  if (before.up) {
    say(`The Kafka cluster is already running on ${s.brokers}.`);
    return { started: false, brokers: s.brokers };
  }
  const cp = prepare(s);
  const pids = new Map();
  for (const n of s.nodes) {
    const running = nodePid(n);
    if (running !== undefined) {
      pids.set(n.id, running);
      continue;
    }
    if ((await brokersSeenBy(n)) > 0)
      fail(
        `something not started by this script already answers on ${HOST}:${n.port}; stop it or set KAFKA_CLUSTER_PORT`,
      );
    pids.set(n.id, spawnNode(n, cp));
  }
  const deadline = Date.now() + timeoutMs;
  const ok = await Promise.all(s.nodes.map((n) => waitForNode(n, pids.get(n.id), s.nodes.length, deadline)));
  if (ok.every(Boolean)) {
    say(`Kafka cluster started on ${s.brokers} (SASL_SSL on ${s.saslSslBrokers}); data and logs in ${s.home}.`);
    return { started: true, brokers: s.brokers };
  }
  const tails = s.nodes.filter((_, i) => !ok[i]).map(logTail);
  await stopCluster(s, { quiet: true, signal: 'SIGKILL' });
  fail(`the Kafka cluster did not start within ${timeoutMs / 1000} s. Log tails:\n${tails.join('\n')}`);
}

/**
 * Starts one node again (after stopNode) and waits until it answers and sees
 * the whole cluster. It may still be catching up as a follower: wait for the
 * ISRs you need separately.
 */
export async function startNode(s, id, { timeoutMs = 120_000 } = {}) {
  const n = node(s, id);
  let pid = nodePid(n);
  if (pid === undefined) pid = spawnNode(n, classpath({ home: s.home, version: s.version }));
  if (await waitForNode(n, pid, s.nodes.length, Date.now() + timeoutMs)) return pid;
  fail(`node ${id} did not come back within ${timeoutMs / 1000} s. ${logTail(n)}`);
}

/**
 * Stops one node started by this script: SIGTERM is a controlled shutdown
 * (its leaderships move first), SIGKILL a crash. Resolves once the process is gone.
 */
export async function stopNode(s, id, { signal = 'SIGTERM', timeoutMs = 60_000 } = {}) {
  const n = node(s, id);
  const pid = nodePid(n);
  if (pid === undefined) {
    fs.rmSync(n.pidFile, { force: true });
    return false;
  }
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
  }
  fs.rmSync(n.pidFile, { force: true });
  return true;
}

/**
 * Sends a signal to one running node without waiting: SIGSTOP freezes it (a
 * VM pause or a network partition as its peers and clients see it: sockets
 * stay open, nothing answers), SIGCONT lets it run again.
 */
export function signalNode(s, id, signal) {
  const pid = nodePid(node(s, id));
  if (pid === undefined) fail(`node ${id} is not running`);
  process.kill(pid, signal);
}

/** Stops every node this script started. */
export async function stopCluster(s = clusterSettings(), { quiet = false, signal = 'SIGTERM' } = {}) {
  const say = quiet ? () => {} : (m) => console.log(m);
  // One at a time, so each controlled shutdown still has a quorum to grant it;
  // the last node has none left, so it gets a few seconds, then SIGKILL.
  const stopped = [];
  for (const [i, n] of s.nodes.entries()) {
    const last = i === s.nodes.length - 1;
    stopped.push(await stopNode(s, n.id, { signal, timeoutMs: last ? 3_000 : 30_000 }));
  }
  say(stopped.some(Boolean) ? 'Kafka cluster stopped.' : 'No cluster node started by this script is running.');
  return stopped.some(Boolean);
}

/**
 * Adds (or replaces) a SCRAM-SHA-512 user with the broker's own ConfigCommand,
 * over PLAINTEXT. The password is passed on the command line of a short-lived
 * local JVM: fine for a test cluster, not for production.
 */
export function addScramUser(s, user, password) {
  if (!/^[\w.-]+$/.test(user) || !/^[\w.-]+$/.test(password))
    fail('SCRAM user and password must be letters, digits, ".", "_" or "-" (the config syntax has no quoting)');
  const cp = classpath({ home: s.home, version: s.version });
  const first = s.nodes[0];
  const res = spawnSync(
    'java',
    javaArgs({ ...first, heap: '256m' }, cp, 'kafka.admin.ConfigCommand', [
      '--bootstrap-server',
      s.brokers,
      '--alter',
      '--entity-type',
      'users',
      '--entity-name',
      user,
      '--add-config',
      `${SCRAM_MECHANISM}=[iterations=4096,password=${password}]`,
    ]),
    { encoding: 'utf8' },
  );
  // Never echo the command line or its output verbatim: it holds the password.
  if (res.status !== 0) fail(`adding the SCRAM user ${user} failed (exit code ${res.status})`);
}

async function main(cmd, arg) {
  const s = clusterSettings();
  switch (cmd) {
    case 'start':
      await startCluster(s);
      return 0;
    case 'stop':
      await stopCluster(s);
      return 0;
    case 'kill':
    case 'restart': {
      if (arg === undefined) {
        console.error(`usage: node scripts/kafka-cluster.mjs ${cmd} <node id: ${NODE_IDS.join('|')}>`);
        return 2;
      }
      await stopNode(s, arg, { signal: cmd === 'kill' ? 'SIGKILL' : 'SIGTERM' });
      if (cmd === 'restart') await startNode(s, arg);
      console.log(`node ${arg} ${cmd === 'kill' ? 'killed' : 'restarted'}.`);
      return 0;
    }
    case 'status': {
      const st = await clusterStatus(s);
      for (const n of st.nodes) {
        const where = s.nodes.find((x) => x.id === n.id);
        console.log(
          `node ${n.id} on ${HOST}:${where?.port}: ${n.brokersSeen > 0 ? `answers, sees ${n.brokersSeen} brokers` : 'not answering'}${n.pid ? ` (pid ${n.pid})` : ''}`,
        );
      }
      console.log(st.up ? `Kafka cluster is up on ${s.brokers}.` : `Kafka cluster is not (fully) up on ${s.brokers}.`);
      return st.up ? 0 : 3;
    }
    default:
      console.error('usage: node scripts/kafka-cluster.mjs start|stop|status|kill <node>|restart <node>');
      return 2;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv[2], process.argv[3]).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err.userFacing ? `kafka-cluster: ${err.message}` : err);
      process.exit(1);
    },
  );
}
