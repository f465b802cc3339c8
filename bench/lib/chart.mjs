// The headline chart: bar panels built as primitives (rect, line, text), written
// as chart.svg and drawn as chart.png by bench/lib/png.mjs (plain Node: no
// renderer to install, no fonts).
import fs from 'node:fs';
import path from 'node:path';
import { renderPng } from './png.mjs';

export const COLORS = {
  bridge: '#1f6fb4',
  'bridge@tuned': '#7fb2e0',
  predecessor: '#e8792b',
  kcat: '#8c8c8c',
  rdkafka: '#4d4d4d',
  fanout: '#3a9e7a',
  floor: '#b0b0b0',
  'replay-floor': '#b0b0b0',
  'replay-floor-threads': '#d0d0d0',
};
export const NAMES = {
  bridge: 'kafka-sse-bridge',
  'bridge@tuned': 'bridge + proposed changes',
  predecessor: 'kafka-sse 0.4.2',
  kcat: 'kcat (floor)',
  rdkafka: 'node-rdkafka alone (Node floor)',
  'rdkafka@flowing': 'node-rdkafka alone, flowing',
  'bridge+ndjson': 'kafka-sse-bridge, NDJSON',
  'predecessor+ndjson': 'kafka-sse 0.4.2, NDJSON',
  fanout: 'shared-tail prototype',
  floor: 'socket floor (no library)',
  'replay-floor': 'replay floor (no library: node-rdkafka + HTTP, no checks, no ids)',
  'replay-floor+ndjson': 'replay floor, NDJSON',
  'replay-floor-threads': 'replay floor, consuming in a worker thread (no library)',
  'replay-floor-threads+ndjson': 'replay floor in a worker thread, NDJSON',
};
const EXTRA_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#17becf', '#d62728'];

/** Contenders in display order: the known ones first, then variants as they come. */
export function contenderOrder(all) {
  const known = [
    'bridge',
    'bridge@tuned',
    'predecessor',
    'rdkafka',
    'kcat',
    'floor',
    'replay-floor',
    'replay-floor-threads',
    'fanout',
  ];
  const extra = all.filter((c) => !known.includes(c));
  extra.forEach((c, i) => {
    COLORS[c] ??= EXTRA_COLORS[i % EXTRA_COLORS.length];
    NAMES[c] ??= c;
  });
  return [...known.filter((c) => all.includes(c)), ...extra];
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(x, y, s, { size = 12, anchor = 'start', weight = 'normal', fill = '#222', rotate, halo = false } = {}) {
  return { type: 'text', x, y, s: String(s), size, anchor, weight, fill, rotate, halo };
}
const rect = (x, y, w, h, fill) => ({ type: 'rect', x, y, w, h, fill });
const line = (x1, y1, x2, y2, stroke, dash) => ({ type: 'line', x1, y1, x2, y2, stroke, dash });

/** One primitive as SVG. */
function svgOf(p) {
  if (p.type === 'rect') {
    return `<rect x="${p.x.toFixed(1)}" y="${p.y.toFixed(1)}" width="${p.w.toFixed(1)}" height="${p.h.toFixed(1)}" fill="${p.fill}"/>`;
  }
  if (p.type === 'line') {
    const d = p.dash ? ` stroke-dasharray="${p.dash.join(',')}"` : '';
    return `<line x1="${p.x1.toFixed(1)}" y1="${p.y1.toFixed(1)}" x2="${p.x2.toFixed(1)}" y2="${p.y2.toFixed(1)}" stroke="${p.stroke}"${d}/>`;
  }
  const t = p.rotate ? ` transform="rotate(${p.rotate} ${p.x.toFixed(1)} ${p.y.toFixed(1)})"` : '';
  const h = p.halo ? ' stroke="#fff" stroke-width="3" paint-order="stroke"' : '';
  return `<text x="${p.x.toFixed(1)}" y="${p.y.toFixed(1)}" font-size="${p.size}" text-anchor="${p.anchor}" font-weight="${p.weight}" fill="${p.fill}"${t}${h}>${esc(p.s)}</text>`;
}

/** A round step that cuts 0..v into about four intervals. */
function niceStep(v) {
  if (!(v > 0)) return 1;
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

export function formatNumber(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '0';
  if (v >= 10_000) return `${Math.round(v / 1000)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 100) return String(Math.round(v));
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(2);
}

/**
 * One panel of grouped bars. groups: [{label, bars: [{key, value, note}]}].
 * A bar with value null is drawn as a note ("n/a", "✗ …") instead.
 */
function panel({ x, y, w, h, title, subtitle, yLabel, groups, log = false, target }) {
  const out = [];
  const left = x + 58;
  const right = x + w - 12;
  const top = y + 48;
  const bottom = y + h - 40;
  out.push(text(x + w / 2, y + 20, title, { size: 15, anchor: 'middle', weight: 'bold' }));
  if (subtitle) out.push(text(x + w / 2, y + 37, subtitle, { size: 11, anchor: 'middle', fill: '#555' }));
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  if (values.length === 0) {
    out.push(text(x + w / 2, y + h / 2, 'not run', { size: 12, anchor: 'middle', fill: '#a00' }));
    return out;
  }
  let scale;
  let ticks;
  if (log) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...values, target ?? Number.POSITIVE_INFINITY)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, target ?? 0)));
    scale = (v) =>
      bottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (bottom - top);
    ticks = [];
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    const top0 = Math.max(...values, target ?? 0) * 1.08;
    const step = niceStep(top0);
    const max = Math.ceil(top0 / step) * step;
    scale = (v) => bottom - (v / max) * (bottom - top);
    ticks = [];
    for (let t = 0; t <= max * 1.0001; t += step) ticks.push(t);
  }
  for (const t of ticks) {
    const ty = scale(t);
    out.push(line(left, ty, right, ty, '#e3e3e3'));
    out.push(text(left - 6, ty + 4, formatNumber(t), { size: 11, anchor: 'end', fill: '#555' }));
  }
  out.push(line(left, bottom, right, bottom, '#888'));
  out.push(text(x + 14, (top + bottom) / 2, yLabel, { size: 11, anchor: 'middle', fill: '#555', rotate: -90 }));
  const gw = (right - left) / groups.length;
  const labels = [];
  groups.forEach((g, gi) => {
    const gx = left + gi * gw;
    const n = g.bars.length;
    const bw = Math.min(46, (gw - 16) / n);
    const start = gx + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      const bx = start + bi * bw;
      if (b.value === null || b.value === undefined || !(b.value > 0)) {
        out.push(
          text(bx + bw / 2 + 4, bottom - 6, b.note ?? 'n/a', { size: 10, anchor: 'start', fill: '#a00', rotate: -90 }),
        );
        return;
      }
      const by = scale(b.value);
      out.push(rect(bx + 2, by, bw - 4, bottom - by, COLORS[b.key] ?? COLORS[b.key.split(/[@+]/)[0]] ?? '#999'));
      const tall = bottom - by > 16;
      const label = b.label ?? formatNumber(b.value);
      labels.push(
        text(bx + bw / 2, by - 4, b.note && !tall ? `${label} ${b.note}` : label, {
          size: 10,
          anchor: 'middle',
          halo: true,
        }),
      );
      if (b.note && tall) out.push(text(bx + bw / 2, bottom - 6, b.note, { size: 9, anchor: 'middle', fill: '#fff' }));
    });
    out.push(text(gx + gw / 2, bottom + 16, g.label, { size: 12, anchor: 'middle' }));
  });
  out.push(...labels);
  if (target !== undefined) {
    const ty = scale(target);
    out.push(line(left, ty, right, ty, '#c0392b', [5, 4]));
    out.push(
      text(right - 2, ty - 4, `target ${formatNumber(target)}`, {
        size: 10,
        anchor: 'end',
        fill: '#c0392b',
        halo: true,
      }),
    );
  }
  return out;
}

function legend(x, y, keys) {
  return keys.flatMap((k, i) => {
    const lx = x + (i % 2) * 300;
    const ly = y + Math.floor(i / 2) * 20;
    return [rect(lx, ly - 10, 14, 14, COLORS[k]), text(lx + 20, ly + 2, NAMES[k], { size: 13 })];
  });
}

/** The replay floor of a topic entry: the faster way node-rdkafka alone consumed. */
function rdkafkaFloor(t) {
  const xs = [t.rdkafka, t['rdkafka@flowing']].filter(Boolean);
  return xs.length ? xs.reduce((a, b) => (b.msgPerSec > a.msgPerSec ? b : a)) : null;
}

/** The chart as primitives: {W, H, prims}. */
export function chartPrimitives(r) {
  const W = 1320;
  const keys = contenderOrder([...new Set(r.settings.contenders.map((c) => c.split('@')[0]))]);
  const top = 60 + Math.max(0, Math.ceil(keys.length / 2) - 2) * 20;
  const ph = 410;
  const pw = W / 2;
  const panels = [];
  const replayGroups = (value) => {
    const groups = [];
    for (const [k, t] of Object.entries(r.replay.topics)) {
      for (const format of r.replay.formats ?? ['sse']) {
        const sfx = format === 'sse' ? '' : '+ndjson';
        const bars = [];
        for (const c of keys) {
          if (c === 'rdkafka') {
            const f = rdkafkaFloor(t);
            if (f) bars.push({ key: 'rdkafka', ...value(f, true) });
          } else if (c === 'kcat') {
            if (t.kcat) bars.push({ key: 'kcat', ...value(t.kcat, true) });
          } else if (t[`${c}${sfx}`]) bars.push({ key: c, ...value(t[`${c}${sfx}`], false) });
        }
        groups.push({ label: `${k.replace('p', '')}p ${format === 'sse' ? 'SSE' : 'NDJSON'}`, bars });
      }
    }
    return groups;
  };
  if (r.replay) {
    panels.push({
      title: 'Replay throughput (higher is better)',
      subtitle: `${formatNumber(r.replay.messages)} messages of ~${r.replay.messageBytes} B from offset 0; counting client; floors timed first → last message`,
      yLabel: 'messages / s',
      groups: replayGroups((x) => ({ value: x.msgPerSec, note: x.complete ? undefined : '✗' })),
    });
    panels.push({
      title: 'CPU per replayed message (lower is better)',
      subtitle: 'server utime+stime ÷ messages (floors: their own process, start-up included)',
      yLabel: 'µs per message (log scale)',
      groups: replayGroups((x, floor) => ({ value: floor ? x.usPerMessage : x.serverUsPerMessage })),
      log: true,
      target: 8,
    });
  }
  const lives = ['live', 'live10k'].filter((k) => r[k]);
  if (lives.length) {
    const groups = lives.flatMap((k) =>
      ['p50', 'p99'].map((q) => ({
        label: `${q} at ${formatNumber(r[k].rate)}/s`,
        bars: keys
          .filter((c) => r[k].contenders[c])
          .map((c) => ({ key: c, value: r[k].contenders[c].latencyMs?.[q] ?? null })),
      })),
    );
    panels.push({
      title: 'Live latency, produce → client parse (lower is better)',
      subtitle: `one connected client, ${r.live?.seconds ?? r.live10k?.seconds} s per rate; targets p99 < 5 ms (1k/s), < 20 ms (10k/s)`,
      yLabel: 'ms (log scale)',
      groups,
      log: true,
    });
  }
  const manys = ['clients', 'clients-h2'].filter((k) => r[k]);
  if (manys.length) {
    const groups = manys.flatMap((k) =>
      (r[k].counts ?? r.settings.clientCounts).map((n) => ({
        label: `${formatNumber(n)}${k === 'clients-h2' ? ' h2' : ''}`,
        bars: keys
          .filter((c) => r[k].contenders[c])
          .map((c) => {
            const row = r[k].contenders[c].find((x) => x.clients === n);
            if (!row) return { key: c, value: null, note: 'not run' };
            const v = row.peakKbPerClient ?? null;
            return row.verdict.startsWith('ok')
              ? { key: c, value: v }
              : { key: c, value: v, note: v ? '✗' : `✗ ${row.verdict}`.slice(0, 28) };
          }),
      })),
    );
    panels.push({
      title: 'Peak memory per live client (lower is better)',
      subtitle: `(peak server RSS − RSS before) ÷ clients, ${r.clients?.rate ?? r['clients-h2'].rate} msg/s; ✗ = a client missed messages`,
      yLabel: 'KB per client',
      groups,
      target: 30,
    });
  }
  if (r.connect) {
    const groups = ['live', 'resume'].map((kind) => ({
      label: kind === 'live' ? 'new live streams' : 'resumes (tail log)',
      bars: keys
        .filter((c) => r.connect.contenders[c])
        .map((c) => {
          const ok = r.connect.contenders[c][kind].filter((x) => x.ok).at(-1);
          return ok ? { key: c, value: ok.achievedPerSec } : { key: c, value: null, note: '✗ p99 ≥ 100 ms' };
        }),
    }));
    panels.push({
      title: 'Connect rate with p99 < 100 ms (higher is better)',
      subtitle: `highest offered rate held (of ${r.connect.rates.join(', ')}/s); live: first byte, resumes: first message`,
      yLabel: 'streams / s',
      groups,
    });
  }
  if (r.ttfe) {
    const groups = [
      { label: 'first byte', k: 'firstByteMs' },
      { label: 'first message (?since=)', k: 'firstMessageMs' },
    ].map((g) => ({
      label: g.label,
      bars: keys
        .filter((c) => r.ttfe.contenders[c])
        .map((c) => ({
          key: c,
          value: r.ttfe.contenders[c]?.[g.k] ?? null,
          note: c === 'kcat' && g.k === 'firstByteMs' ? 'n/a' : undefined,
        })),
    }));
    panels.push({
      title: 'Time to first event (lower is better)',
      subtitle: `median of ${r.ttfe.samples} requests; kcat includes process start`,
      yLabel: 'ms',
      groups,
    });
  }
  const H = top + Math.ceil(panels.length / 2) * ph + 10;
  const prims = [rect(0, 0, W, H, '#fff')];
  panels.forEach((p, i) => {
    prims.push(...panel({ ...p, x: (i % 2) * pw, y: top + Math.floor(i / 2) * ph, w: pw, h: ph }));
  });
  prims.push(
    text(24, 30, 'kafka-sse-bridge vs kafka-sse 0.4.2 vs the floors', { size: 18, weight: 'bold' }),
    text(
      24,
      50,
      `${r.machine.cores} cores ${r.machine.cpu}, Node ${r.versions.node}, Kafka ${r.versions.kafka}, ${r.startedAt.slice(0, 10)}${r.quick ? ' (quick run)' : ''}`,
      { size: 12, fill: '#555' },
    ),
    ...legend(W - 600, 22, keys),
  );
  return { W, H, prims };
}

/** The SVG of the headline comparisons from results.json's object. */
export function chartSvg(r) {
  const { W, H, prims } = chartPrimitives(r);
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">
<title id="chart-title">Benchmark: kafka-sse-bridge, kafka-sse 0.4.2, node-rdkafka alone and kcat: replay throughput and CPU, live latency, memory per client, connect rate, time to first event</title>
${prims.map(svgOf).join('\n')}
</svg>
`;
}

/** Writes chart.svg and chart.png (drawn in Node by png.mjs). */
export async function writeChart(results, dir) {
  const { W, H, prims } = chartPrimitives(results);
  fs.writeFileSync(path.join(dir, 'chart.svg'), chartSvg(results));
  fs.writeFileSync(path.join(dir, 'chart.png'), renderPng(W, H, prims));
  return true;
}
