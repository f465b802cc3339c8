#!/usr/bin/env node
// Summarizes a .cpuprofile (node --cpu-prof): self time by function and by
// file, the top N, as shares of the whole profile and of its busy (not idle)
// time. Usage: node bench/lib/profile-summary.mjs <file> [N] [--callers=<name>]
// --callers: also, for every function whose name holds <name>, its time with
// what it calls, by the chain of callers that led to it (the ten nearest).
import fs from 'node:fs';

const args = process.argv.slice(2);
const callersOf = args.find((a) => a.startsWith('--callers='))?.slice('--callers='.length);
const [file, topArg] = args.filter((a) => !a.startsWith('--'));
const top = Number(topArg ?? 25);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dts = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  self.set(id, (self.get(id) ?? 0) + (dts[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFn = new Map();
const byFile = new Map();
for (const [id, t] of self) {
  const cf = byId.get(id).callFrame;
  const where = cf.url ? cf.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '') : '(native)';
  const fn = `${cf.functionName || '(anonymous)'} ${where.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + t);
  const f = cf.url ? where.split('/').slice(-2).join('/') : cf.functionName;
  byFile.set(f, (byFile.get(f) ?? 0) + t);
}
// Busy = everything but (idle): the second column is the share of the time the process worked.
const idle = [...byFn].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, t]) => a + t, 0);
const busy = total - idle;
const show = (title, m) => {
  console.log(`\n${title} (total ${(total / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms)`);
  console.log('  total    busy      self');
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const ofBusy = k.startsWith('(idle)') ? '      ' : `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
    console.log(
      `${((100 * t) / total).toFixed(1).padStart(5)}%  ${ofBusy}  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`,
    );
  }
};
show('self time by function', byFn);
show('self time by file', byFile);

if (callersOf) {
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const withCallees = (id) =>
    (self.get(id) ?? 0) + (byId.get(id).children ?? []).reduce((a, c) => a + withCallees(c), 0);
  const frame = (id) => {
    const cf = byId.get(id).callFrame;
    return `${cf.functionName || '(anonymous)'} ${(cf.url || '(native)').split('/').pop()}:${cf.lineNumber + 1}`;
  };
  const chains = new Map();
  for (const n of prof.nodes) {
    if (!n.callFrame.functionName.includes(callersOf)) continue;
    // A match inside another match is counted with the outer one.
    let up = parent.get(n.id);
    let nested = false;
    for (; up !== undefined && !nested; up = parent.get(up))
      nested = byId.get(up).callFrame.functionName.includes(callersOf);
    if (nested) continue;
    const chain = [];
    for (let id = n.id; id !== undefined && chain.length < 11; id = parent.get(id)) chain.push(frame(id));
    const key = chain.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + withCallees(n.id));
  }
  const all = [...chains.values()].reduce((a, b) => a + b, 0);
  console.log(
    `\n"${callersOf}" with what it calls, by callers (${(all / 1000).toFixed(0)} ms in all, ${((100 * all) / busy).toFixed(1)}% of busy)`,
  );
  for (const [k, t] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}
