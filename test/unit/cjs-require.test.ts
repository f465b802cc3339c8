// The package is ESM; CommonJS users reach it through require(esm), which Node
// supports from 20.19 as long as the module graph has no top-level await.
// This loads the built package by name, as a user's project would, so the
// "exports" map and dist/ are what is tested. scripts/test.mjs builds dist/ first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

/** Runs node with `args` in `dir` (a project depending on this repository); resolves with the JSON it printed last. */
async function runInConsumerProject(dir: string, args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, args, { cwd: dir, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
}

describe('package entry points (built dist/)', () => {
  let dir: string;

  before(() => {
    const built = path.join(ROOT, 'dist', 'index.js');
    assert.ok(fs.existsSync(built), `${built} is missing: run \`npm run build\` first (npm test does)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-sse-bridge-cjs-'));
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'kafka-sse-bridge'), 'dir');
    fs.writeFileSync(path.join(dir, 'package.json'), '{"private": true}\n');
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('require("kafka-sse-bridge") works from CommonJS', async () => {
    const code = [
      "const m = require('kafka-sse-bridge');",
      'console.log(JSON.stringify({ kafkaSse: typeof m.kafkaSse, default: typeof m.default }));',
    ].join('\n');
    const result = await runInConsumerProject(dir, ['--no-warnings', '-e', code]);
    assert.deepEqual(result, { kafkaSse: 'function', default: 'function' });
  });

  it('import "kafka-sse-bridge" works from ESM', async () => {
    const code = [
      "const m = await import('kafka-sse-bridge');",
      'console.log(JSON.stringify({ kafkaSse: typeof m.kafkaSse, default: typeof m.default }));',
    ].join('\n');
    const result = await runInConsumerProject(dir, ['--no-warnings', '--input-type=module', '-e', code]);
    assert.deepEqual(result, { kafkaSse: 'function', default: 'function' });
  });
});
