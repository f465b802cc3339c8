// The resume id's cost per message: advanceAt() then writeId() (what a replay's frame does), 1 and 6
// partitions, for the tree at <dir> (default: this one), to compare two trees one after the other:
//   node --import tsx bench/id-micro.mts [dir]
const dir = process.argv[2] ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { PositionTracker } = await import(`${dir}/lib/position-tracker.ts`);
for (const n of [1, 6]) {
  const starts = Array.from({ length: n }, (_, p) => ({
    topic: 'bench-replay-6p',
    partition: p,
    offset: 0,
    reason: 'offset',
  }));
  const buf = Buffer.alloc(1 << 20);
  const best: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = new PositionTracker(starts, false);
    const N = 1_000_000;
    let at = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      t.advanceAt(i % n, 100000 + Math.floor(i / n), 1764633600000);
      if (at > buf.length - 1000) at = 0;
      at = t.writeId(buf, at);
    }
    best.push(Number(process.hrtime.bigint() - t0) / N);
  }
  best.sort((a, b) => a - b);
  console.log(`${dir} ${n} partition(s): advanceAt + writeId ${best[1]!.toFixed(0)} ns/msg`);
}
