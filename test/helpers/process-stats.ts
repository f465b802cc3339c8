// What the process holds, read from /proc (Linux): open file descriptors,
// threads, resident memory, and the V8 heap after a full collection. Used by
// the reliability tests to show that churn leaves nothing behind.
import fs from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface ProcessSnapshot {
  fds: number;
  threads: number;
  rssBytes: number;
  heapUsedBytes: number;
}

/** Open file descriptors of this process (sockets, pipes, eventfds, files). */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Threads of this process (libuv pool, librdkafka's per-consumer threads, V8 workers). */
export function threadCount(): number {
  const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

let gcFn: (() => void) | undefined;

/**
 * A full garbage collection. Uses `global.gc` when node runs with --expose-gc
 * (the soak run), else turns the flag on at run time and takes `gc` from a
 * fresh context, which V8 then exposes.
 */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  gcFn();
}

/** Counts now, after a full GC. */
export function snapshot(): ProcessSnapshot {
  forceGc();
  const mem = process.memoryUsage();
  return { fds: fdCount(), threads: threadCount(), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until fds and threads are back within `tolerance` of `baseline`
 * (librdkafka joins its threads and closes its sockets asynchronously after a
 * disconnect), and resolves with the last snapshot either way.
 */
export async function settleTo(
  baseline: ProcessSnapshot,
  { tolerance = 2, timeoutMs = 15_000 }: { tolerance?: number; timeoutMs?: number } = {},
): Promise<ProcessSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = snapshot();
    const ok = now.fds <= baseline.fds + tolerance && now.threads <= baseline.threads + tolerance;
    if (ok || Date.now() > deadline) return now;
    await sleep(200);
  }
}

export { waitFor } from './wait.ts';

/** Bytes as MiB with one decimal, for figures. */
export function mib(bytes: number): number {
  return Math.round((bytes / (1024 * 1024)) * 10) / 10;
}
