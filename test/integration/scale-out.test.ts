// Scale-out as users run it: two example-server processes (examples/server.js,
// separate Node processes, each with its own consumers) behind a round-robin
// HTTP proxy, and one `eventsource` client. Its streams end (MAX_DURATION_MS),
// then the process serving it is killed: every reconnect lands on the other
// process, resumes from the id alone, and every message arrives exactly once,
// in order per partition.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventSource } from 'eventsource';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One `node examples/server.js` process. */
interface Backend {
  name: string;
  url: string;
  child: ChildProcessWithoutNullStreams;
  exited: Promise<unknown>;
}

/** Starts examples/server.js on a free port and resolves with the URL it logs. */
function startBackend(name: string, env: Record<string, string>): Promise<Backend> {
  const child = spawn(process.execPath, ['examples/server.js'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', KAFKA_BROKERS: brokers(), LOG_LEVEL: 'info', ...env },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out}${err}`)), 15_000);
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
    });
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"url"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve({ name, url: (JSON.parse(line) as { url: string }).url, child, exited });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}${err}`)));
  });
}

/** What the proxy saw of one stream request. */
interface Routed {
  backend: string;
  lastEventId: string | undefined;
}

/**
 * A round-robin load balancer, per request (EventSource reconnects may reuse a
 * keep-alive connection, so per-connection balancing would pin it to one
 * process). A backend that refuses the connection is skipped, as a load
 * balancer's health check would.
 */
function startProxy(backends: Backend[], routed: Routed[]): Promise<{ url: string; server: http.Server }> {
  let next = 0;
  const server = http.createServer((req, res) => {
    const tryBackend = (tries: number) => {
      const backend = backends[next++ % backends.length]!;
      const target = new URL(req.url ?? '/', backend.url);
      const upstream = http.request(target, { method: req.method, headers: req.headers }, (up) => {
        routed.push({ backend: backend.name, lastEventId: req.headers['last-event-id'] as string | undefined });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        // A backend that dies mid-stream: the client sees its connection drop.
        up.once('aborted', () => res.destroy());
        up.once('error', () => res.destroy());
      });
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' && tries + 1 < backends.length) return tryBackend(tries + 1);
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      res.once('close', () => upstream.destroy());
      req.pipe(upstream);
    };
    tryBackend(0);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server });
    }),
  );
}

describe('scale-out: two example-server processes behind a round-robin proxy', function () {
  this.timeout(60_000);
  const backends: Backend[] = [];
  let proxy: http.Server | undefined;
  let source: EventSource | undefined;

  after(async () => {
    source?.close();
    for (const b of backends) b.child.kill('SIGKILL');
    await Promise.all(backends.map((b) => b.exited));
    proxy?.closeAllConnections();
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
  });

  it('resumes on the other process after each stream ends and after a process is killed: every message once, in order', async () => {
    const topic = uniqueTopic('scale-out');
    const PARTITIONS = 3;
    await createTopic(topic, PARTITIONS);
    // Streams end after 1 s, so the client reconnects (through the proxy, to the other process) every second.
    const env = { MAX_DURATION_MS: '1000', RETRY_MS: '100', HEARTBEAT_MS: '0' };
    backends.push(...(await Promise.all([startBackend('A', env), startBackend('B', env)])));
    const routed: Routed[] = [];
    const started = await startProxy(backends, routed);
    proxy = started.server;

    /** Per partition, the sequence numbers received, in arrival order. */
    const received = new Map<number, number[]>();
    let opens = 0;
    let lastEventId = '';
    /** The client's last event id at each open: what the next request should carry. */
    const idAtOpen: string[] = [];
    // ?since=0: the topic is new, so this is "everything", for a reconnect that never got an id too.
    const es = new EventSource(`${started.url}/v2/stream/${topic}?since=0`);
    source = es;
    es.addEventListener('open', () => {
      opens++;
      idAtOpen.push(lastEventId);
    });
    es.addEventListener('message', (e) => {
      const { p, seq } = JSON.parse(e.data) as { p: number; seq: number };
      received.set(p, [...(received.get(p) ?? []), seq]);
      lastEventId = e.lastEventId;
    });
    const total = () => [...received.values()].reduce((n, list) => n + list.length, 0);

    let seq = 0;
    const produceBatch = async (n: number) => {
      const batch = [];
      for (let i = 0; i < n; i++, seq++) {
        const p = seq % PARTITIONS;
        batch.push({ partition: p, value: JSON.stringify({ p, seq: Math.floor(seq / PARTITIONS) }) });
      }
      await produce(topic, batch);
    };

    // Phase 1: messages keep coming while streams end every second.
    for (let i = 0; i < 16; i++) {
      await produceBatch(15);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await waitFor(() => total() === seq, 15_000, 'every message of phase 1');
    await waitFor(() => opens >= 3, 10_000, 'at least two reconnects');

    // Phase 2: the process serving the stream now is killed, with no warning. First the client's
    // opens and the proxy's routes must agree: a stream routed but not yet opened by the client
    // would be counted on the wrong side of the kill. Nothing runs between the check and the kill.
    await waitFor(() => routed.length === opens, 5_000, 'the client to open the stream last routed');
    const serving = routed.at(-1)!.backend;
    const victim = backends.find((b) => b.name === serving)!;
    const opensBeforeKill = opens;
    victim.child.kill('SIGKILL');
    await victim.exited;
    for (let i = 0; i < 8; i++) {
      await produceBatch(15);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(() => total() === seq && opens > opensBeforeKill, 20_000, 'every message after the kill');

    // Exactly once and in order, per partition.
    for (let p = 0; p < PARTITIONS; p++) {
      const expected = Array.from({ length: seq / PARTITIONS }, (_, i) => i);
      assert.deepEqual(received.get(p), expected, `partition ${p}`);
    }
    // Each reconnect landed on the other process, and carried the client's last id.
    assert.ok(routed.length >= 4, `requests: ${routed.length}`);
    const beforeKill = routed.slice(0, opensBeforeKill);
    for (let i = 1; i < beforeKill.length; i++) {
      assert.notEqual(beforeKill[i]!.backend, beforeKill[i - 1]!.backend, `request ${i} went to the other process`);
    }
    for (const r of routed.slice(opensBeforeKill)) {
      assert.notEqual(r.backend, victim.name, 'nothing reached the killed process');
    }
    for (let i = 0; i < routed.length; i++) {
      assert.equal(
        routed[i]!.lastEventId,
        idAtOpen[i] === '' ? undefined : idAtOpen[i],
        `request ${i}'s Last-Event-ID`,
      );
    }
    const survivor = backends.find((b) => b !== victim)!;
    assert.ok(
      routed.slice(opensBeforeKill).every((r) => r.backend === survivor.name),
      'after the kill, the survivor serves',
    );
  });
});
