// V8's own RegExp as an oracle for the client-regex tests, run where its
// backtracking cannot hang the suite. Some generated patterns that RE2 runs in
// linear time take V8 minutes even on a 12-character value (seen: 169 s for
// /(?:(\x61?|( ?|\W*)+){20})?/ on "1!x"), and a synchronous loop on the main
// thread is beyond mocha's timeout: the run only ends when CI kills it. So the
// oracle runs in a worker thread; the caller blocks on a shared flag for at
// most `timeoutMs`, and a worker that has not answered by then is terminated,
// replaced, and its case reported as undecided.
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.flag);
const port = workerData.port;
port.on('message', ({ source, flags, values }) => {
  let answer;
  try {
    const re = new RegExp(source, flags);
    answer = { matches: values.map((v) => re.test(v)) };
  } catch (err) {
    answer = { error: String(err) };
  }
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
`;

export class V8RegexpOracle {
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  #flag = new Int32Array(new SharedArrayBuffer(4));
  /** Cases the worker did not answer in time. */
  undecided = 0;

  constructor(private readonly timeoutMs = 250) {}

  #start(): void {
    const { port1, port2 } = new MessageChannel();
    Atomics.store(this.#flag, 0, 0);
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { flag: this.#flag.buffer, port: port2 },
      transferList: [port2],
    });
    this.#worker.unref();
    port1.unref();
    this.#port = port1;
    if (Atomics.wait(this.#flag, 0, 0, 20_000) === 'timed-out') throw new Error('the V8 oracle worker did not start');
  }

  /** What `new RegExp(source, flags).test(v)` gives for each value, or undefined when V8 took too long. */
  test(source: string, flags: string, values: string[]): boolean[] | undefined {
    if (!this.#worker) this.#start();
    Atomics.store(this.#flag, 0, 0);
    this.#port?.postMessage({ source, flags, values });
    if (Atomics.wait(this.#flag, 0, 0, this.timeoutMs) === 'timed-out') {
      this.undecided++;
      this.close();
      return undefined;
    }
    const answer = receiveMessageOnPort(this.#port as MessagePort)?.message as
      | { matches: boolean[] }
      | { error: string }
      | undefined;
    if (!answer) throw new Error('the V8 oracle worker signalled without an answer');
    if ('error' in answer) throw new Error(`V8 refused /${source}/${flags}: ${answer.error}`);
    return answer.matches;
  }

  /** Stops the worker (terminate interrupts a regex mid-match). */
  close(): void {
    void this.#worker?.terminate();
    this.#port?.close();
    this.#worker = undefined;
    this.#port = undefined;
  }
}
