// kafkaSse() called in a worker thread, against the real broker: node-rdkafka
// cannot consume there (the first message it hands over aborts the process), so
// the library refuses with a 500 and a log line, and the process lives on.
// The fixture runs against dist/, as users run it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokers, createTopic, produce, uniqueTopic } from '../helpers/kafka.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('kafkaSse in a worker thread (child process)', function () {
  this.timeout(45_000);
  let child: ChildProcess | undefined;

  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  it('answers 500 "misconfigured", logs why, and the process keeps serving', async () => {
    const topic = uniqueTopic('worker-thread');
    await createTopic(topic, 1);
    await produce(topic, [{ value: JSON.stringify({ n: 0 }) }, { value: JSON.stringify({ n: 1 }) }]);
    const proc = spawn(process.execPath, ['test/fixtures/worker-thread-server.mjs', brokers(), topic], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let output = '';
    const exited = new Promise<number | string | null>((resolve) =>
      proc.once('exit', (code, sig) => resolve(code ?? sig)),
    );
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the fixture did not start:\n${output}`)), 20_000);
      const onData = (chunk: string) => {
        output += chunk;
        const m = /"port":(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      proc.stdout?.setEncoding('utf8').on('data', onData);
      proc.stderr?.setEncoding('utf8').on('data', onData);
      void exited.then((code) => reject(new Error(`the fixture exited with ${code}:\n${output}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    for (const accept of ['text/event-stream', 'application/x-ndjson']) {
      // fetch rejects ("terminated") if the process dies while it reads the body.
      const r = await fetch(`${url}/`, { headers: { Accept: accept }, signal: AbortSignal.timeout(10_000) });
      const text = await r.text();
      assert.equal(r.status, 500, `${accept}: ${text}`);
      assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.deepEqual(JSON.parse(text), {
        name: 'ConfigurationError',
        code: 'CONFIGURATION',
        message: 'The server is misconfigured',
        status: 500,
        statusCode: 500,
      });
    }
    // Had a consumer started, its first message would have aborted the process by now.
    const outcome = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('alive'), 3000))]);
    assert.equal(outcome, 'alive', `the process ended:\n${output}`);
    const logged = await (await fetch(`${url}/logged`)).json();
    assert.deepEqual(logged, ['stream setup failed', 'stream setup failed']);
  });
});
