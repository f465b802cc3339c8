// scripts/test.mjs's watchdog: a test stuck in a synchronous loop (out of
// mocha's reach) gets the whole run killed soon after its timeout, with a
// line naming it and a parseable summary last, instead of running until CI
// gives up on the job.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

function runTests(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['scripts/test.mjs', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.stderr.on('data', (d) => {
      out += d;
    });
    proc.on('error', reject);
    proc.on('exit', (code) => resolve({ code, out }));
  });
}

describe('npm test watchdog', () => {
  it('kills a run whose test loops synchronously past its timeout, names it, and ends with the summary', async function () {
    this.timeout(90_000);
    const t0 = Date.now();
    const { code, out } = await runTests(
      ['--only', 'unit', '--no-static', 'test/fixtures/stuck-test.fixture.ts', '--grep', '^watchdog fixture '],
      { TEST_STUCK_GRACE_MS: '1500' },
    );
    const lines = out.trimEnd().split('\n');
    assert.equal(code, 1, out);
    assert.match(
      out,
      /test: "watchdog fixture spins forever" was still running after \d+ s \(its timeout of 0.5 s\): a synchronous loop that mocha cannot interrupt; killed the run\./,
    );
    assert.equal(lines.at(-1), 'tests: 1 passed, 1 failed, 0 skipped', out);
    // Killed within seconds of the grace, not left to spin.
    assert.ok(Date.now() - t0 < 60_000, `took ${Date.now() - t0} ms`);
  });
});
