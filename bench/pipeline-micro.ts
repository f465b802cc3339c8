// Per-message cost of the library's own JS on the replay path, without Kafka
// or sockets: deserialize → frame → batch → encode, as a private consumer's
// stream does it. Prints µs per message for each stage alone and together.
//   node --import tsx bench/pipeline-micro.ts [messages]

import { ByteBatch } from '../lib/byte-batch.ts';
import { scanBytes, scanBytesJs } from '../lib/byte-scan.ts';
import { defaultDeserializer } from '../lib/deserializer.ts';
import { scanJson } from '../lib/json-scan.ts';
import { StreamPipeline } from '../lib/pipeline.ts';
import { PositionTracker } from '../lib/position-tracker.ts';
import type { KafkaMessage } from '../lib/types.ts';
import { wikiEdit } from './lib/common.mjs';

const N = Number(process.argv[2] ?? 200_000);
const values = Array.from({ length: 1000 }, (_, i) => Buffer.from(wikiEdit(i, 0, 600)));
const noop = () => {};
const log = { info: noop, warn: noop, error: noop, debug: noop, trace: noop } as never;

function messages(): KafkaMessage[] {
  return Array.from({ length: N }, (_, i) => ({
    topic: 'bench-topic',
    partition: 0,
    offset: i,
    value: values[i % values.length] as Buffer,
    size: 600,
    key: null,
    timestamp: 1764633600000 + i,
  })) as unknown as KafkaMessage[];
}

function time(name: string, run: (msgs: KafkaMessage[]) => void): void {
  const best: number[] = [];
  for (let r = 0; r < 5; r++) {
    const msgs = messages();
    const t0 = process.hrtime.bigint();
    run(msgs);
    best.push(Number(process.hrtime.bigint() - t0) / 1000 / N);
  }
  best.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} ${(best[1] as number).toFixed(3)} µs/msg (min ${(best[0] as number).toFixed(3)})`);
}

let sink = 0;
time('toString', (msgs) => {
  for (const m of msgs) sink += (m.value as Buffer).toString('utf8').length;
});
time('toString + JSON.parse', (msgs) => {
  for (const m of msgs) sink += JSON.parse((m.value as Buffer).toString('utf8')) ? 1 : 0;
});
time('scanJson (bytes) + toString', (msgs) => {
  for (const m of msgs) sink += scanJson(m.value as Buffer) + (m.value as Buffer).toString('utf8').length;
});
time('sendable check, JavaScript', (msgs) => {
  for (const m of msgs) sink += scanBytesJs(m.value as Buffer);
});
time('sendable check, WebAssembly', (msgs) => {
  for (const m of msgs) sink += scanBytes(m.value as Buffer);
});
time('defaultDeserializer', (msgs) => {
  for (const m of msgs) sink += defaultDeserializer(m) ? 1 : 0;
});
/**
 * Runs every message through a private consumer's stream pipeline (default
 * options), calling `each` with the pipeline, the advanced positions and the message.
 */
function stream(
  mode: 'sse' | 'ndjson',
  msgs: KafkaMessage[],
  each: (p: StreamPipeline, pos: PositionTracker, m: KafkaMessage) => void,
): void {
  const p = new StreamPipeline({
    mode,
    deserializer: defaultDeserializer,
    filterer: null,
    filters: [],
    log,
    onFailure: noop,
  });
  const pos = new PositionTracker([{ topic: 'bench-topic', partition: 0, offset: 0 } as never], false);
  for (const m of msgs) {
    pos.advanceAt(0, m.offset, m.timestamp);
    each(p, pos, m);
  }
}

/** Frames every message as text, calling `take` with each frame. */
function frames(mode: 'sse' | 'ndjson', msgs: KafkaMessage[], take: (frame: string) => void): void {
  stream(mode, msgs, (p, pos, m) => take((p.frame(m, pos) as string | undefined) ?? '')); // not shared: text
}

for (const mode of ['sse', 'ndjson'] as const) {
  time(`pipeline.frame (${mode})`, (msgs) => frames(mode, msgs, (f) => (sink += f.length)));
  time(`frameBytes, 96Ki batches taken (${mode})`, (msgs) => {
    const out = new ByteBatch();
    stream(mode, msgs, (p, pos, m) => {
      p.frameBytes(m, pos, out);
      if (out.length >= 96 * 1024) sink += out.take().length;
    });
  });
  for (const batch of [96 * 1024, 256 * 1024]) {
    time(`frame + ${batch / 1024}Ki batches + Buffer.from (${mode})`, (msgs) => {
      let pending = '';
      frames(mode, msgs, (f) => {
        pending += f;
        if (pending.length >= batch) {
          sink += Buffer.from(pending, 'utf8').length;
          pending = '';
        }
      });
    });
  }
}
console.log(sink > 0 ? '' : '-');
