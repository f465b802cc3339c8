// Child processes of the runner: servers, clients, producers, kcat. Each
// speaks JSON lines on stdout; `next(event)` waits for the next such line.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonLines } from './common.mjs';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Max open files for servers and clients: as high as the hard limit allows. */
const ULIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"';

const live = new Set();

export class Child {
  #queue = [];
  #waiters = [];
  stderr = '';
  exited = null;

  constructor(command, args, { env, stdin = 'pipe', raiseLimits = false, cwd = BENCH_DIR } = {}) {
    const argv = raiseLimits ? ['-c', `${ULIMIT}; exec "$0" "$@"`, command, ...args] : args;
    this.proc = spawn(raiseLimits ? 'sh' : command, argv, {
      cwd,
      env: { ...process.env, ...env },
      stdio: [stdin, 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    live.add(this);
    readJsonLines(this.proc.stdout, (msg) => this.#push(msg));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-8000);
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = { code, signal };
      live.delete(this);
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`process exited (${code ?? signal})`));
    });
  }

  #push(msg) {
    const i = this.#waiters.findIndex((w) => w.event === msg.event);
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
    } else {
      this.#queue.push(msg);
    }
  }

  /** The next JSON line whose `event` is `event`. */
  next(event, timeoutMs = 60_000) {
    const i = this.#queue.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]);
    if (this.exited) return Promise.reject(new Error(`process already exited (${this.exited.code})`));
    return new Promise((resolve, reject) => {
      const w = { event, resolve, reject };
      w.timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  send(obj) {
    if (!this.exited) this.proc.stdin?.write(`${JSON.stringify(obj)}\n`);
  }

  /** Resolves when the process has exited. */
  wait() {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async stop(timeoutMs = 5000) {
    if (this.exited) return this.exited;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.wait();
    clearTimeout(t);
    return r;
  }
}

/** Starts a node script of bench/ in its own process. */
export function node(script, args = [], opts = {}) {
  const nodeArgs = opts.nodeArgs ?? [];
  return new Child(process.execPath, [...nodeArgs, path.join(BENCH_DIR, script), ...args], opts);
}

/** Kills every child still running (on the way out). */
export function killAll() {
  for (const c of live) c.proc.kill('SIGKILL');
}
