// The resume id's cost per message, 1 and 6 partitions, for the tree at <dir> (default: this one), to
// compare two trees one after the other:
//   node --import tsx bench/id-micro.mts [dir]
// - advanceAt() then writeId(): what a replay's frame does;
// - advanceAt() then id(), each id kept in a 5,000-entry ring: what a shared tail does for its log.
const dir = process.argv[2] ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { PositionTracker } = await import(`${dir}/lib/position-tracker.ts`);

/** ns per message of `step`, the second best of 7 runs of 1,000,000 messages. */
function time(n: number, step: (t: InstanceType<typeof PositionTracker>, i: number) => void): string {
  const starts = Array.from({ length: n }, (_, p) => ({
    topic: 'bench-replay-6p',
    partition: p,
    offset: 0,
    reason: 'offset',
  }));
  const best: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = new PositionTracker(starts, false);
    const N = 1_000_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      t.advanceAt(i % n, 100000 + Math.floor(i / n), 1764633600000);
      step(t, i);
    }
    best.push(Number(process.hrtime.bigint() - t0) / N);
  }
  best.sort((a, b) => a - b);
  return (best[1] as number).toFixed(0);
}

const buf = Buffer.alloc(1 << 20);
let at = 0;
const ring: string[] = new Array(5000);
for (const n of [1, 6]) {
  const write = time(n, (t) => {
    if (at > buf.length - 1000) at = 0;
    at = t.writeId(buf, at);
  });
  const kept = time(n, (t, i) => {
    ring[i % ring.length] = t.id();
  });
  console.log(
    `${dir} ${n} partition(s): advanceAt + writeId ${write} ns/msg; advanceAt + id() kept in a ring ${kept} ns/msg`,
  );
}
