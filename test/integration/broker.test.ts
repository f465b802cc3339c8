// The test helpers and the broker launcher against the real broker: if these
// fail, every other integration failure is suspect.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brokerSettings, start } from '../../scripts/kafka.mjs';
import {
  brokers,
  createTopic,
  deleteRecordsBefore,
  deleteTopic,
  fetchMessages,
  partitionCount,
  produce,
  produceReports,
  uniqueTopic,
  watermarks,
} from '../helpers/kafka.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

describe('test helpers against the broker', () => {
  it('uniqueTopic() gives a different valid name on every call', () => {
    const names = Array.from({ length: 100 }, () => uniqueTopic('helpers.unique_names'));
    assert.equal(new Set(names).size, names.length);
    for (const name of names) assert.match(name, /^helpers-unique-names-[a-zA-Z0-9-]+$/);
  });

  it('creates a topic with every partition led, and deletes it', async () => {
    const topic = uniqueTopic('helpers-create');
    await createTopic(topic, 3);
    assert.equal(await partitionCount(topic), 3);
    await deleteTopic(topic);
    assert.equal(await partitionCount(topic), 0);
  });

  it('produces keyed messages with headers and timestamps, in order', async () => {
    const topic = uniqueTopic('helpers-produce');
    await createTopic(topic, 3);
    const base = Date.UTC(2024, 0, 1);
    const offsets = await produce(
      topic,
      [0, 1, 2].map((i) => ({
        value: `value-${i}`,
        key: `key-${i}`,
        partition: 1,
        headers: [{ 'content-type': 'text/plain' }, { trace: `t${i}` }],
        timestamp: base + i * 1000,
      })),
    );
    assert.deepEqual(offsets, [0, 1, 2]);

    const messages = await fetchMessages(topic, 1, 0, 3);
    assert.deepEqual(
      messages.map((m) => ({
        offset: m.offset,
        value: m.value?.toString(),
        key: m.key?.toString(),
        timestamp: m.timestamp,
        headers: m.headers?.map((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.toString()]))),
      })),
      [0, 1, 2].map((i) => ({
        offset: i,
        value: `value-${i}`,
        key: `key-${i}`,
        timestamp: base + i * 1000,
        headers: [{ 'content-type': 'text/plain' }, { trace: `t${i}` }],
      })),
    );
  });

  it('reports the partition a keyed message landed in, and tombstones', async () => {
    const topic = uniqueTopic('helpers-keyed');
    await createTopic(topic, 3);
    const [first, again, tombstone] = await produceReports(topic, [
      { value: 'a', key: 'same-key' },
      { value: 'b', key: 'same-key' },
      { value: null, key: 'same-key' },
    ]);
    assert.ok(first && again && tombstone);
    assert.equal(again.partition, first.partition);
    assert.equal(tombstone.partition, first.partition);
    assert.deepEqual([first.offset, again.offset, tombstone.offset], [0, 1, 2]);
    const [, , read] = await fetchMessages(topic, first.partition, 0, 3);
    assert.equal(read?.value, null);
  });

  it('reads watermarks, and deleteRecordsBefore() moves the low one', async () => {
    const topic = uniqueTopic('helpers-watermarks');
    await createTopic(topic, 3);
    assert.deepEqual(await watermarks(topic, 2), { low: 0, high: 0 });
    await produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ value: `m${i}`, partition: 2 })),
    );
    assert.deepEqual(await watermarks(topic, 2), { low: 0, high: 5 });
    assert.deepEqual(await watermarks(topic, 0), { low: 0, high: 0 });

    assert.equal(await deleteRecordsBefore(topic, 2, 3), 3);
    assert.deepEqual(await watermarks(topic, 2), { low: 3, high: 5 });
    const [first] = await fetchMessages(topic, 2, 3, 1);
    assert.equal(first?.value?.toString(), 'm3');
  });
});

describe('broker launcher (scripts/kafka.mjs)', () => {
  it('`status` exits 0 while the broker is up', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'scripts', 'kafka.mjs'), 'status'], {
      cwd: ROOT,
      timeout: 10_000,
    });
    assert.match(stdout, /is up/);
  });

  it('start() returns at once, without starting anything, when a broker already answers', async function () {
    // With KAFKA_BROKERS pointing elsewhere there is no local broker to ask about.
    if (brokers() !== brokerSettings().brokers) this.skip();
    const began = Date.now();
    const result = await start(brokerSettings(), { quiet: true });
    assert.deepEqual(result, { started: false, brokers: brokers() });
    assert.ok(Date.now() - began < 2000, `start() took ${Date.now() - began} ms`);
  });
});
