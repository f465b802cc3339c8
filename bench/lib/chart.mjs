// The headline chart: a small dependency-free SVG writer (four bar panels),
// rendered to PNG with rsvg-convert (librsvg) when it is installed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const COLORS = {
  bridge: '#1f6fb4',
  'bridge@tuned': '#7fb2e0',
  predecessor: '#e8792b',
  kcat: '#8c8c8c',
  fanout: '#3a9e7a',
};
export const NAMES = {
  bridge: 'kafka-sse-bridge',
  'bridge@tuned': 'bridge + proposed changes',
  predecessor: 'kafka-sse 0.4.2',
  kcat: 'kcat (floor)',
  fanout: 'shared-tail prototype',
};
const EXTRA_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#17becf', '#d62728'];

/** Contenders in display order: the known ones first, then variants as they come. */
export function contenderOrder(all) {
  const known = ['bridge', 'bridge@tuned', 'predecessor', 'kcat', 'fanout'];
  const extra = all.filter((c) => !known.includes(c));
  extra.forEach((c, i) => {
    COLORS[c] ??= EXTRA_COLORS[i % EXTRA_COLORS.length];
    NAMES[c] ??= c;
  });
  return [...known.filter((c) => all.includes(c)), ...extra];
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(x, y, s, { size = 12, anchor = 'start', weight = 'normal', fill = '#222', rotate, halo = false } = {}) {
  const t = rotate ? ` transform="rotate(${rotate} ${x} ${y})"` : '';
  const h = halo ? ' stroke="#fff" stroke-width="3" paint-order="stroke"' : '';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${size}" text-anchor="${anchor}" font-weight="${weight}" fill="${fill}"${t}${h}>${esc(s)}</text>`;
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
    out.push(`<line x1="${left}" y1="${ty.toFixed(1)}" x2="${right}" y2="${ty.toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(text(left - 6, ty + 4, formatNumber(t), { size: 11, anchor: 'end', fill: '#555' }));
  }
  out.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#888"/>`);
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
      out.push(
        `<rect x="${(bx + 2).toFixed(1)}" y="${by.toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${(bottom - by).toFixed(1)}" fill="${COLORS[b.key]}"/>`,
      );
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
    out.push(
      `<line x1="${left}" y1="${ty.toFixed(1)}" x2="${right}" y2="${ty.toFixed(1)}" stroke="#c0392b" stroke-dasharray="5,4"/>`,
    );
    out.push(
      text(right - 2, ty - 4, `target ${formatNumber(target)}`, {
        size: 10,
        anchor: 'end',
        fill: '#c0392b',
        halo: true,
      }),
    );
  }
  return out.join('\n');
}

function legend(x, y, keys) {
  return keys
    .map((k, i) => {
      const lx = x + (i % 3) * 215;
      const ly = y + Math.floor(i / 3) * 20;
      return `<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="${COLORS[k]}"/>${text(lx + 20, ly + 2, NAMES[k], { size: 13 })}`;
    })
    .join('\n');
}

/** Builds the SVG of the headline comparisons from results.json's object. */
export function chartSvg(r) {
  const W = 1320;
  const H = 920;
  const parts = [];
  const keys = contenderOrder(r.settings.contenders);
  const present = (obj) => keys.filter((c) => obj && c in obj);
  const pw = W / 2;
  // The legend takes a row per three contenders; the panels start below it.
  const top = 60 + Math.max(0, Math.ceil(keys.length / 3) - 2) * 20;
  const ph = (H - top - 10) / 2;
  const at = (i) => ({ x: (i % 2) * pw, y: top + Math.floor(i / 2) * ph, w: pw, h: ph });
  let i = 0;
  if (r.replay) {
    const groups = Object.entries(r.replay.topics).map(([k, t]) => ({
      label: `${k.replace('p', '')} partition${k === '1p' ? '' : 's'}`,
      bars: present(t).map((c) => ({
        key: c,
        value: t[c]?.msgPerSec ?? null,
        note: t[c] && !t[c].complete ? '(capped)' : undefined,
      })),
    }));
    parts.push(
      panel({
        ...at(i++),
        title: 'Replay throughput (higher is better)',
        subtitle: `${formatNumber(r.replay.messages)} messages of ~${r.replay.messageBytes} B, one client from offset 0`,
        yLabel: 'messages / s',
        groups,
      }),
    );
  }
  if (r.live) {
    const groups = ['p50', 'p99', 'max'].map((q) => ({
      label: q,
      bars: present(r.live.contenders).map((c) => ({ key: c, value: r.live.contenders[c]?.latencyMs?.[q] ?? null })),
    }));
    parts.push(
      panel({
        ...at(i++),
        title: 'Live latency, produce → client parse (lower is better)',
        subtitle: `${r.live.rate} messages/s for ${r.live.seconds} s, one connected client`,
        yLabel: 'ms (log scale)',
        groups,
        log: true,
        target: 10,
      }),
    );
  }
  if (r.clients) {
    const counts = r.settings.clientCounts;
    const groups = counts.map((n) => ({
      label: `${n} clients`,
      bars: present(r.clients.contenders).map((c) => {
        const row = r.clients.contenders[c]?.find((x) => x.clients === n);
        if (!row) return { key: c, value: null, note: 'not run' };
        if (!row.verdict.startsWith('ok')) {
          return {
            key: c,
            value: row.perClientMb ?? null,
            note: row.perClientMb ? '✗' : `✗ ${row.verdict}`.slice(0, 28),
          };
        }
        return { key: c, value: row.perClientMb };
      }),
    }));
    parts.push(
      panel({
        ...at(i++),
        title: 'Memory per live client (lower is better)',
        subtitle: 'server RSS growth ÷ clients (kcat: PSS of one process per client); ✗ = a client missed messages',
        yLabel: 'MB per client',
        groups,
        target: 2,
      }),
    );
  }
  if (r.ttfe) {
    const groups = [
      { label: 'first byte', k: 'firstByteMs' },
      { label: 'first message (?since=)', k: 'firstMessageMs' },
    ].map((g) => ({
      label: g.label,
      bars: present(r.ttfe.contenders).map((c) => ({
        key: c,
        value: r.ttfe.contenders[c]?.[g.k] ?? null,
        note: c === 'kcat' && g.k === 'firstByteMs' ? 'n/a' : undefined,
      })),
    }));
    parts.push(
      panel({
        ...at(i++),
        title: 'Time to first event (lower is better)',
        subtitle: `median of ${r.ttfe.samples} requests; kcat includes process start`,
        yLabel: 'ms',
        groups,
      }),
    );
  }
  const head = [
    text(24, 30, 'kafka-sse-bridge vs kafka-sse 0.4.2 vs kcat', { size: 20, weight: 'bold' }),
    text(
      24,
      50,
      `${r.machine.cores} cores ${r.machine.cpu}, Node ${r.versions.node}, Kafka ${r.versions.kafka}, ${r.startedAt.slice(0, 10)}${r.quick ? ' (quick run)' : ''}`,
      {
        size: 12,
        fill: '#555',
      },
    ),
    legend(W - 650, 22, keys),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">
<title id="chart-title">Benchmark: kafka-sse-bridge, kafka-sse 0.4.2 and kcat: replay throughput, live latency, memory per client, time to first event</title>
<rect width="${W}" height="${H}" fill="#fff"/>
${head.join('\n')}
${parts.join('\n')}
</svg>
`;
}

/** Writes chart.svg and, if rsvg-convert is available, chart.png. */
export async function writeChart(results, dir) {
  const svg = path.join(dir, 'chart.svg');
  fs.writeFileSync(svg, chartSvg(results));
  const r = spawnSync('rsvg-convert', ['-f', 'png', '-o', path.join(dir, 'chart.png'), svg], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    console.warn(`chart.png not rendered (${r.error?.message ?? r.stderr}); install librsvg2-bin for rsvg-convert`);
    return false;
  }
  return true;
}
